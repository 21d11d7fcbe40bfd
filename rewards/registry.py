"""The reward registry: the single list of reward functions for training, the catalog and testing.

A reward is a plain function `fn(completions: list[str], **kwargs) -> list[float | None]` (TRL's
signature); kwargs carry the dataset columns of each row (`prompt`, `reference`, ...). Modules
register functions with `@register(...)`, giving id, display name, category, description, parameters
(defaults and ranges) and the dataset fields they need. `build_reward` checks parameters and returns
a picklable callable whose `__name__` is the id, which TRL uses in `rewards/<id>/mean`.

Does not: run user-written code (custom rewards run in a sandbox process, never here).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

RewardFn = Callable[..., list]


@dataclass(frozen=True)
class Markers:
    """The run's reasoning/solution markers (from the config's `template`)."""
    reasoning_start: str = "<think>"
    reasoning_end: str = "</think>"
    solution_start: str = "<answer>"
    solution_end: str = "</answer>"


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RewardSpec:
    id: str
    name: str
    category: str
    description: str
    fn: RewardFn
    params: tuple[Param, ...] = ()
    needs: tuple[str, ...] = ()
    uses_markers: bool = False
    range: tuple[float, float] = (0.0, 1.0)

    def fields(self, params: dict[str, Any] | None = None) -> list[str]:
        """The dataset columns this reward reads: its `needs`, plus the column named by each
        parameter ending in `_field` (e.g. `tests_field` -> the row's test cases)."""
        params = params or {}
        named = [str(params.get(p.name, p.default)) for p in self.params
                 if p.name.endswith("_field")]
        return list(dict.fromkeys([*self.needs, *(n for n in named if n)]))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "category": self.category,
                "description": self.description, "needs": list(self.needs),
                "fields": self.fields(), "uses_markers": self.uses_markers,
                "range": list(self.range), "parameters": [asdict(p) for p in self.params]}


class RewardError(ValueError):
    """A reward that cannot be built or that misbehaved; the message names the reward."""


_REGISTRY: dict[str, RewardSpec] = {}


def register(id: str, *, name: str, category: str, description: str,
             params: tuple[Param, ...] = (), needs: tuple[str, ...] = (),
             uses_markers: bool = False, range: tuple[float, float] = (0.0, 1.0)
             ) -> Callable[[RewardFn], RewardFn]:
    """Decorator that adds a reward function to the registry under `id`. `range` is the lowest
    and highest score it gives (the training alerts tell when a reward is stuck at either)."""
    def add(fn: RewardFn) -> RewardFn:
        if id in _REGISTRY:
            raise RewardError(f"reward id {id!r} is registered twice")
        _REGISTRY[id] = RewardSpec(id, name, category, description, fn, params, needs,
                                   uses_markers, range)
        return fn
    return add


def get_spec(reward_id: str) -> RewardSpec:
    try:
        return _REGISTRY[reward_id]
    except KeyError:
        raise RewardError(f"unknown reward {reward_id!r}; available: "
                          f"{', '.join(sorted(_REGISTRY))}") from None


def list_rewards() -> list[dict[str, Any]]:
    """Catalog of every registered reward, sorted by category then id."""
    return [s.to_dict() for s in sorted(_REGISTRY.values(), key=lambda s: (s.category, s.id))]


class BoundReward:
    """A registered reward with its parameters fixed; picklable, named for TRL's logs."""

    def __init__(self, spec_id: str, params: dict[str, Any], name: str):
        self.spec_id = spec_id
        self.params = params
        self.__name__ = name

    def __call__(self, completions: list[str], **kwargs: Any) -> list[float | None]:
        return get_spec(self.spec_id).fn(completions, **{**kwargs, **self.params})

    def __repr__(self) -> str:
        return f"BoundReward({self.__name__!r}, {self.params!r})"


def _check_param(spec: RewardSpec, p: Param, value: Any) -> Any:
    where = f"reward {spec.id!r} parameter {p.name!r}"
    if p.choices is not None:
        if value not in p.choices:
            raise RewardError(f"{where}: {value!r} is not one of {', '.join(p.choices)}")
        return value
    if isinstance(p.default, bool):
        if not isinstance(value, bool):
            raise RewardError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(p.default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RewardError(f"{where}: expected a number, got {value!r}")
        if p.minimum is not None and value < p.minimum:
            raise RewardError(f"{where}: {value} is below the minimum {p.minimum}")
        if p.maximum is not None and value > p.maximum:
            raise RewardError(f"{where}: {value} is above the maximum {p.maximum}")
        return type(p.default)(value) if isinstance(p.default, float) else value
    return value


def build_reward(reward_id: str, params: dict[str, Any] | None = None,
                 markers: Markers | None = None, name: str | None = None) -> BoundReward:
    """A callable reward with checked parameters (defaults filled in) and the run's markers."""
    spec = get_spec(reward_id)
    params = dict(params or {})
    known = {p.name: p for p in spec.params}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise RewardError(f"reward {reward_id!r} has no parameter {', '.join(unknown)}; "
                          f"known: {', '.join(known) or 'none'}")
    resolved = {p.name: _check_param(spec, p, params.get(p.name, p.default)) for p in spec.params}
    if spec.uses_markers:
        resolved["markers"] = markers or Markers()
    return BoundReward(reward_id, resolved, name or reward_id)


def check_scores(name: str, scores: list[Any], expected: int) -> list[int]:
    """Raises RewardError (naming the reward, the row and the cause) unless `scores` holds one
    number or None per completion. Returns the rows (0-based) whose score is NaN: training
    skips and reports those, the testing page treats them as errors. Rows are 1-based in
    messages, as people count them."""
    if len(scores) != expected:
        raise RewardError(f"reward {name!r} returned {len(scores)} values for {expected} "
                          f"completions; it must return exactly one per completion")
    nan_rows = []
    for row, value in enumerate(scores):
        if value is None:
            continue
        try:
            if isinstance(value, (str, bytes)):
                raise TypeError
            value = float(value)
        except (TypeError, ValueError):
            raise RewardError(f"reward {name!r} returned {value!r:.60} for row {row + 1}; "
                              f"return a number (or None to skip the row)") from None
        if math.isnan(value):
            nan_rows.append(row)
        elif math.isinf(value):
            raise RewardError(f"reward {name!r} returned {value} for row {row + 1}; return a "
                              f"finite number (or None to skip the row)")
    return nan_rows


def unique_names(names: list[str]) -> list[str]:
    """Names for TRL's logs when a reward is used twice: `x`, `x_2`, `x_3`, …"""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique
