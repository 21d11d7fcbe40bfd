// Shared by the model testing page and the reward testing page: the model picker (everything
// GET /api/test/models offers, grouped, plus "another model" by path or hub id), generation through
// POST /api/models/test with its tokens streamed over Socket.IO (`generation_token`, matched by
// stream id), cancellation, and following a background test job (`test_progress` plus polling).
// Nothing here writes HTML: every value from the server is inserted as text.
import { api, t, el, socket, formatNumber } from "./common.js";

export const PATH_OPTION = "__path__";
const GROUPS = [
  ["run", t("Fine-tuned runs")], ["checkpoint", t("Checkpoints")],
  ["base", t("Base models")], ["export", t("Exports")],
];

export async function loadModels() {
  return (await api("GET", "/api/test/models")).models || [];
}

/** The `?run=` (and `&checkpoint=`), or `?model=` (a cached model), a page was opened with. */
export function requestedRun() {
  const query = new URLSearchParams(window.location.search);
  return { run: query.get("run") || "", checkpoint: query.get("checkpoint") || "",
           model: query.get("model") || "" };
}

/** A <select> of models plus a text box for a path or hub id, shown when "another model" is picked. */
export class ModelPicker {
  constructor(select, pathInput, models, options = {}) {
    Object.assign(this, { select, pathInput, models: [], options, listeners: [] });
    select.addEventListener("change", () => this.changed());
    this.fill(models);
  }

  fill(models) {
    const groups = this.options.groups;
    this.models = models.filter((m) => !groups || groups.includes(m.group));
    this.select.replaceChildren();
    for (const [group, label] of GROUPS) {
      const items = this.models.filter((m) => m.group === group);
      if (!items.length) continue;
      const box = el("optgroup", null, { label });
      box.append(...items.map((m) => el("option", m.label, { value: m.id, "data-group": m.group })));
      this.select.append(box);
    }
    if (this.pathInput) this.select.append(el("option", t("Another model: a path or hub id…"), { value: PATH_OPTION }));
    this.changed();
  }

  get model() {
    return this.models.find((m) => m.id === this.select.value) || null;
  }

  /** The selector fields a request sends: session_id (+ checkpoint / base), export_id or model_path. */
  selector() {
    if (this.select.value === PATH_OPTION || !this.model) return { model_path: this.pathInput?.value.trim() ?? "" };
    return { ...this.model.select };
  }

  label() {
    if (this.select.value === PATH_OPTION || !this.model) return this.pathInput?.value.trim() || t("model");
    return this.model.label;
  }

  /** Picks the first model `predicate` accepts; false when there is none. */
  choose(predicate) {
    const found = this.models.find(predicate);
    if (!found) return false;
    this.select.value = found.id;
    this.changed();
    return true;
  }

  choosePath(path) {
    this.select.value = PATH_OPTION;
    if (this.pathInput) this.pathInput.value = path;
    this.changed();
  }

  onChange(listener) {
    this.listeners.push(listener);
  }

  changed() {
    if (this.pathInput) {
      const other = this.select.value === PATH_OPTION;
      this.pathInput.hidden = !other;
      this.pathInput.closest("[data-path-wrap]")?.toggleAttribute("hidden", !other);
    }
    this.listeners.forEach((listener) => listener(this));
  }
}

/** Model predicates for `?run=` and for the base-vs-fine-tuned defaults. */
export const isResultOf = (run, checkpoint = "") => (m) => m.select?.session_id === run && !m.select.base
  && sameCheckpoint(m.select.checkpoint || "", checkpoint);
// "checkpoint-4" names "checkpoints/checkpoint-4" too; two paths must be equal (the pre-training
// phase and GRPO may both have a "checkpoint-4")
const sameCheckpoint = (a, b) => a === b || (Boolean(a) && Boolean(b) && !(a.includes("/") && b.includes("/"))
  && a.split("/").pop() === b.split("/").pop());
export const isBaseOf = (run) => (m) => m.select?.session_id === run && Boolean(m.select.base);

// ---- streamed generation ----------------------------------------------------------------------
const streams = new Map();
let listening = false;

function listen() {
  if (listening) return;
  const io = socket();
  if (!io) return;
  io.on("generation_token", (message) => streams.get(message?.stream_id)?.(String(message.token ?? "")));
  listening = true;
}

/** The page's Socket.IO id once connected (undefined if it does not connect soon: no tokens are
 * streamed then, the answer arrives whole). */
export function socketId(timeoutMs = 3000) {
  const io = socket();
  if (!io) return Promise.resolve(undefined);
  if (io.connected) return Promise.resolve(io.id);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    io.once("connect", () => {
      clearTimeout(timer);
      resolve(io.id);
    });
  });
}

function newStreamId() {
  return `s-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/**
 * Starts POST /api/models/test with `request` (selector, prompt or messages, settings); each
 * streamed piece of text goes to `onToken`. Returns `{streamId, done, cancel()}`: `done` resolves
 * with the server's answer (finish_reason "cancelled" after cancel()) or rejects with its error.
 * Pieces arriving after the answer are dropped: the answer's `text` is the whole text.
 */
export function startGeneration(request, onToken) {
  const streamId = newStreamId();
  let cancelRequested = false, resent = false;
  const cancelOnServer = () => api("POST", "/api/models/test/cancel", { stream_id: streamId }).catch(() => {});
  listen();
  streams.set(streamId, (token) => {
    // a cancel sent before the server knew the stream is sent again once it streams
    if (cancelRequested && !resent) {
      resent = true;
      cancelOnServer();
    }
    onToken?.(token);
  });
  const done = (async () => {
    try {
      const body = { ...request, stream_id: streamId };
      const sid = await socketId();
      if (sid) body.socket_id = sid;
      return await api("POST", "/api/models/test", body);
    } finally {
      streams.delete(streamId);
    }
  })();
  return {
    streamId,
    done,
    cancel() {
      cancelRequested = true;
      return cancelOnServer();
    },
  };
}

// ---- figures of an answer ---------------------------------------------------------------------
const FINISH_TEXT = { stop: t("finished"), length: t("token limit reached"), cancelled: t("stopped") };

/** "12 tokens · 0.4 s · 30 tokens/s · …" as spans with data-stat, for an answer of the server. */
export function answerStats(result) {
  const parts = [
    ["tokens", `${formatNumber(result.tokens, 0)} ${t("tokens")}`],
    ["seconds", `${formatNumber(result.seconds, 2)} s`],
    ["tokens_per_second", `${formatNumber(result.tokens_per_second, 1)} ${t("tokens/s")}`],
    ["first_token_seconds", `${t("first token")} ${formatNumber(result.first_token_seconds, 2)} s`],
    ["finish_reason", FINISH_TEXT[result.finish_reason] || String(result.finish_reason ?? "")],
  ];
  if (result.load_seconds) parts.push(["load_seconds", `${t("model loaded in")} ${formatNumber(result.load_seconds, 1)} s`]);
  const box = el("div", null, { class: "answer-stats" });
  box.append(...parts.map(([key, text]) => el("span", text, { "data-stat": key, "data-value": result[key] ?? "" })));
  return box;
}

// ---- background jobs (batch tests, held-out evaluations) --------------------------------------
const FINISHED = ["done", "failed", "cancelled"];

/**
 * Follows a job until it ends: `onProgress(job)` on every `test_progress` event and every poll of
 * GET /api/test/jobs/<id> (the fallback when an event is missed); resolves with the final job.
 */
export function followJob(jobId, onProgress, pollMs = 2000) {
  return new Promise((resolve, reject) => {
    const io = socket();
    let finished = false, timer = null;
    const finish = (job) => {
      finished = true;
      clearTimeout(timer);
      io?.off("test_progress", onEvent);
      resolve(job);
    };
    const poll = async () => {
      if (finished) return;
      try {
        const job = await api("GET", `/api/test/jobs/${encodeURIComponent(jobId)}`);
        if (finished) return;
        onProgress(job);
        if (FINISHED.includes(job.status)) return finish(job);
      } catch (err) {
        if (err.status === 404) {
          finished = true;
          io?.off("test_progress", onEvent);
          return reject(err);
        }
      }
      timer = setTimeout(poll, pollMs);
    };
    const onEvent = (event) => {
      if (finished || event?.job_id !== jobId) return;
      onProgress(event);
      if (FINISHED.includes(event.status)) {
        clearTimeout(timer);
        poll();  // the final state carries the result
      }
    };
    io?.on("test_progress", onEvent);
    timer = setTimeout(poll, pollMs);
  });
}
