// The wizard's compute section: the GPUs the system monitor lists (GET /api/system/status) as
// checkboxes bound to compute.gpu_ids. One GPU chosen is pinned for the run; several train
// data-parallel (DDP) through `accelerate launch` (core/launch.py), one process per GPU, and
// compute.multi_gpu follows the count. Without a GPU the section says "CPU only". Names are shown
// as text.
import { api, t, el, formatNumber } from "./common.js";

const GB = 2 ** 30;

function gpuLabel(gpu) {
  const memory = typeof gpu.memory_total === "number"
    ? ` · ${formatNumber(gpu.memory_total / GB, 1)} GB (${formatNumber((gpu.memory_used || 0) / GB, 1)} GB ${t("in use")})` : "";
  return `GPU ${gpu.index} · ${gpu.name}${memory}`;
}

function summary(chosen, found) {
  if (!found && !chosen.length) return t("CPU only: no NVIDIA GPU was found, training runs on the processor.");
  if (!chosen.length) return t("No GPU chosen: the run trains on the first one.");
  if (chosen.length === 1) return `${t("One GPU")}: GPU ${chosen[0]}`;
  return `${chosen.length} ${t("GPUs: data-parallel training (DDP) through accelerate launch, one process per GPU.")}`;
}

/** Fills `section` (#compute) with a checkbox per GPU. `compute()` gives the draft's compute
 * section (created when missing), `changed()` is called after each choice. */
export async function renderComputeChoices(section, compute, changed) {
  const { gpus } = await api("GET", "/api/system/status");
  const box = section.querySelector("#gpu-choices");
  const note = section.querySelector("#compute-summary");
  // ids chosen on another machine stay listed, so they can be unticked
  const missing = (compute().gpu_ids || []).filter((id) => !gpus.some((g) => g.index === id));
  const choices = [...gpus.map((g) => [g.index, gpuLabel(g)]),
    ...missing.map((id) => [id, `GPU ${id} (${t("not found on this machine")})`])];
  const inputs = choices.map(([index, label]) => {
    const input = el("input", null, { type: "checkbox", value: String(index), "data-gpu": String(index) });
    input.checked = (compute().gpu_ids || []).includes(index);
    const wrap = el("label", null, { class: "gpu-choice" });
    wrap.append(input, ` ${label}`);
    box.append(wrap);
    return input;
  });
  const show = () => {
    const chosen = compute().gpu_ids || [];
    note.textContent = summary(chosen, gpus.length);
    section.dataset.gpus = String(gpus.length);
  };
  inputs.forEach((input) => input.addEventListener("change", () => {
    const chosen = inputs.filter((i) => i.checked).map((i) => Number(i.value)).sort((a, b) => a - b);
    Object.assign(compute(), { gpu_ids: chosen, multi_gpu: chosen.length > 1 });
    show();
    changed();
  }));
  show();
}
