// The datasets page: upload files (drag and drop or the picker, with an upload progress bar), list
// them (rename, delete, download), and for the selected one: a paged preview, the detected shape and
// mapping with an override, the validation report by row, statistics with length histograms,
// duplicates (with a cleaned copy), a train/validation/test split, conversion to another shape,
// and "Use in the wizard". Long jobs (statistics, duplicates) report over Socket.IO
// `dataset_progress`, with polling of GET /api/datasets/jobs/<id> as the fallback. Statistics count
// with the wizard draft's model's tokenizer (the default model's when that one is not here).
// Public datasets: the catalog with a download each, whose progress comes over Socket.IO
// `dataset_download_progress` (polling GET /api/datasets/catalog/downloads/<id> as the fallback);
// a finished download is a new upload in the list.
// Whatever the server sends is inserted as text, never as HTML.
import { api, t, tf, el, toast, socket, formatNumber, DRAFT_KEY } from "./common.js";

const PAGE_ROWS = 10;
const POLL_MS = 1000;
const CELL_CHARS = 600;
const DATA = JSON.parse(document.getElementById("datasets-data").textContent);
const STATUS_TEXT = { running: t("running"), done: t("done"), failed: t("failed") };

const $ = (id) => document.getElementById(id);
const entries = new Map();   // id -> entry (uploaded files only)
const state = { id: null, offset: 0, mapping: null, dedupJob: null };
let selection = 0;           // bumps on every selection: late answers for another dataset are dropped

// ---- formatting ------------------------------------------------------------------------------
function formatSize(size) {
  if (typeof size !== "number") return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = size, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

function percent(confidence) {
  return typeof confidence === "number" ? `${Math.round(confidence * 100)} %` : "";
}

function cellText(value) {
  if (value === null || value === undefined) return "";
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 1);
  return text.length > CELL_CHARS ? `${text.slice(0, CELL_CHARS)}…` : text;
}

function rowsText(rows) {
  return typeof rows === "number" ? `${formatNumber(rows, 0)} ${t("rows")}` : t("rows unknown");
}

function downloadUrl(id) {
  return `/api/datasets/${encodeURIComponent(id)}/download`;
}

function busy(button, on) {
  button.disabled = on;
  if (on) button.setAttribute("aria-busy", "true");
  else button.removeAttribute("aria-busy");
}

/** Runs `work` with `button` busy; an error lands in `slot` (the section's error line). */
async function guarded(button, slot, work) {
  slot.textContent = "";
  busy(button, true);
  try {
    return await work();
  } catch (err) {
    slot.textContent = err.message;
    return undefined;
  } finally {
    busy(button, false);
  }
}

/** A request body about the selected dataset (a .txt file's reading mode included). */
function about(extra = {}) {
  const body = { id: state.id, ...extra };
  if (entries.get(state.id)?.format === "txt") body.txt_mode = $("txt-mode").value;
  return body;
}

function withSocket(body) {
  const sid = socket()?.id;
  if (sid) body.socket_id = sid;  // progress events then go to this page only
  return body;
}

// ---- upload ----------------------------------------------------------------------------------
function uploadError(status, body, file) {
  if (body?.error) return body.error;
  if (status === 413 || (status === 0 && file.size > DATA.max_upload)) {
    return `${t("The file is larger than the upload limit of")} ${formatSize(DATA.max_upload)}`;
  }
  if (status === 0) return t("The upload failed: the server cannot be reached.");
  return `${t("The upload failed")} (HTTP ${status})`;
}

/** POSTs one file with XMLHttpRequest (fetch cannot report upload progress). */
function sendFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/datasets/upload");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON: a proxy's page */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(Object.assign(new Error(uploadError(xhr.status, body, file)), { status: xhr.status }));
    });
    xhr.addEventListener("error", () => reject(Object.assign(new Error(uploadError(0, {}, file)), { status: 0 })));
    const form = new FormData();
    form.append("file", file);
    xhr.send(form);
  });
}

async function upload(file) {
  const row = $("upload-progress-row"), bar = $("upload-progress"), status = $("upload-status");
  const error = $("upload-error");
  error.textContent = "";
  delete error.dataset.status;
  row.hidden = false;
  bar.value = 0;
  status.textContent = `${t("Uploading")} ${file.name}…`;
  try {
    const entry = await sendFile(file, (fraction) => {
      bar.value = fraction;
      status.textContent = `${t("Uploading")} ${file.name}… ${Math.round(fraction * 100)} %`;
    });
    bar.value = 1;
    status.textContent = `${t("Uploaded")}: ${entry.name} (${rowsText(entry.rows)})`;
    entries.set(entry.id, entry);
    renderList();
    await select(entry.id);
  } catch (err) {
    row.hidden = true;
    error.dataset.status = String(err.status ?? "");
    error.textContent = `${file.name}: ${err.message}`;
  }
}

function setUpUpload() {
  const zone = $("dropzone"), input = $("upload-file");
  input.addEventListener("change", async () => {
    for (const file of [...input.files]) await upload(file);
    input.value = "";
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", async (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    for (const file of [...(event.dataTransfer?.files || [])]) await upload(file);
  });
}

// ---- the list --------------------------------------------------------------------------------
async function loadList() {
  try {
    const { datasets } = await api("GET", "/api/datasets/list");
    entries.clear();
    for (const d of datasets) if (d.source === "file") entries.set(d.id, d);
    $("list-error").textContent = "";
  } catch (err) {
    $("list-error").textContent = err.message;
  }
  renderList();
}

function entryMeta(entry) {
  const parts = [entry.format, rowsText(entry.rows), formatSize(entry.size)];
  if (entry.shape) parts.push(`${entry.shape} ${percent(entry.confidence)}`.trim());
  if (entry.derived_from) {
    const origin = entries.get(entry.derived_from);
    parts.push(`${t("from")} ${origin ? origin.name : entry.derived_from}`);
  }
  return parts.filter(Boolean).join(" · ");
}

function listItem(entry) {
  const item = el("li", null, { class: "dataset-item", "data-id": entry.id });
  if (entry.id === state.id) item.setAttribute("aria-current", "true");
  const name = el("button", entry.name, { type: "button", class: "dataset-name", "data-action": "select" });
  name.addEventListener("click", () => select(entry.id));
  const meta = el("span", entryMeta(entry), { class: "dataset-meta muted", "data-role": "meta" });
  const actions = el("span", null, { class: "dataset-actions" });
  const rename = el("button", t("Rename"), { type: "button", class: "secondary small", "data-action": "rename" });
  rename.addEventListener("click", () => startRename(item, entry));
  const download = el("a", t("Download"), { class: "button secondary small", "data-action": "download",
    href: downloadUrl(entry.id), download: entry.name || "" });
  const remove = el("button", t("Delete"), { type: "button", class: "danger small", "data-action": "delete" });
  remove.addEventListener("click", () => removeEntry(entry, remove));
  actions.append(rename, download, remove);
  item.append(name, meta, actions, el("p", "", { class: "error-text", role: "alert" }));
  return item;
}

function renderList() {
  const list = [...entries.values()].sort((a, b) => String(b.uploaded_at || "").localeCompare(String(a.uploaded_at || "")));
  $("dataset-list").replaceChildren(...list.map(listItem));
  $("datasets-empty").hidden = list.length > 0;
}

function startRename(item, entry) {
  const input = el("input", null, { type: "text", class: "dataset-rename", "aria-label": t("New name") });
  input.value = entry.name;
  const save = el("button", t("Save"), { type: "button", class: "small", "data-action": "save-name" });
  const cancel = el("button", t("Cancel"), { type: "button", class: "secondary small" });
  const form = el("span", null, { class: "dataset-rename-form" });
  form.append(input, save, cancel);
  item.querySelector(".dataset-name").replaceWith(form);
  item.querySelector("[data-action=rename]").disabled = true;
  const error = item.querySelector(".error-text");
  const submit = async () => {
    busy(save, true);
    try {
      const updated = await api("PATCH", `/api/datasets/${encodeURIComponent(entry.id)}`, { name: input.value });
      entries.set(updated.id, { ...entry, ...updated });
      renderList();
      if (state.id === updated.id) showTitle(entries.get(updated.id));
    } catch (err) {
      error.textContent = err.message;
      busy(save, false);
    }
  };
  save.addEventListener("click", submit);
  cancel.addEventListener("click", renderList);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") submit();
    if (event.key === "Escape") renderList();
  });
  input.focus();
  input.select();
}

async function removeEntry(entry, button) {
  if (!window.confirm(`${t("Delete this dataset?")}\n${entry.name}`)) return;
  busy(button, true);
  try {
    await api("DELETE", `/api/datasets/${encodeURIComponent(entry.id)}`);
    entries.delete(entry.id);
    if (state.id === entry.id) deselect();
    renderList();
    toast(`${t("Deleted")}: ${entry.name}`);
  } catch (err) {
    button.closest("li").querySelector(".error-text").textContent = err.message;
    busy(button, false);
  }
}

// ---- public datasets (the catalog) -----------------------------------------------------------
const DOWNLOAD_TEXT = {
  running: t("downloading"), done: t("downloaded"), failed: t("failed"), cancelled: t("cancelled"),
};
let catalogEntries = [];                  // as GET /api/datasets/catalog lists them
const catalogDownloads = new Map();       // catalog id -> the state of its latest download

async function loadCatalog() {
  try {
    const { datasets, downloads } = await api("GET", "/api/datasets/catalog");
    catalogEntries = datasets || [];
    // downloads still running (started before this page was opened) are followed too
    for (const d of downloads || []) {
      if (d.status === "running" && catalogDownloads.get(d.dataset_id)?.download_id !== d.download_id) {
        catalogDownloads.set(d.dataset_id, d);
      }
    }
    $("catalog-error").textContent = "";
  } catch (err) {
    $("catalog-error").textContent = err.message;
  }
  renderCatalog();
}

function splitText(entry) {
  return entry.config_name ? `${entry.config_name} / ${entry.split}` : entry.split;
}

function wholeNumber(value) {
  // formatNumber writes millions with an exponent; catalog sizes read better in full
  return typeof value === "number" ? value.toLocaleString(document.documentElement.lang) : "?";
}

function catalogRowsText(entry) {
  const total = `≈ ${wholeNumber(entry.rows)} ${t("rows")}`;
  return entry.download_rows
    ? `${t("the first")} ${wholeNumber(entry.download_rows)} ${t("of")} ${total}` : total;
}

function downloadedPart(entry) {
  const part = el("span", null, { class: "catalog-downloaded", "data-role": "downloaded" });
  const meta = entry.downloaded;
  if (!meta) return part;
  part.append(el("span", `${t("Downloaded as")} ${meta.name || meta.file}`, { class: "status-done" }));
  if (entries.has(meta.id)) {
    const open = el("button", t("Show"), { type: "button", class: "secondary small", "data-action": "open" });
    open.addEventListener("click", () => select(meta.id));
    part.append(open);
  }
  return part;
}

function catalogItem(entry) {
  const item = el("li", null, { class: "catalog-item", "data-id": entry.id });
  const head = el("div", null, { class: "catalog-head" });
  head.append(el("strong", entry.name, { "data-role": "name" }),
    el("code", entry.id, { "data-role": "hub-id" }),
    el("span", splitText(entry), { class: "badge", "data-role": "split" }),
    el("span", catalogRowsText(entry), { class: "muted", "data-role": "rows" }));
  const download = el("button", t("Download"), { type: "button", class: "small", "data-action": "download" });
  download.hidden = Boolean(entry.downloaded);
  download.addEventListener("click", () => startCatalogDownload(entry.id, download));
  const actions = el("div", null, { class: "catalog-actions" });
  actions.append(download, downloadedPart(entry));
  const progress = el("div", null, { class: "catalog-progress", "data-role": "progress" });
  progress.hidden = true;
  const cancel = el("button", t("Cancel"), { type: "button", class: "secondary small", "data-action": "cancel" });
  cancel.addEventListener("click", () => cancelCatalogDownload(entry.id, cancel));
  progress.append(el("progress", null, { max: "1", value: "0" }),
    el("span", "", { "data-role": "status" }), el("span", "", { class: "muted", "data-role": "bytes" }),
    el("span", "", { class: "muted", "data-role": "message", "aria-live": "polite" }), cancel);
  item.append(head, el("p", entry.description ? t(entry.description) : "", { class: "catalog-description" }),
    el("p", `${t("Suggested rewards")}: ${(entry.rewards || []).join(", ")}`, { class: "muted", "data-role": "rewards" }),
    actions, progress, el("p", "", { class: "error-text", role: "alert", "data-role": "error" }));
  const state = catalogDownloads.get(entry.id);
  if (state) paintDownload(item, state);
  return item;
}

function renderCatalog() {
  $("catalog-list").replaceChildren(...catalogEntries.map(catalogItem));
}

function catalogItemFor(datasetId) {
  return $("catalog-list").querySelector(`.catalog-item[data-id="${CSS.escape(datasetId)}"]`);
}

function paintDownload(item, state) {
  const running = state.status === "running";
  item.dataset.status = state.status;
  const box = item.querySelector("[data-role=progress]");
  box.hidden = false;
  box.querySelector("progress").value = state.progress || 0;
  const status = box.querySelector("[data-role=status]");
  status.textContent = DOWNLOAD_TEXT[state.status] || state.status;
  status.className = `status status-${state.status}`;
  box.querySelector("[data-role=bytes]").textContent = state.total_bytes
    ? `${formatSize(state.downloaded_bytes)} / ${formatSize(state.total_bytes)}` : "";
  box.querySelector("[data-role=message]").textContent = state.status === "failed" ? "" : state.message || "";
  box.querySelector("[data-action=cancel]").hidden = !running;
  item.querySelector("[data-action=download]").disabled = running;
  item.querySelector("[data-role=error]").textContent = state.status === "failed"
    ? state.error || state.message || t("The download failed.") : "";
}

/** Shows a download's state (the API's answer or an event); its end reloads both lists. */
function updateCatalogDownload(state) {
  if (!state?.download_id || !state.dataset_id) return;
  const before = catalogDownloads.get(state.dataset_id);
  const same = before?.download_id === state.download_id;
  if (same && before.status !== "running" && state.status === "running") return;  // a late answer
  catalogDownloads.set(state.dataset_id, state);
  const item = catalogItemFor(state.dataset_id);
  if (item) paintDownload(item, state);
  if (state.status === "running" || (same && before.status === state.status)) return;
  if (state.status === "done") {
    toast(`${t("Downloaded")} ${state.name} (${rowsText(state.rows)})`);
    loadList().then(loadCatalog);
  }
}

async function startCatalogDownload(datasetId, button) {
  const error = button.closest(".catalog-item").querySelector("[data-role=error]");
  error.textContent = "";
  busy(button, true);
  try {
    updateCatalogDownload(await api("POST", "/api/datasets/catalog/download", withSocket({ id: datasetId })));
  } catch (err) {
    error.textContent = err.message;
    if (err.status === 409) loadList().then(loadCatalog);  // downloaded meanwhile (another tab)
  } finally {
    button.removeAttribute("aria-busy");
    button.disabled = catalogDownloads.get(datasetId)?.status === "running";
  }
}

async function cancelCatalogDownload(datasetId, button) {
  const state = catalogDownloads.get(datasetId);
  if (!state) return;
  busy(button, true);
  try {
    updateCatalogDownload(await api("DELETE", `/api/datasets/catalog/downloads/${encodeURIComponent(state.download_id)}`));
  } catch (err) {
    const item = catalogItemFor(datasetId);
    if (item) item.querySelector("[data-role=error]").textContent = err.message;
  } finally {
    busy(button, false);
  }
}

async function pollCatalogDownloads() {
  for (const state of [...catalogDownloads.values()]) {
    if (state.status !== "running") continue;
    try {
      updateCatalogDownload(await api("GET", `/api/datasets/catalog/downloads/${encodeURIComponent(state.download_id)}`));
    } catch (err) {
      if (err.status === 404) {  // the server restarted and forgot it: the catalog says what is here
        catalogDownloads.delete(state.dataset_id);
        loadCatalog();
      }
    }
  }
}

function listenToCatalogDownloads() {
  const connection = socket();
  if (connection) {
    connection.on("dataset_download_progress", updateCatalogDownload);
    connection.io.on("reconnect", pollCatalogDownloads);  // events sent while disconnected are lost
  }
  setInterval(pollCatalogDownloads, POLL_MS);
}

// ---- the selected dataset --------------------------------------------------------------------
function showTitle(entry) {
  $("detail-name").textContent = entry.name;
  $("detail-file").textContent = `${entry.format} · ${rowsText(entry.rows)} · ${formatSize(entry.size)}`;
}

function resetResults() {
  for (const id of ["stats-result", "dedup-result", "convert-result", "stats-progress", "dedup-progress"]) $(id).hidden = true;
  for (const id of ["stats-error", "dedup-error", "split-error", "convert-error", "validation-error", "preview-error"]) $(id).textContent = "";
  $("split-result").replaceChildren();
  $("shape-override").value = "auto";
  $("txt-mode").value = "line";
  $("txt-mode-field").hidden = entries.get(state.id)?.format !== "txt";
  state.mapping = null;
  state.dedupJob = null;
}

function deselect() {
  state.id = null;
  selection += 1;
  $("dataset-detail").hidden = true;
  history.replaceState(null, "", window.location.pathname);
}

async function select(id) {
  const entry = entries.get(id);
  if (!entry) return;
  state.id = id;
  state.offset = 0;
  selection += 1;
  document.querySelectorAll(".dataset-item").forEach((item) => {
    if (item.dataset.id === id) item.setAttribute("aria-current", "true");
    else item.removeAttribute("aria-current");
  });
  showTitle(entry);
  resetResults();
  $("dataset-detail").hidden = false;
  history.replaceState(null, "", `${window.location.pathname}?id=${encodeURIComponent(id)}`);
  await preview();
  await validate();
}

/** Runs `request` for the selected dataset; its answer is dropped if another one was selected. */
async function forSelected(request) {
  const ticket = selection;
  const answer = await request();
  if (ticket !== selection) throw Object.assign(new Error("stale"), { stale: true });
  return answer;
}

// ---- preview ---------------------------------------------------------------------------------
async function preview() {
  const table = $("preview-table"), error = $("preview-error");
  error.textContent = "";
  table.setAttribute("aria-busy", "true");
  try {
    const result = await forSelected(() => api("POST", "/api/datasets/preview",
      about({ samples: PAGE_ROWS, offset: state.offset })));
    renderPreview(result);
    renderDetection(result.detection, result.suggested_mapping);
  } catch (err) {
    if (!err.stale) error.textContent = err.message;
  } finally {
    table.removeAttribute("aria-busy");
  }
}

function renderPreview(result) {
  // the page is records offset+1.. of the file: the readable ones as rows, the broken ones as
  // problems (numbered by the server), so rows carry no number of their own here
  const rows = result.rows || [];
  const problems = result.problems || [];
  const fields = result.fields?.length ? result.fields : [...new Set(rows.flatMap((r) => Object.keys(r || {})))];
  const head = el("tr");
  head.append(...fields.map((f) => el("th", f)));
  const thead = el("thead"), tbody = el("tbody");
  thead.append(head);
  tbody.append(...rows.map((row) => {
    const tr = el("tr");
    tr.append(...fields.map((f) => el("td", cellText(row?.[f]), { class: "text" })));
    return tr;
  }));
  $("preview-table").replaceChildren(thead, tbody);
  const shown = rows.length + problems.length;
  const total = entries.get(state.id)?.rows;
  $("preview-range").textContent = shown
    ? `${t("Records")} ${formatNumber(state.offset + 1, 0)}–${formatNumber(state.offset + shown, 0)}${typeof total === "number" ? ` (${formatNumber(total, 0)} ${t("rows")})` : ""}`
    : t("No rows here.");
  $("preview-previous").disabled = state.offset === 0;
  $("preview-next").disabled = !result.more;
  $("preview-problems").replaceChildren(...problems.map((p) =>
    el("li", p.message, { class: "error-text", "data-row": String(p.row ?? "") })));
}

function page(step) {
  state.offset = Math.max(0, state.offset + step * PAGE_ROWS);
  preview();
}

// ---- shape and mapping -----------------------------------------------------------------------
function renderDetection(detection, suggested) {
  const shape = detection?.shape;
  $("shape-name").textContent = shape || t("none recognised");
  $("shape-confidence").textContent = percent(detection?.confidence);
  $("shape-confidence").hidden = !shape;
  const alternatives = (detection?.alternatives || []).map((a) => (Array.isArray(a) ? a : [a.shape, a.confidence]));
  $("shape-alternatives").textContent = alternatives.length
    ? `${t("Also fits")}: ${alternatives.map(([s, c]) => `${s} (${percent(c)})`).join(", ")}` : "";
  renderMapping(detection?.mapping || suggested || {});
}

function renderMapping(mapping) {
  const items = Object.entries(mapping || {}).filter(([, column]) => column);
  const list = $("shape-mapping");
  list.replaceChildren();
  for (const [role, column] of items) list.append(el("dt", role), el("dd", column, { "data-role": role }));
  if (!items.length) list.append(el("dd", t("No field mapping: choose the shape below."), { class: "muted" }));
}

// ---- validation ------------------------------------------------------------------------------
function chosenFormat() {
  return $("shape-override").value;
}

async function validate() {
  const summary = $("validation-summary"), table = $("validation-problems"), error = $("validation-error");
  error.textContent = "";
  summary.textContent = t("Checking every row…");
  try {
    const result = await forSelected(() => api("POST", "/api/datasets/validate", about({ format: chosenFormat() })));
    state.mapping = result.mapping || null;
    rememberRows(result.rows);
    if (chosenFormat() !== "auto" && result.mapping) renderMapping(result.mapping);
    renderValidation(result);
  } catch (err) {
    if (err.stale) return;
    summary.textContent = "";
    table.hidden = true;
    error.textContent = err.message;
  }
}

/** A full read counted the rows (the server keeps the count too): the list and title show it. */
function rememberRows(rows) {
  const entry = entries.get(state.id);
  if (!entry || typeof rows !== "number" || entry.rows === rows) return;
  entry.rows = rows;
  renderList();
  showTitle(entry);
}

function renderValidation(result) {
  const summary = $("validation-summary"), table = $("validation-problems");
  summary.textContent = result.invalid
    ? `${formatNumber(result.valid, 0)} ${t("of")} ${formatNumber(result.rows, 0)} ${t("rows are valid")}; ${formatNumber(result.invalid, 0)} ${t("have problems")}.`
    : `${t("All rows are valid")} (${formatNumber(result.rows, 0)}).`;
  summary.className = result.invalid ? "error-text" : "status-done";
  summary.dataset.invalid = String(result.invalid || 0);
  const problems = result.problems || [];
  table.tBodies[0].replaceChildren(...problems.map((p) => {
    const tr = el("tr", null, { "data-row": String(p.row ?? "") });
    tr.append(el("td", p.row ?? "–", { class: "num" }), el("td", p.field ?? "–"), el("td", p.message, { class: "text" }));
    return tr;
  }));
  table.hidden = problems.length === 0;
  $("validation-more").hidden = !result.more;
  $("validation-advice").hidden = !result.invalid;
}

// ---- long jobs -------------------------------------------------------------------------------
const jobListeners = new Map();  // job id -> called with each dataset_progress event

function listenToJobs() {
  socket()?.on("dataset_progress", (event) => jobListeners.get(event?.job_id)?.(event));
}

function progressText(job) {
  if (job.message) return job.message;
  if (typeof job.done === "number") return `${formatNumber(job.done, 0)} ${t("rows read")}`;
  return STATUS_TEXT[job.status] || "";
}

/** Follows a job to its end: its result when done; an Error with its message when failed. */
function followJob(jobId, box) {
  box.hidden = false;
  const message = box.querySelector("[data-role=message]");
  message.textContent = t("Starting…");
  return new Promise((resolve, reject) => {
    let timer = null, ended = false;
    const end = () => {
      ended = true;
      clearTimeout(timer);
      jobListeners.delete(jobId);
      box.hidden = true;
    };
    const check = async () => {
      if (ended) return;
      clearTimeout(timer);
      try {
        const job = await api("GET", `/api/datasets/jobs/${encodeURIComponent(jobId)}`);
        if (ended) return;
        message.textContent = progressText(job);
        if (job.status === "done") { end(); resolve(job.result || {}); return; }
        if (job.status === "failed") { end(); reject(new Error(job.error || job.message || t("failed"))); return; }
      } catch (err) {
        if (err.status === 404) { end(); reject(err); return; }
      }
      timer = setTimeout(check, POLL_MS);
    };
    jobListeners.set(jobId, (event) => {
      message.textContent = progressText(event);
      if (event.status !== "running") check();  // the result comes with the job, not the event
    });
    check();
  });
}

// ---- statistics ------------------------------------------------------------------------------
/** The model of the wizard's draft (what a run would train), or null when no draft names one. */
function draftModel() {
  try {
    const name = JSON.parse(localStorage.getItem(DRAFT_KEY))?.model?.name;
    return typeof name === "string" && name.trim() ? name : null;
  } catch {
    return null;  // a broken draft: the wizard starts a new one
  }
}

/** Says whose tokenizer counts the lengths; `missing`: the draft's model, not on this machine. */
function showTokenizer(model, missing = null) {
  const note = $("stats-tokenizer");
  note.dataset.tokenizer = model;
  if (missing) {
    note.textContent = `${t("The wizard's model is not on this machine")}: ${missing}. ${t("Lengths are counted with the default model's tokenizer.")}`;
  } else if (model === "default") {
    note.textContent = t("Lengths are counted with the default model's tokenizer.");
  } else {
    note.textContent = `${t("Lengths are counted with the tokenizer of the wizard's model")}: ${model}`;
  }
}

/** Starts the statistics job with the draft's model, or the default one when that is not here. */
async function startStats(body) {
  const model = draftModel() || "default";
  try {
    const answer = await api("POST", "/api/datasets/stats", withSocket({ ...body, model }));
    showTokenizer(model);
    return answer;
  } catch (err) {
    if (model === "default" || err.status !== 400 || err.field !== "model") throw err;
    const answer = await api("POST", "/api/datasets/stats", withSocket({ ...body, model: "default" }));
    showTokenizer("default", model);
    return answer;
  }
}

async function runStats() {
  const button = $("stats-run");
  await guarded(button, $("stats-error"), async () => {
    $("stats-result").hidden = true;
    const body = about();
    const maxLength = Number($("stats-max-length").value);
    if ($("stats-max-length").value.trim() !== "" && Number.isFinite(maxLength)) body.max_seq_length = maxLength;
    if (chosenFormat() !== "auto" && state.mapping) body.mapping = state.mapping;
    const ticket = selection;
    const { job_id: jobId } = await startStats(body);
    const result = await followJob(jobId, $("stats-progress"));
    if (ticket === selection) renderStats(result);
  });
}

function unitText(unit) {
  return unit === "tokens" ? t("tokens") : t("characters");
}

function renderStats(stats) {
  const unit = unitText(stats.unit);
  $("stats-rows").textContent = formatNumber(stats.rows, 0);
  $("stats-broken").textContent = formatNumber(stats.broken_rows ?? 0, 0);
  $("stats-duplicates").textContent = formatNumber(stats.duplicates ?? 0, 0);
  $("stats-over").textContent = stats.max_seq_length
    ? `${formatNumber(stats.over_max_seq_length ?? 0, 0)} (> ${formatNumber(stats.max_seq_length, 0)} ${unit})` : "–";
  $("stats-per-epoch").textContent = `${formatNumber(stats.tokens_per_epoch ?? 0, 0)} ${unit}`;
  const empty = Object.entries(stats.empty || {}).filter(([, n]) => n > 0);
  $("stats-empty-fields").textContent = empty.length
    ? `${t("Empty cells")}: ${empty.map(([name, n]) => `${name} ${formatNumber(n, 0)}`).join(", ")}`
    : t("No empty cells in the mapped fields.");
  $("stats-empty-fields").className = empty.length ? "error-text" : "muted";
  const lengths = $("stats-lengths").tBodies[0];
  lengths.replaceChildren();
  for (const [part, label] of [["prompt", t("Prompt")], ["response", t("Response")]]) {
    const s = stats[part] || {};
    $(`chart-${part}-title`).textContent = `${label} ${t("length")} (${unit})`;
    drawHistogram($(`chart-${part}`), s.histogram || { edges: [], counts: [] }, label);
    const tr = el("tr", null, { "data-part": part });
    tr.append(el("th", label), ...["min", "median", "mean", "p95", "max"].map((k) => el("td", formatNumber(s[k], 1), { class: "num" })));
    lengths.append(tr);
  }
  $("stats-result").hidden = false;
}

function binLabels(edges) {
  return edges.slice(0, -1).map((low, i) => (edges[i + 1] - low <= 1 ? String(low) : `${low}–${edges[i + 1] - 1}`));
}

function drawHistogram(canvas, histogram, label) {
  const labels = binLabels(histogram.edges || []);
  const counts = histogram.counts || [];
  canvas.dataset.bins = String(counts.length);
  canvas.dataset.total = String(counts.reduce((a, b) => a + b, 0));
  window.Chart.getChart(canvas)?.destroy();
  new window.Chart(canvas, {
    type: "bar",
    data: { labels, datasets: [{ label, data: counts, backgroundColor: "#2f6fde" }] },
    options: { responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { display: false } },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: t("rows") } } } },
  });
}

// ---- duplicates ------------------------------------------------------------------------------
async function runDedup() {
  await guarded($("dedup-run"), $("dedup-error"), async () => {
    $("dedup-result").hidden = true;
    $("dedup-written").textContent = "";
    const ticket = selection;
    const body = about({ threshold: Number($("dedup-threshold").value) });
    const { job_id: jobId } = await api("POST", "/api/datasets/dedup", withSocket(body));
    const result = await followJob(jobId, $("dedup-progress"));
    if (ticket !== selection) return;
    state.dedupJob = jobId;
    renderDedup(result);
  });
}

function renderDedup(result) {
  const found = (result.exact_duplicates || 0) + (result.near_duplicates || 0);
  $("dedup-summary").textContent = found
    ? `${formatNumber(result.exact_duplicates || 0, 0)} ${t("exact duplicates")}, ${formatNumber(result.near_duplicates || 0, 0)} ${t("near duplicates")}; ${t("a cleaned copy keeps")} ${formatNumber(result.kept, 0)} ${t("of")} ${formatNumber(result.rows, 0)} ${t("rows")}.`
    : `${t("No duplicates found")} (${formatNumber(result.rows, 0)} ${t("rows")}).`;
  const clusters = (result.clusters || []).map((cluster) => {
    const box = el("article", null, { class: `dedup-cluster ${cluster.kind}`, "data-kind": cluster.kind });
    const kind = cluster.kind === "exact" ? t("Exact duplicates") : t("Near duplicates");
    box.append(el("h4", `${kind} · ${t("rows")} ${(cluster.rows || []).join(", ")}`));
    for (const example of cluster.examples || []) box.append(el("div", cellText(example), { class: "dedup-example" }));
    return box;
  });
  if ((result.cluster_count || 0) > clusters.length) {
    clusters.push(el("p", `${t("Showing")} ${clusters.length} ${t("of")} ${result.cluster_count} ${t("groups")}.`, { class: "muted" }));
  }
  if (result.near_unsearched) {
    clusters.unshift(el("p", tf("Near duplicates were searched among the first {limit} distinct rows (a memory bound); the other {rest} were compared for exact copies only. Split the file to search them.",
      { limit: formatNumber(result.near_limit, 0), rest: formatNumber(result.near_unsearched, 0) }), { class: "warn-text", id: "dedup-unsearched" }));
  }
  $("dedup-clusters").replaceChildren(...clusters);
  $("dedup-write").hidden = !found;
  $("dedup-result").hidden = false;
}

async function writeDedup() {
  await guarded($("dedup-write"), $("dedup-error"), async () => {
    const answer = await api("POST", `/api/datasets/dedup/${encodeURIComponent(state.dedupJob)}/write`, {});
    entries.set(answer.entry.id, answer.entry);
    renderList();
    $("dedup-written").textContent = `${t("Written")}: ${answer.entry.name} (${rowsText(answer.rows)}, ${formatNumber(answer.removed, 0)} ${t("removed")})`;
  });
}

// ---- split -----------------------------------------------------------------------------------
async function runSplit() {
  await guarded($("split-run"), $("split-error"), async () => {
    const body = about({ validation: Number($("split-validation").value),
      seed: Math.trunc(Number($("split-seed").value)) });
    const test = Number($("split-test").value);
    if (test) body.test = test;
    const { parts } = await api("POST", "/api/datasets/split", body);
    const items = [];
    for (const [part, entry] of Object.entries(parts || {})) {
      entries.set(entry.id, entry);
      const item = el("li", null, { "data-part": part });
      item.append(el("strong", part), el("span", `${entry.name} · ${rowsText(entry.rows)}`),
        el("a", t("Download"), { href: downloadUrl(entry.id), download: entry.name || "" }));
      items.push(item);
    }
    if (parts?.train && parts?.validation) {
      const use = el("button", t("Train on the train part, evaluate on the validation part"), { type: "button", id: "split-use" });
      use.addEventListener("click", () => {
        const params = new URLSearchParams({ dataset: parts.train.id, validation: parts.validation.id });
        if (chosenFormat() !== "auto") params.set("format", chosenFormat());
        window.location.href = `/wizard/dataset?${params}`;
      });
      const item = el("li", null, { "data-part": "use" });
      item.append(use);
      items.push(item);
    }
    $("split-result").replaceChildren(...items);
    renderList();
  });
}

// ---- convert ---------------------------------------------------------------------------------
async function runConvert() {
  await guarded($("convert-run"), $("convert-error"), async () => {
    $("convert-result").hidden = true;
    const answer = await api("POST", "/api/datasets/convert",
      about({ format: chosenFormat(), target: $("convert-target").value, as: $("convert-as").value }));
    entries.set(answer.entry.id, answer.entry);
    renderList();
    $("convert-summary").textContent = `${t("Written")}: ${answer.entry.name} — ${formatNumber(answer.written, 0)} ${t("rows")}, ${formatNumber(answer.skipped || 0, 0)} ${t("skipped")}.`;
    $("convert-problems").replaceChildren(...(answer.problems || []).map((p) =>
      el("li", typeof p === "string" ? p : p.message, { class: "error-text", "data-row": String(p.row ?? "") })));
    const link = $("convert-download");
    link.href = downloadUrl(answer.entry.id);
    link.setAttribute("download", answer.entry.name || "");
    $("convert-result").hidden = false;
  });
}

// ---- the wizard ------------------------------------------------------------------------------
function useInWizard() {
  // the wizard owns the draft (it has the defaults to start one from): it sets its dataset from
  // ?dataset=<id> (and the shape from ?format=)
  const params = new URLSearchParams({ dataset: state.id });
  if (chosenFormat() !== "auto") params.set("format", chosenFormat());
  if (entries.get(state.id)?.format === "txt") params.set("txt_mode", $("txt-mode").value);
  window.location.href = `/wizard/dataset?${params}`;
}

// ---- start -----------------------------------------------------------------------------------
function bind() {
  $("preview-previous").addEventListener("click", () => page(-1));
  $("preview-next").addEventListener("click", () => page(1));
  $("shape-override").addEventListener("change", validate);
  $("txt-mode").addEventListener("change", () => { state.offset = 0; preview().then(validate); });
  $("stats-run").addEventListener("click", runStats);
  $("dedup-threshold").addEventListener("input", () => { $("dedup-threshold-value").textContent = $("dedup-threshold").value; });
  $("dedup-run").addEventListener("click", runDedup);
  $("dedup-write").addEventListener("click", writeDedup);
  $("split-run").addEventListener("click", runSplit);
  $("convert-run").addEventListener("click", runConvert);
  $("use-in-wizard").addEventListener("click", useInWizard);
  showTokenizer(draftModel() || "default");
}

async function main() {
  setUpUpload();
  bind();
  listenToJobs();
  listenToCatalogDownloads();
  await loadList();
  await loadCatalog();
  const wanted = new URLSearchParams(window.location.search).get("id");
  if (wanted && entries.has(wanted)) await select(wanted);
  document.body.dataset.ready = "true";
}

main();
