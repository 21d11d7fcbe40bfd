"""The transformers backend: a causal LM (+ PEFT adapter) in eval mode, generating token by token.

Guarantees: weights load in the precision training would use on this machine (bf16 where the CPU
or GPU has it, else fp32; `precision` overrides), on the GPU when there is one; a PEFT adapter is
applied on top (not merged). The tokenizer comes from the adapter folder when training saved one
there, so the chat template is the one training used. `stream` yields generated token ids one by
one from `model.generate` (so every architecture's own generation code runs), leaves out the
end-of-turn token unless asked to go past it, and stops at the next token once `should_stop()` is
true. Greedy when the temperature is 0.

Does not: merge adapters, batch requests, or keep a prompt cache between requests.
"""
from __future__ import annotations

import copy
import queue
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from core.inference.refs import InferenceError, Resolved
from core.inference.sampling import Sampling

_END = object()


class HFModel:
    backend = "hf"

    def __init__(self, model: Any, tokenizer: Any, precision: str):
        self.model, self.tokenizer, self.precision = model, tokenizer, precision
        self.formatter = tokenizer  # what format_prompt renders with
        self.nbytes = sum(t.numel() * t.element_size()
                          for t in (*model.parameters(), *model.buffers()))
        self.context_length: int | None = getattr(model.config, "max_position_embeddings", None)

    def tokenize(self, prompt: str, templated: bool) -> list[int]:
        # a chat-formatted prompt already holds its special tokens
        return self.tokenizer(prompt, add_special_tokens=not templated)["input_ids"]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def completion_nll(self, prompt_ids: list[int], completion_ids: list[int]) -> float:
        """The summed negative log-likelihood of `completion_ids` following `prompt_ids`."""
        import torch
        ids = torch.tensor([prompt_ids + completion_ids], device=self.model.device)
        with torch.no_grad():
            logits = self.model(input_ids=ids).logits[0, :-1].float()
        start = len(prompt_ids) - 1
        return float(torch.nn.functional.cross_entropy(logits[start:], ids[0, 1:][start:],
                                                       reduction="sum"))

    def stream(self, ids: list[int], sampling: Sampling,
               should_stop: Callable[[], bool]) -> Iterator[int]:
        tokens: queue.Queue = queue.Queue()
        closed = threading.Event()
        kwargs = self._generate_kwargs(ids, sampling, tokens, lambda: closed.is_set() or
                                       should_stop())
        worker = threading.Thread(target=_generate, args=(self.model, kwargs, tokens),
                                  name="hf-generate", daemon=True)
        worker.start()
        try:
            while (item := tokens.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            closed.set()
            worker.join()

    def _generate_kwargs(self, ids: list[int], sampling: Sampling, tokens: queue.Queue,
                         stop: Callable[[], bool]) -> dict[str, Any]:
        import torch
        from transformers import StoppingCriteriaList
        config = copy.deepcopy(self.model.generation_config)
        eos = config.eos_token_id if config.eos_token_id is not None else \
            self.tokenizer.eos_token_id
        config.update(max_new_tokens=sampling.max_tokens, do_sample=not sampling.greedy,
                      pad_token_id=self.tokenizer.pad_token_id or _first(eos),
                      min_new_tokens=sampling.max_tokens if sampling.ignore_eos else None)
        if sampling.greedy:
            config.update(temperature=None, top_p=None, top_k=None)
        else:
            config.update(temperature=sampling.temperature, top_p=sampling.top_p,
                          top_k=sampling.top_k)
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        input_ids = torch.tensor([ids], device=self.model.device)
        return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
                "generation_config": config, "streamer": _QueueStreamer(tokens, eos),
                "stopping_criteria": StoppingCriteriaList([_StopWhen(stop)])}

    def close(self) -> None:
        self.model = self.tokenizer = None


def _generate(model: Any, kwargs: dict[str, Any], tokens: queue.Queue) -> None:
    try:
        model.generate(**kwargs)
    except BaseException as err:  # handed to the consumer, which raises it in its own thread
        tokens.put(err)
    finally:
        tokens.put(_END)


def _first(ids: Any) -> int | None:
    return ids[0] if isinstance(ids, (list, tuple)) else ids


class _QueueStreamer:
    """transformers streamer: the prompt (first call) is skipped, end-of-turn ids are left out."""

    def __init__(self, tokens: queue.Queue, eos: Any):
        self.tokens = tokens
        self.eos = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            if token not in self.eos:
                self.tokens.put(token)

    def end(self) -> None:
        pass


class _StopWhen:
    """A StoppingCriteria (duck-typed, so this module imports without transformers)."""

    def __init__(self, stop: Callable[[], bool]):
        self.stop = stop

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch
        return torch.full((input_ids.shape[0],), self.stop(), dtype=torch.bool,
                          device=input_ids.device)


def load_hf(resolved: Resolved, precision: str = "auto") -> HFModel:
    """Load `resolved` (an "hf" reference) ready to generate."""
    from core.hardware import cuda_available
    from core.models import choose_precision, resolve_model_source, torch_dtype
    cuda = cuda_available()
    precision = choose_precision(precision, cuda)
    source = resolve_model_source(resolved.path)
    model = _load_model(resolved, source, torch_dtype(precision))
    tokenizer = _load_tokenizer(resolved, source)
    if resolved.adapter:
        model = _apply_adapter(model, resolved)
    model.eval()
    if cuda:
        model.to("cuda")
    return HFModel(model, tokenizer, precision)


def _load_model(resolved: Resolved, source: str, dtype: Any) -> Any:
    from transformers import AutoModelForCausalLM

    from core.models import ModelError, allowed_remote_code, hub_error, require_safetensors
    try:
        require_safetensors(source)
        return AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype, use_safetensors=True,
            trust_remote_code=allowed_remote_code(resolved.trust_remote_code))
    except ModelError as err:
        raise InferenceError(str(err), "model.path") from None
    except OSError as err:
        raise InferenceError(str(hub_error(resolved.path, err)), "model.path") from err
    except ValueError as err:  # an architecture transformers does not know, a broken config
        raise InferenceError(f"could not load model {resolved.path!r}: "
                             f"{_first_line(err)}", "model.path") from err


def _load_tokenizer(resolved: Resolved, source: str) -> Any:
    from transformers import AutoTokenizer

    from core.models import allowed_remote_code
    adapter = Path(resolved.adapter) if resolved.adapter else None
    folder = str(adapter) if adapter and (adapter / "tokenizer_config.json").is_file() else source
    tokenizer = AutoTokenizer.from_pretrained(
        folder, trust_remote_code=allowed_remote_code(resolved.trust_remote_code))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _apply_adapter(model: Any, resolved: Resolved) -> Any:
    from peft import PeftModel

    from core.models import ModelError, require_safetensors
    try:
        require_safetensors(resolved.adapter, "adapter_model.safetensors")
    except ModelError as err:
        raise InferenceError(str(err), "model.adapter") from None
    try:
        return PeftModel.from_pretrained(model, resolved.adapter)
    except (RuntimeError, ValueError, KeyError) as err:  # shapes or modules that do not match
        raise InferenceError(f"the adapter {resolved.adapter} does not fit the base model "
                             f"{resolved.path!r}: {_first_line(err)}", "model.adapter") from err


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else type(err).__name__
