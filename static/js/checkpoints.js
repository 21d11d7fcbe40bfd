// The monitor page's checkpoint browser: the run's complete checkpoints (GET
// /api/training/<id>/checkpoints) with their step and metrics, the best by mean reward marked;
// each one opens in the testing page or the export page, can be resumed from (POST
// /api/training/resume with its name: the later checkpoints of its phase are deleted) or deleted
// (DELETE /api/training/<id>/checkpoints/<name>). Names are shown as text.
import { api, t, el, toast, formatNumber, phaseText } from "./common.js";

const RESUMABLE = ["paused", "interrupted", "cancelled", "failed"];
const BUSY = ["running", "queued", "stopping", "pausing"];

const root = document.getElementById("checkpoints");
let runId = "";
let checkpoints = [];
let runState = {};
let onResumed = () => {};

/** `resumed` is called after a resume from a checkpoint was accepted. */
export function setUpCheckpoints(id, { resumed } = {}) {
  runId = id;
  onResumed = resumed || onResumed;
}

export async function loadCheckpoints() {
  ({ checkpoints } = await api("GET", `/api/training/${encodeURIComponent(runId)}/checkpoints`));
  render();
}

/** The run's state changed: resume and delete follow its status and phase. */
export function updateCheckpointActions(state) {
  runState = state;
  root.querySelectorAll("tr[data-checkpoint]").forEach((row) => enableActions(row, checkpointOf(row)));
}

function checkpointOf(row) {
  return checkpoints.find((c) => c.name === row.dataset.checkpoint && c.phase === row.dataset.phase);
}

/** `run` and `checkpoint` for the testing and export pages; `useName` for the export page, which
 * knows checkpoints by name (the testing page takes the path, which tells phases apart). */
function query(checkpoint, useName = false) {
  const which = useName ? checkpoint.name : checkpoint.path || checkpoint.name;
  return `run=${encodeURIComponent(runId)}&checkpoint=${encodeURIComponent(which)}`;
}

function render() {
  const rows = [...checkpoints].reverse().map(row);  // newest first
  root.querySelector("tbody").replaceChildren(...rows);
  root.querySelector("table").hidden = rows.length === 0;
  document.getElementById("checkpoints-empty").hidden = rows.length > 0;
  root.dataset.count = String(rows.length);
}

function row(checkpoint) {
  const tr = el("tr", null, { "data-checkpoint": checkpoint.name, "data-phase": checkpoint.phase });
  const name = el("td", checkpoint.name);
  if (checkpoint.best) {
    tr.classList.add("best");
    tr.dataset.best = "true";
    name.append(" ", el("span", t("best reward"), { class: "badge good" }));
  }
  const metrics = checkpoint.metrics || {};
  const actions = el("td", null, { class: "checkpoint-actions" });
  actions.append(
    el("a", t("Test"), { href: `/test?${query(checkpoint)}`, class: "button secondary small", "data-action": "test" }),
    el("a", t("Export"), { href: `/export?${query(checkpoint, true)}`, class: "button secondary small", "data-action": "export" }),
    button(t("Resume from here"), "resume", "secondary small", () => resumeFrom(checkpoint)),
    button(t("Delete"), "delete", "small danger", () => remove(checkpoint)));
  tr.append(name, el("td", phaseText(checkpoint.phase)), el("td", checkpoint.step, { class: "num" }),
    el("td", formatNumber(metrics.reward), { class: "num" }), el("td", formatNumber(metrics.loss), { class: "num" }), actions);
  enableActions(tr, checkpoint);
  return tr;
}

function button(text, action, classes, onClick) {
  const node = el("button", text, { type: "button", class: classes, "data-action": action });
  node.addEventListener("click", onClick);
  return node;
}

function enableActions(tr, checkpoint) {
  const status = runState.status || "";
  const resume = tr.querySelector('[data-action="resume"]');
  const remove = tr.querySelector('[data-action="delete"]');
  const samePhase = checkpoint?.phase === runState.phase;
  resume.disabled = !RESUMABLE.includes(status) || !samePhase;
  resume.title = !RESUMABLE.includes(status) ? t("Only a paused, interrupted, cancelled or failed run can be resumed.")
    : samePhase ? "" : t("This checkpoint's phase has finished; resume from one of the current phase.");
  remove.disabled = BUSY.includes(status);
  remove.title = remove.disabled ? t("Pause or stop the run before deleting a checkpoint.") : "";
}

/** The checkpoints a resume from `checkpoint` deletes: the later ones of its phase. */
function laterThan(checkpoint) {
  return checkpoints.filter((c) => c.phase === checkpoint.phase && c.step > checkpoint.step);
}

async function resumeFrom(checkpoint) {
  const later = laterThan(checkpoint).map((c) => c.name);
  const question = `${t("Resume the run from this checkpoint?")} ${checkpoint.name}` +
    (later.length ? `\n${t("These later checkpoints of the same phase will be deleted:")} ${later.join(", ")}` : "");
  if (!window.confirm(question)) return;
  try {
    await api("POST", "/api/training/resume", { session_id: runId, checkpoint: checkpoint.name, phase: checkpoint.phase });
    toast(`${t("Resuming from")} ${checkpoint.name}`);
    onResumed();
  } catch (err) {
    toast(err.message, "error");
  }
  await loadCheckpoints().catch((err) => toast(err.message, "error"));
}

async function remove(checkpoint) {
  if (!window.confirm(`${t("Delete this checkpoint? This cannot be undone.")} ${checkpoint.name}`)) return;
  try {
    const phase = encodeURIComponent(checkpoint.phase);
    await api("DELETE", `/api/training/${encodeURIComponent(runId)}/checkpoints/${encodeURIComponent(checkpoint.name)}?phase=${phase}`);
    toast(`${t("Deleted")}: ${checkpoint.name}`);
  } catch (err) {
    toast(err.message, "error");
  }
  await loadCheckpoints().catch((err) => toast(err.message, "error"));
}
