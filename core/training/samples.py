"""The rewards as the trainer calls them: checked, given `prompt`, and recorded for `sample` events.

TRL calls each reward with `prompts`, `completions` and the dataset's other columns (and its own
control objects, which we hold back). We pass `prompt` too (DESIGN.md §5), turn chat-shaped
completions into text, and fail loudly, naming the reward, the row and the cause, when a reward
returns the wrong number of values, text or inf; NaN is skipped and reported as an alert.
The latest batch of scores is kept so the callback can write `sample` events.
"""
from __future__ import annotations

from typing import Any, Callable

from core.training.alerts import AlertWatcher
from rewards import check_scores


class SampleRecorder:
    """Holds the latest batch: prompts, completions, references and each reward's scores."""

    def __init__(self) -> None:
        self.batch: dict[str, Any] | None = None

    def record(self, reward_name: str, prompts: list[str], completions: list[str],
               references: list[Any] | None, scores: list[float | None]) -> None:
        if self.batch is None or self.batch["completions"] != completions:
            self.batch = {"prompts": prompts, "completions": completions,
                          "references": references, "scores": {}}
        self.batch["scores"][reward_name] = scores

    def discard(self) -> None:
        self.batch = None

    def take_groups(self, weights: dict[str, float], max_groups: int) -> list[dict[str, Any]]:
        """Up to `max_groups` prompt groups of the latest batch, then forget it."""
        batch, self.batch = self.batch, None
        if not batch:
            return []
        groups: dict[str, dict[str, Any]] = {}
        for i, prompt in enumerate(batch["prompts"]):
            if prompt not in groups and len(groups) == max_groups:
                continue
            group = groups.setdefault(prompt, {
                "prompt": prompt, "completions": [], "scores": {n: [] for n in batch["scores"]},
                "total": [],
                "reference": batch["references"][i] if batch["references"] else None})
            group["completions"].append(batch["completions"][i])
            for name, scores in batch["scores"].items():
                group["scores"][name].append(scores[i])
            group["total"].append(sum(weights.get(n, 1.0) * (s[i] or 0.0)
                                      for n, s in batch["scores"].items()))
        return list(groups.values())


def _as_text(completion: Any) -> str:
    if isinstance(completion, list):  # conversational: [{"role": "assistant", "content": ...}]
        return "".join(str(m.get("content", "")) for m in completion)
    return str(completion)


TRL_CONTROL_KEYS = ("trainer_state", "log_extra", "log_metric", "environments")


class TrainingReward:
    """Wraps a registered or custom reward for TRL: named like it, checked, recorded. A NaN score
    becomes None (the row is left out of that reward's mean) and raises a `reward_missing`
    alert, as does a batch the reward scored not at all."""

    def __init__(self, reward: Callable[..., list], recorder: SampleRecorder,
                 alerts: AlertWatcher | None = None):
        self.reward = reward
        self.recorder = recorder
        self.alerts = alerts
        self.__name__ = reward.__name__

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list:
        texts = [_as_text(c) for c in completions]
        prompt_texts = [_as_text(p) for p in prompts]
        kwargs = {k: v for k, v in kwargs.items() if k not in TRL_CONTROL_KEYS}
        kwargs.setdefault("prompt", prompt_texts)
        scores = list(self.reward(texts, **kwargs))
        nan_rows = check_scores(self.__name__, scores, len(texts))
        scores = [None if i in nan_rows else s for i, s in enumerate(scores)]
        if self.alerts is not None:
            self.alerts.observe_scores(self.__name__, scores, nan_rows)
        self.recorder.record(self.__name__, prompt_texts, texts, kwargs.get("reference"), scores)
        return scores
