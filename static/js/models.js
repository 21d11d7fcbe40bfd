// The models page: download a hub model into the local model cache with a live progress bar
// (Socket.IO `model_download_progress`, with polling as a fallback), cancel it, and list and delete
// the cached models. Errors are shown at the model id field. Data is always shown as text.
import { api, t, el, toast, errorSlotFor, socket } from "./common.js";

const POLL_MS = 1500;
const STATUS_TEXT = {
  running: t("downloading"), done: t("downloaded"), failed: t("failed"), cancelled: t("cancelled"),
};
const form = document.getElementById("download-form");
const input = document.getElementById("model-id");
const downloadsBox = document.getElementById("downloads");
const downloads = new Map();  // download id -> last known state

export function formatBytes(size) {
  if (typeof size !== "number") return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = size, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

// ---- errors at the field ---------------------------------------------------------------------
function showFieldError(field, message) {
  const slot = errorSlotFor(field || "model_id", form) || errorSlotFor("model_id", form);
  slot.textContent = message;
  slot.closest(".field")?.classList.add("invalid");
}

function clearFieldError() {
  form.querySelectorAll("[data-error-for]").forEach((slot) => { slot.textContent = ""; });
  form.querySelectorAll(".field.invalid").forEach((field) => field.classList.remove("invalid"));
}

// ---- downloads -------------------------------------------------------------------------------
async function startDownload(event) {
  event.preventDefault();
  clearFieldError();
  const button = document.getElementById("download-button");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    const body = { model_id: input.value };
    const sid = socket()?.id;
    if (sid) body.socket_id = sid;  // progress events then go to this page only
    update(await api("POST", "/api/models/download", body));
  } catch (err) {
    showFieldError(err.field, err.message);
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

function downloadRow(state) {
  let row = downloadsBox.querySelector(`[data-download-id="${CSS.escape(state.download_id)}"]`);
  if (row) return row;
  row = el("div", null, { class: "model-download", "data-download-id": state.download_id });
  const head = el("div", null, { class: "model-download-head" });
  head.append(el("strong", state.model_id), el("span", "", { class: "status" }),
    el("span", "", { class: "spacer" }));
  const cancel = el("button", t("Cancel"), { type: "button", class: "secondary small" });
  cancel.addEventListener("click", () => cancelDownload(state.download_id, cancel));
  head.append(cancel);
  const line = el("div", null, { class: "model-download-progress" });
  line.append(el("progress", null, { max: "1", value: "0" }), el("span", "", { class: "bytes" }),
    el("span", "", { class: "muted detail" }));
  row.append(head, line, el("p", "", { class: "error-text", role: "alert" }));
  downloadsBox.prepend(row);
  return row;
}

function detailText(state) {
  if (state.status !== "running") return "";
  return state.file ? `${t("Downloading")} ${state.file}` : t("Checking the hub…");
}

/** Shows a download's state (from the API or an event); a change of status refreshes the list. */
function update(state) {
  if (!state?.download_id) return;
  const before = downloads.get(state.download_id);
  downloads.set(state.download_id, state);
  const row = downloadRow(state);
  row.dataset.status = state.status;
  row.querySelector(".status").textContent = STATUS_TEXT[state.status] || state.status;
  row.querySelector(".status").className = `status status-${state.status}`;
  row.querySelector("progress").value = state.progress || 0;
  row.querySelector(".bytes").textContent = state.total_bytes
    ? `${formatBytes(state.downloaded_bytes)} / ${formatBytes(state.total_bytes)}` : "";
  row.querySelector(".detail").textContent = detailText(state);
  row.querySelector(".error-text").textContent = state.status === "failed" ? state.error || "" : "";
  row.querySelector("button").hidden = state.status !== "running";
  if (before?.status === state.status || state.status === "running") return;
  if (state.status === "failed" && input.value.trim() === state.model_id) {
    showFieldError("model_id", state.error || t("The download failed."));
  }
  if (state.status === "done") toast(`${t("Downloaded")} ${state.model_id}`);
  loadCache();
}

async function cancelDownload(downloadId, button) {
  button.disabled = true;
  try {
    update(await api("DELETE", `/api/models/downloads/${encodeURIComponent(downloadId)}`));
  } catch (err) {
    toast(err.message, "error");
  } finally {
    button.disabled = false;
  }
}

async function pollRunning() {
  for (const state of downloads.values()) {
    if (state.status !== "running") continue;
    try {
      update(await api("GET", `/api/models/downloads/${encodeURIComponent(state.download_id)}`));
    } catch { /* a server restart forgets downloads; the list shows what is cached */ }
  }
}

// ---- the cache -------------------------------------------------------------------------------
function modelRow(model) {
  const row = el("tr", null, { "data-name": model.name });
  row.append(el("td", model.name),
    el("td", model.kind === "default" ? t("default (bundled)") : model.kind === "hub" ? model.model_id : "–"),
    el("td", formatBytes(model.size), { class: "num size" }),
    el("td", model.complete ? t("complete") : t("incomplete"), { class: model.complete ? "" : "status-failed" }));
  const actions = el("td", null, { class: "num" });
  const remove = el("button", t("Delete"), { type: "button", class: "danger small" });
  remove.addEventListener("click", () => deleteModel(model, remove));
  if (model.complete) {
    const train = el("a", t("Train with this"), {
      class: "button secondary small", href: `/wizard/model?model=${encodeURIComponent(model.model_id)}` });
    const test = el("a", t("Test"), {
      class: "button secondary small", href: `/test?model=${encodeURIComponent(model.model_id)}` });
    actions.append(train, " ", test, " ");
  }
  actions.append(remove);
  row.append(actions);
  return row;
}

async function deleteModel(model, button) {
  const question = model.kind === "default"
    ? t("Delete the default model from the cache? It is rebuilt from the bundled package the next time it is used.")
    : `${t("Delete this model from the cache? Download it again to use it.")} ${model.name}`;
  if (!window.confirm(question)) return;
  button.disabled = true;
  try {
    await api("DELETE", `/api/models/cache/${encodeURIComponent(model.name)}`);
    toast(`${t("Deleted")} ${model.name}`);
  } catch (err) {
    toast(err.message, "error");
  }
  await loadCache();
}

async function loadCache() {
  try {
    const cache = await api("GET", "/api/models/cache");
    const body = document.querySelector("#cached-models tbody");
    body.replaceChildren(...cache.models.map(modelRow));
    document.getElementById("no-models").hidden = cache.models.length > 0;
    document.getElementById("cached-models").hidden = cache.models.length === 0;
    return cache;
  } catch (err) {
    toast(err.message, "error");
    return null;
  }
}

async function main() {
  form.addEventListener("submit", startDownload);
  input.addEventListener("input", clearFieldError);
  const connection = socket();
  if (connection) {
    connection.on("model_download_progress", update);
    connection.io.on("reconnect", pollRunning);  // events sent while disconnected are lost
  }
  setInterval(pollRunning, POLL_MS);
  const cache = await loadCache();
  (cache?.downloads || []).filter((d) => d.status === "running").reverse().forEach(update);
  document.body.dataset.ready = "true";
}

main();
