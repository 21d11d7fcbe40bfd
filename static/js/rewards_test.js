// The reward testing page: choose preset rewards and/or write a custom one (CodeMirror editor,
// checked, saved, loaded, uploaded), type test cases or load them from a dataset, run them
// through /api/rewards/test and read the scores, statistics and a histogram of totals. The whole
// page state is kept in localStorage, so a reload loses nothing. Data is always shown as text.
import { api, t, el, toast, errorSlotFor, formatNumber } from "./common.js";
import { renderRewardCatalog } from "./rewards_ui.js";

const STATE_KEY = "grpo-studio.reward-test";
const BASE_COLUMNS = ["prompt", "completion", "reference"];
const COLUMN_TEXT = { prompt: t("Prompt"), completion: t("Completion"), reference: t("Reference") };
const EXAMPLE = `def reward(completions, **kwargs):
    """1.0 when the completion contains the case's reference, else 0.0."""
    references = kwargs.get("reference") or [None] * len(completions)
    scores = []
    for completion, reference in zip(completions, references):
        scores.append(1.0 if reference and str(reference) in completion else 0.0)
    print("scored", len(scores), "completions")
    return scores
`;

let state = readState();
let catalog = [];
let editor = null;
let editorMarks = [];

// ---- state ----------------------------------------------------------------------------------
function defaultState() {
  return {
    rewards: [],
    markers: { reasoning_start: "<think>", reasoning_end: "</think>", solution_start: "<answer>", solution_end: "</answer>" },
    custom: { enabled: false, weight: 1.0, name: "my_reward", code: EXAMPLE },
    cases: [emptyCase()],
    dataset: { id: "", rows: 5 },
  };
}

function emptyCase() {
  return { prompt: "", completion: "", reference: "" };
}

function readState() {
  const base = defaultState();
  try {
    const stored = JSON.parse(localStorage.getItem(STATE_KEY));
    if (stored && typeof stored === "object") {
      return { ...base, ...stored, markers: { ...base.markers, ...stored.markers }, custom: { ...base.custom, ...stored.custom } };
    }
  } catch { /* a broken state falls back to the defaults */ }
  return base;
}

function saveState() {
  localStorage.setItem(STATE_KEY, JSON.stringify(state));
}

/** A number typed by hand: a number, or the raw text so the server can name the problem. */
function typedNumber(raw) {
  return raw.trim() === "" || Number.isNaN(Number(raw)) ? raw : Number(raw);
}

// ---- preset rewards and markers -------------------------------------------------------------
async function setUpPresets() {
  catalog = (await api("GET", "/api/rewards/list")).rewards;
  const known = new Set(catalog.map((r) => r.id));
  state.rewards = state.rewards.filter((r) => known.has(r.name));
  renderRewardCatalog(document.getElementById("reward-catalog"), catalog, state.rewards,
    { heading: "h3", changed: rewardsChanged });
  setUpMarkers();
}

function rewardsChanged() {
  saveState();
  if (columnsKey() !== document.getElementById("cases-table").dataset.columns) renderCases();
}

function setUpMarkers() {
  document.querySelectorAll("[data-marker]").forEach((input) => {
    input.value = state.markers[input.dataset.marker] ?? "";
    input.addEventListener("input", () => {
      state.markers[input.dataset.marker] = input.value;
      saveState();
    });
  });
}

// ---- custom reward: editor ------------------------------------------------------------------
function setUpEditor() {
  const textarea = document.getElementById("custom-code");
  textarea.value = state.custom.code;
  editor = window.CodeMirror.fromTextArea(textarea, {
    mode: "python", lineNumbers: true, indentUnit: 4, tabSize: 4, viewportMargin: Infinity,
    extraKeys: { Tab: (cm) => cm.execCommand("insertSoftTab") },
  });
  editor.on("change", () => {
    state.custom.code = editor.getValue();
    saveState();
    clearEditorError();
  });
  bindCustomSettings();
}

function bindCustomSettings() {
  const enabled = document.getElementById("custom-enabled");
  const weight = document.getElementById("custom-weight");
  const name = document.getElementById("custom-name");
  enabled.checked = state.custom.enabled;
  weight.value = state.custom.weight;
  name.value = state.custom.name;
  enabled.addEventListener("change", () => { state.custom.enabled = enabled.checked; saveState(); });
  weight.addEventListener("input", () => { state.custom.weight = typedNumber(weight.value); saveState(); });
  name.addEventListener("input", () => { state.custom.name = name.value; saveState(); });
}

function setCode(source, name) {
  editor.setValue(source);
  if (name) {
    state.custom.name = name;
    document.getElementById("custom-name").value = name;
  }
  saveState();
}

/** The error under the editor; with a line, that line is marked and the message shown under it. */
function showEditorError(message, line) {
  clearEditorError();
  const named = !line || /\bline \d+/i.test(message);
  document.getElementById("custom-error").textContent = named ? message : `${t("Line")} ${line}: ${message}`;
  if (!line || line < 1 || line > editor.lineCount()) return;
  const handle = editor.addLineClass(line - 1, "wrap", "cm-error-line");
  const widget = editor.addLineWidget(line - 1, el("div", message, { class: "cm-error-message" }));
  editorMarks = [() => editor.removeLineClass(handle, "wrap", "cm-error-line"), () => widget.clear()];
  editor.scrollIntoView({ line: line - 1, ch: 0 }, 80);
}

function clearEditorError() {
  editorMarks.forEach((undo) => undo());
  editorMarks = [];
  document.getElementById("custom-error").textContent = "";
}

function customStatus(text) {
  document.getElementById("custom-status").textContent = text;
}

// ---- custom reward: library -----------------------------------------------------------------
async function refreshLibrary(selected) {
  const select = document.getElementById("custom-library");
  let rewards = [];
  try {
    rewards = (await api("GET", "/api/rewards/custom")).rewards;
  } catch (err) {
    customStatus(err.message);
  }
  select.replaceChildren(...rewards.map((r) => el("option", r.name, { value: r.id })));
  if (!rewards.length) select.append(el("option", t("none saved yet"), { value: "" }));
  if (selected) select.value = selected;
  document.getElementById("custom-load").disabled = !rewards.length;
  document.getElementById("custom-delete").disabled = !rewards.length;
}

async function checkCustom() {
  clearEditorError();
  try {
    const result = await api("POST", "/api/rewards/custom/check", { source: editor.getValue() });
    if (result.ok) customStatus(t("No problems found: the code compiles and defines reward()."));
    else showEditorError(result.error, result.line);
  } catch (err) {
    showEditorError(err.message, err.line);
  }
}

async function saveCustom() {
  clearEditorError();
  try {
    const saved = await api("POST", "/api/rewards/custom", { name: state.custom.name, source: editor.getValue() });
    customStatus(`${t("Saved as")} ${saved.name}`);
    await refreshLibrary(saved.id);
  } catch (err) {
    showEditorError(err.message, err.field === "source" ? err.line : undefined);
  }
}

async function loadCustom() {
  const id = document.getElementById("custom-library").value;
  if (!id) return;
  try {
    const saved = await api("GET", `/api/rewards/custom/${encodeURIComponent(id)}`);
    setCode(saved.source, saved.name);
    customStatus(`${t("Loaded")} ${saved.name}`);
  } catch (err) {
    customStatus(err.message);
  }
}

async function deleteCustom() {
  const select = document.getElementById("custom-library");
  if (!select.value) return;
  const name = select.selectedOptions[0].textContent;
  try {
    await api("DELETE", `/api/rewards/custom/${encodeURIComponent(select.value)}`);
    customStatus(`${t("Deleted")} ${name}`);
    await refreshLibrary();
  } catch (err) {
    customStatus(err.message);
  }
}

async function uploadCustom(event) {
  const file = event.target.files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  try {
    const saved = await api("POST", "/api/rewards/custom/upload", form);
    setCode(saved.source, saved.name);
    customStatus(`${t("Uploaded")}: ${saved.name}`);
    await refreshLibrary(saved.id);
  } catch (err) {
    showEditorError(err.message, err.line);
  }
  event.target.value = "";
}

function setUpLibrary() {
  document.getElementById("custom-check").addEventListener("click", checkCustom);
  document.getElementById("custom-save").addEventListener("click", saveCustom);
  document.getElementById("custom-load").addEventListener("click", loadCustom);
  document.getElementById("custom-delete").addEventListener("click", deleteCustom);
  document.getElementById("custom-upload").addEventListener("change", uploadCustom);
  return refreshLibrary();
}

// ---- cases ----------------------------------------------------------------------------------
/** The dataset columns the chosen rewards read besides prompt and reference (e.g. tests). */
function extraColumns() {
  const names = [];
  for (const entry of state.rewards) {
    const spec = catalog.find((s) => s.id === entry.name);
    if (!spec) continue;
    names.push(...spec.needs);
    for (const p of spec.parameters) {
      if (p.name.endsWith("_field")) names.push(String(entry.params[p.name] ?? p.default));
    }
  }
  return [...new Set(names)].filter((n) => n && !BASE_COLUMNS.includes(n));
}

function columns() {
  return [...BASE_COLUMNS, ...extraColumns()];
}

function columnsKey() {
  return columns().join(",");
}

function asText(value) {
  if (value === undefined || value === null) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 1);
}

function renderCases() {
  const table = document.getElementById("cases-table");
  const cols = columns();
  table.dataset.columns = cols.join(",");
  const head = el("tr");
  head.append(el("th", "#"), ...cols.map((c) => el("th", COLUMN_TEXT[c] || c)), el("th", ""));
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(...state.cases.flatMap((c, i) => caseRows(c, i, cols)));
}

function caseRows(item, index, cols) {
  const row = el("tr", null, { "data-case": index });
  row.append(el("td", index + 1));
  for (const col of cols) row.append(caseCell(item, index, col));
  const remove = el("button", t("Remove"), { type: "button", class: "secondary small", "data-action": "remove-case" });
  remove.addEventListener("click", () => {
    state.cases.splice(index, 1);
    casesChanged();
  });
  const actions = el("td");
  actions.append(remove);
  row.append(actions);
  const error = el("tr", null, { class: "case-error" });
  error.append(el("td", "", { colspan: cols.length + 2 }));
  error.firstChild.append(el("p", "", { class: "error-text", "data-error-for": `cases.${index}`, role: "alert" }));
  return [row, error];
}

function caseCell(item, index, col) {
  const cell = el("td", null, { class: "case-cell" });
  const input = el("textarea", null, { rows: 3, "data-case-field": col, "aria-label": `${COLUMN_TEXT[col] || col} ${index + 1}` });
  input.value = asText(item[col]);
  input.addEventListener("input", () => {
    item[col] = input.value;
    saveState();
  });
  cell.append(input);
  if (col === "completion" && item.response !== undefined && item.response !== null) {
    cell.append(useResponseButton(item, input));
  }
  return cell;
}

function useResponseButton(item, input) {
  const button = el("button", t("Use the dataset's answer"), { type: "button", class: "secondary small", "data-action": "use-response" });
  button.addEventListener("click", () => {
    item.completion = asText(item.response);
    input.value = item.completion;
    saveState();
  });
  return button;
}

function casesChanged() {
  saveState();
  renderCases();
}

/** One case as the API takes it: every column shown (empty when not typed), extra columns typed
 * as JSON (a list of tests) sent parsed, and the row's other dataset columns as they came. */
function casePayload(item, cols) {
  const payload = Object.fromEntries(cols.map((col) => [col, ""]));
  for (const [key, value] of Object.entries(item)) {
    if (key === "response") continue;
    payload[key] = BASE_COLUMNS.includes(key) ? value : parsedColumn(value);
  }
  return payload;
}

function parsedColumn(value) {
  if (typeof value !== "string" || !/^\s*[[{]/.test(value)) return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

// ---- cases from a dataset -------------------------------------------------------------------
async function setUpDatasets() {
  const select = document.getElementById("dataset-select");
  const rows = document.getElementById("dataset-rows");
  const { datasets } = await api("GET", "/api/datasets/list");
  select.replaceChildren(...datasets.map((d) => el("option", datasetLabel(d), { value: d.id })));
  if (datasets.some((d) => d.id === state.dataset.id)) select.value = state.dataset.id;
  rows.value = state.dataset.rows;
  select.addEventListener("change", () => { state.dataset.id = select.value; saveState(); });
  rows.addEventListener("input", () => { state.dataset.rows = typedNumber(rows.value); saveState(); });
  state.dataset.id = select.value;
}

function datasetLabel(d) {
  const where = { builtin: t("bundled"), hub: t("hub"), file: t("uploaded") }[d.source] || d.source;
  return `${d.name} (${where})`;
}

async function loadCases(event) {
  const button = event.currentTarget;
  const error = document.getElementById("cases-error");
  error.textContent = "";
  button.disabled = true;
  try {
    const { cases } = await api("POST", "/api/rewards/cases", { id: state.dataset.id, samples: state.dataset.rows });
    const typed = state.cases.filter((c) => Object.entries(c).some(([k, v]) => k !== "response" && asText(v).trim()));
    state.cases = [...typed, ...cases.map((c) => ({ ...c, completion: "" }))];
    casesChanged();
    toast(`${t("Cases loaded")}: ${cases.length}`);
  } catch (err) {
    error.textContent = err.message;
  } finally {
    button.disabled = false;
  }
}

function setUpCases() {
  document.getElementById("add-case").addEventListener("click", () => {
    state.cases.push(emptyCase());
    casesChanged();
  });
  document.getElementById("load-cases").addEventListener("click", loadCases);
  // HOOK (model testing worker): #generate-completions stays disabled until an inference worker
  // can sample completions for these prompts; it will then fill each case's completion.
  renderCases();
}

// ---- run ------------------------------------------------------------------------------------
function requestBody() {
  const body = {
    rewards: state.rewards.map(({ name, weight, params }) => ({ name, weight, params })),
    template: state.markers,
    cases: state.cases.map((item) => casePayload(item, columns())),
  };
  if (state.custom.enabled) Object.assign(body, { custom_code: editor.getValue(), custom_weight: state.custom.weight });
  return body;
}

function setBusy(busy) {
  const button = document.getElementById("run-test");
  button.disabled = busy;
  button.setAttribute("aria-busy", String(busy));
  document.getElementById("results").setAttribute("aria-busy", String(busy));
  document.getElementById("run-status").textContent = busy ? t("Running the rewards… (up to about 10 s)") : "";
}

function clearErrors() {
  document.querySelectorAll("#preset-panel [data-error-for], #cases-panel [data-error-for], #run-error").forEach((slot) => { slot.textContent = ""; });
  clearEditorError();
}

async function runTest() {
  clearErrors();
  setBusy(true);
  try {
    showResults(await api("POST", "/api/rewards/test", requestBody()));
  } catch (err) {
    document.getElementById("results").hidden = true;
    showOutput(err.body.output);
    showRunError(err);
  } finally {
    setBusy(false);
  }
}

/** The API's error next to what it names: the editor (at its line), a reward, a case, a marker. */
function showRunError(err) {
  if (err.field === "custom_code" || err.field?.startsWith("custom_")) {
    showEditorError(err.message, err.line);
    document.getElementById("custom-panel").scrollIntoView({ block: "center" });
    return;
  }
  const slot = errorSlotFor(err.field) || document.getElementById("run-error");
  slot.textContent = err.message;
  if (slot.closest("details")) slot.closest("details").open = true;
  slot.scrollIntoView({ block: "center" });
}

// ---- results --------------------------------------------------------------------------------
function showResults(result) {
  const box = document.getElementById("results");
  box.hidden = false;
  showStatistics(result.statistics || {});
  showScores(result);
  drawHistogram(result.results.map((r) => r.total));
  showOutput(result.output);
  box.scrollIntoView({ block: "start" });
}

/** What the custom reward printed, on success and on failure alike. */
function showOutput(output) {
  document.getElementById("custom-output").textContent = output || "";
  document.getElementById("custom-output-box").hidden = !output;
}

function showStatistics(stats) {
  const names = { mean: t("Mean"), std: t("Standard deviation"), min: t("Minimum"), max: t("Maximum"), count: t("Scored cases") };
  document.getElementById("statistics").replaceChildren(...Object.entries(names).map(([key, label]) => {
    const stat = el("div", null, { class: "stat", "data-stat": key });
    stat.append(el("span", label), el("strong", formatNumber(stats[key])));
    return stat;
  }));
}

function rewardColumns(result) {
  if (Array.isArray(result.rewards) && result.rewards.length) return result.rewards;
  return Object.keys(result.results[0]?.components || {}).map((name) => ({ name, weight: null }));
}

function showScores(result) {
  const table = document.getElementById("results-table");
  const rewards = rewardColumns(result);
  const head = el("tr");
  head.append(el("th", "#"), el("th", t("Prompt")), el("th", t("Completion")));
  for (const r of rewards) head.append(el("th", r.weight === null ? r.name : `${r.name} × ${formatNumber(r.weight)}`, { "data-reward-column": r.name }));
  head.append(el("th", t("Total")));
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(...result.results.map((row, i) => scoreRow(row, i, rewards)));
  table.tFoot?.remove();
  table.createTFoot().append(meanRow(result, rewards));
}

function meanRow(result, rewards) {
  const tr = el("tr", null, { class: "means" });
  tr.append(el("th", t("Mean"), { colspan: 3 }));
  for (const r of rewards) tr.append(scoreCell(result.per_reward?.[r.name]?.mean, { "data-mean": r.name }));
  tr.append(scoreCell(result.statistics?.mean, { "data-mean": "total", class: "total" }));
  return tr;
}

function scoreRow(row, index, rewards) {
  const tr = el("tr", null, { "data-result": index });
  const item = state.cases[index] || {};
  tr.append(el("td", index + 1), el("td", shorten(asText(item.prompt)), { class: "text" }),
    el("td", shorten(asText(item.completion)), { class: "text" }));
  for (const r of rewards) tr.append(scoreCell(row.components?.[r.name], { "data-score": r.name }));
  tr.append(scoreCell(row.total, { "data-total": "", class: "total" }));
  return tr;
}

function scoreCell(value, attrs) {
  const none = value === null || value === undefined;
  const cell = el("td", none ? "–" : formatNumber(value), attrs);
  if (none) cell.title = t("No score (the reward returned None for this case)");
  return cell;
}

function shorten(text) {
  return text.length > 160 ? `${text.slice(0, 160)}…` : text;
}

// ---- histogram ------------------------------------------------------------------------------
/** Totals counted into equal-width bins between their minimum and maximum (at most 10). */
function histogramBins(values, most = 10) {
  const finite = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  if (!finite.length) return { labels: [], counts: [] };
  const lo = Math.min(...finite), hi = Math.max(...finite);
  const bins = lo === hi ? 1 : Math.min(most, finite.length);
  const width = (hi - lo) / bins || 1;
  const counts = new Array(bins).fill(0);
  finite.forEach((v) => { counts[Math.min(bins - 1, Math.floor((v - lo) / width))] += 1; });
  const labels = counts.map((_, i) => (bins === 1 ? formatNumber(lo)
    : `${formatNumber(lo + i * width)} – ${formatNumber(lo + (i + 1) * width)}`));
  return { labels, counts };
}

function drawHistogram(totals) {
  const { labels, counts } = histogramBins(totals);
  const canvas = document.getElementById("histogram");
  const chart = window.Chart.getChart(canvas);
  if (chart) {
    chart.data.labels = labels;
    chart.data.datasets[0].data = counts;
    chart.update();
    return;
  }
  new window.Chart(canvas, {
    type: "bar",
    data: { labels, datasets: [{ label: t("Cases"), data: counts, backgroundColor: "#2f6fde" }] },
    options: { responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
}

// ---- start ----------------------------------------------------------------------------------
async function main() {
  setUpEditor();
  setUpCases();
  document.getElementById("run-test").addEventListener("click", runTest);
  const parts = [setUpPresets().then(renderCases), setUpLibrary(), setUpDatasets()];
  for (const outcome of await Promise.allSettled(parts)) {
    if (outcome.status === "rejected") toast(outcome.reason.message, "error");
  }
  document.body.dataset.ready = "true";
}

main();
