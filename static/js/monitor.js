// The training monitor: redraws the full metric history from /metrics, then follows the run live
// through its Socket.IO room (training_update, training_sample, training_alert, training_log,
// training_status). The alerts panel, the rollout viewer, the checkpoint browser and the memory
// chart live in alerts.js, rollouts.js, checkpoints.js and memory_chart.js.
import { api, t, tf, toast, socket, formatDuration, formatNumber, statusText, phaseText } from "./common.js";
import { loadAlerts, receiveAlert } from "./alerts.js";
import { loadRollouts, receiveSample, setUpRollouts } from "./rollouts.js";
import { loadCheckpoints, setUpCheckpoints, updateCheckpointActions } from "./checkpoints.js";
import { setUpMemoryChart } from "./memory_chart.js";

const root = document.getElementById("monitor");
const runId = root.dataset.runId;
const PHASES = { pre_training: "SFT", sft: "SFT", grpo: "GRPO" };
const COLORS = ["#2f6fde", "#d9534f", "#1d8a4e", "#a86a00", "#7b4fd6", "#0097a7", "#c2185b", "#5d6678"];

// chart id -> series: [metric key or function(metrics) -> value, label]
const CHARTS = {
  reward: [["reward", t("mean reward")], [(m) => band(m, 1), t("+ std")], [(m) => band(m, -1), t("− std")]],
  loss: [["loss", t("training loss")], ["eval_loss", t("evaluation loss")]],
  kl: [["kl", "KL"]],
  entropy: [["entropy", t("entropy")]],
  length: [["completions/mean_length", t("mean")], ["completions/min_length", t("min")], ["completions/max_length", t("max")]],
  clip: [["clip_ratio/region_mean", t("region")], ["clip_ratio/low_mean", t("low")], ["clip_ratio/high_mean", t("high")]],
  lr: [["learning_rate", t("learning rate")]],
  grad: [["grad_norm", t("gradient norm")]],
};

const charts = {};
const labels = [];
const seen = new Set();
let state = {};
let lastMetrics = {};
let bestReward = null;

function band(m, sign) {
  return typeof m.reward === "number" && typeof m.reward_std === "number" ? m.reward + sign * m.reward_std : null;
}

function makeCharts() {
  Chart.defaults.animation = false;
  for (const [id, series] of Object.entries(CHARTS)) {
    charts[id] = new Chart(document.getElementById(`chart-${id}`), {
      type: "line",
      data: { labels, datasets: series.map(([, label], i) => dataset(label, i, id === "reward" && i > 0)) },
      options: { responsive: true, maintainAspectRatio: false, spanGaps: true, parsing: true,
        plugins: { legend: { display: series.length > 1, labels: { boxWidth: 10 } } },
        scales: { x: { ticks: { maxTicksLimit: 8 } } } },
    });
    charts[id].series = series;
  }
}

function dataset(label, i, faint) {
  return { label, data: [], borderColor: COLORS[i % COLORS.length], pointRadius: 2,
    borderWidth: faint ? 1 : 2, borderDash: faint ? [4, 3] : [], tension: 0.2 };
}

/** Reward functions appear as they are logged (rewards/<fn>/mean). */
function addRewardSeries(metrics) {
  const chart = charts.reward;
  for (const key of Object.keys(metrics)) {
    const match = /^rewards\/(.+)\/mean$/.exec(key);
    if (!match || chart.series.some(([k]) => k === key)) continue;
    chart.series.push([key, match[1]]);
    const d = dataset(match[1], chart.series.length - 1, false);
    d.data = labels.map(() => null);
    chart.data.datasets.push(d);
  }
}

function addPoint(phase, step, metrics) {
  const key = `${phase}:${step}`;
  if (seen.has(key)) return;
  seen.add(key);
  labels.push(`${PHASES[phase] || phase} ${step}`);
  addRewardSeries(metrics);
  for (const chart of Object.values(charts)) {
    chart.series.forEach(([k], i) => {
      const value = typeof k === "function" ? k(metrics) : metrics[k];
      chart.data.datasets[i].data.push(typeof value === "number" ? value : null);
    });
  }
  lastMetrics = metrics;
  if (typeof metrics.reward === "number" && (bestReward === null || metrics.reward > bestReward)) bestReward = metrics.reward;
  root.dataset.points = String(labels.length);
}

function redraw() {
  Object.values(charts).forEach((chart) => chart.update("none"));
}

function metricsOf(event) {
  const { type, time, index, step, phase, total_steps, eta_seconds, eta_generation_seconds, eta_update_seconds, ...metrics } = event;
  return metrics;
}

// ---- header -----------------------------------------------------------------------------
function showHeader() {
  const status = state.status || "";
  const statusNode = document.getElementById("stat-status");
  statusNode.textContent = statusText(status);
  statusNode.className = `status status-${status}`;
  root.dataset.status = status;
  document.getElementById("run-name").textContent = state.name || "";
  document.getElementById("stat-phase").textContent = phaseText(state.phase);
  document.getElementById("stat-step").textContent = state.total_steps ? `${state.step ?? 0} / ${state.total_steps}` : (state.step ?? "–");
  // before a phase's first step there is nothing to estimate from
  document.getElementById("stat-eta").textContent = status === "running" && state.step > 0 ? formatDuration(state.eta_seconds) : "–";
  const split = status === "running" && state.step > 0 && typeof state.eta_generation_seconds === "number";
  document.getElementById("eta-split").textContent = split
    ? tf("Left: {generation} generating completions, {update} updating the model.", { generation: formatDuration(state.eta_generation_seconds), update: formatDuration(state.eta_update_seconds) })
    : "";
  showEstimateBeside(state);
  tickClock();
  document.getElementById("stat-tokens").textContent = formatNumber(lastMetrics.num_tokens ?? state.num_tokens, 0);
  document.getElementById("stat-best").textContent = formatNumber(bestReward ?? state.best_reward);
  const queue = state.queue_position ? ` (${t("position in queue")}: ${state.queue_position})` : "";
  document.getElementById("run-error").textContent = (state.error || "") + queue;
  const live = ["running"].includes(status);
  // a second Stop while stopping ends the worker at once
  document.getElementById("stop").disabled = !["running", "queued", "paused", "interrupted", "stopping", "pausing"].includes(status);
  document.getElementById("pause").disabled = !(live || status === "queued");
  document.getElementById("resume").disabled = !["paused", "interrupted", "cancelled", "failed"].includes(status);
  updateCheckpointActions(state);
}

/** The estimate made at launch beside what the worker measured (peak memory, time). */
function showEstimateBeside(run) {
  const estimate = run.estimate;
  const node = document.getElementById("estimate-vs-measured");
  if (!estimate?.available) {
    node.textContent = "";
    return;
  }
  const gb = (bytes) => (typeof bytes === "number" ? `${(bytes / 2 ** 30).toFixed(2)} GB` : "–");
  const measured = run.measured || {};
  const peak = estimate.device === "cuda" ? measured.peak_gpu_bytes : measured.peak_ram_bytes;
  const parts = [tf("Peak memory: estimated {estimated}, measured {measured}", { estimated: gb(estimate.memory.peak), measured: gb(peak) })];
  if (estimate.time?.seconds) {
    parts.push(tf("time: estimated {estimated}, took {measured}", { estimated: formatDuration(estimate.time.seconds), measured: formatDuration(measured.seconds) }));
  }
  node.textContent = parts.join(" · ");
  node.dataset.estimated = String(estimate.memory.peak);
  node.dataset.measured = String(peak ?? "");
}

let clockStarted = null;
function tickClock() {
  // elapsed time moves on between state reads while the run is running
  const extra = state.status === "running" && clockStarted !== null ? (Date.now() - clockStarted) / 1000 : 0;
  document.getElementById("stat-elapsed").textContent = formatDuration((state.active_seconds || 0) + extra);
}

async function refreshState() {
  state = await api("GET", `/api/training/${encodeURIComponent(runId)}`);
  clockStarted = Date.now();
  showHeader();
}

// ---- log -----------------------------------------------------------------------------------
function addLogLine(line) {
  const pre = document.getElementById("log-tail");
  const nearBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
  pre.append(document.createTextNode(`${line}\n`));
  while (pre.childNodes.length > 400) pre.firstChild.remove();
  if (nearBottom) pre.scrollTop = pre.scrollHeight;
}

// ---- controls -----------------------------------------------------------------------------
function setUpControls() {
  for (const action of ["stop", "pause", "resume"]) {
    document.getElementById(action).addEventListener("click", async (event) => {
      event.currentTarget.disabled = true;
      try {
        const result = await api("POST", `/api/training/${action}`, { session_id: runId });
        toast(statusText(result.status));
        if (["stopping", "pausing"].includes(result.status)) {
          state.status = result.status;  // until the worker reports how it ended
          showHeader();
          return;
        }
      } catch (err) {
        toast(err.message, "error");
      }
      await refreshState();
    });
  }
}

// ---- start ----------------------------------------------------------------------------------
async function loadMetrics() {
  const history = await api("GET", `/api/training/${encodeURIComponent(runId)}/metrics?since=0`);
  history.events.forEach((e) => addPoint(e.phase, e.step, metricsOf(e)));
  redraw();
}

/** After a resume the run logs again the steps after its checkpoint: redraw from the history,
 * which keeps each step once (the newest). */
async function reloadMetrics() {
  labels.length = 0;
  seen.clear();
  bestReward = null;
  Object.values(charts).forEach((chart) => chart.data.datasets.forEach((d) => { d.data.length = 0; }));
  await loadMetrics();
}

async function loadLog() {
  const { lines } = await api("GET", `/api/training/${encodeURIComponent(runId)}/logs?tail=200`);
  lines.forEach(addLogLine);
}

/** Each part of the history on its own: one that cannot be read leaves the others shown. */
async function loadHistory() {
  for (const load of [loadMetrics, () => loadAlerts(runId), loadRollouts, loadCheckpoints, loadLog]) {
    await load().catch((err) => toast(err.message, "error"));
  }
}

// live updates that arrive while the history loads wait here, so points stay in order
let pending = [];

function applyUpdate(u) {
  addPoint(u.phase, u.step, u.metrics);
  redraw();
  // a step is logged only while training runs, whatever status was read before
  Object.assign(state, { step: u.step, total_steps: u.total_steps, phase: u.phase, eta_seconds: u.eta_seconds,
    eta_generation_seconds: u.eta_generation_seconds, eta_update_seconds: u.eta_update_seconds });
  if (!["stopping", "pausing"].includes(state.status)) state.status = "running";
  showHeader();
}

/** Join the run's room; resolves once the server has acknowledged it (from then on nothing the
 * run publishes is missed, so state and history read afterwards are complete). */
function follow() {
  const io = socket();
  let joined;
  const ready = new Promise((resolve) => { joined = resolve; });
  const join = () => io.emit("join_session", { session_id: runId }, (ack) => {
    if (ack?.ok) joined();
    else toast(ack?.error || t("The server cannot be reached."), "error");
  });
  io.on("connect", join);  // also after a reconnection
  if (io.connected) join();
  io.on("training_update", (u) => {
    if (u.session_id !== runId) return;
    if (pending) pending.push(u); else applyUpdate(u);
  });
  io.on("training_sample", (s) => s.session_id === runId && receiveSample(s));
  io.on("training_alert", (a) => a.session_id === runId && receiveAlert(a));
  io.on("training_log", (l) => l.session_id === runId && addLogLine(l.line));
  io.on("training_status", (s) => {
    if (s.session_id !== runId) return;
    refreshState();
  });
  io.on("training_event", (e) => {
    if (e.session_id !== runId) return;
    if (e.type === "resume") {
      refreshState();
      reloadMetrics().catch((err) => toast(err.message, "error"));
    }
    if (e.type === "checkpoint") loadCheckpoints().catch((err) => toast(err.message, "error"));
  });
  return ready;
}

async function main() {
  makeCharts();
  setUpMemoryChart(document.getElementById("chart-memory"));
  setUpControls();
  setUpRollouts(runId);
  setUpCheckpoints(runId, { resumed: () => refreshState().catch((err) => toast(err.message, "error")) });
  try {
    await follow();
    await refreshState();
    await loadHistory();
    const waiting = pending;
    pending = null;
    waiting.forEach(applyUpdate);
  } catch (err) {
    toast(err.message, "error");
  }
  setInterval(tickClock, 1000);
  document.body.dataset.ready = "true";
}

main();
