// The runs list: every run with status, step, best reward and duration; refreshed every few
// seconds while the page is open.
import { api, t, el, toast, formatDuration, formatNumber, statusText, phaseText } from "./common.js";

const REFRESH_MS = 3000;

function row(run) {
  const tr = el("tr", null, { "data-run": run.run_id });
  const name = el("td");
  name.append(el("a", run.name || run.run_id, { href: `/runs/${encodeURIComponent(run.run_id)}` }), el("br"), el("small", run.run_id, { class: "muted" }));
  const status = el("td", statusText(run.status) + (run.queue_position ? ` (${run.queue_position})` : ""), { class: `status status-${run.status}` });
  const links = el("td");
  links.append(el("a", t("Monitor"), { href: `/runs/${encodeURIComponent(run.run_id)}` }), document.createTextNode(" · "),
    el("a", t("Configuration"), { href: `/runs/${encodeURIComponent(run.run_id)}/config` }));
  tr.append(name, status, el("td", phaseText(run.phase)),
    el("td", run.total_steps ? `${run.step} / ${run.total_steps}` : run.step ?? "–"),
    el("td", formatNumber(run.best_reward)), el("td", formatDuration(run.active_seconds)),
    el("td", run.created_at ? new Date(run.created_at).toLocaleString(document.documentElement.lang) : "–"), links);
  return tr;
}

async function refresh() {
  try {
    const { sessions } = await api("GET", "/api/training/sessions");
    document.querySelector("#runs-table tbody").replaceChildren(...sessions.map(row));
    document.getElementById("runs-empty").hidden = sessions.length > 0;
  } catch (err) {
    toast(err.message, "error");
  }
  document.body.dataset.ready = "true";
}

refresh();
setInterval(refresh, REFRESH_MS);
