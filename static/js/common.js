// Shared by every page: translations, API calls that show their errors, the Socket.IO connection,
// formatting, and the system bar. Page scripts import what they need from here.

const catalog = JSON.parse(document.getElementById("i18n")?.textContent || "{}");

/** The translation of an English text (the server handed the page its catalog). */
export function t(text) {
  return catalog[text] || text;
}

/** A translated sentence with `{name}` placeholders filled from `values` (one text to translate,
 * not fragments joined in English word order). */
export function tf(text, values) {
  return t(text).replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || `HTTP ${status}`);
    this.status = status;
    this.field = body?.field;
    this.line = body?.line;  // a line of user-written code (custom rewards)
    this.body = body || {};
    this.problems = body?.problems || [];
  }
}

/** fetch JSON; throws ApiError carrying the server's message and field. */
export async function api(method, url, body) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body instanceof FormData) {
    options.body = body;
  } else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new ApiError(0, { error: t("The server cannot be reached.") });
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** The element showing errors for a dotted field (`data-error-for`), or for its nearest parent:
 * "rewards.0.params.mode" falls back to "rewards.0", then "rewards". */
export function errorSlotFor(field, root = document) {
  for (let path = field || ""; path; path = path.includes(".") ? path.slice(0, path.lastIndexOf(".")) : "") {
    const slot = root.querySelector(`[data-error-for="${CSS.escape(path)}"]`);
    if (slot) return slot;
  }
  return null;
}

/** A short message at the bottom right that goes away by itself. */
export function toast(message, kind = "info") {
  const box = document.getElementById("toast");
  if (!box) return;
  const item = document.createElement("div");
  item.className = kind;
  item.textContent = message;
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 9000 : 4000);
}

let socketInstance = null;
/** The page's one Socket.IO connection (same origin). */
export function socket() {
  if (!socketInstance && window.io) socketInstance = window.io();
  return socketInstance;
}

/** An element with text content (never HTML: data from runs and datasets is shown as text). */
export function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  seconds = Math.max(0, Math.round(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m) return `${m} min ${String(s).padStart(2, "0")} s`;
  return `${s} s`;
}

export function formatNumber(value, digits = 3) {
  if (value === null || value === undefined || value === "") return "–";
  if (typeof value !== "number") return String(value);
  if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e6)) return value.toExponential(2);
  return Number(value.toFixed(digits)).toLocaleString(document.documentElement.lang);
}

function formatBytes(bytes) {
  return typeof bytes === "number" ? `${(bytes / 2 ** 30).toFixed(1)} GB` : "–";
}

function gpuSummary(g) {
  const parts = [`GPU ${g.index} ${formatBytes(g.memory_used)} / ${formatBytes(g.memory_total)}`];
  if (typeof g.utilization === "number") parts.push(`${g.utilization} %`);
  if (typeof g.temperature === "number") parts.push(`${g.temperature} °C`);
  return parts.join(" ");
}

function gpuDetails(g) {
  const power = typeof g.power === "number"
    ? ` · ${Math.round(g.power)} W${typeof g.power_limit === "number" ? ` / ${Math.round(g.power_limit)} W` : ""}` : "";
  const fan = typeof g.fan === "number" ? ` · ${t("fan")} ${g.fan} %` : "";
  return `GPU ${g.index}: ${g.name}${power}${fan}`;
}

/** "CPU only" or each GPU's memory, load and temperature, plus CPU and RAM, in the top bar (the
 * GPUs' names, power and fans in its tooltip). Each status shown is also dispatched on `window`
 * as a `system-status` event, for pages that chart it. */
export function showSystem(status) {
  const bar = document.getElementById("system-bar");
  if (!bar || !status) return;
  const gpus = status.gpus || [];
  const shown = gpus.length ? gpus.map(gpuSummary).join(" · ") : t("CPU only");
  bar.textContent = `${shown} · CPU ${Math.round(status.cpu_percent)} % · RAM ${formatBytes(status.ram_used)} / ${formatBytes(status.ram_total)}`;
  bar.title = gpus.length ? gpus.map(gpuDetails).join("\n") : t("No NVIDIA GPU found: training runs on the CPU.");
  bar.dataset.gpus = String(gpus.length);
  window.dispatchEvent(new CustomEvent("system-status", { detail: status }));
}

function startSystemBar() {
  if (!document.getElementById("system-bar")) return;
  api("GET", "/api/system/status").then(showSystem).catch(() => {});
  socket()?.on("system_update", showSystem);
}

startSystemBar();

// The wizard's draft config lives in localStorage, so it survives steps and reloads; other pages
// (configs, a run's config) put a config there before opening the wizard.
export const DRAFT_KEY = "grpo-studio.draft";

export function storeDraft(config) {
  localStorage.setItem(DRAFT_KEY, JSON.stringify(config));
}

const STATUS_TEXT = {
  queued: t("queued"), running: t("running"), paused: t("paused"), pausing: t("pausing"),
  stopping: t("stopping"), completed: t("completed"), failed: t("failed"),
  cancelled: t("cancelled"), interrupted: t("interrupted"),
};
const PHASE_TEXT = { pre_training: t("SFT pre-training"), sft: "SFT", grpo: "GRPO" };

export function statusText(status) {
  return STATUS_TEXT[status] || status || "–";
}

export function phaseText(phase) {
  return PHASE_TEXT[phase] || phase || "–";
}
