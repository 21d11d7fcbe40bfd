// The monitor's reward-alerts panel: the run's alerts (GET /alerts, oldest first) shown newest
// first, then live `training_alert` events. Alerts that arrive while the history loads wait, and
// each (kind, reward, step) is shown once, so a reconnection or a reload never doubles one.
// Messages are translated from their template (`template` + `params`, see core/training/alerts.py).
import { api, t, el } from "./common.js";

// how serious each kind is; an alert may also name its own `level`
const LEVELS = {
  reward_missing: "error", no_signal: "warning", reward_at_min: "warning", kl_high: "warning",
  length_limit: "warning", reward_at_max: "info",
};
const LEVEL_TEXT = { error: t("Problem"), warning: t("Warning"), info: t("Note") };

const shown = new Set();
let pending = [];

function alertKey(alert) {
  return `${alert.kind}|${alert.reward ?? ""}|${alert.step ?? ""}`;
}

function levelOf(alert) {
  return LEVEL_TEXT[alert.level] ? alert.level : LEVELS[alert.kind] || "warning";
}

/** The message in the page's language: its translated template with the alert's values. */
function alertMessage(alert) {
  if (!alert.template) return alert.message ? t(alert.message) : "";
  return t(alert.template).replace(/\{(\w+)\}/g, (whole, name) => alert.params?.[name] ?? whole);
}

function alertItem(alert) {
  const level = levelOf(alert);
  const item = el("li", undefined, { class: `alert alert-${level}`, "data-kind": alert.kind || "",
    "data-step": alert.step ?? "", "data-reward": alert.reward ?? "" });
  const head = el("div", undefined, { class: "alert-head" });
  head.append(el("strong", LEVEL_TEXT[level], { class: "alert-level" }),
    el("span", `${t("Step")} ${alert.step ?? "–"}`, { class: "alert-step" }));
  if (alert.reward) head.append(el("code", alert.reward, { class: "alert-reward" }));
  item.append(head, el("p", alertMessage(alert), { class: "alert-message" }));
  if (alert.advice) {
    const advice = el("p", undefined, { class: "alert-advice" });
    advice.append(el("strong", `${t("What to do")}: `), document.createTextNode(t(alert.advice)));
    item.append(advice);
  }
  return item;
}

function showAlert(alert) {
  const key = alertKey(alert);
  if (shown.has(key)) return;
  shown.add(key);
  document.getElementById("alerts-list").prepend(alertItem(alert));
  document.getElementById("alerts").dataset.count = String(shown.size);
  document.getElementById("alerts-empty").hidden = true;
}

/** A live alert: shown now, or once the history is in. */
export function receiveAlert(alert) {
  if (pending) pending.push(alert); else showAlert(alert);
}

/** The run's alerts so far, then those that arrived meanwhile (call after joining the room). */
export async function loadAlerts(runId) {
  try {
    const { alerts } = await api("GET", `/api/training/${encodeURIComponent(runId)}/alerts`);
    (alerts || []).forEach(showAlert);
  } finally {
    const waiting = pending;
    pending = null;
    waiting.forEach(showAlert);
  }
}
