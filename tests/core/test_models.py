"""Model resolution and loading: hub ids offline, local folders, methods, precision, and the
default model's one-time GGUF conversion (slow)."""
from __future__ import annotations

import pytest

from core.config import ModelSection, TrainingSection
from core.models import (ModelError, choose_precision, default_target_modules, load_model,
                         resolve_model_source)


def test_hub_id_offline_names_the_id_and_the_hub(monkeypatch):
    # The Hub is unreachable from here; offline mode makes the failure immediate.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"'someone/some-model'.*Hub cannot be reached"):
        load_model(ModelSection(name="someone/some-model"), TrainingSection(precision="fp32"))


def test_missing_local_folder_is_named():
    with pytest.raises(ModelError, match="model folder not found"):
        resolve_model_source("./no/such/folder")


def test_local_folder_resolves_to_itself(tiny_model):
    assert resolve_model_source(str(tiny_model)) == str(tiny_model)


TARGETS = [("llama", "q_proj"), ("qwen3", "down_proj"), ("gpt2", "c_attn"),
           ("some_new_arch", "all-linear")]


@pytest.mark.parametrize("model_type,expected", TARGETS)
def test_default_lora_targets_per_architecture(model_type, expected):
    assert expected in default_target_modules(model_type)


def test_precision_choice_on_cpu():
    from core.hardware import cpu_has_bf16
    assert choose_precision("fp32", cuda=False) == "fp32"
    assert choose_precision("auto", cuda=False) == ("bf16" if cpu_has_bf16() else "fp32")


def test_lora_trains_only_the_adapter(tiny_model):
    loaded = load_model(ModelSection(name=str(tiny_model), lora_rank=4),
                        TrainingSection(precision="fp32"))
    trainable = [n for n, p in loaded.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert loaded.backend == "transformers" and loaded.tokenizer.pad_token is not None


def test_full_fine_tuning_trains_everything(tiny_model):
    loaded = load_model(ModelSection(name=str(tiny_model), method="full"),
                        TrainingSection(precision="fp32"))
    assert all(p.requires_grad for p in loaded.model.parameters())


@pytest.mark.slow
def test_default_model_converts_once_and_is_trainable(tmp_path, monkeypatch):
    import torch
    from transformers import AutoConfig

    from core.default_model import DONE_MARKER, ensure_default_model
    monkeypatch.setenv("GRPO_STUDIO_CACHE", str(tmp_path))
    folder = ensure_default_model()
    assert (folder / DONE_MARKER).is_file() and (folder / "model.safetensors").is_file()
    assert not hasattr(AutoConfig.from_pretrained(folder), "quantization_config")
    assert ensure_default_model() == folder  # second call: no conversion
    loaded = load_model(ModelSection(name="default"), TrainingSection(precision="fp32"))
    tok, model = loaded.tokenizer, loaded.model
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of "
                                       "France?"}], tokenize=False, add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    text = tok.decode(out[0, ids.input_ids.shape[1]:], skip_special_tokens=True)
    assert "Paris" in text, text
    loss = model(**ids, labels=ids.input_ids).loss
    loss.backward()
    assert any(p.grad is not None and torch.isfinite(p.grad).all()
               for p in model.parameters() if p.requires_grad)
