// The model testing page, four tabs: a streamed chat with any model (multi-turn, Stop, the exact
// prompt), two models side by side on one prompt, a batch of prompts scored by rewards (progress,
// results table, CSV/JSON downloads) and a run's held-out evaluation against its base (table and
// bar chart). `/test?run=ID&checkpoint=checkpoint-N` preselects that run. Data is shown as text.
import { api, t, el, toast, formatNumber } from "./common.js";
import { renderRewardCatalog } from "./rewards_ui.js";
import {
  ModelPicker, loadModels, requestedRun, isResultOf, isBaseOf, startGeneration, answerStats,
  followJob, socketId,
} from "./generation.js";

const $ = (id) => document.getElementById(id);
const TABS = ["chat", "side", "batch", "eval"];
const MODEL_TEXT = { base: t("base"), "fine-tuned": t("fine-tuned") };

// ---- small helpers --------------------------------------------------------------------------
/** A number typed by hand: a number, or the raw text so the server can name the problem. */
function typedNumber(raw) {
  return raw.trim() === "" || Number.isNaN(Number(raw)) ? raw : Number(raw);
}

/** Temperature, top-p, max tokens and the system prompt: none sent when its box is empty (the
 * run's training prompt applies), "" when "no system prompt" is ticked. */
function generationSettings(prefix) {
  const body = {
    temperature: typedNumber($(`${prefix}-temperature`).value),
    top_p: typedNumber($(`${prefix}-top-p`).value),
    max_tokens: typedNumber($(`${prefix}-max-tokens`).value),
  };
  const system = $(`${prefix}-system`).value;
  if ($(`${prefix}-no-system`).checked) body.system_prompt = "";
  else if (system.trim()) body.system_prompt = system;
  return body;
}

function setUpSettings(prefix) {
  const none = $(`${prefix}-no-system`);
  none.addEventListener("change", () => { $(`${prefix}-system`).disabled = none.checked; });
}

function makePicker(id, models, options = {}) {
  return new ModelPicker($(id), $(`${id}-path`), models, options);
}

const runConfigs = {};
/** A run's config (GET /api/training/<id>), read once; {} when it cannot be read. */
async function runConfig(session) {
  if (!(session in runConfigs)) {
    runConfigs[session] = api("GET", `/api/training/${encodeURIComponent(session)}`)
      .then((run) => run.config || {}, () => ({}));
  }
  return runConfigs[session];
}

/** The system prompt box says what an empty box means for the picked model(s). */
function explainSystemPrompt(prefix, pickers) {
  const box = $(`${prefix}-system`);
  const plain = box.placeholder;
  const update = async () => {
    const session = pickers.map((p) => p.selector().session_id).find(Boolean);
    const own = session ? (await runConfig(session)).template?.system_prompt : "";
    box.placeholder = own ? `${t("Empty: the run's training system prompt")}: ${own}` : plain;
  };
  pickers.forEach((picker) => picker.onChange(update));
  update();
}

/** The model of `?model=`, or the run of `?run=` (at its `&checkpoint=` when given); otherwise the
 * picker's first model. */
function preselect(picker, wanted) {
  if (wanted.model) picker.choose((m) => m.select?.model_path === wanted.model);
  if (!wanted.run) return;
  picker.choose(isResultOf(wanted.run, wanted.checkpoint)) || picker.choose(isResultOf(wanted.run));
}

function setBusy(button, busy) {
  button.disabled = busy;
  button.setAttribute("aria-busy", String(busy));
}

function stat(label, value, key) {
  const box = el("div", null, { class: "stat", "data-stat": key });
  box.append(el("span", label), el("strong", value));
  return box;
}

function shorten(text, most = 400) {
  text = String(text ?? "");
  return text.length > most ? `${text.slice(0, most)}…` : text;
}

// ---- tabs -----------------------------------------------------------------------------------
function showTab(name) {
  if (!TABS.includes(name)) name = "chat";
  for (const tab of TABS) {
    const button = $(`tab-${tab}`);
    button.setAttribute("aria-selected", String(tab === name));
    button.tabIndex = tab === name ? 0 : -1;
    $(`panel-${tab}`).hidden = tab !== name;
  }
}

function setUpTabs() {
  const buttons = [...document.querySelectorAll("[data-tab]")];
  const open = (name) => {
    history.replaceState(null, "", `${window.location.search}#${name}`);
    showTab(name);
  };
  buttons.forEach((button, i) => {
    button.addEventListener("click", () => open(button.dataset.tab));
    button.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = buttons[(i + step + buttons.length) % buttons.length];
      next.focus();
      open(next.dataset.tab);
    });
  });
  window.addEventListener("hashchange", () => showTab(window.location.hash.slice(1)));
  showTab(window.location.hash.slice(1));
}

// ---- chat -----------------------------------------------------------------------------------
const chat = { picker: null, messages: [], current: null, conversation: 0 };

function chatBubble(role, text, who) {
  const box = el("div", null, { class: `message ${role}`, "data-role": role });
  box.append(el("div", who, { class: "message-who" }), el("div", text, { class: "message-text answer-text" }));
  $("chat-log").append(box);
  $("chat-empty").hidden = true;
  box.scrollIntoView({ block: "nearest" });
  return box;
}

function setChatBusy(busy) {
  setBusy($("chat-send"), busy);
  $("chat-stop").disabled = !busy;
}

function showExactPrompt(result) {
  $("chat-prompt-details").hidden = !result.prompt;
  $("chat-prompt").textContent = result.prompt || "";
  $("chat-prompt-tokens").textContent = `${formatNumber(result.prompt_tokens, 0)} ${t("prompt tokens")} · ${result.model ?? ""} (${result.backend ?? ""})`;
}

async function sendChat() {
  const input = $("chat-input");
  const text = input.value;
  if (!text.trim() || chat.current) return;
  $("chat-error").textContent = "";
  const messages = [...chat.messages, { role: "user", content: text }];
  const request = { ...chat.picker.selector(), ...generationSettings("chat") };
  if (messages.length === 1) request.prompt = text;
  else request.messages = messages;
  input.value = "";
  const question = chatBubble("user", text, t("You"));
  const answer = chatBubble("assistant", "", chat.picker.label());
  const textBox = answer.querySelector(".message-text");
  const streamed = document.createTextNode("");
  textBox.append(streamed);
  answer.dataset.state = "waiting";
  chat.current = startGeneration(request, (token) => {
    answer.dataset.state = "streaming";
    streamed.appendData(token);
  });
  setChatBusy(true);
  const conversation = chat.conversation;
  try {
    const result = await chat.current.done;
    if (conversation !== chat.conversation) return;  // cleared meanwhile
    textBox.textContent = result.text;
    answer.dataset.state = result.finish_reason || "stop";
    answer.append(answerStats(result));
    chat.messages = [...messages, { role: "assistant", content: result.text }];
    showExactPrompt(result);
  } catch (err) {
    // the failed turn leaves the conversation; its text goes back to the box to send again
    answer.dataset.state = "error";
    question.classList.add("failed");
    answer.classList.add("failed");
    answer.append(el("p", err.message, { class: "error-text" }));
    $("chat-error").textContent = err.message;
    if (!input.value) input.value = text;
  } finally {
    chat.current = null;
    setChatBusy(false);
  }
}

function clearChat() {
  chat.current?.cancel();
  chat.conversation += 1;
  chat.messages = [];
  $("chat-log").querySelectorAll(".message").forEach((m) => m.remove());
  $("chat-empty").hidden = false;
  $("chat-prompt-details").hidden = true;
  $("chat-error").textContent = "";
}

function setUpChat(models, wanted) {
  chat.picker = makePicker("chat-model", models);
  preselect(chat.picker, wanted);
  setUpSettings("chat");
  explainSystemPrompt("chat", [chat.picker]);
  $("chat-send").addEventListener("click", sendChat);
  $("chat-stop").addEventListener("click", () => chat.current?.cancel());
  $("chat-clear").addEventListener("click", clearChat);
  $("chat-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      sendChat();
    }
  });
}

// ---- side by side ---------------------------------------------------------------------------
const side = { a: null, b: null, current: null, stopped: false };

function sideColumn(key) {
  return document.querySelector(`.side-column[data-side="${key}"]`);
}

function resetColumn(column, label) {
  column.querySelector(".side-label").textContent = label;
  column.querySelector(".side-text").textContent = "";
  column.querySelector(".side-stats").replaceChildren();
  column.querySelector(".side-error").textContent = "";
  column.querySelector(".side-prompt").hidden = true;
  column.dataset.state = "waiting";
}

async function generateColumn(key, request) {
  const column = sideColumn(key);
  const textBox = column.querySelector(".side-text");
  const streamed = document.createTextNode("");
  textBox.append(streamed);
  side.current = startGeneration(request, (token) => {
    column.dataset.state = "streaming";
    streamed.appendData(token);
  });
  try {
    const result = await side.current.done;
    textBox.textContent = result.text;
    column.querySelector(".side-stats").append(answerStats(result));
    column.querySelector(".side-prompt pre").textContent = result.prompt || "";
    column.querySelector(".side-prompt").hidden = !result.prompt;
    column.dataset.state = result.finish_reason || "stop";
  } catch (err) {
    column.querySelector(".side-error").textContent = err.message;
    column.dataset.state = "error";
  }
}

async function runSide() {
  const prompt = $("side-prompt").value;
  $("side-error").textContent = "";
  if (!prompt.trim()) {
    $("side-error").textContent = t("Type a prompt first.");
    return;
  }
  const settings = generationSettings("side");
  const requests = { a: { ...side.a.selector(), ...settings, prompt }, b: { ...side.b.selector(), ...settings, prompt } };
  resetColumn(sideColumn("a"), side.a.label());
  resetColumn(sideColumn("b"), side.b.label());
  side.stopped = false;
  setBusy($("side-run"), true);
  $("side-stop").disabled = false;
  // one after the other: the inference worker answers one request at a time anyway
  for (const key of ["a", "b"]) {
    if (side.stopped) {
      sideColumn(key).dataset.state = "cancelled";
      sideColumn(key).querySelector(".side-stats").textContent = t("Not generated: stopped.");
      break;
    }
    await generateColumn(key, requests[key]);
  }
  side.current = null;
  setBusy($("side-run"), false);
  $("side-stop").disabled = true;
}

function setUpSide(models, wanted) {
  side.a = makePicker("side-model-a", models);
  side.b = makePicker("side-model-b", models);
  // base vs fine-tuned of the requested run, else of the first run that has a result
  const run = wanted.run || models.find((m) => m.group === "run")?.select?.session_id;
  if (run) {
    side.a.choose(isBaseOf(run));
    side.b.choose(isResultOf(run, wanted.checkpoint)) || side.b.choose(isResultOf(run));
  }
  setUpSettings("side");
  explainSystemPrompt("side", [side.a, side.b]);
  $("side-run").addEventListener("click", runSide);
  $("side-stop").addEventListener("click", () => {
    side.stopped = true;
    side.current?.cancel();
  });
}

// ---- jobs (batch and evaluation) ------------------------------------------------------------
function showProgress(prefix, job) {
  const bar = $(`${prefix}-progress`);
  bar.hidden = false;
  bar.max = Math.max(1, job.total || 0);
  bar.value = job.done || 0;
  const count = job.total ? `${job.done || 0} / ${job.total}` : "";
  $(`${prefix}-status`).textContent = [count, job.message].filter(Boolean).join(" · ");
}

/** Starts a job (POST `url`), shows its progress and resolves with its final state. */
async function runJob(prefix, url, body, holder) {
  const sid = await socketId();
  if (sid) body.socket_id = sid;
  const { job_id: jobId } = await api("POST", url, body);
  holder.job = jobId;
  showProgress(prefix, { done: 0, total: 0, message: t("Starting… (loading a model can take a minute)") });
  try {
    return await followJob(jobId, (job) => showProgress(prefix, job));
  } finally {
    holder.job = null;
  }
}

/** A tab's Run: its button busy and Cancel live while the job runs, then `show` its result or
 * say why there is none. */
async function runTab(prefix, url, body, holder, show) {
  setBusy($(`${prefix}-run`), true);
  $(`${prefix}-cancel`).disabled = false;
  try {
    const job = await runJob(prefix, url, body, holder);
    if (job.status === "done" && job.result) show(job);
    else jobFailed(prefix, job);
  } catch (err) {
    $(`${prefix}-error`).textContent = err.message;
  } finally {
    setBusy($(`${prefix}-run`), false);
    $(`${prefix}-cancel`).disabled = true;
  }
}

function cancelJob(holder) {
  if (!holder.job) return;
  api("DELETE", `/api/test/jobs/${encodeURIComponent(holder.job)}`).catch((err) => toast(err.message, "error"));
}

function jobFailed(prefix, job) {
  const text = job.status === "cancelled" ? t("Cancelled.") : job.error || t("The job failed.");
  $(`${prefix}-error`).textContent = job.status === "cancelled" ? "" : text;
  $(`${prefix}-status`).textContent = job.status === "cancelled" ? text : "";
}

function showNote(id, note) {
  $(id).hidden = !note;
  $(id).textContent = note || "";
}

// ---- batch ----------------------------------------------------------------------------------
const batch = { picker: null, prompts: null, presets: [], job: null };

function batchSession() {
  return batch.picker.selector().session_id || "";
}

async function uploadPrompts(event) {
  const file = event.target.files[0];
  const status = $("batch-file-status");
  batch.prompts = null;
  status.textContent = "";
  $("batch-error").textContent = "";
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  try {
    const answer = await api("POST", "/api/test/prompts", form);
    batch.prompts = answer.prompts;
    status.textContent = `${answer.count} ${t("prompts")} · ${answer.file}`;
    status.dataset.count = answer.count;
    $("batch-source-file").checked = true;
  } catch (err) {
    $("batch-error").textContent = err.message;
  }
}

async function runRewards(session) {
  return (await runConfig(session)).rewards || [];
}

async function batchModelChanged() {
  const session = batchSession();
  $("batch-source-validation").disabled = !session;
  $("batch-validation-help").hidden = Boolean(session);
  if (!session && $("batch-source-validation").checked) $("batch-source-file").checked = true;
  $("batch-run-rewards-wrap").hidden = !session;
  $("batch-run-rewards-names").textContent = "";
  if (!session) return;
  const rewards = await runRewards(session);
  if (batchSession() === session) {
    $("batch-run-rewards-names").textContent = rewards.map((r) => r.name).join(", ") || t("none");
  }
}

async function batchRewards(session) {
  const presets = batch.presets.map(({ name, weight, params }) => ({ name, weight, params }));
  if (!session || !$("batch-run-rewards").checked) return presets;
  if (!presets.length) return undefined;  // absent: the server uses the run's own
  const own = await runRewards(session);
  const names = new Set(own.map((r) => r.name));
  return [...own, ...presets.filter((r) => !names.has(r.name))];
}

async function batchBody() {
  const session = batchSession();
  const body = { ...batch.picker.selector(), ...generationSettings("batch") };
  if ($("batch-source-validation").checked) {
    body.validation_rows = typedNumber($("batch-rows").value);
  } else if (batch.prompts) {
    body.prompts = batch.prompts;
  } else {
    throw new Error(t("Choose a file of prompts first."));
  }
  const rewards = await batchRewards(session);
  if (rewards !== undefined) body.rewards = rewards;
  return body;
}

async function runBatch() {
  $("batch-error").textContent = "";
  $("batch-status").textContent = "";
  let body;
  try {
    body = await batchBody();
  } catch (err) {
    $("batch-error").textContent = err.message;
    return;
  }
  await runTab("batch", "/api/test/batch", body, batch, showBatch);
}

function showBatch(job) {
  const { result } = job;
  $("batch-results").hidden = false;
  $("batch-results").dataset.job = job.job_id;
  $("batch-status").textContent = t("Done.");
  showNote("batch-note", job.note || result.note);
  const summary = result.summary || {};
  $("batch-summary").replaceChildren(
    stat(t("Mean total"), formatNumber(summary.mean_total), "mean_total"),
    ...result.rewards.map((name) => stat(name, formatNumber(summary.means?.[name]), `mean-${name}`)),
    stat(t("tokens/s"), formatNumber(summary.tokens_per_second, 1), "tokens_per_second"),
  );
  const download = (format) => `/api/test/jobs/${encodeURIComponent(job.job_id)}/download?format=${format}`;
  $("batch-csv").href = download("csv");
  $("batch-json").href = download("json");
  const table = $("batch-table");
  const head = el("tr");
  head.append(el("th", "#"), el("th", t("Prompt")), el("th", t("Reference")), el("th", t("Completion")),
    el("th", t("Tokens")), ...result.rewards.map((name) => el("th", name, { "data-reward-column": name })), el("th", t("Total")));
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(...result.rows.map((row) => batchRow(row, result.rewards)));
}

function batchRow(row, rewards) {
  const tr = el("tr", null, { "data-row": row.index });
  tr.append(el("td", row.index), el("td", shorten(row.prompt), { class: "text" }),
    el("td", shorten(row.reference), { class: "text" }),
    el("td", shorten(row.completion, 1200), { class: "text", "data-completion": "" }),
    el("td", formatNumber(row.tokens, 0)));
  for (const name of rewards) {
    const value = row.scores?.[name];
    tr.append(el("td", value === null || value === undefined ? "–" : formatNumber(value), { "data-score": name }));
  }
  tr.append(el("td", formatNumber(row.total), { class: "total", "data-total": "" }));
  return tr;
}

async function setUpBatch(models, wanted) {
  batch.picker = makePicker("batch-model", models);
  preselect(batch.picker, wanted);
  batch.picker.onChange(batchModelChanged);
  batchModelChanged();
  setUpSettings("batch");
  explainSystemPrompt("batch", [batch.picker]);
  $("batch-file").addEventListener("change", uploadPrompts);
  $("batch-run").addEventListener("click", runBatch);
  $("batch-cancel").addEventListener("click", () => cancelJob(batch));
  const catalog = (await api("GET", "/api/rewards/list")).rewards;
  const changed = () => { $("batch-presets-count").textContent = String(batch.presets.length); };
  renderRewardCatalog($("batch-reward-catalog"), catalog, batch.presets, { heading: "h3", changed });
}

// ---- held-out evaluation --------------------------------------------------------------------
const evaluation = { picker: null, job: null };

async function runEval() {
  $("eval-error").textContent = "";
  $("eval-status").textContent = "";
  const body = {
    ...evaluation.picker.selector(),
    rows: typedNumber($("eval-rows").value),
    max_tokens: typedNumber($("eval-max-tokens").value),
    perplexity: $("eval-perplexity").checked,
  };
  await runTab("eval", "/api/test/eval", body, evaluation, showEval);
}

function showEval(job) {
  const { result } = job;
  $("eval-results").hidden = false;
  $("eval-status").textContent = t("Done.");
  showNote("eval-note", result.note || job.note);
  const rewards = result.rewards || [];
  const table = $("eval-table");
  const head = el("tr");
  head.append(el("th", t("Model")), el("th", t("Mean reward")), el("th", t("Accuracy")), el("th", t("Perplexity")),
    ...rewards.map((name) => el("th", name)));
  table.tHead.replaceChildren(head);
  table.tBodies[0].replaceChildren(...result.models.map((m) => {
    const tr = el("tr", null, { "data-model": m.label });
    tr.append(el("th", MODEL_TEXT[m.label] || m.label), el("td", formatNumber(m.mean_reward), { "data-metric": "mean_reward" }),
      el("td", formatNumber(m.accuracy), { "data-metric": "accuracy" }),
      el("td", formatNumber(m.perplexity), { "data-metric": "perplexity" }),
      ...rewards.map((name) => el("td", formatNumber(m.means?.[name]))));
    return tr;
  }));
  drawEvalChart(result, rewards);
}

function drawEvalChart(result, rewards) {
  const canvas = $("eval-chart");
  window.Chart.getChart(canvas)?.destroy();
  const colors = ["#9aa5b8", "#2f6fde"];
  new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: [t("Mean reward"), t("Accuracy"), ...rewards],
      datasets: result.models.map((m, i) => ({
        label: MODEL_TEXT[m.label] || m.label,
        data: [m.mean_reward, m.accuracy, ...rewards.map((name) => m.means?.[name] ?? null)],
        backgroundColor: colors[i % colors.length],
      })),
    },
    options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true } } },
  });
}

function setUpEval(models, wanted) {
  evaluation.picker = new ModelPicker($("eval-model"), null, models, { groups: ["run", "checkpoint"] });
  preselect(evaluation.picker, wanted);
  const none = !evaluation.picker.models.length;
  $("eval-no-runs").hidden = !none;
  $("eval-run").disabled = none;
  $("eval-run").addEventListener("click", runEval);
  $("eval-cancel").addEventListener("click", () => cancelJob(evaluation));
}

// ---- start ----------------------------------------------------------------------------------
async function main() {
  setUpTabs();
  const wanted = requestedRun();
  let models = [];
  try {
    models = await loadModels();
  } catch (err) {
    $("models-error").textContent = err.message;
  }
  setUpChat(models, wanted);
  setUpSide(models, wanted);
  setUpEval(models, wanted);
  try {
    await setUpBatch(models, wanted);
  } catch (err) {
    toast(err.message, "error");
  }
  document.body.dataset.ready = "true";
}

main();
