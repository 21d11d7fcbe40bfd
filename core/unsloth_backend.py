"""Loading through Unsloth's FastLanguageModel (NVIDIA GPUs only).

Imported only by core/models.py after CUDA was found and unsloth is installed; importing unsloth
patches transformers and TRL, so nothing else imports it. Not exercised by the CPU test suite.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from core.config import ModelSection, TrainingSection


def load_with_unsloth(section: ModelSection, training: TrainingSection, source: str,
                      precision: str, init_from: Path | None) -> tuple[Any, Any]:
    from unsloth import FastLanguageModel

    from core.models import allowed_remote_code, default_target_modules, torch_dtype

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=str(init_from) if init_from is not None and section.method != "full"
        else source,
        max_seq_length=training.max_seq_length, dtype=torch_dtype(precision),
        load_in_4bit=section.method == "qlora", full_finetuning=section.method == "full",
        trust_remote_code=allowed_remote_code(section.trust_remote_code))
    if section.method != "full" and init_from is None:
        targets = section.target_modules or default_target_modules(model.config.model_type)
        model = FastLanguageModel.get_peft_model(
            model, r=section.lora_rank, lora_alpha=section.lora_alpha,
            lora_dropout=section.lora_dropout, target_modules=targets,
            use_gradient_checkpointing="unsloth" if training.gradient_checkpointing else False,
            random_state=training.seed)
    return model, tokenizer
