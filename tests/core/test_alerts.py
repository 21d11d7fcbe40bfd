"""Reward alerts from sequences of TRL log records: which alerts fire, when, and only once."""
from __future__ import annotations

import math

import pytest

from core.training.alerts import AlertWatcher


def feed(watcher: AlertWatcher, records: list[dict]) -> list[list[str]]:
    """The kinds raised after each record."""
    raised = []
    for record in records:
        watcher.observe_metrics(record)
        raised.append([a.kind for a in watcher.take()])
    return raised


def flat(n: int, **record) -> list[dict]:
    return [dict(record) for _ in range(n)]


CASES = [
    # every group got identical rewards for 10 steps: no learning signal, on the 10th step only
    (flat(12, frac_reward_zero_std=1.0), 9, ["no_signal"]),
    # 95 % of groups flat is still above the 90 % threshold
    (flat(10, frac_reward_zero_std=0.95), 9, ["no_signal"]),
    # 80 % of groups flat: there is signal, nothing fires
    (flat(12, frac_reward_zero_std=0.8), None, []),
    # nine flat steps then one with signal: the window restarts, nothing fires
    (flat(9, frac_reward_zero_std=1.0) + flat(1, frac_reward_zero_std=0.5)
     + flat(5, frac_reward_zero_std=1.0), None, []),
    # a [0, 1] reward at 0 with no spread for 10 steps: stuck at its minimum
    (flat(10, **{"rewards/acc/mean": 0.0, "rewards/acc/std": 0.0}), 9, ["reward_at_min"]),
    # ... at 1: stuck at its maximum
    (flat(10, **{"rewards/acc/mean": 1.0, "rewards/acc/std": 0.0}), 9, ["reward_at_max"]),
    # constant but in the middle of its range: not at an end, nothing fires
    (flat(12, **{"rewards/acc/mean": 0.5, "rewards/acc/std": 0.0}), None, []),
    # at 0 on average but with spread: still learning, nothing fires
    (flat(12, **{"rewards/acc/mean": 0.0, "rewards/acc/std": 0.2}), None, []),
    # a reward whose range is unknown (custom) is never called stuck
    (flat(12, **{"rewards/mine/mean": 0.0, "rewards/mine/std": 0.0}), None, []),
    # KL above the limit fires at once
    ([{"kl": 0.01}, {"kl": 3.0}], 1, ["kl_high"]),
    # more than half the completions cut at the limit for 3 steps
    (flat(3, **{"completions/clipped_ratio": 0.75}), 2, ["length_limit"]),
    # half is not "most"
    (flat(5, **{"completions/clipped_ratio": 0.5}), None, []),
    # NaN metrics (a reward that scored nothing) do not count towards a window
    (flat(12, frac_reward_zero_std=math.nan), None, []),
]


@pytest.mark.parametrize("records,at,kinds", CASES)
def test_alerts_fire_when_expected(records, at, kinds):
    raised = feed(AlertWatcher({"acc": (0.0, 1.0)}), records)
    expected = [[] for _ in records]
    if at is not None:
        expected[at] = kinds
    assert raised == expected


def test_an_alert_fires_again_only_after_its_condition_cleared():
    watcher = AlertWatcher()
    records = flat(12, frac_reward_zero_std=1.0) + flat(1, frac_reward_zero_std=0.2) \
        + flat(10, frac_reward_zero_std=1.0)
    raised = [i for i, kinds in enumerate(feed(watcher, records)) if kinds]
    assert raised == [9, 22]


def test_alerts_say_what_to_do():
    watcher = AlertWatcher({"acc": (0.0, 1.0)})
    feed(watcher, flat(9, frac_reward_zero_std=1.0))
    watcher.observe_metrics({"frac_reward_zero_std": 1.0})
    [alert] = watcher.take()
    event = alert.to_event()
    assert event["kind"] == "no_signal" and event["level"] == "warning"
    assert "no learning signal" in event["message"] and "partial credit" in event["advice"]


@pytest.mark.parametrize("scores,nan_rows,fires", [
    # a reward that scored no row of the batch
    ([None, None, None], [], True),
    # NaN for one row (already None in the scores TRL gets)
    ([1.0, None, 0.0], [1], True),
    # NaN for two rows of four: reported as NaN rows, not as "no score at all"
    ([None, 1.0, None, 0.0], [0, 2], True),
    # None for some rows only is normal (rows without a reference)
    ([1.0, None, 0.0], [], False),
])
def test_missing_scores(scores, nan_rows, fires):
    watcher = AlertWatcher()
    watcher.observe_scores("acc", scores, nan_rows)
    alerts = watcher.take()
    assert [a.kind for a in alerts] == (["reward_missing"] if fires else [])
    if fires:
        assert alerts[0].reward == "acc"
        assert ("rows" in alerts[0].params) == bool(nan_rows)
    watcher.observe_scores("acc", scores, nan_rows)
    assert watcher.take() == []  # once per reward
