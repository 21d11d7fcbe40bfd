"""A run's training phases, in order: optional SFT pre-training, then GRPO; or SFT alone.

Guarantees: a finished phase leaves its result folder whole (`pre_training/adapter|model`, then
`adapter/` or `model/` for the run), written beside and renamed into place; a phase with a complete
checkpoint resumes from the newest one (incomplete ones are removed first) and a `resume` event
records where; GRPO after pre-training continues the same LoRA adapter. Returns the run's next
status: completed, paused or cancelled. Errors propagate to the worker, which names them.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

from core.config import DatasetSection, RunConfig
from core.datasets import (DatasetError, build_grpo_dataset, build_sft_dataset, split_indices,
                           validation_failure, validation_section)
from core.models import LoadedModel, load_model
from core.run_dir import RunDir, checkpoint_step
from core.training.alerts import AlertWatcher
from core.training.callbacks import GenerationClock, RunEventsCallback
from core.training.control import PAUSE, RunControl
from core.training.ranks import barrier, process_rank
from core.training.samples import SampleRecorder, TrainingReward
from core.training.trainers import build_grpo_trainer, build_sft_trainer
from rewards import CustomReward, Markers, build_reward, get_spec, unique_names
from rewards.sandbox import Limits


def planned_phases(cfg: RunConfig) -> list[str]:
    if cfg.algorithm.name == "sft":
        return ["sft"]
    return (["pre_training"] if cfg.pre_training.enabled else []) + ["grpo"]


def result_dir(run: RunDir, cfg: RunConfig, phase: str) -> Path:
    base = run.pre_training_dir if phase == "pre_training" else run.path
    return base / ("model" if cfg.model.method == "full" else "adapter")


def run_training(run: RunDir, cfg: RunConfig, control: RunControl) -> str:
    """Run every phase not finished yet; the status the run ends with."""
    for phase in planned_phases(cfg):
        if result_dir(run, cfg, phase).is_dir():
            continue
        status = run_phase(run, cfg, phase, control)
        if status != "completed":
            return status
    return "completed"


def run_phase(run: RunDir, cfg: RunConfig, phase: str, control: RunControl) -> str:
    import transformers
    transformers.set_seed(cfg.training.seed)
    init_from = None
    if phase == "grpo" and cfg.pre_training.enabled:
        init_from = result_dir(run, cfg, "pre_training")
    run.update_state(phase=phase)
    run.append_event("phase", phase=phase)
    loaded = load_model(cfg.model, cfg.training, init_from=init_from)
    trainer = _build_trainer(run, cfg, phase, loaded, control)
    resume = _resume_point(run, phase)
    if control.request is None:  # a stop asked for while loading needs no training step
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if control.request:
        return "paused" if control.request == PAUSE else "cancelled"
    _save_result(trainer, loaded, result_dir(run, cfg, phase))
    return "completed"


def _resume_point(run: RunDir, phase: str) -> Path | None:
    """The newest complete checkpoint of `phase`, if any. A phase that had started before (it
    logged metrics) gets a `resume` event either way, so its replayed steps are not counted twice."""
    run.remove_incomplete_checkpoints(phase)
    newest = run.newest_checkpoint(phase)
    step = checkpoint_step(newest) if newest is not None else 0
    started_before = any(e.get("phase") == phase for e in run.metric_history())
    if newest is not None or started_before:
        run.append_event("resume", phase=phase, step=step,
                         checkpoint=newest.name if newest is not None else None)
        run.update_state(resumed_from=str(newest.relative_to(run.path)) if newest else None,
                         step=step)
    return newest


def _build_trainer(run: RunDir, cfg: RunConfig, phase: str, loaded: LoadedModel,
                   control: RunControl) -> Any:
    if phase in ("pre_training", "sft"):
        max_samples = cfg.pre_training.max_samples if phase == "pre_training" else None
        dataset = build_sft_dataset(cfg.dataset, cfg.template, loaded.tokenizer, max_samples)
        data = _train_and_evaluation(cfg, dataset, lambda section: build_sft_dataset(
            section, cfg.template, loaded.tokenizer))
        callback = RunEventsCallback(run, phase, control)
        return build_sft_trainer(cfg, phase, run, loaded, data, [callback])
    fields, all_fields = reward_fields(cfg)
    dataset = build_grpo_dataset(cfg.dataset, cfg.template, loaded.tokenizer, fields, all_fields)
    data = _train_and_evaluation(cfg, dataset, lambda section: build_grpo_dataset(
        section, cfg.template, loaded.tokenizer, fields, all_fields))
    recorder = SampleRecorder()
    alerts = AlertWatcher()
    rewards = training_rewards(cfg, dataset, recorder, alerts, protected=run.path.parent)
    weights = {r.__name__: e.weight for r, e in zip(rewards, cfg.rewards)}
    clock = GenerationClock()
    callback = RunEventsCallback(run, phase, control, recorder, weights, cfg.output.sample_every,
                                 alerts, clock)
    return clock.wrap(build_grpo_trainer(cfg, run, loaded, data, rewards, [callback]))


def _train_and_evaluation(cfg: RunConfig, dataset: Any,
                          build: Callable[[DatasetSection], Any]) -> tuple[Any, Any | None]:
    """(train, evaluation): every row and the validation file's rows built by `build`, when the
    config names a validation file; else `dataset.validation_split` of the rows held out, seeded
    (no evaluation set when it is 0)."""
    section = validation_section(cfg.dataset)
    if section is not None:
        try:
            return dataset, build(section)
        except DatasetError as err:
            raise validation_failure(err) from None
    train, held_out = split_indices(len(dataset), cfg.dataset.validation_split,
                                    cfg.training.seed)
    if not held_out:
        return dataset, None
    return dataset.select(train), dataset.select(held_out)


def reward_fields(cfg: RunConfig) -> tuple[list[str], bool]:
    """The dataset columns the rewards read beyond prompt and reference, and whether a custom
    reward is present (custom rewards see every column of the row)."""
    fields = [f for e in cfg.rewards if e.source is None
              for f in get_spec(e.name).fields(e.params)]
    return fields, any(e.source is not None for e in cfg.rewards)


def training_rewards(cfg: RunConfig, dataset: Any, recorder: SampleRecorder,
                     alerts: AlertWatcher | None = None, protected: Path | None = None
                     ) -> list[TrainingReward]:
    """The config's rewards, built with the run's markers, uniquely named, the dataset columns
    they need checked; custom rewards run in the sandbox, which may not read `protected` (the
    outputs folder) nor the project."""
    limits = Limits(protected=(*Limits().protected, *([str(protected)] if protected else [])))
    t = cfg.template
    markers = Markers(t.reasoning_start, t.reasoning_end, t.solution_start, t.solution_end)
    built = []
    for entry, name in zip(cfg.rewards, unique_names([e.name for e in cfg.rewards])):
        if entry.source is not None:
            reward = CustomReward(name, entry.source, entry.params, limits)
        else:
            _check_columns(entry.name, get_spec(entry.name).fields(entry.params), dataset)
            reward = build_reward(entry.name, entry.params, markers, name=name)
            if alerts is not None:
                alerts.ranges[name] = get_spec(entry.name).range
        built.append(TrainingReward(reward, recorder, alerts))
    return built


def _check_columns(reward: str, fields: list[str], dataset: Any) -> None:
    """Every column the reward reads has a value in at least one row."""
    for column in fields:
        if column in dataset.column_names and any(v is not None for v in dataset[column]):
            continue
        if column == "reference":
            raise DatasetError(f"reward {reward!r} compares with a reference answer, but no row "
                               f"has one; map dataset.mapping.reference",
                               field="dataset.mapping.reference")
        raise DatasetError(f"reward {reward!r} reads the column {column!r}, but no row of the "
                           f"dataset has it; choose the column in the reward's parameters",
                           field="rewards")


def _save_result(trainer: Any, loaded: LoadedModel, folder: Path) -> None:
    """The phase's result, whole or absent: written beside and renamed into place (by rank 0 of
    a data-parallel run; every process waits for it before going on)."""
    writer = process_rank() == 0
    partial = folder.with_name(folder.name + ".partial")
    if writer:
        shutil.rmtree(partial, ignore_errors=True)
    trainer.save_model(str(partial))  # the trainer writes from its main process only
    if writer:
        loaded.tokenizer.save_pretrained(str(partial))
        os.replace(partial, folder)
    barrier()
