// The wizard's review step: peak memory by part and, once this machine is calibrated for the
// model, time (generation and update apart for GRPO), from /api/training/estimate. "Measure on
// this machine" runs the calibration (/api/training/calibrate) and shows the new estimate.
import { api, t, tf, el, formatDuration, phaseText } from "./common.js";

/** What each part of the peak is, in the reader's language (t() at render time). */
function partName(name) {
  const names = {
    runtime: t("Framework and trainer"), weights: t("Model weights"),
    adapter_optimizer: t("Adapter, its gradients and optimizer state"),
    gradients_optimizer: t("Gradients and optimizer state"), reference_weights: t("Reference model (KL)"),
    activations: t("Activations"), logits: t("Logits"), activations_logits: t("Activations and logits (measured)"),
    kv_cache: t("Generation KV cache"),
  };
  return names[name] || name;
}

function gigabytes(bytes) {
  return typeof bytes === "number" ? `${(bytes / 2 ** 30).toFixed(2)} GB` : "–";
}

function memoryTable(memory) {
  const table = el("table", null, { id: "estimate-parts" });
  const body = el("tbody");
  // the persistent parts first, then what one step adds (the API's JSON sorts keys by name)
  const order = ["runtime", "weights", "adapter_optimizer", "gradients_optimizer", "reference_weights",
    "activations", "activations_logits", "kv_cache"];
  const names = Object.keys(memory.parts).sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
  for (const [name, bytes] of names.map((n) => [n, memory.parts[n]])) {
    const row = el("tr", null, { "data-part": name });
    row.append(el("td", partName(name)), el("td", gigabytes(bytes), { class: "num" }));
    body.append(row);
  }
  const total = el("tr", null, { class: "total", "data-part": "peak" });
  total.append(el("td", `${t("Estimated peak")} (${phaseText(memory.phase)})`), el("td", gigabytes(memory.peak), { class: "num", id: "estimate-peak" }));
  body.append(total);
  if (memory.free !== null && memory.free !== undefined) {
    const free = el("tr", null, { "data-part": "free" });
    free.append(el("td", t("Free now")), el("td", gigabytes(memory.free), { class: "num" }));
    body.append(free);
  }
  table.append(body);
  return table;
}

function timeList(time) {
  const list = el("ul", null, { id: "estimate-time" });
  for (const [phase, found] of Object.entries(time.phases)) {
    const text = found.seconds === null
      ? `${phaseText(phase)}: ${t("steps unknown (set max steps)")}`
      : found.generation_seconds !== undefined
        ? tf("{phase}: {steps} steps, {total} ({generation} generating, {update} updating)", {
          phase: phaseText(phase), steps: found.steps, total: formatDuration(found.seconds),
          generation: formatDuration(found.generation_seconds), update: formatDuration(found.update_seconds) })
        : tf("{phase}: {steps} steps, {total}", { phase: phaseText(phase), steps: found.steps, total: formatDuration(found.seconds) });
    list.append(el("li", text, { "data-phase": phase }));
  }
  if (time.seconds !== null) list.append(el("li", `${t("In all, with loading the model")}: ${formatDuration(time.seconds)}`, { id: "estimate-total-time" }));
  return list;
}

export function renderEstimate(box, result) {
  box.replaceChildren();
  if (!result.available) {
    box.append(el("p", result.reason, { class: "muted", id: "estimate-unavailable" }));
    return;
  }
  box.append(memoryTable(result.memory));
  if (result.memory.warning) box.append(el("p", result.memory.warning, { class: "error-text", id: "estimate-warning", role: "alert" }));
  const lengths = result.lengths;
  box.append(el("p", tf("Typical prompt {prompt} tokens, answer {response} tokens (95th percentile of the first rows).", lengths), { class: "muted" }));
  if (result.time) {
    box.append(timeList(result.time));
    box.append(el("p", `${t("Measured on this machine")}: ${result.calibrated_at}. ${t("Completions are assumed to reach their maximum length, so generation time is an upper bound.")}`, { class: "muted" }));
  } else {
    box.append(el("p", t("Time needs a short measurement of this model on this machine."), { class: "muted", id: "estimate-no-time" }));
  }
  for (const note of result.notes || []) box.append(el("p", note, { class: "muted" }));
}

/** Estimates `draft` into `box`, and makes `button` calibrate then estimate again. */
export function setUpEstimate(box, button, status, currentDraft) {
  let latest = 0;  // only the newest answer is shown, whichever request it answers
  const ask = async (url) => {
    const mine = ++latest;
    const answer = await api("POST", url, { config: currentDraft() });
    return mine === latest ? answer : null;
  };
  const show = async () => {
    try {
      const answer = await ask("/api/training/estimate");
      if (answer) renderEstimate(box, answer);
      box.dataset.ready = "true";
    } catch (err) {
      box.replaceChildren(el("p", err.message, { class: "error-text" }));
    }
  };
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = t("Measuring this model on this machine…");
    try {
      const answer = await ask("/api/training/calibrate");
      if (answer) renderEstimate(box, answer);
      status.textContent = "";
    } catch (err) {
      status.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  });
  return show;
}
