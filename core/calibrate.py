"""A short measurement of a model on this machine, for the estimates (`core.estimate`).

`python -m core.calibrate MODEL --method lora --precision bf16 [--lora-rank 16]` loads the model as
training would (same loader, adapter and precision), then measures, and prints one JSON object:
- `load_seconds`: loading the model;
- `runtime_bytes`: memory in use once loaded, less the weights (the framework in RAM on a CPU;
  on a GPU torch's other allocations plus a typical 0.5 GB CUDA context);
- `train_seconds_per_token`, `train_bytes_per_token`: one forward and backward pass scoring
  every token through TRL's fused LM head (what SFT and GRPO do), at 2 x 128 tokens after a
  smaller warm-up; bytes are the peak's growth over the tokens in the first such pass (resident
  memory on a CPU, allocated memory on a GPU), seconds those of the second;
- `generate_seconds_per_step`: [a, b] with seconds per decoding step = a + b x batch, from
  greedy generation at batch 1 and 4.

Guarantees: takes well under a minute for small models (about 15 s for the default model on a
2-core CPU); random token ids, so no data is needed. Does not: measure evaluation, a KL
reference pass or multi-GPU, and runs in its own process (the web process never imports torch).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

TRAIN_TOKENS = (2, 128)      # batch, sequence
WARMUP_TOKENS = (1, 32)
GENERATED = 16
GENERATION_BATCHES = (1, 4)


def calibrate(model: str, method: str, precision: str, lora_rank: int = 16) -> dict[str, Any]:
    from core.config import ModelSection, TrainingSection
    from core.models import load_model
    started = time.perf_counter()
    loaded = load_model(ModelSection(name=model, method=method, lora_rank=lora_rank,
                                     lora_alpha=2 * lora_rank),
                        TrainingSection(precision=precision))
    load_seconds = time.perf_counter() - started
    model_, device = loaded.model, _device(loaded.model)
    _use_fused_head(model_)
    weights = sum(p.numel() * p.element_size() for p in model_.parameters())
    runtime = _memory_now(device) - weights + (CUDA_CONTEXT_BYTES if device == "cuda" else 0)
    _train_pass(model_, device, *WARMUP_TOKENS)
    _, peak_growth = _train_pass(model_, device, *TRAIN_TOKENS)   # the peak's growth, once
    seconds, _ = _train_pass(model_, device, *TRAIN_TOKENS)       # the time, warmed up
    tokens = TRAIN_TOKENS[0] * TRAIN_TOKENS[1]
    return {"model": model, "method": method, "precision": loaded.precision, "device": device,
            "load_seconds": round(load_seconds, 2), "runtime_bytes": int(max(runtime, 0)),
            "train_seconds_per_token": seconds / tokens,
            "train_bytes_per_token": int(peak_growth / tokens),
            "generate_seconds_per_step": _generation_line(model_, device)}


def _use_fused_head(model: Any) -> None:
    """Score tokens the way TRL's trainers do: through its fused LM head, which never holds the
    whole [tokens x vocab] logits (plain logits and a log-softmax where TRL lacks it)."""
    try:
        from trl.trainer.utils import add_fused_lm_head
        add_fused_lm_head(model.get_base_model() if hasattr(model, "get_base_model") else model)
        model._grpo_studio_fused_head = True
    except Exception:  # noqa: BLE001 - another TRL: measure with the plain head
        model._grpo_studio_fused_head = False


def _device(model: Any) -> str:
    return "cuda" if next(model.parameters()).is_cuda else "cpu"


def _memory_now(device: str) -> int:
    """Allocated GPU memory (what the peak is measured in), or this process's resident memory."""
    if device == "cuda":
        import torch
        return torch.cuda.memory_allocated()
    import psutil
    return psutil.Process().memory_info().rss


CUDA_CONTEXT_BYTES = 500 << 20   # the driver's share beyond torch's allocations, typically


def _train_pass(model: Any, device: str, batch: int, length: int) -> tuple[float, int]:
    """(seconds, growth of the memory peak) for one forward + backward at batch x length."""
    import torch
    ids = torch.randint(0, model.config.vocab_size, (batch, length), device=device)
    before = _memory_now(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    if getattr(model, "_grpo_studio_fused_head", False):
        loss = model(input_ids=ids, labels=ids, fused_lm_head=True).loss
    else:
        logits = model(input_ids=ids).logits.float()
        loss = -torch.log_softmax(logits, dim=-1).gather(-1, ids.unsqueeze(-1)).mean()
    loss.backward()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    model.zero_grad(set_to_none=True)
    return seconds, max(0, peak - before)


def _generation_line(model: Any, device: str) -> list[float]:
    """[a, b]: seconds per decoding step at batch n is about a + b x n."""
    import torch
    times = []
    model.eval()
    for batch in GENERATION_BATCHES:
        ids = torch.randint(0, model.config.vocab_size, (batch, 32), device=device)
        start = time.perf_counter()
        with torch.no_grad():
            model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                           max_new_tokens=GENERATED, min_new_tokens=GENERATED)
        times.append((time.perf_counter() - start) / GENERATED)
    model.train()
    (n1, t1), (n2, t2) = zip(GENERATION_BATCHES, times)
    slope = max(0.0, (t2 - t1) / (n2 - n1))
    return [max(0.0, t1 - slope * n1), slope]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--method", default="lora", choices=("lora", "qlora", "full"))
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--lora-rank", type=int, default=16)
    args = parser.parse_args(argv)
    result = calibrate(args.model, args.method, args.precision, args.lora_rank)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
