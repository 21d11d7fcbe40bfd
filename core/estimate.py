"""Peak memory and time of a run before it starts, from the model's shape, the config and (for
time) a calibration measured on this machine (`core.calibrate`).

Guarantees: `estimate_memory` adds up named parts, each in bytes, so the page can show where the
memory goes: the runtime (the framework in RAM on a CPU, the CUDA context on a GPU), the weights
(by method and precision: 4-bit QLoRA layers at about 0.53 bytes a parameter), the trainable
parameters' weights, gradients and AdamW state (fp32 for adapters; the weights' precision for full
fine-tuning), a reference copy of the weights for a KL penalty in full fine-tuning, activations of
one micro-batch (batch x sequence tokens, every layer's saved tensors, or only layer inputs with
gradient checkpointing; TRL's fused LM head never holds the whole logits), and for GRPO the
generation's KV cache; the peak is the persistent parts plus the larger of training and
generation. Optimizer state follows `training.optimizer` (8-bit, Adafactor, SGD hold less). `estimate_time` gives seconds per phase, split into generation and update for GRPO,
from measured seconds per trained token and per generated token; completions are assumed to reach
`max_completion_length` (an upper bound on that part). Pure arithmetic: no torch, no files.

Does not: know a hub model it has not read the config of (the caller refuses), count evaluation
time or data loading, or model allocator fragmentation beyond the calibration's measured runtime.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.config import RunConfig, variant_settings

GIB = 1 << 30
PRECISION_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}
NF4_BYTES = 0.53                  # 4 bits + double-quantized block constants, per parameter
# Optimizer state per trainable parameter, in bytes: None means "two moments in the parameter's
# dtype" (torch's AdamW keeps them like the parameter); 8-bit optimizers keep a byte a moment.
OPTIMIZER_STATE_BYTES: dict[str, float | None] = {
    "adamw_torch": None, "adamw_torch_fused": None, "paged_adamw_32bit": 8, "adamw_8bit": 2,
    "paged_adamw_8bit": 2, "lion_8bit": 1, "paged_lion_8bit": 1, "adafactor": 0.1, "sgd": 0,
    "adagrad": 4, "rmsprop": 4}
# Saved activations per token and layer, in elements: 38 x hidden + 8 x ffn (LoRA's inputs, the
# norms' and attention's fp32 copies included). TRL 1.x computes log-probabilities through a fused
# LM head, tile by tile, so the [tokens x vocab] logits are never held whole. Fitted to this CPU:
# the quickstart's peak grew 2.06 MB a token from batch 4 to batch 8 (2.05 MB here).
SAVED_PER_TOKEN_LAYER = (38, 8)
# The framework once loaded, until a calibration measures it (torch + transformers + TRL import
# to 0.5 GB of RAM; a CUDA context takes about 0.5 GB of GPU memory).
RUNTIME_BYTES = {"cpu": 0.5 * GIB, "cuda": 0.5 * GIB}
# The trainer beyond the model: data, TRL/accelerate state and memory the allocator keeps. On a CPU
# the quickstart at batch 4 peaked at 1.4 GB above its tokens' share, 0.55 GB above runtime,
# weights and adapter; on a GPU this lives in RAM, not in GPU memory.
TRAINER_BYTES = {"cpu": 0.55 * GIB, "cuda": 0}
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelShape:
    """What memory depends on, from a transformers config.json."""
    vocab: int
    hidden: int
    ffn: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    tied_embeddings: bool
    experts: int = 1               # mixture-of-experts: every expert's FFN is held

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ModelShape":
        """The shape of a config.json (GPT-2 style names too); `ValueError` naming what is
        missing when it is not a decoder this knows."""
        config = config.get("text_config", config)  # multimodal configs nest the language model
        try:
            hidden = int(_first(config, "hidden_size", "n_embd", "d_model"))
            heads = int(_first(config, "num_attention_heads", "n_head"))
            layers = int(_first(config, "num_hidden_layers", "n_layer"))
            vocab = int(config["vocab_size"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"its config.json does not say {err} (hidden size, heads, layers "
                             "and vocabulary are needed)") from None
        ffn = config.get("moe_intermediate_size") or config.get("intermediate_size") \
            or config.get("n_inner") or 4 * hidden
        return cls(vocab=vocab, hidden=hidden, ffn=int(ffn), layers=layers, heads=heads,
                   kv_heads=int(config.get("num_key_value_heads") or heads),
                   head_dim=int(config.get("head_dim") or hidden // heads),
                   tied_embeddings=bool(config.get("tie_word_embeddings", True if "n_embd" in
                                                   config else False)),
                   experts=int(config.get("num_local_experts") or config.get("num_experts")
                               or 1))

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each projection in one layer."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return {"q_proj": (self.hidden, q), "k_proj": (self.hidden, kv),
                "v_proj": (self.hidden, kv), "o_proj": (q, self.hidden),
                "gate_proj": (self.hidden, self.ffn), "up_proj": (self.hidden, self.ffn),
                "down_proj": (self.ffn, self.hidden)}

    def linear_parameters(self) -> int:
        ffn = {"gate_proj", "up_proj", "down_proj"}
        return self.layers * sum(i * o * (self.experts if name in ffn else 1)
                                 for name, (i, o) in self.linear_shapes().items())

    def embedding_parameters(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    def parameters(self) -> int:
        norms = self.layers * 2 * self.hidden + self.hidden
        return self.linear_parameters() + self.embedding_parameters() + norms

    def lora_parameters(self, rank: int, targets: list[str] | None) -> int:
        wanted = [n for n in self.linear_shapes() if not targets or n in targets]
        return self.layers * sum(rank * (i + o) for n, (i, o) in self.linear_shapes().items()
                                 if n in wanted)


def _first(config: dict[str, Any], *names: str) -> Any:
    for name in names:
        if config.get(name) is not None:
            return config[name]
    raise KeyError(names[0])


@dataclass(frozen=True)
class Lengths:
    """Typical token counts of the dataset's rows (the caller measures them)."""
    prompt: int
    response: int


def estimate_memory(cfg: RunConfig, shape: ModelShape, lengths: Lengths, precision: str,
                    device: str, calibration: dict[str, Any] | None = None) -> dict[str, Any]:
    """{"parts": {name: bytes}, "peak": bytes, "phase": the phase that peaks}; a calibration's
    measured runtime and bytes per trained token replace the defaults."""
    method = cfg.model.method
    # full fine-tuning in fp16 keeps fp32 weights (core.models: the grad scaler needs them)
    p = 4 if method == "full" and precision == "fp16" else PRECISION_BYTES[precision]
    calibration = calibration or {}
    persistent = {"runtime": calibration.get("runtime_bytes", RUNTIME_BYTES[device])
                  + TRAINER_BYTES[device], "weights": _weights(shape, method, p)}
    state = OPTIMIZER_STATE_BYTES.get(cfg.training.optimizer)
    if method == "full":
        persistent["gradients_optimizer"] = shape.parameters() * (p + (2 * p if state is None
                                                                       else state))
        if cfg.algorithm.name == "grpo" and variant_settings(cfg.algorithm).get("beta", 0):
            persistent["reference_weights"] = persistent["weights"]  # TRL keeps a frozen copy
    else:  # adapters are fp32 (PEFT upcasts them): weight, gradient, optimizer state
        trainable = shape.lora_parameters(cfg.model.lora_rank, cfg.model.target_modules)
        persistent["adapter_optimizer"] = trainable * (8 + (8 if state is None else state))
    phases = {}
    if cfg.algorithm.name == "sft" or cfg.pre_training.enabled:
        tokens = min(lengths.prompt + lengths.response, cfg.training.max_seq_length)
        phases["pre_training" if cfg.pre_training.enabled else "sft"] = \
            _training_bytes(cfg, shape, p, tokens, calibration)
    if cfg.algorithm.name == "grpo":
        a = cfg.algorithm
        sequence = lengths.prompt + a.max_completion_length
        training = _training_bytes(cfg, shape, p, sequence, calibration)
        generation = {"kv_cache": generation_batch(cfg) * sequence * 2 * shape.layers
                      * shape.kv_heads * shape.head_dim * p}
        phases["grpo"] = max(training, generation, key=lambda parts: sum(parts.values()))
    phase, transient = max(phases.items(), key=lambda item: sum(item[1].values()))
    parts = {**persistent, **transient}
    return {"parts": {k: int(v) for k, v in parts.items()}, "peak": int(sum(parts.values())),
            "phase": phase}


def _weights(shape: ModelShape, method: str, p: int) -> float:
    if method == "qlora":  # the projections in 4 bits; PEFT upcasts the rest to fp32 for k-bit
        return shape.linear_parameters() * NF4_BYTES + \
            (shape.parameters() - shape.linear_parameters()) * 4
    return shape.parameters() * p


def _training_bytes(cfg: RunConfig, shape: ModelShape, p: int, sequence: int,
                    calibration: dict[str, Any]) -> dict[str, float]:
    tokens = cfg.training.batch_size * sequence
    measured = calibration.get("train_bytes_per_token")
    if measured and not cfg.training.gradient_checkpointing:
        return {"activations_logits": tokens * measured}
    per_layer = SAVED_PER_TOKEN_LAYER[0] * shape.hidden + SAVED_PER_TOKEN_LAYER[1] * shape.ffn
    if cfg.training.gradient_checkpointing:  # layer inputs kept, one layer recomputed at a time
        saved = tokens * (shape.layers * shape.hidden + per_layer) * p
    else:
        saved = tokens * shape.layers * per_layer * p
    return {"activations": saved}


def generation_batch(cfg: RunConfig) -> int:
    """Completions generated together: TRL generates for `steps_per_generation` steps at once."""
    t = cfg.training
    factor = variant_settings(cfg.algorithm).get("steps_per_generation_factor", 1)
    return t.batch_size * t.gradient_accumulation_steps * factor


# time -------------------------------------------------------------------------------------------
def phase_steps(cfg: RunConfig, phase: str, rows: int | None) -> int | None:
    """Optimizer steps of a phase: max_steps, or epochs over `rows` counted the way TRL counts
    them (None when the rows are unknown). SFT: ceil(ceil(rows / batch) / accumulation) a
    epoch. GRPO: each generation batch holds batch x steps_per_generation completions, that is
    that many / num_generations prompts (partial batches dropped), and gives
    steps_per_generation x num_iterations micro-steps."""
    t = cfg.training
    if phase == "pre_training" and cfg.pre_training.max_steps > 0:
        return cfg.pre_training.max_steps
    if phase != "pre_training" and t.max_steps > 0:
        return t.max_steps
    if not rows:
        return None
    rows = math.ceil(rows * (1 - cfg.dataset.validation_split))
    if phase == "pre_training":
        rows = min(rows, cfg.pre_training.max_samples or rows)
        return math.ceil(cfg.pre_training.epochs * sft_steps_per_epoch(rows, t))
    if phase == "sft":
        return math.ceil(t.epochs * sft_steps_per_epoch(rows, t))
    a = cfg.algorithm
    factor = variant_settings(a).get("steps_per_generation_factor", 1)
    prompts_per_generation = t.batch_size * t.gradient_accumulation_steps * factor \
        / a.num_generations
    generations = math.floor(rows / prompts_per_generation)
    return math.ceil(t.epochs * generations * factor * a.num_iterations)


def sft_steps_per_epoch(rows: int, t: Any) -> int:
    return math.ceil(math.ceil(rows / t.batch_size) / t.gradient_accumulation_steps)


def estimate_time(cfg: RunConfig, lengths: Lengths, calibration: dict[str, Any],
                  rows: int | None) -> dict[str, Any]:
    """Seconds per phase ({"steps", "seconds", "generation_seconds"?, "update_seconds"?}) and
    in total, from a calibration's `train_seconds_per_token`, `generate_seconds_per_token`
    (a + b x batch, per decoding step) and `load_seconds`."""
    t = cfg.training
    phases: dict[str, dict[str, Any]] = {}
    sft_tokens = min(lengths.prompt + lengths.response, t.max_seq_length)
    per_update = calibration["train_seconds_per_token"]
    for phase in (["pre_training"] if cfg.pre_training.enabled else []) + \
            (["sft"] if cfg.algorithm.name == "sft" else []):
        steps = phase_steps(cfg, phase, rows)
        per_step = per_update * t.batch_size * t.gradient_accumulation_steps * sft_tokens
        phases[phase] = {"steps": steps, "seconds": steps * per_step if steps else None}
    if cfg.algorithm.name == "grpo":
        a = cfg.algorithm
        steps = phase_steps(cfg, "grpo", rows)
        batch = generation_batch(cfg)
        # one generation every steps_per_generation x num_iterations micro-steps
        generations_per_step = 1 / (variant_settings(a).get("steps_per_generation_factor", 1)
                                    * a.num_iterations)
        decode = calibration["generate_seconds_per_step"]
        generation = (decode[0] + decode[1] * batch) * a.max_completion_length \
            * generations_per_step
        tokens = t.batch_size * t.gradient_accumulation_steps * (lengths.prompt
                                                                 + a.max_completion_length)
        forwards = 1 + (1 / 3 if variant_settings(a).get("beta", 0) else 0)  # + reference pass
        update = per_update * tokens * forwards
        phases["grpo"] = {"steps": steps,
                          "generation_seconds": steps * generation if steps else None,
                          "update_seconds": steps * update if steps else None,
                          "seconds": steps * (generation + update) if steps else None}
    known = [p["seconds"] for p in phases.values()]
    loads = len(phases)  # each phase loads the model
    total = None if None in known else sum(known) + loads * calibration.get("load_seconds", 0)
    return {"phases": phases, "seconds": total}
