"""Inference: generate with a base model, a trained run (adapter or full model, at its end or at a
checkpoint) or a GGUF export, streaming tokens as they come.

- `refs`: what a model reference names (`{"kind": "hf" | "gguf" | "run", ...}`);
- `engine`: `InferenceEngine`, an LRU of loaded models and `generate`;
- `hf`, `gguf`: the transformers and llama.cpp backends;
- `worker`: `python -m core.inference`, the warm process the web app talks to over a pipe
  (services/inference.py is its client).

Importing this package is light: torch, transformers and llama.cpp load with the first model.
"""
from __future__ import annotations

from core.inference.engine import InferenceEngine
from core.inference.refs import InferenceError, Resolved, resolve_ref, resolve_run

__all__ = ["InferenceEngine", "InferenceError", "Resolved", "resolve_ref", "resolve_run"]
