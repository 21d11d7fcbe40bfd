"""The inference engine: recently used models kept loaded, and one generation at a time on them.

Guarantees: at most `max_models` models stay loaded, and while more than one is loaded their weights
stay within `max_bytes` (the least recently used go first and are freed: Python references dropped,
llama.cpp contexts closed, the CUDA cache emptied); one model larger than the budget still loads on
its own. A prompt is formatted by `core.datasets.format_prompt` (system prompt + turns through the
chat template), the same function training uses, so a run is tested in the format it was trained on.
`generate` calls `on_token` with each piece of text as it is produced; the pieces add up to the
returned `text`. Temperature 0 is greedy and deterministic. `should_stop` ends generation at the
next token (`finish_reason` "cancelled").

Does not: run two generations at once (the worker queues them), batch, or share a base model
between two adapters (each pair is its own entry).
"""
from __future__ import annotations

import gc
import logging
import math
import os
import sys
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Iterable

from core.config import TemplateSection
from core.inference.refs import InferenceError, Resolved, resolve_ref
from core.inference.sampling import IncrementalDecoder, Sampling

log = logging.getLogger("grpo_studio.inference")
Messages = list[dict[str, str]]


def default_max_bytes() -> int:
    """Half of this machine's memory."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


class InferenceEngine:
    """Loaded models (LRU) and generation. `threads`: CPU threads for llama.cpp and torch (default:
    every core); `n_ctx`: llama.cpp's context; `precision`: transformers weights ("auto")."""

    def __init__(self, max_models: int = 2, max_bytes: int | None = None,
                 precision: str = "auto", n_ctx: int | None = None, threads: int | None = None):
        self.max_models = max(1, max_models)
        self.max_bytes = max_bytes or default_max_bytes()
        self.precision, self.n_ctx, self.threads = precision, n_ctx, threads
        self._models: OrderedDict[tuple, Any] = OrderedDict()  # key -> loaded model, oldest first
        self._lock = threading.Lock()  # guards _models for `loaded()` from another thread

    # models ---------------------------------------------------------------------------------
    def model(self, resolved: Resolved) -> tuple[Any, float]:
        """The loaded model for `resolved` (loading it, evicting others) and the seconds spent
        loading (0 when it was already loaded)."""
        with self._lock:
            if resolved.key in self._models:
                self._models.move_to_end(resolved.key)
                return self._models[resolved.key], 0.0
            while len(self._models) >= self.max_models:
                self._evict_oldest()
        start = time.monotonic()
        loaded = self._load(resolved)
        with self._lock:
            self._models[resolved.key] = loaded
            while len(self._models) > 1 and self._total_bytes() > self.max_bytes:
                self._evict_oldest()
        log.info("loaded %s (%s, %.0f MiB) in %.1fs", resolved.describe(), loaded.backend,
                 loaded.nbytes / 2**20, time.monotonic() - start)
        return loaded, time.monotonic() - start

    def _load(self, resolved: Resolved) -> Any:
        if resolved.backend == "gguf":
            from core.inference.gguf import DEFAULT_N_CTX, load_gguf
            return load_gguf(resolved, self.n_ctx or DEFAULT_N_CTX, self.threads)
        from core.inference.hf import load_hf
        if self.threads:
            import torch
            torch.set_num_threads(self.threads)  # process-wide: the worker holds one engine
        return load_hf(resolved, self.precision)

    def _total_bytes(self) -> int:
        return sum(m.nbytes for m in self._models.values())

    def _evict_oldest(self) -> None:
        key, loaded = self._models.popitem(last=False)
        _free(loaded)
        log.info("unloaded %s", key[1] + (f" + {key[2]}" if key[2] else ""))

    def unload(self, ref: dict[str, Any] | None = None) -> int:
        """Free one model (`ref`) or all of them; how many were freed."""
        key = resolve_ref(ref).key if ref is not None else None
        with self._lock:
            keys = [k for k in self._models if key is None or k == key]
            for k in keys:
                _free(self._models.pop(k))
        return len(keys)

    def loaded(self) -> list[dict[str, Any]]:
        """The loaded models, least recently used first."""
        with self._lock:
            return [{"backend": k[0], "path": k[1], "adapter": k[2], "bytes": m.nbytes,
                     "precision": m.precision} for k, m in self._models.items()]

    # generation -------------------------------------------------------------------------------
    def generate(self, ref: dict[str, Any], messages: Messages | None = None,
                 prompt: str | None = None, *, temperature: float = 0.7, top_p: float = 1.0,
                 top_k: int = 0, max_tokens: int = 256, system_prompt: str | None = None,
                 seed: int | None = None, ignore_eos: bool = False, raw: bool = False,
                 on_token: Callable[[str], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Answer `messages` (or `prompt`, one user turn; with `raw`, the exact text to continue).
        `system_prompt` replaces the reference's own (a run's training system prompt); temperature
        0 is greedy; top_k 0 is off; `seed` repeats a sampled answer; `ignore_eos` generates all
        `max_tokens` (benchmarks). Returns text, tokens, seconds, tokens_per_second,
        first_token_seconds, finish_reason (stop | length | cancelled), prompt (the exact string
        the model saw), prompt_tokens, load_seconds, backend and precision."""
        sampling = Sampling.from_request({"temperature": temperature, "top_p": top_p,
                                          "top_k": top_k, "max_tokens": max_tokens, "seed": seed,
                                          "ignore_eos": ignore_eos})
        resolved = resolve_ref(ref)
        model, load_seconds = self.model(resolved)
        text = prompt if raw else self._chat_prompt(model, resolved.template,
                                                    _turns(messages, prompt), system_prompt)
        if not isinstance(text, str):
            raise InferenceError("a raw request needs a prompt string", "prompt")
        ids = model.tokenize(text, templated=not raw)
        _check_context(len(ids), sampling.max_tokens, model.context_length)
        result = _run(model, ids, sampling, on_token or (lambda piece: None),
                      should_stop or (lambda: False))
        result.update(prompt=text, prompt_tokens=len(ids), load_seconds=round(load_seconds, 3),
                      backend=model.backend, precision=model.precision)
        log.info("%s: %d tokens in %.2fs (%.1f tokens/s, %s)", resolved.describe(),
                 result["tokens"], result["seconds"], result["tokens_per_second"],
                 result["finish_reason"])
        return result

    def perplexity(self, ref: dict[str, Any], pairs: Any, system_prompt: str | None = None,
                   should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Perplexity of reference answers: each pair's `completion`, formatted as training's
        target (`format_response`: the template's markers around the reasoning and the answer),
        following its `prompt` formatted as in `generate`; only the completion's tokens count.
        Transformers models only (llama.cpp's Python binding does not expose the logits of a
        prompt cheaply)."""
        from core.datasets import format_response
        if not isinstance(pairs, list) or not pairs or not all(
                isinstance(p, dict) and isinstance(p.get("prompt"), str)
                and isinstance(p.get("completion"), str) for p in pairs):
            raise InferenceError("pairs must be a non-empty list of {prompt, completion}", "pairs")
        resolved = resolve_ref(ref)
        model, _ = self.model(resolved)
        if not hasattr(model, "completion_nll"):
            raise InferenceError("perplexity needs a transformers model (a run, a checkpoint, "
                                 "a base model or a merged export), not a GGUF file", "model")
        total, count, used = 0.0, 0, 0
        for pair in pairs:
            if should_stop is not None and should_stop():
                break
            prompt = self._chat_prompt(model, resolved.template,
                                       _turns(None, pair["prompt"]), system_prompt)
            prompt_ids = model.tokenize(prompt, templated=True)
            completion_ids = model.tokenize(format_response(pair["completion"],
                                                            resolved.template), templated=True)
            room = (model.context_length or 1 << 30) - len(prompt_ids)
            completion_ids = completion_ids[:max(room, 0)]
            if not completion_ids or not prompt_ids:
                continue
            total += model.completion_nll(prompt_ids, completion_ids)
            count += len(completion_ids)
            used += 1
        if not count:
            raise InferenceError("no pair had completion tokens to score", "pairs")
        return {"perplexity": math.exp(total / count), "mean_nll": total / count,
                "tokens": count, "pairs": used}

    def _chat_prompt(self, model: Any, template: TemplateSection, turns: Messages,
                     system_prompt: str | None) -> str:
        from core.datasets import format_prompt
        if turns and turns[0]["role"] == "system":  # the request's own system turn wins
            system_prompt = ""
        if system_prompt is not None:
            template = template.model_copy(update={"system_prompt": system_prompt})
        try:
            return format_prompt(model.formatter, template, turns)
        except InferenceError:
            raise
        except (ValueError, TypeError) as err:  # no chat template, or one that fails on the turns
            raise InferenceError(f"the chat template cannot format this conversation: "
                                 f"{str(err).strip().splitlines()[0] if str(err).strip() else err}"
                                 "; set a chat template or send a raw prompt",
                                 "template.chat_template") from err


def _turns(messages: Messages | None, prompt: str | None) -> Messages:
    if messages is None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise InferenceError("give a prompt (text) or messages (a list of turns)", "prompt")
        return [{"role": "user", "content": prompt}]
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and
            isinstance(m.get("content"), str) for m in messages):
        raise InferenceError("messages must be a non-empty list of {role, content} turns",
                             "messages")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _check_context(prompt_tokens: int, max_tokens: int, context: int | None) -> None:
    if context and prompt_tokens + max_tokens > context:
        raise InferenceError(f"the prompt ({prompt_tokens} tokens) plus max_tokens ({max_tokens}) "
                             f"exceed the model's context of {context} tokens; lower max_tokens "
                             "or shorten the prompt", "max_tokens")


def _run(model: Any, ids: list[int], sampling: Sampling, on_token: Callable[[str], None],
         should_stop: Callable[[], bool]) -> dict[str, Any]:
    decoder = IncrementalDecoder(model.decode)
    pieces: list[str] = []
    first: float | None = None
    count = 0
    start = time.monotonic()
    for piece in _pieces(decoder, model.stream(ids, sampling, should_stop)):
        if piece is None:  # one more token
            count += 1
            first = first if first is not None else time.monotonic() - start
            continue
        pieces.append(piece)
        on_token(piece)
    seconds = time.monotonic() - start
    finish = "cancelled" if should_stop() else "length" if count >= sampling.max_tokens \
        else "stop"
    return {"text": "".join(pieces), "tokens": count, "seconds": round(seconds, 4),
            "tokens_per_second": round(count / seconds, 2) if seconds > 0 else 0.0,
            "first_token_seconds": round(first, 4) if first is not None else None,
            "finish_reason": finish}


def _pieces(decoder: IncrementalDecoder, tokens: Iterable[int]) -> Iterable[str | None]:
    """None for every token, then its text piece when it has one; the remainder at the end."""
    for token in tokens:
        yield None
        piece = decoder.push(token)
        if piece:
            yield piece
    rest = decoder.flush()
    if rest:
        yield rest


def _free(loaded: Any) -> None:
    loaded.close()
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
