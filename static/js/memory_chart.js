// The monitor page's memory chart: RAM and each GPU's memory in use (GB) over time, drawn from
// the system status every page already receives (common.js dispatches it as `system-status`:
// the first reading, then each `system_update`). The server keeps no history of it, so the chart
// starts when the page opens; it keeps the last POINTS readings (10 minutes at one every 2 s).
import { t } from "./common.js";

const POINTS = 300;
const GB = 2 ** 30;
const COLORS = ["#5d6678", "#2f6fde", "#d9534f", "#1d8a4e", "#a86a00", "#7b4fd6", "#0097a7"];

function series(label, i) {
  return { label, data: [], borderColor: COLORS[i % COLORS.length], pointRadius: 0, borderWidth: 2, tension: 0.2 };
}

/** Each reading's values by series name: RAM, then one per GPU (memory used, GB). */
function readings(status) {
  const values = { RAM: status.ram_used / GB };
  for (const g of status.gpus || []) {
    values[`GPU ${g.index}`] = typeof g.memory_used === "number" ? g.memory_used / GB : null;
  }
  return values;
}

function largestTotal(status) {
  const totals = [status.ram_total, ...(status.gpus || []).map((g) => g.memory_total)];
  return Math.max(...totals.filter((v) => typeof v === "number")) / GB;
}

export function setUpMemoryChart(canvas) {
  const chart = new Chart(canvas, {
    type: "line",
    data: { labels: [], datasets: [] },
    options: { responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { labels: { boxWidth: 10 } } },
      scales: { x: { ticks: { maxTicksLimit: 6 } }, y: { beginAtZero: true, title: { display: true, text: "GB" } } } },
  });
  const note = document.getElementById("memory-note");
  window.addEventListener("system-status", ({ detail: status }) => {
    const values = readings(status);
    for (const name of Object.keys(values)) {
      if (chart.data.datasets.some((d) => d.label === name)) continue;
      const added = series(name, chart.data.datasets.length);
      added.data = chart.data.labels.map(() => null);
      chart.data.datasets.push(added);
    }
    chart.data.labels.push(new Date().toLocaleTimeString(document.documentElement.lang));
    chart.data.datasets.forEach((d) => d.data.push(values[d.label] ?? null));
    if (chart.data.labels.length > POINTS) {
      chart.data.labels.shift();
      chart.data.datasets.forEach((d) => d.data.shift());
    }
    chart.options.scales.y.suggestedMax = largestTotal(status);
    chart.update("none");
    note.textContent = status.gpus?.length ? "" : t("CPU only");
    canvas.dataset.points = String(chart.data.labels.length);
  });
}
