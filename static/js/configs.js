// Saved configs and shipped examples: load one into the wizard, delete a saved one. Also the
// "Use in the wizard" button of a run's configuration page.
import { api, t, el, toast, storeDraft } from "./common.js";

function openInWizard(config) {
  storeDraft(config);
  window.location.href = "/wizard/model";
}

function configRow(entry) {
  const tr = el("tr", null, { "data-config": entry.name });
  const actions = el("td");
  const load = el("button", t("Load into the wizard"), { type: "button", class: "secondary" });
  load.addEventListener("click", async () => {
    try {
      const loaded = await api("GET", `/api/configs/load?name=${encodeURIComponent(entry.name)}`);
      openInWizard(loaded.config);
    } catch (err) {
      toast(err.message, "error");
    }
  });
  actions.append(load);
  if (!entry.read_only) {
    const remove = el("button", t("Delete"), { type: "button", class: "danger" });
    remove.addEventListener("click", async () => {
      if (!window.confirm(`${t("Delete")} ${entry.name}?`)) return;
      try {
        await api("DELETE", `/api/configs/delete?name=${encodeURIComponent(entry.name)}`);
        tr.remove();
      } catch (err) {
        toast(err.message, "error");
      }
    });
    actions.append(document.createTextNode(" "), remove);
  }
  const when = entry.saved_at ? new Date(entry.saved_at).toLocaleString(document.documentElement.lang) : t("read-only");
  tr.append(el("td", entry.name), el("td", entry.description), el("td", entry.model),
    el("td", entry.variant && entry.algorithm === "grpo" ? `grpo (${entry.variant})` : entry.algorithm), el("td", when), actions);
  return tr;
}

async function listConfigs() {
  const { saved, examples } = await api("GET", "/api/configs/list");
  document.querySelector("#saved-configs tbody").replaceChildren(...saved.map(configRow));
  document.getElementById("saved-empty").hidden = saved.length > 0;
  document.querySelector("#example-configs tbody").replaceChildren(...examples.map(configRow));
}

async function main() {
  const runConfig = document.getElementById("config-data");
  if (runConfig) {
    document.getElementById("use-in-wizard").addEventListener("click", () => openInWizard(JSON.parse(runConfig.textContent)));
  } else {
    await listConfigs().catch((err) => toast(err.message, "error"));
  }
  document.body.dataset.ready = "true";
}

main();
