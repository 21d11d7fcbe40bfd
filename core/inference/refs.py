"""What a model reference names: a transformers folder (+ adapter), a GGUF file, or a run directory.

Guarantees: `resolve_ref` turns `{"kind": "hf", "path", "adapter"?}`, `{"kind": "gguf", "path",
"chat_template"?}` or `{"kind": "run", "run_dir", "checkpoint"? | "base"?}` into a `Resolved` model with
the prompt template to apply (any reference may carry its own `"template"` section, e.g. the run an
export came from), or raises `InferenceError` naming the field and what to fix. A run
resolves to its base model (config.json's `model.name`) plus its `adapter/` (LoRA, QLoRA) or to
its `model/` (full fine-tuning), or to one complete checkpoint, or (`"base": true`) to its base
model alone, with the run's own `template` section, so prompts are formatted exactly as in training. An adapter folder given as an `hf` path
finds its base in adapter_config.json. Two references to the same weights resolve to the same `key`.

Does not: load anything, import torch, or check that a hub id exists (loading does).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.config import ConfigError, ModelSection, TemplateSection, validate_section
from core.files import read_json, resolve_inside
from core.run_dir import CHECKPOINT_MARKER, RunDir

GGUF_MAGIC = b"GGUF"


class InferenceError(RuntimeError):
    """A request that cannot be answered; the message names what to fix (`field` when one input is
    to blame)."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class Resolved:
    backend: str                      # "hf" | "gguf"
    path: str                         # model folder, hub id or "default" (hf); GGUF file (gguf)
    adapter: str | None = None        # PEFT adapter folder (hf only)
    # no system message and the model's own chat template: how a plain model is prompted
    template: TemplateSection = field(default_factory=lambda: TemplateSection(system_prompt=""),
                                      compare=False)
    trust_remote_code: bool = False

    @property
    def key(self) -> tuple[str, str, str | None]:
        return self.backend, self.path, self.adapter

    def describe(self) -> str:
        return self.path + (f" + {self.adapter}" if self.adapter else "")


def resolve_ref(ref: Any) -> Resolved:
    if not isinstance(ref, dict):
        raise InferenceError("model must be an object with a 'kind' (hf, gguf or run)", "model")
    kind = ref.get("kind")
    if kind == "hf":
        resolved = _resolve_hf(_required(ref, "path"), ref.get("adapter"))
    elif kind == "gguf":
        resolved = _resolve_gguf(_required(ref, "path"), ref.get("chat_template"))
    elif kind == "run":
        resolved = resolve_run(_required(ref, "run_dir"), ref.get("checkpoint"),
                               base=ref.get("base") is True)
    else:
        raise InferenceError(f"unknown model kind {kind!r}; use 'hf', 'gguf' or 'run'",
                             "model.kind")
    return _with_template(resolved, ref.get("template"))


def _with_template(resolved: Resolved, template: Any) -> Resolved:
    """`resolved` prompted with `template` (a TemplateSection as a dict) when one is given; a GGUF
    file keeps its own chat template unless the section names one."""
    if template is None:
        return resolved
    try:
        section = validate_section(TemplateSection, template, "model.template")
    except ConfigError as err:
        raise InferenceError(str(err), "model.template") from None
    if resolved.backend == "gguf" and section.chat_template is None:
        section = section.model_copy(update={"chat_template": resolved.template.chat_template})
    return replace(resolved, template=section)


def _required(ref: dict[str, Any], name: str) -> str:
    value = ref.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InferenceError(f"model.{name} is required (a path)", f"model.{name}")
    return value


def _resolve_hf(path: str, adapter: str | None) -> Resolved:
    folder = Path(path).expanduser()
    if adapter is not None:
        return Resolved("hf", _model_source(path), str(_adapter_folder(adapter)))
    if (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file():
        return _adapter_with_base(folder)
    return Resolved("hf", _model_source(path))


def _model_source(name: str) -> str:
    """A folder as an absolute path (checked to be a model); 'default' and hub ids as they are."""
    folder = Path(name).expanduser()
    if name == "default" or not (folder.exists() or folder.is_absolute()
                                 or name.startswith((".", "~"))):
        return name
    if not folder.is_dir():
        raise InferenceError(f"model folder not found: {folder}", "model.path")
    if not (folder / "config.json").is_file():
        raise InferenceError(f"{folder} is not a transformers model folder (no config.json); "
                             "choose a model folder, an adapter folder or a .gguf file",
                             "model.path")
    return str(folder.resolve())


def _adapter_folder(path: str | Path) -> Path:
    folder = Path(path).expanduser()
    if not (folder / "adapter_config.json").is_file():
        raise InferenceError(f"{folder} is not a PEFT adapter folder (no adapter_config.json)",
                             "model.adapter")
    return folder.resolve()


def _adapter_with_base(folder: Path) -> Resolved:
    base = (read_json(folder / "adapter_config.json", default={}) or {}) \
        .get("base_model_name_or_path")
    if not base:
        raise InferenceError(f"the adapter {folder} does not name its base model "
                             "(base_model_name_or_path); give model.path and model.adapter",
                             "model.adapter")
    return Resolved("hf", _model_source(base), str(folder.resolve()))


def _resolve_gguf(path: str, chat_template: str | None) -> Resolved:
    file = Path(path).expanduser()
    if not file.is_file():
        raise InferenceError(f"GGUF file not found: {file}", "model.path")
    with file.open("rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise InferenceError(f"{file.name} is not a GGUF file (it does not start with "
                                 "'GGUF'); choose a .gguf model file", "model.path")
    template = TemplateSection(system_prompt="", chat_template=chat_template or None)
    return Resolved("gguf", str(file.resolve()), template=template)


def resolve_run(run_dir: str | Path, checkpoint: str | None = None,
                base: bool = False) -> Resolved:
    """The run's base model + result (or `checkpoint`, or nothing with `base`), with the run's
    template."""
    run = RunDir(Path(run_dir).expanduser().resolve())
    config = read_json(run.config_path)
    if not isinstance(config, dict):
        raise InferenceError(f"{run.path} is not a run directory (no config.json)",
                             "model.run_dir")
    try:
        model = validate_section(ModelSection, config.get("model"), "model")
        template = validate_section(TemplateSection, config.get("template"), "template")
    except ConfigError as err:
        raise InferenceError(f"the config of run {run.run_id} cannot be read: {err}",
                             "model.run_dir") from None
    if base:
        return Resolved("hf", _model_source(model.name), None, template, model.trust_remote_code)
    weights = _checkpoint(run, checkpoint) if checkpoint else _run_result(run)
    if (weights / "adapter_config.json").is_file():
        return Resolved("hf", _model_source(model.name), str(weights), template,
                        model.trust_remote_code)
    return Resolved("hf", str(weights), None, template, model.trust_remote_code)


def _run_result(run: RunDir) -> Path:
    for folder in (run.adapter_dir, run.model_dir):
        if folder.is_dir():
            return folder
    names = [str(p.relative_to(run.path)) for phase in ("pre_training", "grpo")
             for p in run.complete_checkpoints(phase)]
    hint = f"choose one of its checkpoints: {', '.join(names)}" if names else \
        "it has no complete checkpoint either; train it first"
    raise InferenceError(f"run {run.run_id} has no result yet (no adapter/ or model/); {hint}",
                         "model.checkpoint")


def _checkpoint(run: RunDir, checkpoint: str) -> Path:
    """`checkpoint-N` (in checkpoints/) or a path relative to the run, kept inside the run."""
    relative = checkpoint if "/" in checkpoint else f"checkpoints/{checkpoint}"
    try:
        folder = resolve_inside(run.path, relative)
    except ValueError:
        raise InferenceError(f"checkpoint {checkpoint!r} is outside run {run.run_id}",
                             "model.checkpoint") from None
    if not folder.is_dir():
        raise InferenceError(f"run {run.run_id} has no checkpoint {checkpoint!r}",
                             "model.checkpoint")
    if not (folder / CHECKPOINT_MARKER).is_file():
        raise InferenceError(f"checkpoint {checkpoint!r} of run {run.run_id} is incomplete "
                             "(its save did not finish); choose another", "model.checkpoint")
    return folder
