"""The llama.cpp backend: a GGUF file in `llama_cpp.Llama`, generating token by token.

Guarantees: the model loads with a bounded context (`n_ctx`, 4096 unless told), every available
CPU core (or `threads`), all layers on the GPU when llama.cpp was built with one, `verbose=False`.
Its chat template is the one in the file's metadata (`tokenizer.chat_template`) unless the reference
gives one, and renders through the same `format_prompt` as training, in llama.cpp's sandboxed Jinja
environment (the one its own chat handler uses). Each request starts from an empty KV cache, so
answers do not depend on what was asked before; greedy when the temperature is 0; generation stops
at end-of-generation tokens. A file llama.cpp cannot read raises `InferenceError` saying so.

Does not: apply a LoRA GGUF, use grammars, or keep a prompt cache between requests.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Callable, Iterator

from core.inference.refs import InferenceError, Resolved
from core.inference.sampling import Sampling

DEFAULT_N_CTX = 4096


def cpu_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class GGUFModel:
    backend = "gguf"
    precision = "gguf"

    def __init__(self, llm: Any, path: Path):
        self.llm = llm
        self.nbytes = path.stat().st_size
        meta = llm.metadata
        trained = meta.get(f"{meta.get('general.architecture')}.context_length", "")
        self.context_length = min(llm.n_ctx(), int(trained)) if trained.isdigit() else llm.n_ctx()
        self.formatter = ChatTemplate(llm)  # what format_prompt renders with

    def tokenize(self, prompt: str, templated: bool) -> list[int]:
        # a chat-formatted prompt already holds its special tokens (BOS included, if any)
        add_bos = not templated and self.llm._model.add_bos_token()
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)

    def decode(self, ids: list[int]) -> str:
        return self.llm.detokenize(ids).decode("utf-8", errors="replace")

    def stream(self, ids: list[int], sampling: Sampling,
               should_stop: Callable[[], bool]) -> Iterator[int]:
        import llama_cpp
        self.llm.reset()
        self.llm.set_seed(sampling.seed if sampling.seed is not None else random.getrandbits(31))
        vocab = self.llm._model.vocab
        tokens = self.llm.generate(ids, top_k=sampling.top_k, top_p=sampling.top_p, min_p=0.0,
                                   temp=0.0 if sampling.greedy else sampling.temperature,
                                   repeat_penalty=1.0)
        for count, token in enumerate(tokens, start=1):
            if not sampling.ignore_eos and llama_cpp.llama_vocab_is_eog(vocab, token):
                return
            yield token
            if count >= sampling.max_tokens or should_stop():
                return

    def close(self) -> None:
        self.llm.close()


class ChatTemplate:
    """Stands in for a tokenizer in `core.datasets.format_prompt`: renders the GGUF's template (or
    the one given) with its BOS/EOS texts."""

    def __init__(self, llm: Any):
        model = llm._model
        self.template = llm.metadata.get("tokenizer.chat_template")
        self.eos_token = _token_text(model, llm.token_eos())
        self.bos_token = _token_text(model, llm.token_bos())

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool = False,
                            add_generation_prompt: bool = True,
                            chat_template: str | None = None, **_: Any) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        template = chat_template or self.template
        if not template:
            raise InferenceError("this GGUF file has no chat template in its metadata; give "
                                 "one (model.chat_template) or send a raw prompt",
                                 "model.chat_template")
        formatter = Jinja2ChatFormatter(template, eos_token=self.eos_token,
                                        bos_token=self.bos_token,
                                        add_generation_prompt=add_generation_prompt)
        return formatter(messages=messages).prompt


def _token_text(model: Any, token: int) -> str:
    return model.token_get_text(token) if token != -1 else ""


def load_gguf(resolved: Resolved, n_ctx: int = DEFAULT_N_CTX,
              threads: int | None = None) -> GGUFModel:
    import llama_cpp
    path = Path(resolved.path)
    threads = threads or cpu_threads()
    try:
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads,
                              n_threads_batch=threads, verbose=False,
                              n_gpu_layers=-1 if llama_cpp.llama_supports_gpu_offload() else 0)
    except (ValueError, RuntimeError) as err:
        raise InferenceError(f"llama.cpp {llama_cpp.__version__} could not load {path.name}: "
                             f"{str(err).strip() or type(err).__name__}. The file may be "
                             "truncated, or of an architecture or quantization this llama.cpp "
                             "does not know; export it again", "model.path") from err
    return GGUFModel(llm, path)
