"""Exports (DESIGN.md §7): a run, a checkpoint or a base model + adapter as a PEFT adapter, a
merged safetensors model, a GGUF (f16, bf16, q8_0, q6_k, q5_k_m, q4_k_m, q4_0, q3_k_m) with an
Ollama Modelfile, or a LoRA GGUF; each verified before it is called done.

    create_export(exports_root, export_id, fmt, quantization, source) -> Path   (status queued)
    run_export(export_dir) -> dict                                               (in this process)
    python -m core.export EXPORT_DIR                                             (a worker)

Importing this package is light (no torch): the heavy parts load when an export runs.
Modules: request (export.json), source (what to export), hf (adapter, merged), convert (llama.cpp
tools), llama_child (llama.cpp calls in a child process), tensor_types (what a GGUF holds),
modelfile + gotemplate (Ollama), runner (the steps of each format).
"""
from __future__ import annotations

from typing import Any

from core.export.request import (FORMATS, GGUF_QUANTIZATIONS, LORA_QUANTIZATIONS, ExportError,
                                 ExportRequestError, create_export, new_export_id, read_export)


def run_export(export_dir: Any, on_progress: Any = None) -> dict[str, Any]:
    """Run the export described by `export_dir/export.json` here; its final state."""
    from core.export.runner import run_export as _run
    return _run(export_dir, on_progress)


__all__ = ["FORMATS", "GGUF_QUANTIZATIONS", "LORA_QUANTIZATIONS", "ExportError",
           "ExportRequestError", "create_export", "new_export_id", "read_export", "run_export"]
