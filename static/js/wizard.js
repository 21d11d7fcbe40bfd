// The new-run wizard: binds every [data-field] input to the draft config (by dotted path), keeps
// the draft in localStorage, validates it on the server after each change and shows each problem
// at its field. Each step adds its own parts (catalogs, previews, rewards) below.
import { api, t, el, toast, errorSlotFor, DRAFT_KEY, storeDraft } from "./common.js";
import { renderRewardCatalog, renderCustomRewards } from "./rewards_ui.js";
import { renderComputeChoices } from "./compute.js";
import { setUpEstimate } from "./estimate.js";

const MODE_KEY = "grpo-studio.setup-mode";
const FIELDS_KEY = "grpo-studio.dataset-fields";
const root = document.getElementById("wizard");
const stepName = root.dataset.step;
const defaults = JSON.parse(document.getElementById("default-config").textContent);
const presets = JSON.parse(document.getElementById("presets").textContent);
const STEP_OF = [["model.", "model"], ["dataset.", "dataset"], ["template.", "dataset"],
  ["rewards", "rewards"], ["output.name", "review"], ["description", "review"], ["", "training"]];

let draft = readDraft();
let problems = [];
const hooks = {};

function readDraft() {
  try {
    const stored = JSON.parse(localStorage.getItem(DRAFT_KEY));
    if (stored && typeof stored === "object") return stored;
  } catch { /* a broken draft falls back to the defaults */ }
  return structuredClone(defaults);
}

function saveDraft() {
  storeDraft(draft);
}

export function getPath(obj, path) {
  return path.split(".").reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);
}

export function setPath(obj, path, value) {
  const keys = path.split(".");
  let node = obj;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
    node = node[key];
  }
  node[keys.at(-1)] = value;
}

// ---- fields -----------------------------------------------------------------------------
function readInput(input) {
  const kind = input.dataset.kind;
  if (kind === "checkbox") return input.checked;
  const raw = input.value;
  if (raw.trim() === "" && "nullable" in input.dataset) return null;
  if (kind === "integer" || kind === "number") {
    const value = Number(raw);
    return raw.trim() === "" || Number.isNaN(value) ? raw : value;  // the server names the problem
  }
  if (kind === "list") return raw.split(",").map((s) => s.trim()).filter(Boolean);
  return raw;
}

function writeInput(input, value) {
  if (input.dataset.kind === "checkbox") {
    input.checked = Boolean(value);
    return;
  }
  if (input.tagName === "SELECT" && value && ![...input.options].some((o) => o.value === value)) {
    input.append(el("option", value, { value }));
  }
  input.value = value === null || value === undefined ? "" : Array.isArray(value) ? value.join(", ") : String(value);
}

function refreshInputs() {
  document.querySelectorAll("[data-field]").forEach((input) => writeInput(input, getPath(draft, input.dataset.field)));
}

function bindFields() {
  document.querySelectorAll("[data-field]").forEach((input) => {
    writeInput(input, getPath(draft, input.dataset.field));
    const update = () => {
      setPath(draft, input.dataset.field, readInput(input));
      changed(input.dataset.field);
    };
    input.addEventListener("input", update);
    input.addEventListener("change", update);
  });
}

function changed(path) {
  saveDraft();
  scheduleValidate();
  hooks.changed?.(path);
}

// ---- validation -------------------------------------------------------------------------
let validateTimer = null;
function scheduleValidate() {
  clearTimeout(validateTimer);
  validateTimer = setTimeout(validate, 250);
}

async function validate() {
  clearTimeout(validateTimer);
  try {
    const result = await api("POST", "/api/configs/validate", { config: draft });
    problems = result.problems;
    showProblems();
    hooks.validated?.(result);
    return result;
  } catch (err) {
    toast(err.message, "error");
    return null;
  }
}

function showProblems() {
  document.querySelectorAll("[data-error-for]").forEach((slot) => {
    slot.textContent = "";
    slot.closest(".field")?.classList.remove("invalid");
  });
  for (const problem of problems) {
    const slot = errorSlotFor(problem.field);
    if (!slot) continue;
    slot.textContent = slot.textContent ? `${slot.textContent} ${problem.message}` : problem.message;
    slot.closest(".field")?.classList.add("invalid");
  }
}

export function stepOf(field) {
  return STEP_OF.find(([prefix]) => field.startsWith(prefix))[1];
}

function setUpNavigation() {
  document.getElementById("next")?.addEventListener("click", async (event) => {
    event.preventDefault();
    const target = event.currentTarget.href;
    const result = await validate();
    const here = (result?.problems || []).filter((p) => stepOf(p.field) === stepName && errorSlotFor(p.field));
    if (here.length) {
      document.getElementById("step-problems").textContent = t("Fix the fields marked in red first.");
      errorSlotFor(here[0].field).closest(".field, section")?.scrollIntoView({ block: "center" });
      return;
    }
    window.location.href = target;
  });
  document.getElementById("reset-draft").addEventListener("click", () => {
    draft = structuredClone(defaults);
    saveDraft();
    window.location.reload();
  });
}

async function loadRequestedConfig() {
  const params = new URLSearchParams(window.location.search);
  const model = params.get("model");  // "Train with this" on the models page
  if (model) {
    draft.model.name = model;
    saveDraft();
    history.replaceState(null, "", window.location.pathname);
  }
  const dataset = params.get("dataset");  // "Use in the wizard" on the datasets page
  if (dataset) {
    await useUploadedDataset(dataset, params.get("format"), params.get("txt_mode"), params.get("validation"));
    history.replaceState(null, "", window.location.pathname);
  }
  const name = params.get("load");
  if (!name) return;
  try {
    const entry = await api("GET", `/api/configs/load?name=${encodeURIComponent(name)}`);
    draft = entry.config;
    saveDraft();
    toast(t("Loaded config") + `: ${entry.name}`);
  } catch (err) {
    toast(err.message, "error");
  }
  history.replaceState(null, "", window.location.pathname);
}

/** Makes the uploaded dataset `id` the draft's dataset (read as `format`, and a .txt file by
 * `txtMode`, when given), evaluated on the uploaded file `validationId` when given (a split's
 * validation part), else on the draft's validation fraction. */
async function useUploadedDataset(id, format, txtMode, validationId) {
  try {
    const { datasets } = await api("GET", "/api/datasets/list");
    const upload = (wanted) => {
      const entry = datasets.find((d) => d.source === "file" && d.id === wanted);
      if (!entry) throw new Error(`${t("No uploaded dataset with the id")} ${wanted}`);
      return entry;
    };
    const entry = upload(id);
    draft.dataset = { ...draft.dataset, source: "file", path: entry.path, format: format || "auto", mapping: entry.mapping || {}, validation_path: null };
    if (validationId) Object.assign(draft.dataset, { validation_path: upload(validationId).path, validation_split: 0 });
    if (txtMode) draft.dataset.txt_mode = txtMode;
    saveDraft();
  } catch (err) {
    toast(err.message, "error");
  }
}

function showWhen(attribute, value) {
  document.querySelectorAll(`[${attribute}]`).forEach((node) => {
    node.hidden = !node.getAttribute(attribute).split(" ").includes(value);
  });
}

// ---- step: model --------------------------------------------------------------------------
async function modelStep() {
  const catalog = await api("GET", "/api/models/list");
  const box = document.getElementById("model-catalog");
  const cards = [];
  for (const family of catalog.families) {
    box.append(el("h3", family));
    const list = el("div", null, { class: "cards" });
    for (const model of catalog.catalog.filter((m) => m.family === family)) {
      const card = el("button", null, { type: "button", class: "card", "data-model": model.id });
      card.append(el("strong", model.offline ? "SmolLM2-135M-Instruct" : model.id));
      if (model.offline) card.append(el("span", t("offline"), { class: "badge good" }));
      const mem = model.memory_gb;
      card.append(el("small", `${model.params_b} B · LoRA ~${mem.lora} GB · QLoRA ~${mem.qlora} GB · ${t("full")} ~${mem.full} GB`));
      if (model.note) card.append(el("small", t(model.note)));
      card.addEventListener("click", () => {
        draft.model.name = model.id;
        refreshInputs();
        markModel();
        changed("model.name");
      });
      cards.push(card);
      list.append(card);
    }
    box.append(list);
  }
  const markModel = () => cards.forEach((c) => c.classList.toggle("selected", c.dataset.model === draft.model.name));
  const methods = document.querySelectorAll("[data-method]");
  const markMethod = () => methods.forEach((c) => c.classList.toggle("selected", c.dataset.method === draft.model.method));
  methods.forEach((card) => card.addEventListener("click", () => {
    draft.model.method = card.dataset.method;
    markMethod();
    changed("model.method");
  }));
  hooks.changed = (path) => path === "model.name" && markModel();
  markModel();
  markMethod();
  setUpModes();
}

function setUpModes() {
  const mode = localStorage.getItem(MODE_KEY) || "recommended";
  const apply = (value) => {
    showWhen("data-mode-show", value);
    document.querySelector("[data-mode-note]").hidden = value !== "recommended";
  };
  document.querySelectorAll("input[name=mode]").forEach((radio) => {
    radio.checked = radio.value === mode;
    radio.addEventListener("change", () => {
      localStorage.setItem(MODE_KEY, radio.value);
      if (radio.value === "recommended") {
        Object.assign(draft.model, { lora_rank: 16, lora_alpha: 32, lora_dropout: 0, target_modules: null });
        refreshInputs();
        changed("model.lora_rank");
      }
      apply(radio.value);
    });
  });
  apply(mode);
}

// ---- step: dataset ------------------------------------------------------------------------
async function datasetStep() {
  const { datasets } = await api("GET", "/api/datasets/list");
  const showSource = () => showWhen("data-source-show", draft.dataset.source);
  const choose = (changes) => {
    // another dataset: a validation file chosen for the previous one no longer belongs to it
    Object.assign(draft.dataset, { validation_path: null }, changes);
    refreshInputs();
    showSource();
    markDatasets();
    changed("dataset.path");
  };
  const cards = [];
  const addCard = (boxId, entry, changes, lines) => {
    const card = el("button", null, { type: "button", class: "card", "data-dataset": entry.id });
    card.append(el("strong", entry.name));
    lines.filter(Boolean).forEach((line) => card.append(el("small", line)));
    card.addEventListener("click", () => choose(changes));
    card.dataset.path = changes.path;
    cards.push(card);
    document.getElementById(boxId).append(card);
  };
  for (const d of datasets) {
    if (d.source === "builtin") {
      addCard("builtin-datasets", d, { source: "builtin", path: d.id, mapping: {} }, [`${d.rows} ${t("rows")}`]);
    } else if (d.source === "hub") {
      addCard("catalog-datasets", d, { source: "hub", path: d.id, config_name: d.config_name, split: d.split, mapping: d.mapping },
        [d.id, t(d.description), `${t("Suggested rewards")}: ${d.rewards.join(", ")}`]);
    } else {
      addCard("uploaded-datasets", d, { source: "file", path: d.path, mapping: d.mapping || {} }, [d.format, `${Math.ceil(d.size / 1024)} KB`]);
    }
  }
  const markDatasets = () => cards.forEach((c) => c.classList.toggle("selected", c.dataset.path === draft.dataset.path));
  document.getElementById("upload").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    const status = document.getElementById("upload-status");
    status.textContent = t("Uploading…");
    const form = new FormData();
    form.append("file", file);
    try {
      const entry = await api("POST", "/api/datasets/upload", form);
      status.textContent = `${t("Uploaded")}: ${entry.name}`;
      addCard("uploaded-datasets", entry, { source: "file", path: entry.path, mapping: {} }, [entry.format]);
      choose({ source: "file", path: entry.path, mapping: {} });
    } catch (err) {
      status.textContent = err.message;
    }
  });
  let previewTimer = null;
  hooks.changed = (path) => {
    if (path === "dataset.source") showSource();
    clearTimeout(previewTimer);
    previewTimer = setTimeout(() => (path.startsWith("dataset.") ? preview() : formatPreview()), 300);
  };
  showSource();
  markDatasets();
  await preview();
}

// previews answer out of order when the choice changes quickly: only the latest request's answer
// is shown
let previewRequest = 0;
let formatRequest = 0;

async function preview() {
  const d = structuredClone(draft.dataset);
  const request = ++previewRequest;
  const error = document.getElementById("preview-error");
  const table = document.getElementById("preview-table");
  try {
    const result = await api("POST", "/api/datasets/preview", {
      source: d.source, path: d.path, config: d.config_name, split: d.split, mapping: d.mapping || {}, samples: 5 });
    if (request !== previewRequest) return;
    error.textContent = "";
    table.replaceChildren();
    const head = el("tr");
    result.fields.forEach((f) => head.append(el("th", f)));
    table.append(el("thead"), el("tbody"));
    table.tHead.append(head);
    for (const row of result.rows) {
      const tr = el("tr");
      result.fields.forEach((f) => tr.append(el("td", shorten(row[f]), { class: "text" })));
      table.tBodies[0].append(tr);
    }
    fillMapping(result.fields, result.suggested_mapping);
    localStorage.setItem(FIELDS_KEY, JSON.stringify({ path: d.path, fields: result.fields, suggested: result.suggested_mapping }));
  } catch (err) {
    if (request !== previewRequest) return;
    table.replaceChildren();
    error.textContent = err.message;
  }
  await formatPreview();
}

function shorten(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text && text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function fillMapping(fields, suggested) {
  document.querySelectorAll("[data-mapping]").forEach((select) => {
    const role = select.dataset.mapping;
    const auto = suggested && !suggested.error ? suggested[role] : null;
    select.replaceChildren(el("option", auto ? `${t("auto")} (${auto})` : t("auto"), { value: "" }));
    fields.forEach((f) => select.append(el("option", f, { value: f })));
    writeInput(select, getPath(draft, select.dataset.field));
  });
}

async function formatPreview() {
  const error = document.getElementById("format-error");
  const request = ++formatRequest;
  try {
    const result = await api("POST", "/api/datasets/format", { config: structuredClone(draft) });
    if (request !== formatRequest) return;
    error.textContent = "";
    document.getElementById("format-prompt").textContent = result.prompt ??
      `${t("The model's chat template is applied when training starts.")}\n\n${JSON.stringify(result.messages, null, 2)}`;
    document.getElementById("format-response").textContent = result.response || "–";
    document.getElementById("format-reference").textContent = result.reference ?? "–";
  } catch (err) {
    if (request === formatRequest) error.textContent = err.message;
  }
}

// ---- step: training -----------------------------------------------------------------------
function trainingStep() {
  document.querySelectorAll("[data-preset]").forEach((button) => button.addEventListener("click", () => {
    for (const [section, values] of Object.entries(presets[button.dataset.preset])) {
      draft[section] = { ...draft[section], ...values };
    }
    refreshInputs();
    changed("training.max_steps");
    toast(t("Preset applied") + `: ${button.textContent}`);
  }));
  const showAlgorithm = () => showWhen("data-algorithm-show", draft.algorithm.name);
  hooks.changed = (path) => path === "algorithm.name" && showAlgorithm();
  showAlgorithm();
  return renderComputeChoices(document.getElementById("compute"),
    () => (draft.compute ||= { gpu_ids: [], multi_gpu: false }), () => changed("compute.gpu_ids"));
}

// ---- step: rewards ------------------------------------------------------------------------
async function rewardsStep() {
  showWhen("data-algorithm-show", draft.algorithm.name);
  draft.rewards = Array.isArray(draft.rewards) ? draft.rewards : [];
  const [{ rewards }, library] = await Promise.all([api("GET", "/api/rewards/list"), customLibrary()]);
  const changedRewards = () => changed("rewards");
  renderRewardCatalog(document.getElementById("reward-catalog"), rewards, draft.rewards,
    { mapped: mappedFields(), changed: changedRewards, rendered: showProblems });
  renderCustomRewards(document.getElementById("custom-rewards"), library, draft.rewards,
    { changed: changedRewards, rendered: showProblems, failed: (err) => toast(err.message, "error") });
}

async function customLibrary() {
  try {
    return (await api("GET", "/api/rewards/custom")).rewards;
  } catch (err) {
    toast(err.message, "error");
    return [];
  }
}

function mappedFields() {
  const mapping = draft.dataset.mapping || {};
  let suggested = {};
  try {
    const stored = JSON.parse(localStorage.getItem(FIELDS_KEY));
    if (stored?.path === draft.dataset.path) suggested = stored.suggested || {};
  } catch { /* no preview yet */ }
  const has = (role) => Boolean(mapping[role] || suggested[role]);
  return { reference: has("reference") || has("response"), prompt: has("instruction") || has("messages") };
}

// ---- step: review -------------------------------------------------------------------------
function reviewStep() {
  const list = document.getElementById("validation-problems");
  const saveName = document.getElementById("save-name");
  saveName.value = draft.output?.name || "";
  const estimate = setUpEstimate(document.getElementById("estimate"), document.getElementById("calibrate"),
    document.getElementById("calibrate-status"), () => draft);
  hooks.validated = (result) => {
    if (result.valid) estimate();
    else document.getElementById("estimate").replaceChildren(el("p", t("The estimate needs a valid configuration."), { class: "muted" }));
    document.getElementById("validation-ok").hidden = !result.valid;
    document.getElementById("start-training").disabled = !result.valid;
    list.replaceChildren();
    for (const problem of result.problems) {
      const item = el("li");
      const step = stepOf(problem.field);
      item.append(el("a", problem.field, { href: `/wizard/${step}` }), document.createTextNode(`: ${problem.message}`));
      list.append(item);
    }
    document.getElementById("config-json").textContent = JSON.stringify(result.config || draft, null, 2);
  };
  document.getElementById("save-config").addEventListener("click", async () => {
    try {
      const entry = await api("POST", "/api/configs/save", { name: saveName.value, config: draft });
      toast(`${t("Saved")}: ${entry.name}`);
    } catch (err) {
      toast(err.message, "error");
    }
  });
  document.getElementById("start-training").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    const error = document.getElementById("start-error");
    error.textContent = "";
    try {
      const { session_id: id } = await api("POST", "/api/training/start", { config: draft });
      window.location.href = `/runs/${encodeURIComponent(id)}`;
    } catch (err) {
      error.textContent = err.message;
      button.disabled = false;
    }
  });
}

// ---- start --------------------------------------------------------------------------------
const STEP_SETUP = { model: modelStep, dataset: datasetStep, training: trainingStep, rewards: rewardsStep, review: reviewStep };

async function main() {
  await loadRequestedConfig();
  bindFields();
  setUpNavigation();
  try {
    await STEP_SETUP[stepName]();
  } catch (err) {
    toast(err.message, "error");
  }
  await validate();
  document.body.dataset.ready = "true";
}

main();
