"""Generation settings shared by the backends, and turning token ids into streamed text pieces.

Guarantees: `Sampling.from_request` checks every setting and names the bad one; temperature 0
means greedy decoding. `IncrementalDecoder.push` returns, per token, the text it adds (empty while
a multi-byte character or a merge is incomplete); the pieces, with `flush()` at the end, add up to
the decoded text.

Does not: sample or run a model (the backends do).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from core.inference.refs import InferenceError

MAX_NEW_TOKENS = 32768


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0                # 0: off
    max_tokens: int = 256
    seed: int | None = None
    ignore_eos: bool = False      # keep going past the end-of-turn token (benchmarks)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @classmethod
    def from_request(cls, values: dict[str, Any]) -> "Sampling":
        """Settings from request fields; missing ones keep their defaults."""
        given = {k: values[k] for k in cls.__dataclass_fields__ if values.get(k) is not None}
        try:
            sampling = cls(**given)
            sampling.check()
        except (TypeError, ValueError) as err:
            raise InferenceError(str(err), _field_of(str(err))) from None
        return sampling

    def check(self) -> None:
        _number("temperature", self.temperature, 0.0, 10.0)
        _number("top_p", self.top_p, 0.0, 1.0, open_low=True)
        _integer("top_k", self.top_k, 0, 1_000_000)
        _integer("max_tokens", self.max_tokens, 1, MAX_NEW_TOKENS)
        if self.seed is not None:
            _integer("seed", self.seed, 0, 2**32 - 1)


def _number(name: str, value: Any, low: float, high: float, open_low: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number")
    if value > high or value < low or (open_low and value == low):
        bound = f"above {low}" if open_low else f"at least {low}"
        raise ValueError(f"{name} must be {bound} and at most {high} (got {value})")


def _integer(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high} (got {value})")


def _field_of(message: str) -> str | None:
    name = message.split(" ", 1)[0]
    return name if name in Sampling.__dataclass_fields__ else None


class IncrementalDecoder:
    """Text per token from a decode function over a growing id list (the method of Hugging Face's
    text-generation-inference: decode a short window twice and keep the difference)."""

    def __init__(self, decode: Callable[[list[int]], str]):
        self.decode = decode
        self.ids: list[int] = []
        self.prefix = 0   # window start: decoded context for the next piece
        self.read = 0     # ids up to here have been turned into pieces

    def push(self, token: int) -> str:
        self.ids.append(token)
        return self._advance(final=False)

    def flush(self) -> str:
        """What is left at the end (an incomplete character shows as U+FFFD)."""
        return self._advance(final=True)

    def _advance(self, final: bool) -> str:
        if self.read == len(self.ids):
            return ""
        before = self.decode(self.ids[self.prefix:self.read])
        after = self.decode(self.ids[self.prefix:])
        if len(after) > len(before) and (final or not after.endswith("\ufffd")):
            self.prefix, self.read = self.read, len(self.ids)
            return after[len(before):]
        return ""
