// The monitor's rollout viewer: every logged prompt group (GET /samples, newest first) a page at a
// time, searchable (q) and filtered to one step; each group shows its prompt, reference and all
// generations with each reward's score and the total. Live `training_sample` groups are added
// while the first page is shown without a filter. Everything from the run is shown as text.
import { api, t, el, toast, formatNumber } from "./common.js";

const PAGE_SIZE = 10;
const SEARCH_DELAY_MS = 300;
const LONG_TEXT_CHARS = 500;
const LONG_TEXT_LINES = 8;
const PHASES = { pre_training: "SFT", sft: "SFT", grpo: "GRPO" };

const view = { runId: "", offset: 0, q: "", step: "", total: 0, steps: new Set(), request: 0 };
const shownKeys = new Set();
let pending = [];
let emptyText = "";

const byId = (id) => document.getElementById(id);

function sampleKey(sample) {
  return `${sample.time}|${sample.phase}|${sample.step}|${sample.prompt}`;
}

function filtered() {
  return view.q !== "" || view.step !== "";
}

// ---- one group --------------------------------------------------------------------------------
function isLong(text) {
  return text.length > LONG_TEXT_CHARS || text.split("\n").length > LONG_TEXT_LINES;
}

function toggleText(node, button) {
  const collapsed = node.classList.toggle("collapsed");
  button.textContent = collapsed ? t("Show all") : t("Show less");
  button.setAttribute("aria-expanded", String(!collapsed));
}

/** A text, folded to a few lines with a button to unfold it when it is long. */
function textBlock(text, className = "") {
  const value = text === null || text === undefined ? "–" : String(text);
  const node = el("div", value, { class: `rollout-text ${className}`.trim() });
  if (!isLong(value)) return node;
  node.classList.add("collapsed");
  const button = el("button", t("Show all"), { type: "button", class: "link", "aria-expanded": "false" });
  button.addEventListener("click", () => toggleText(node, button));
  const wrap = el("div", undefined, { class: "rollout-text-wrap" });
  wrap.append(node, button);
  return wrap;
}

/** Indexes of the generations with the highest total; none when all scored the same. */
function bestIndexes(totals) {
  const numbers = (totals || []).filter((v) => typeof v === "number");
  if (!numbers.length) return new Set();
  const best = Math.max(...numbers);
  if (numbers.every((v) => v === best) && numbers.length === totals.length) return new Set();
  return new Set(totals.flatMap((v, i) => (v === best ? [i] : [])));
}

function generationRow(sample, names, i, best) {
  const row = el("tr", undefined, best ? { class: "best" } : {});
  const completion = el("td");
  completion.append(textBlock(sample.completions[i], "completion"));
  row.append(el("td", i + 1), completion);
  for (const name of names) row.append(el("td", formatNumber(sample.scores[name]?.[i]), { class: "num" }));
  row.append(el("td", formatNumber(sample.total?.[i]), { class: "num total" }));
  if (best) row.cells[0].append(el("span", t("best"), { class: "badge good" }));
  return row;
}

function generationsTable(sample) {
  const names = Object.keys(sample.scores || {});
  const head = el("tr");
  head.append(el("th", "#"), el("th", t("Completion")), ...names.map((n) => el("th", n, { class: "num" })),
    el("th", t("Total"), { class: "num" }));
  const best = bestIndexes(sample.total);
  const body = el("tbody");
  (sample.completions || []).forEach((_, i) => body.append(generationRow(sample, names, i, best.has(i))));
  const table = el("table", undefined, { class: "generations" });
  table.append(el("thead"), body);
  table.tHead.append(head);
  const wrap = el("div", undefined, { class: "table-wrap" });
  wrap.append(table);
  return wrap;
}

function labelled(label, node) {
  const row = el("div", undefined, { class: "rollout-field" });
  row.append(el("span", label, { class: "rollout-label" }), node);
  return row;
}

function groupNode(sample) {
  const node = el("article", undefined, { class: "rollout", "data-step": sample.step ?? "" });
  const count = (sample.completions || []).length;
  node.append(el("h3", `${PHASES[sample.phase] || sample.phase || ""} ${t("Step")} ${sample.step ?? "–"} · ${count} ${t("generations")}`),
    labelled(t("Prompt"), textBlock(sample.prompt, "prompt")),
    labelled(t("Reference"), textBlock(sample.reference, "reference")),
    generationsTable(sample));
  node.sampleKey = sampleKey(sample);
  return node;
}

// ---- the page ---------------------------------------------------------------------------------
function showPager() {
  const root = byId("rollouts");
  const count = byId("rollout-groups").children.length;
  Object.assign(root.dataset, { total: String(view.total), offset: String(view.offset), shown: String(count) });
  byId("rollout-range").textContent = count ? `${view.offset + 1}–${view.offset + count} / ${view.total}` : "";
  byId("rollout-newer").disabled = view.offset === 0;
  byId("rollout-older").disabled = view.offset + count >= view.total;
  const empty = byId("rollouts-empty");
  empty.hidden = count > 0;
  empty.textContent = filtered() ? t("No sample matches this search and step.") : emptyText;
}

function showGroups(samples) {
  shownKeys.clear();
  const nodes = samples.map(groupNode);
  nodes.forEach((node) => shownKeys.add(node.sampleKey));
  byId("rollout-groups").replaceChildren(...nodes);
  showPager();
}

function showStepOptions() {
  const select = byId("rollout-step");
  const options = [...view.steps].sort((a, b) => a - b)
    .map((step) => el("option", `${t("Step")} ${step}`, { value: String(step) }));
  select.replaceChildren(select.options[0], ...options);
  select.value = view.step;
}

function addSteps(steps) {
  const before = view.steps.size;
  steps.filter((s) => s !== null && s !== undefined).forEach((s) => view.steps.add(Number(s)));
  if (view.steps.size !== before) showStepOptions();
}

function samplesUrl() {
  const query = new URLSearchParams({ limit: PAGE_SIZE, offset: view.offset });
  if (view.q) query.set("q", view.q);
  if (view.step !== "") query.set("step", view.step);
  return `/api/training/${encodeURIComponent(view.runId)}/samples?${query}`;
}

/** The current page; an answer overtaken by a newer search or page is dropped. */
async function loadPage() {
  const request = ++view.request;
  byId("rollouts").setAttribute("aria-busy", "true");
  try {
    const page = await api("GET", samplesUrl());
    if (request !== view.request) return;
    view.total = page.total ?? page.samples.length;
    addSteps(page.steps || page.samples.map((s) => s.step));
    showGroups(page.samples);
  } finally {
    if (request === view.request) byId("rollouts").removeAttribute("aria-busy");
  }
}

function reload() {
  loadPage().catch((err) => toast(err.message, "error"));
}

// ---- live samples -----------------------------------------------------------------------------
function showLiveSample(sample) {
  addSteps([sample.step]);
  const key = sampleKey(sample);
  // another page or a filter keeps what it shows; its step list still grows
  if (filtered() || view.offset !== 0 || shownKeys.has(key)) return;
  const box = byId("rollout-groups");
  box.prepend(groupNode(sample));
  shownKeys.add(key);
  view.total += 1;
  trimPage(box);
  showPager();
}

function trimPage(box) {
  while (box.children.length > PAGE_SIZE) {
    shownKeys.delete(box.lastElementChild.sampleKey);
    box.lastElementChild.remove();
  }
}

/** A live sample group: shown now, or once the first page is in. */
export function receiveSample(sample) {
  if (pending) pending.push(sample); else showLiveSample(sample);
}

/** The first page, then the groups that arrived meanwhile (call after joining the room). */
export async function loadRollouts() {
  try {
    await loadPage();
  } finally {
    const waiting = pending;
    pending = null;
    waiting.forEach(showLiveSample);
  }
}

// ---- controls ---------------------------------------------------------------------------------
function goTo(offset) {
  view.offset = Math.max(0, offset);
  reload();
}

function onSearch(input) {
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (input.value.trim() === view.q) return;
      view.q = input.value.trim();
      goTo(0);
    }, SEARCH_DELAY_MS);
  });
}

export function setUpRollouts(runId) {
  view.runId = runId;
  emptyText = byId("rollouts-empty").textContent;
  onSearch(byId("rollout-search"));
  byId("rollout-step").addEventListener("change", (event) => {
    view.step = event.target.value;
    goTo(0);
  });
  byId("rollout-newer").addEventListener("click", () => goTo(view.offset - PAGE_SIZE));
  byId("rollout-older").addEventListener("click", () => goTo(view.offset + PAGE_SIZE));
  showPager();
}
