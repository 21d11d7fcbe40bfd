"""A tiny random model with the default model's tokenizer, so a GRPO step takes well under a second.

Built from the default model's config with a few small layers; saved once per test session.
"""
from __future__ import annotations

from pathlib import Path


def make_tiny_model(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from core.default_model import ensure_default_model

    source = ensure_default_model()
    config = AutoConfig.from_pretrained(source)
    config.update({"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16})
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder
