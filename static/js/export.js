// The export page: choose a run (its final result or one of its checkpoints), a format and, for
// the GGUF formats, a quantization, then create the export; follow every export's progress live
// (Socket.IO `export_progress`, with polling of GET /api/exports/<id> as the fallback, e.g. after
// a reconnect or a reload), read its verification, download its files or delete it.
// The runs, formats and quantizations come from the page (#export-data); whatever the server
// sends is inserted as text, never as HTML.
import { api, t, el, toast, errorSlotFor, socket, formatNumber, statusText, phaseText } from "./common.js";

const POLL_MS = 3000;
const ACTIVE = new Set(["queued", "running"]);
const DATA = JSON.parse(document.getElementById("export-data").textContent);
const EXPORT_STATUS_TEXT = { done: t("done"), failed: t("failed"), queued: t("queued"), running: t("running") };
const VERIFIED_LABELS = {
  loads: t("Loads"), loader: t("Loaded with"), generated: t("Generated text"),
  tokens_match: t("Prompt tokens match"), template_embedded: t("Chat template in the GGUF"),
  modelfile: t("Ollama Modelfile"), template_matches: t("Template matches"), template: t("Template"),
  stop: t("Stop strings"), conversations_compared: t("Conversations compared"),
  system_prompt: t("System prompt"), tensor_types: t("Tensor types"), file_type: t("File type"),
  fallback_tensors: t("Tensors in a fallback type"), merge: t("Merge check"),
  max_logit_diff: t("Largest logit difference"), tolerance: t("Tolerance"), dtype: t("Weights type"),
  merged_adapter: t("Adapter merged"), lora_tensors: t("LoRA tensors"), lora_pairs: t("LoRA pairs"),
  adapter_type: t("Adapter type"), lora_alpha: t("LoRA alpha"), base_model: t("Base model"),
};

const VERIFIED_ORDER = ["loads", "loader", "file_type", "tensor_types", "fallback_tensors", "adapter_type",
  "lora_pairs", "lora_alpha", "lora_tensors", "merge", "merged_adapter", "dtype", "max_logit_diff",
  "tolerance", "template_embedded", "tokens_match", "modelfile", "base_model"];
const GENERATED_CHARS = 400;

const form = document.getElementById("export-form");
const runSelect = document.getElementById("export-run");
const checkpointSelect = document.getElementById("export-checkpoint");
const quantizationField = document.getElementById("quantization-field");
const quantizationSelect = document.getElementById("export-quantization");
const exportsById = new Map();
const fetching = new Set();

// ---- the form -------------------------------------------------------------------------------
function currentSource() {
  return DATA.sources.find((s) => s.run_id === runSelect.value);
}

function sourceLabel(source) {
  const name = source.name && source.name !== source.run_id ? `${source.name} · ${source.run_id}` : source.run_id;
  return `${name} (${statusText(source.status)})`;
}

function checkpointLabel(checkpoint) {
  return `${checkpoint.name} (${phaseText(checkpoint.phase)}, ${t("step")} ${checkpoint.step})`;
}

function fillCheckpoints(preferred = "") {
  const source = currentSource();
  const options = source?.has_result ? [el("option", t("Final result"), { value: "" })] : [];
  for (const c of source?.checkpoints || []) options.push(el("option", checkpointLabel(c), { value: c.name }));
  checkpointSelect.replaceChildren(...options);
  if (!preferred) return;
  if (source?.checkpoints.some((c) => c.name === preferred)) checkpointSelect.value = preferred;
  else showFieldError("checkpoint", `${t("This run has no complete checkpoint named")} ${preferred}`);
}

function setUpSources() {
  const { sources, selected } = DATA;
  document.getElementById("no-sources").hidden = sources.length > 0;
  form.hidden = sources.length === 0;
  runSelect.replaceChildren(...sources.map((s) => el("option", sourceLabel(s), { value: s.run_id })));
  if (selected.run && sources.some((s) => s.run_id === selected.run)) {
    runSelect.value = selected.run;
  } else if (selected.run) {
    showFieldError("session_id", `${t("This run has nothing to export yet (no final result, no complete checkpoint):")} ${selected.run}`);
  }
  fillCheckpoints(selected.run === runSelect.value ? selected.checkpoint : "");
  runSelect.addEventListener("change", () => { clearErrors(); fillCheckpoints(); });
  checkpointSelect.addEventListener("change", clearErrors);
}

function chosenFormat() {
  return form.querySelector('input[name="format"]:checked')?.value;
}

/** The quantization choices of the chosen format (none for adapter and merged). */
function updateQuantizations() {
  const fmt = chosenFormat();
  const choices = DATA.quantizations[fmt] || [];
  quantizationField.hidden = choices.length === 0;
  if (quantizationSelect.dataset.format === fmt) return;
  quantizationSelect.dataset.format = fmt;
  quantizationSelect.replaceChildren(...choices.map((q) => el("option", q, { value: q })));
  if (choices.length) quantizationSelect.value = DATA.default_quantization[fmt] || choices[0];
}

function formatLabel(fmt) {
  const input = form.querySelector(`input[name="format"][value="${CSS.escape(fmt || "")}"]`);
  return input?.closest("label")?.querySelector("strong")?.textContent || fmt || "–";
}

function showFieldError(field, message) {
  const slot = errorSlotFor(field, form) || document.getElementById("create-error");
  slot.textContent = message;
  slot.closest(".field")?.classList.add("invalid");
}

function clearErrors() {
  form.querySelectorAll("[data-error-for], #create-error").forEach((slot) => { slot.textContent = ""; });
  form.querySelectorAll(".field.invalid").forEach((field) => field.classList.remove("invalid"));
}

function createRequest() {
  const body = { session_id: runSelect.value, format: chosenFormat() };
  if (checkpointSelect.value) body.checkpoint = checkpointSelect.value;
  if (!quantizationField.hidden) body.quantization = quantizationSelect.value;
  const sid = socket()?.id;
  if (sid) body.socket_id = sid;  // progress events then go to this page only
  return body;
}

async function createExport(event) {
  event.preventDefault();
  clearErrors();
  const button = document.getElementById("create-export");
  const status = document.getElementById("create-status");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    const created = await api("POST", "/api/exports/create", createRequest());
    status.textContent = `${t("Export started:")} ${created.export_id}`;
    await fetchExport(created.export_id);
  } catch (err) {
    showFieldError(err.field, err.message);
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

function setUpForm() {
  setUpSources();
  form.querySelectorAll('input[name="format"]').forEach((input) => input.addEventListener("change", () => {
    clearErrors();
    updateQuantizations();
  }));
  updateQuantizations();
  form.addEventListener("submit", createExport);
}

// ---- one export -----------------------------------------------------------------------------
function runOf(state) {
  const dir = state.source?.run_dir || "";
  return dir.split(/[\\/]/).filter(Boolean).pop() || state.source?.base_model || "–";
}

function formatBytes(size) {
  if (typeof size !== "number") return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = size, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

function verifiedValue(value) {
  if (typeof value === "boolean") return value ? t("yes") : t("no");
  if (typeof value === "number") return formatNumber(value, 4);
  if (Array.isArray(value)) return value.length ? value.map(verifiedValue).join(", ") : "–";
  if (value && typeof value === "object") {
    const entries = Object.entries(value);
    // counts (tensor types): the most common first
    if (entries.every(([, v]) => typeof v === "number")) entries.sort((a, b) => b[1] - a[1]);
    return entries.map(([k, v]) => `${VERIFIED_LABELS[k] || k}: ${verifiedValue(v)}`).join(" · ");
  }
  return value === null || value === undefined || value === "" ? "–" : String(value);
}

/** The checks first (loads, tensor types, template), the sample of generated text last. */
function verifiedOrder([key]) {
  const index = VERIFIED_ORDER.indexOf(key);
  return key === "generated" ? 1000 : index < 0 ? 500 : index;
}

function verification(verified) {
  const list = el("dl", null, { class: "export-verified" });
  const entries = Object.entries(verified || {}).sort((a, b) => verifiedOrder(a) - verifiedOrder(b));
  for (const [key, value] of entries) {
    const text = verifiedValue(value);
    const dd = el("dd", text.length > GENERATED_CHARS ? `${text.slice(0, GENERATED_CHARS)}…` : text, { "data-verified": key });
    if (value === false) dd.classList.add("bad");
    list.append(el("dt", VERIFIED_LABELS[key] || key), dd);
  }
  return list;
}

function fileList(state) {
  const list = el("ul", null, { class: "export-files" });
  for (const file of state.files || []) {
    const url = `/api/exports/${encodeURIComponent(state.export_id)}/files/${encodeURIComponent(file.name)}`;
    const item = el("li", null, { "data-file": file.name });
    item.append(el("a", file.name, { href: url, download: file.name.split("/").pop() }),
      el("span", formatBytes(file.size), { class: "muted" }));
    list.append(item);
  }
  return list;
}

function progressBar(state) {
  const box = el("div", null, { class: "export-progress" });
  const value = Math.max(0, Math.min(1, Number(state.progress) || 0));
  const bar = el("progress", null, { max: "1", "aria-label": t("Progress") });
  bar.value = value;
  box.append(bar, el("span", `${Math.round(value * 100)} %`, { class: "export-percent" }),
    el("span", state.message || "", { class: "muted export-message" }));
  return box;
}

function exportHead(state) {
  const head = el("div", null, { class: "export-head" });
  head.append(el("strong", formatLabel(state.format)));
  if (state.quantization) head.append(el("span", state.quantization, { class: "badge" }));
  head.append(el("span", EXPORT_STATUS_TEXT[state.status] || state.status || "–",
    { class: `status status-${state.status}`, "data-role": "status" }));
  head.append(el("span", null, { class: "spacer" }));
  const remove = el("button", t("Delete"), { type: "button", class: "danger small", "data-action": "delete" });
  remove.addEventListener("click", () => deleteExport(state.export_id));
  head.append(remove);
  return head;
}

function exportSource(state) {
  const checkpoint = state.source?.checkpoint || t("final result");
  const created = state.created_at ? new Date(state.created_at).toLocaleString(document.documentElement.lang) : "–";
  const line = el("p", null, { class: "muted export-source" });
  line.append(`${t("Run")}: `, el("span", runOf(state), { "data-role": "run" }),
    ` · ${t("Checkpoint")}: `, el("span", checkpoint, { "data-role": "checkpoint" }),
    ` · ${created}`);
  if (state.size) line.append(` · ${formatBytes(state.size)}`);
  return line;
}

function exportCard(state) {
  const card = el("article", null, { class: "export", "data-export": state.export_id, "data-status": state.status || "" });
  card.append(exportHead(state), exportSource(state));
  if (ACTIVE.has(state.status)) card.append(progressBar(state));
  if (state.status === "failed") card.append(el("p", state.error || t("The export failed; see export.log in its folder."), { class: "error-text export-error", role: "alert" }));
  if (state.status === "done") {
    card.append(el("h3", t("Verification")), verification(state.verified), el("h3", t("Files")), fileList(state));
  }
  return card;
}

// ---- the list -------------------------------------------------------------------------------
function renderList() {
  const sorted = [...exportsById.values()].sort((a, b) => String(b.created_at || "").localeCompare(String(a.created_at || "")));
  document.getElementById("export-list").replaceChildren(...sorted.map(exportCard));
  document.getElementById("exports-empty").hidden = sorted.length > 0;
}

/** Merge what the server said about an export; only its card is redrawn when it is shown. */
function update(state) {
  const known = exportsById.has(state.export_id);
  exportsById.set(state.export_id, { ...exportsById.get(state.export_id), ...state });
  const card = document.querySelector(`#export-list [data-export="${CSS.escape(state.export_id)}"]`);
  if (known && card) card.replaceWith(exportCard(exportsById.get(state.export_id)));
  else renderList();
}

function forget(exportId) {
  exportsById.delete(exportId);
  renderList();
}

async function fetchExport(exportId) {
  if (fetching.has(exportId)) return;
  fetching.add(exportId);
  try {
    update(await api("GET", `/api/exports/${encodeURIComponent(exportId)}`));
  } catch (err) {
    if (err.status === 404) forget(exportId);
  } finally {
    fetching.delete(exportId);
  }
}

async function loadList() {
  try {
    const { exports } = await api("GET", "/api/exports/list");
    exportsById.clear();
    exports.forEach((state) => exportsById.set(state.export_id, state));
    renderList();
  } catch (err) {
    toast(err.message, "error");
  }
}

async function deleteExport(exportId) {
  if (!window.confirm(`${t("Delete this export and its files?")}\n${exportId}`)) return;
  try {
    await api("DELETE", `/api/exports/${encodeURIComponent(exportId)}`);
    forget(exportId);
    toast(`${t("Deleted")} ${exportId}`);
  } catch (err) {
    if (err.status === 404) forget(exportId);
    else toast(err.message, "error");
  }
}

/** A progress event carries status, progress, message and error; files and the verification
 * come with the export's whole state, fetched once it has ended. */
function onProgress(payload) {
  if (!payload?.export_id) return;
  if (!exportsById.has(payload.export_id) || !ACTIVE.has(payload.status)) {
    fetchExport(payload.export_id);
    return;
  }
  update(payload);
}

function pollActive() {
  for (const state of exportsById.values()) {
    if (ACTIVE.has(state.status)) fetchExport(state.export_id);
  }
}

function setUpLiveUpdates() {
  const connection = socket();
  if (connection) {
    connection.on("export_progress", onProgress);
    // events sent while disconnected are lost: read the list again on every reconnection
    connection.io.on("reconnect", loadList);
  }
  setInterval(pollActive, POLL_MS);
}

async function main() {
  setUpForm();
  setUpLiveUpdates();
  await loadList();
  document.body.dataset.ready = "true";
}

main();
