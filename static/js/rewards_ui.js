// Reward-picking widgets shared by the wizard's rewards step and the reward testing page: the
// registry's catalog by category, one card per reward (checkbox, weight, parameters, the dataset
// fields it needs), and the saved custom rewards. Each widget edits a list of chosen rewards
// `[{name, weight, params, source?}]` in place and calls `changed()` after every edit.
import { api, t, el } from "./common.js";

const CATEGORY_NAMES = {
  math: t("Math & science"), programming: t("Programming"), reasoning: t("Reasoning"),
  format: t("Format"), qa: t("Question answering"), writing: t("Writing"),
};

/**
 * Draws the catalog (from /api/rewards/list) into `box`, one card per reward, grouped by category.
 * options: `mapped` ({field: bool}, whether the data provides each needed field; unknown = yes),
 * `changed()` after every edit, `rendered()` after every (re)draw, `heading` ("h2").
 */
export function renderRewardCatalog(box, catalog, chosen, options = {}) {
  const redraw = () => renderRewardCatalog(box, catalog, chosen, options);
  box.replaceChildren();
  for (const category of [...new Set(catalog.map((r) => r.category))]) {
    box.append(el(options.heading || "h2", CATEGORY_NAMES[category] || t(category)));
    const list = el("div", null, { class: "cards" });
    for (const spec of catalog.filter((r) => r.category === category)) {
      list.append(rewardCard(spec, chosen, options, redraw));
    }
    box.append(list);
  }
  options.rendered?.();
}

function rewardCard(spec, chosen, options, redraw) {
  const index = chosen.findIndex((r) => r.name === spec.id);
  const entry = index >= 0 ? chosen[index] : null;
  const card = el("div", null, { class: `card${entry ? " selected" : ""}`, "data-reward": spec.id });
  const toggle = (on) => {
    if (on) chosen.push({ name: spec.id, weight: 1.0, params: {} });
    else chosen.splice(chosen.findIndex((r) => r.name === spec.id), 1);
    options.changed?.();
    redraw();
  };
  card.append(checkboxLabel(t(spec.name), Boolean(entry), toggle), el("small", t(spec.description)));
  card.append(...needBadges(spec, options.mapped || {}));
  if (entry) {
    card.append(weightInput(entry, options.changed));
    for (const param of spec.parameters) card.append(paramInput(param, entry, options.changed));
    card.append(errorSlot(`rewards.${index}`));
  }
  return card;
}

function checkboxLabel(text, checked, toggle) {
  const label = el("label");
  const box = el("input", null, { type: "checkbox" });
  box.checked = checked;
  box.addEventListener("change", () => toggle(box.checked));
  label.append(box, el("strong", ` ${text}`));
  return label;
}

function needBadges(spec, mapped) {
  return spec.needs.map((need) => {
    const ok = mapped[need] ?? true;
    return el("span", `${t("needs")} ${need}: ${ok ? t("mapped") : t("not mapped")}`,
      { class: `badge ${ok ? "good" : "bad"}` });
  });
}

function errorSlot(field) {
  return el("p", "", { class: "error", "data-error-for": field, role: "alert" });
}

/** A number typed by hand: a number, or the raw text so the server can name the problem. */
function typedNumber(raw) {
  return raw.trim() === "" || Number.isNaN(Number(raw)) ? raw : Number(raw);
}

function weightInput(entry, changed) {
  const wrap = el("div", null, { class: "field" });
  const input = el("input", null, { type: "number", step: "any", "data-weight": entry.name });
  input.value = entry.weight;
  input.addEventListener("input", () => {
    entry.weight = typedNumber(input.value);
    changed?.();
  });
  wrap.append(el("label", t("Weight")), input);
  return wrap;
}

function paramInput(param, entry, changed) {
  const value = param.name in entry.params ? entry.params[param.name] : param.default;
  const set = (v) => { entry.params[param.name] = v; changed?.(); };
  const wrap = el("div", null, { class: "field" });
  const input = paramControl(param, value, set);
  input.dataset.param = param.name;
  wrap.append(el("label", param.name), input, el("p", t(param.help), { class: "help" }));
  return wrap;
}

function paramControl(param, value, set) {
  if (param.choices) {
    const select = el("select");
    param.choices.forEach((c) => select.append(el("option", c, { value: c })));
    select.value = value;
    select.addEventListener("change", () => set(select.value));
    return select;
  }
  if (typeof param.default === "boolean") {
    const box = el("input", null, { type: "checkbox" });
    box.checked = value;
    box.addEventListener("change", () => set(box.checked));
    return box;
  }
  if (typeof param.default === "number") {
    const input = el("input", null, { type: "number", step: "any" });
    if (param.minimum !== null) input.min = param.minimum;
    if (param.maximum !== null) input.max = param.maximum;
    input.value = value;
    input.addEventListener("input", () => set(typedNumber(input.value)));
    return input;
  }
  const input = el("input", null, { type: "text" });
  input.value = value ?? "";
  input.addEventListener("input", () => set(input.value));
  return input;
}

// ---- custom rewards -------------------------------------------------------------------------
/**
 * The saved custom rewards (from /api/rewards/custom), each addable to `chosen` as
 * `{name: id, weight, params: {}, source}`: the source is fetched when it is added, so a run's
 * config holds it. Custom entries of `chosen` no longer in the library are listed too.
 */
export function renderCustomRewards(box, library, chosen, options = {}) {
  const redraw = () => renderCustomRewards(box, library, chosen, options);
  const ids = new Set(library.map((r) => r.id));
  const orphans = chosen.filter((r) => typeof r.source === "string" && !ids.has(r.name))
    .map((r) => ({ id: r.name, name: r.name, orphan: true }));
  const list = el("div", null, { class: "cards" });
  for (const item of [...library, ...orphans]) list.append(customCard(item, chosen, options, redraw));
  box.replaceChildren(...(list.childElementCount ? [list] : [el("p", t("No custom rewards saved yet."), { class: "muted" })]));
  options.rendered?.();
}

function customCard(item, chosen, options, redraw) {
  const index = chosen.findIndex((r) => r.name === item.id && typeof r.source === "string");
  const entry = index >= 0 ? chosen[index] : null;
  const card = el("div", null, { class: `card${entry ? " selected" : ""}`, "data-custom-reward": item.id });
  const toggle = async (on) => {
    try {
      if (on) chosen.push(await customEntry(item.id));
      else chosen.splice(chosen.indexOf(entry), 1);
      options.changed?.();
    } catch (err) {
      options.failed?.(err);
    }
    redraw();
  };
  card.append(checkboxLabel(item.name, Boolean(entry), toggle));
  card.append(el("small", item.orphan ? t("Copied into this config; not in the saved library.")
    : `${t("Saved")} ${(item.updated_at || "").slice(0, 16).replace("T", " ")}`));
  if (entry) card.append(weightInput(entry, options.changed), errorSlot(`rewards.${index}`));
  return card;
}

async function customEntry(id) {
  const saved = await api("GET", `/api/rewards/custom/${encodeURIComponent(id)}`);
  return { name: saved.id, weight: 1.0, params: {}, source: saved.source };
}
