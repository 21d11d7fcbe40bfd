"""Building TRL trainers (SFTTrainer, GRPOTrainer) from a RunConfig.

Guarantees: the config's names map to the installed TRL/transformers arguments in one place; each
GRPO variant's settings come from `core.config.VARIANT_SETTINGS`, explicit config values winning.
Does not: load models or data (the caller passes them), run training.
"""
from __future__ import annotations

from typing import Any

from core.config import RunConfig, variant_settings
from core.hardware import cuda_available
from core.models import LoadedModel
from core.run_dir import RunDir

def common_arguments(cfg: RunConfig, phase: str, run: RunDir, loaded: LoadedModel,
                     evaluate: bool = False) -> dict:
    """TrainingArguments shared by both trainers."""
    t, out = cfg.training, cfg.output
    schedule = {"num_train_epochs": t.epochs, "max_steps": t.max_steps,
                "learning_rate": t.learning_rate}
    if phase == "pre_training":
        pre = cfg.pre_training
        schedule = {"num_train_epochs": pre.epochs, "max_steps": pre.max_steps,
                    "learning_rate": pre.learning_rate}
    return {
        **schedule,
        "output_dir": str(run.checkpoints_dir(phase)),
        "per_device_train_batch_size": t.batch_size,
        "per_device_eval_batch_size": t.batch_size,
        "gradient_accumulation_steps": t.gradient_accumulation_steps,
        "lr_scheduler_type": t.scheduler,
        "warmup_steps": t.warmup_ratio,  # a float below 1 is a ratio of the total steps
        "weight_decay": t.weight_decay,
        "max_grad_norm": t.max_grad_norm,
        "optim": t.optimizer,
        "seed": t.seed,
        "bf16": loaded.precision == "bf16",
        "fp16": loaded.precision == "fp16",
        "use_cpu": not cuda_available(),
        "activation_checkpointing": t.gradient_checkpointing,
        "logging_steps": out.logging_steps,
        "save_strategy": "steps",
        "save_steps": out.save_steps,
        "save_total_limit": out.save_total_limit,
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "eval_strategy": "steps" if evaluate else "no",
        "eval_steps": out.save_steps if evaluate else None,
    }


def build_sft_trainer(cfg: RunConfig, phase: str, run: RunDir, loaded: LoadedModel,
                      data: tuple[Any, Any | None], callbacks: list) -> Any:
    from trl import SFTConfig, SFTTrainer
    train, evaluation = data
    args = SFTConfig(**common_arguments(cfg, phase, run, loaded, evaluation is not None),
                     max_length=cfg.training.max_seq_length, completion_only_loss=True)
    trainer = SFTTrainer(model=loaded.model, args=args, train_dataset=train,
                         eval_dataset=evaluation, processing_class=loaded.tokenizer,
                         callbacks=callbacks)
    return _quiet(trainer)


def grpo_arguments(cfg: RunConfig) -> dict[str, Any]:
    """GRPOConfig arguments for the config's algorithm section and variant."""
    a = cfg.algorithm
    settings = variant_settings(a)
    factor = settings.pop("steps_per_generation_factor", None)
    if factor:
        settings["steps_per_generation"] = factor * cfg.training.gradient_accumulation_steps
    return {**settings, "num_generations": a.num_generations,
            "max_completion_length": a.max_completion_length, "temperature": a.temperature,
            "top_p": a.top_p, "top_k": a.top_k, "num_iterations": a.num_iterations,
            "reward_weights": [r.weight for r in cfg.rewards],
            # TRL wants every evaluation batch to hold whole groups
            "per_device_eval_batch_size": a.num_generations}


def build_grpo_trainer(cfg: RunConfig, run: RunDir, loaded: LoadedModel,
                       data: tuple[Any, Any | None], reward_funcs: list, callbacks: list) -> Any:
    from trl import GRPOConfig, GRPOTrainer
    train, evaluation = data
    args = GRPOConfig(**{**common_arguments(cfg, "grpo", run, loaded, evaluation is not None),
                         **grpo_arguments(cfg)})
    trainer = GRPOTrainer(model=loaded.model, reward_funcs=reward_funcs, args=args,
                          train_dataset=train, eval_dataset=evaluation,
                          processing_class=loaded.tokenizer, callbacks=callbacks)
    return _quiet(trainer)


def _quiet(trainer: Any) -> Any:
    """Our callback reports every log record; transformers' printer would repeat it on stdout."""
    from transformers.trainer_callback import PrinterCallback
    trainer.remove_callback(PrinterCallback)
    return trainer
