"""One TrainerCallback that turns the trainer's life into run-directory records.

- each log record -> a `metric` event with TRL's own keys, plus step, phase, total_steps and
  eta_seconds (for GRPO also `eta_generation_seconds` and `eta_update_seconds`: the time left
  generating completions, measured around the trainer's `_generate` by a `GenerationClock`, and
  the rest of each step); evaluation records -> `eval` events; the end-of-training summary -> `summary`;
- every `sample_every` steps -> `sample` events (prompt, completions, per-reward scores, reference);
- reward alerts (core/training/alerts.py) -> `alert` events after the log record that raised them;
- each save -> `checkpoint.json` inside the checkpoint (it is complete only from then on) and a
  `checkpoint` event;
- state.json follows step and total_steps, and says how many processes train (`processes`: more
  than 1 in a data-parallel launch, where only rank 0 writes any of this, core/training/ranks.py);
- a stop or pause request -> save a checkpoint at the end of this step and leave the loop.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from core.files import write_json_atomic
from core.run_dir import CHECKPOINT_MARKER, RunDir
from core.training.alerts import AlertWatcher
from core.training.control import RunControl
from core.training.ranks import agreed_request
from core.training.samples import SampleRecorder

SUMMARY_KEYS = ("train_runtime", "train_loss")
SAMPLE_GROUPS_PER_STEP = 2
SHOWN_KEYS = ("loss", "reward", "reward_std", "kl", "learning_rate", "grad_norm")
log = logging.getLogger("grpo_studio.training")


class GenerationClock:
    """Seconds a GRPO trainer spends generating completions (its `_generate`, timed)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, trainer: Any) -> Any:
        generate = getattr(trainer, "_generate", None)
        if generate is None:  # another TRL: no split, the ETA stays whole
            log.warning("the trainer has no _generate; the ETA is not split")
            return trainer

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.monotonic()
            try:
                return generate(*args, **kwargs)
            finally:
                self.seconds += time.monotonic() - start
        trainer._generate = timed
        return trainer


class RunEventsCallback(TrainerCallback):
    def __init__(self, run: RunDir, phase: str, control: RunControl,
                 recorder: SampleRecorder | None = None, reward_weights: dict[str, float] | None
                 = None, sample_every: int = 0, alerts: AlertWatcher | None = None,
                 clock: GenerationClock | None = None):
        self.run, self.phase, self.run_control = run, phase, control
        self.clock = clock
        self.recorder, self.reward_weights = recorder, reward_weights or {}
        self.alerts = alerts
        self.sample_every = sample_every
        self.start_time = time.monotonic()
        self.start_step = 0
        self.last_metrics: dict[str, Any] = {}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.start_time, self.start_step = time.monotonic(), state.global_step
        if self.clock is not None:
            self.clock.seconds = 0.0
        self.run.update_state(phase=self.phase, step=state.global_step,
                              total_steps=state.max_steps, processes=args.world_size)

    def eta(self, state: Any) -> dict[str, float | None]:
        """`eta_seconds`, and for GRPO its generation and update shares, from the average step
        so far (None before the first step)."""
        done = state.global_step - self.start_step
        if done <= 0 or not state.max_steps:
            return {"eta_seconds": None}
        left = max(state.max_steps - state.global_step, 0)
        per_step = (time.monotonic() - self.start_time) / done
        eta = {"eta_seconds": round(per_step * left, 1)}
        if self.clock is not None:
            generating = min(self.clock.seconds / done, per_step)
            eta.update(eta_generation_seconds=round(generating * left, 1),
                       eta_update_seconds=round((per_step - generating) * left, 1))
        return eta

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self.run.update_state(step=state.global_step, total_steps=state.max_steps,
                              **self.eta(state))
        if self.recorder is not None:
            self._write_samples(state.global_step)
        agreed = agreed_request(self.run_control.request)  # every process stops at this step
        if agreed and agreed != self.run_control.request:
            self.run_control.ask(agreed)
        if self.run_control.request:
            control.should_save = True
            control.should_training_stop = True
        return control

    def _write_samples(self, step: int) -> None:
        if not self.sample_every or step % self.sample_every:
            self.recorder.discard()
            return
        for group in self.recorder.take_groups(self.reward_weights, SAMPLE_GROUPS_PER_STEP):
            self.run.append_event("sample", phase=self.phase, step=step, **group)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        logs = dict(logs or {})
        if any(k in logs for k in SUMMARY_KEYS):
            self.run.append_event("summary", phase=self.phase, step=state.global_step, **logs)
            return
        if any(k.startswith("eval_") for k in logs):
            self.run.append_event("eval", phase=self.phase, step=state.global_step, **logs)
            return
        self.last_metrics = logs
        shown = " ".join(f"{k}={logs[k]:.4g}" for k in SHOWN_KEYS if isinstance(logs.get(k), float))
        log.info("%s step %s/%s %s", self.phase, state.global_step, state.max_steps, shown)
        self.run.append_event("metric", phase=self.phase, step=state.global_step,
                              total_steps=state.max_steps, **self.eta(state), **logs)
        if self.alerts is not None:
            self.alerts.observe_metrics(logs)
            for alert in self.alerts.take():
                log.warning("alert at step %s: %s %s", state.global_step, alert.message,
                            alert.advice)
                self.run.append_event("alert", phase=self.phase, step=state.global_step,
                                      **alert.to_event())

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not folder.is_dir() or not state.is_world_process_zero:  # rank 0 marks it complete
            return
        write_json_atomic(folder / CHECKPOINT_MARKER, {
            "step": state.global_step, "phase": self.phase, "metrics": self.last_metrics})
        self.run.append_event("checkpoint", phase=self.phase, step=state.global_step,
                              path=str(folder.relative_to(self.run.path)))
