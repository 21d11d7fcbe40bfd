"""Reward alerts: the signs, read from TRL's log records and from the rewards' own outputs, that a
GRPO run is not learning, with what to do about each.

Kinds (each raised once, and again only after its condition has cleared):
- `no_signal`: in at least 90 % of prompt groups every generation got the same reward
  (`frac_reward_zero_std`), for 10 logged steps in a row: advantages are zero, nothing is learnt;
- `reward_at_min` / `reward_at_max`: one reward's mean sits at the lowest / highest score it can
  give, with no spread, for 10 steps: it is never (or always) satisfied, so it teaches nothing;
- `reward_missing`: a reward returned None or NaN for every row of a batch, or NaN for some rows
  (those rows are left out of its mean); raised once per reward;
- `kl_high`: the KL to the reference model rose above `KL_LIMIT`;
- `length_limit`: more than half of the completions were cut at max_completion_length, for 3 steps.

Does not: stop the run or change anything; alerts are advice written as `alert` events.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

WINDOW = 10
NO_SIGNAL_FRACTION = 0.9
KL_LIMIT = 1.0
CLIPPED_FRACTION = 0.5
CLIPPED_WINDOW = 3
FLAT = 1e-6


# kind -> (message template, advice): English, with {named} values; the monitor translates the
# template (tools/i18n.py extracts these texts) and fills in the event's `params`.
TEXTS: dict[str, tuple[str, str]] = {
    "no_signal": (
        "In {share} of prompt groups every generation got the same reward, for {steps} steps: "
        "there is no learning signal.",
        "Make the rewards able to tell generations apart: give partial credit, add a format or "
        "length reward, raise the temperature or num_generations, or use easier prompts."),
    "reward_at_min": (
        "Reward {reward} has stayed at its lowest score ({score}) for {steps} steps.",
        "No generation satisfies it, so it teaches nothing: check its parameters and the dataset "
        "mapping on the reward testing page, give partial credit, or teach the format first with "
        "a pre-training SFT phase."),
    "reward_at_max": (
        "Reward {reward} has stayed at its highest score ({score}) for {steps} steps.",
        "Every generation already satisfies it, so it teaches nothing more: make it stricter, "
        "lower its weight, or remove it."),
    "reward_none": (
        "Reward {reward} returned None or NaN for every completion of a batch.",
        "It gives no score at all: check that the dataset has the fields it needs (the reference "
        "answer is mapped) and test it on the reward testing page."),
    "reward_nan": (
        "Reward {reward} returned NaN for rows {rows} of a batch; those rows were left out of "
        "its mean.",
        "Return None for rows the reward does not apply to, and a finite number otherwise; try "
        "the failing completions on the reward testing page."),
    "kl_high": (
        "KL to the reference model is {kl}, above {limit}.",
        "The policy is drifting far from the base model: lower the learning rate, raise beta, or "
        "check that a reward is not being gamed."),
    "length_limit": (
        "{share} of completions were cut at the length limit for {steps} steps.",
        "Raise max_completion_length, or reward shorter answers (a length reward) so the model "
        "finishes its answers."),
}


@dataclass
class Alert:
    kind: str
    params: dict[str, str] = field(default_factory=dict)
    reward: str | None = None
    value: float | None = None
    level: str = "warning"

    @property
    def message(self) -> str:
        return TEXTS[self.template_kind][0].format(**self.params)

    @property
    def advice(self) -> str:
        return TEXTS[self.template_kind][1]

    @property
    def template_kind(self) -> str:
        return "reward_none" if self.kind == "reward_missing" and "rows" not in self.params \
            else "reward_nan" if self.kind == "reward_missing" else self.kind

    def to_event(self) -> dict[str, Any]:
        """`message` and `advice` in English, and `template` + `params` to translate them."""
        return {**asdict(self), "message": self.message, "advice": self.advice,
                "template": TEXTS[self.template_kind][0]}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


class AlertWatcher:
    """Feed it every GRPO log record (`observe_metrics`) and every reward batch
    (`observe_scores`); `take()` hands over the alerts raised since the last call."""

    def __init__(self, ranges: dict[str, tuple[float, float]] | None = None):
        self.ranges = ranges or {}   # reward name -> (lowest, highest) score; unknown: none
        self.history: dict[str, deque] = {}
        self.active: set[tuple[str, str | None]] = set()
        self.pending: list[Alert] = []

    def take(self) -> list[Alert]:
        pending, self.pending = self.pending, []
        return pending

    def _window(self, key: str, value: float | None, size: int = WINDOW) -> list[float] | None:
        """The last `size` values of `key` once it has that many, None until then."""
        values = self.history.setdefault(key, deque(maxlen=size))
        if value is None:
            values.clear()
            return None
        values.append(value)
        return list(values) if len(values) == size else None

    def _set(self, on: bool, alert: Alert) -> None:
        key = (alert.kind, alert.reward)
        if on and key not in self.active:
            self.active.add(key)
            self.pending.append(alert)
        elif not on:
            self.active.discard(key)

    def observe_metrics(self, logs: dict[str, Any]) -> None:
        self._no_signal(_number(logs.get("frac_reward_zero_std")))
        for key, value in logs.items():
            if key.startswith("rewards/") and key.endswith("/mean"):
                name = key[len("rewards/"):-len("/mean")]
                self._stuck(name, _number(value), _number(logs.get(f"rewards/{name}/std")))
        kl = _number(logs.get("kl"))
        if kl is not None:
            self._set(kl > KL_LIMIT, Alert(
                "kl_high", {"kl": f"{kl:.3g}", "limit": f"{KL_LIMIT:g}"}, value=kl))
        clipped = self._window("clipped", _number(logs.get("completions/clipped_ratio")),
                               CLIPPED_WINDOW)
        if clipped is not None:
            self._set(min(clipped) > CLIPPED_FRACTION, Alert(
                "length_limit", {"share": f"{clipped[-1]:.0%}", "steps": str(CLIPPED_WINDOW)},
                value=clipped[-1]))

    def _no_signal(self, fraction: float | None) -> None:
        values = self._window("no_signal", fraction)
        if values is None:
            return
        self._set(min(values) >= NO_SIGNAL_FRACTION, Alert(
            "no_signal", {"share": f"{values[-1]:.0%}", "steps": str(WINDOW)},
            value=values[-1]))

    def _stuck(self, name: str, mean: float | None, std: float | None) -> None:
        values = self._window(f"reward:{name}", mean)
        if values is None or name not in self.ranges:
            return
        low, high = self.ranges[name]
        flat = max(values) - min(values) <= FLAT and (std is None or std <= FLAT)
        for kind, end in (("reward_at_min", low), ("reward_at_max", high)):
            params = {"reward": name, "score": f"{end:g}", "steps": str(WINDOW)}
            self._set(flat and abs(values[-1] - end) <= FLAT,
                      Alert(kind, params, reward=name, value=values[-1]))

    def observe_scores(self, name: str, scores: list[float | None], nan_rows: list[int]) -> None:
        """`scores` as given to TRL (NaN already turned into None); `nan_rows`: where NaN was."""
        missing = sum(1 for s in scores if s is None)
        if scores and missing == len(scores):
            self._set(True, Alert("reward_missing", {"reward": name}, reward=name))
        elif nan_rows:
            rows = ", ".join(str(r + 1) for r in nan_rows[:5])
            self._set(True, Alert("reward_missing", {"reward": name, "rows": rows}, reward=name))
