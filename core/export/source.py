"""What an export starts from: a run (its final result or one of its checkpoints) or a base model
with an optional PEFT adapter, resolved to local folders.

Guarantees: `model_dir` is a local folder holding the base model (LoRA) or the whole model (full
fine-tuning, or a base without adapter); `adapter_dir` is a folder with `adapter_config.json` or
None; a run's export carries the system prompt and chat template it trained with. A missing result,
checkpoint or model raises ExportError naming it and what to do. Does not: load weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.export.request import ExportError
from core.run_dir import CHECKPOINT_MARKER, RunDir


@dataclass(frozen=True)
class ModelSource:
    model_dir: Path               # base model weights (LoRA) or the whole model
    adapter_dir: Path | None      # PEFT adapter folder, or None
    system_prompt: str | None     # the system prompt the run trained with
    chat_template: str | None     # the run's chat template override (None: the tokenizer's)
    label: str                    # for messages and export ids
    trust_remote_code: bool = False

    @property
    def tokenizer_dir(self) -> Path:
        """Training saved the tokenizer beside the adapter; a plain adapter may lack it."""
        if self.adapter_dir and (self.adapter_dir / "tokenizer_config.json").is_file():
            return self.adapter_dir
        return self.model_dir


def resolve_source(source: dict[str, Any]) -> ModelSource:
    if source.get("run_dir"):
        return _from_run(Path(source["run_dir"]), source.get("checkpoint"))
    adapter = Path(source["adapter"]) if source.get("adapter") else None
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        raise ExportError(f"{adapter} is not a PEFT adapter folder (no adapter_config.json)")
    model_dir = local_model_dir(str(source["base_model"]))
    label = (adapter or model_dir).name
    return ModelSource(model_dir, adapter, None, None, label)


def local_model_dir(name: str) -> Path:
    """'default', a folder, or a hub id already in the local Hugging Face cache."""
    from core.models import ModelError, resolve_model_source
    try:
        resolved = resolve_model_source(name)
    except ModelError as err:
        raise ExportError(str(err)) from err
    if Path(resolved).is_dir():
        return Path(resolved)
    try:
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(resolved, local_files_only=True))
    except Exception as err:  # noqa: BLE001 - any hub failure means: not available offline
        raise ExportError(f"model {name!r} is not in the local cache (the Hugging Face Hub "
                          f"cannot be used here); download it on the models page first") from err


def _from_run(run_dir: Path, checkpoint: str | None) -> ModelSource:
    from core.config import ConfigError, load_config
    run = RunDir(run_dir)
    try:
        cfg = load_config(run.config_path)
    except (ConfigError, FileNotFoundError) as err:
        raise ExportError(f"cannot read the config of run {run.run_id}: {err}") from err
    folder = _checkpoint_dir(run, checkpoint) if checkpoint else _result_dir(run, cfg.model.method)
    common = {"system_prompt": cfg.template.system_prompt or None,
              "chat_template": cfg.template.chat_template or None,
              "label": run.run_id + (f"-{Path(checkpoint).name}" if checkpoint else ""),
              "trust_remote_code": cfg.model.trust_remote_code}
    if cfg.model.method == "full":
        return ModelSource(model_dir=folder, adapter_dir=None, **common)
    return ModelSource(model_dir=local_model_dir(cfg.model.name), adapter_dir=folder, **common)


def _result_dir(run: RunDir, method: str) -> Path:
    folder = run.model_dir if method == "full" else run.adapter_dir
    if not folder.is_dir():
        status = (run.read_state() if run.state_path.is_file() else {}).get("status", "unknown")
        raise ExportError(f"run {run.run_id} has no final {folder.name}/ yet (status {status}); "
                          f"let it finish, or export one of its checkpoints")
    return folder


def _checkpoint_dir(run: RunDir, name: str) -> Path:
    """A checkpoint's path inside the run ('pre_training/checkpoints/checkpoint-N'), or its name:
    the main phase's 'checkpoint-N', else the SFT pre-training phase's."""
    from core.files import resolve_inside
    candidates = [name] if "/" in name else \
        [f"checkpoints/{name}", f"pre_training/checkpoints/{name}"]
    for candidate in candidates:
        try:
            folder = resolve_inside(run.path, candidate)
        except ValueError as err:
            raise ExportError(f"checkpoint {name!r} is outside run {run.run_id}") from err
        if (folder / CHECKPOINT_MARKER).is_file():
            return folder
    known = [str(p.relative_to(run.path)) for phase in ("pre_training", "grpo")
             for p in run.complete_checkpoints(phase)]
    raise ExportError(f"run {run.run_id} has no complete checkpoint {name!r} "
                      f"(complete: {', '.join(known) or 'none'})")
