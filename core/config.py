"""The run configuration: one schema for saved-config files, the API payload and the CLI input.

Guarantees: `validate_config` either returns a fully-defaulted `RunConfig` or raises `ConfigError`
whose `problems` each name the dotted field path and a reason a person can act on. Cross-field
checks (generation batch vs. num_generations, qlora without CUDA, SFT-only settings) run here,
before any model or dataset is loaded. Field descriptions are the help text the UI shows.

Does not: import torch, transformers or Flask (the web process imports this module), or check that
a model/dataset actually exists (that happens when the worker loads them).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

VARIANTS = ("grpo", "gspo", "dr_grpo", "dapo", "bnpo")
# What each variant means in TRL's GRPOConfig terms (TRL docs: GRPO, GSPO, Dr. GRPO, DAPO, BNPO).
# Explicit config values (beta, epsilon, epsilon_high) override these defaults.
VARIANT_SETTINGS: dict[str, dict[str, Any]] = {
    "grpo": {"loss_type": "grpo", "beta": 0.04, "epsilon": 0.2},
    # sequence-level ratios only differ from token-level ones off-policy: TRL's GSPO recipe
    # reuses each generation batch for 4 optimizer steps
    "gspo": {"loss_type": "grpo", "importance_sampling_level": "sequence", "beta": 0.0,
             "epsilon": 3e-4, "epsilon_high": 4e-4, "steps_per_generation_factor": 4},
    "dr_grpo": {"loss_type": "dr_grpo", "scale_rewards": "none", "beta": 0.0, "epsilon": 0.2},
    "dapo": {"loss_type": "dapo", "beta": 0.0, "epsilon": 0.2, "epsilon_high": 0.28,
             "mask_truncated_completions": True},
    "bnpo": {"loss_type": "bnpo", "beta": 0.04, "epsilon": 0.2},
}
# A subset of transformers' SchedulerType and OptimizerNames that is safe on every backend;
# tests/core/test_config.py checks that they stay valid names for the installed transformers.
# (cosine_with_min_lr, warmup_stable_decay and reduce_lr_on_plateau need arguments we do not
# collect yet, so they are left out rather than failing after the model has loaded.)
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
              "constant_with_warmup", "inverse_sqrt")
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "adafactor", "sgd", "adagrad", "rmsprop",
              "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "lion_8bit", "paged_lion_8bit")
CUDA_ONLY_OPTIMIZERS = ("adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "lion_8bit",
                        "paged_lion_8bit")


# Problems found by our own checks: code -> English template (%-style). A problem carries its code
# and params too, so the web app can show it in the reader's language (routes/i18n.py).
MESSAGES = {
    "unknown_choice": "unknown value %(value)s; choose one of: %(allowed)s",
    "generation_batch": "the generation batch (%(how)s = %(batch)s) must be divisible by "
                        "num_generations %(num_generations)s; change one of them",
    "needs_reward": "GRPO needs at least one reward function",
    "clip_range": "the upper clip range %(high)s is below the lower one %(low)s (for "
                  "%(variant)s); set both",
    "sft_pretraining": "SFT pre-training is a phase before GRPO; with algorithm 'sft' set "
                       "training.* instead and turn pre_training off",
    "needs_cuda": "%(what)s needs an NVIDIA GPU with CUDA; use %(instead)s on this machine",
    "two_validation_sets": "a validation file and validation_split %(fraction)s both hold out "
                           "rows; set validation_split to 0 to use the file, or clear the file",
    "multi_gpu": "multi_gpu trains on several GPUs: choose at least two in compute.gpu_ids, or "
                 "turn multi_gpu off",
    "gpu_ids_multi": "%(count)s GPUs are chosen: turn compute.multi_gpu on to train on all of "
                     "them (data-parallel), or choose one",
    "gpu_ids_unique": "each GPU may be chosen once (%(ids)s)",
}


def problem(field: str, code: str, **params: Any) -> dict[str, Any]:
    return {"field": field, "message": MESSAGES[code] % params, "code": code, "params": params}


class ConfigError(ValueError):
    """A config that cannot run; `problems` is a list of {"field", "message"} (plus "code" and
    "params" where the message has a known form)."""

    def __init__(self, problems: list[dict[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{p['field']}: {p['message']}" for p in problems))

    @property
    def field(self) -> str:
        return self.problems[0]["field"]


def _one_of(allowed: tuple[str, ...]) -> Any:
    def check(value: str) -> str:
        if value not in allowed:
            raise PydanticCustomError("unknown_choice", MESSAGES["unknown_choice"].replace(
                "%(", "{").replace(")s", "}"), {"value": repr(value), "allowed": ", ".join(allowed)})
        return value
    return check


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _help(text: str, **kwargs: Any) -> Any:
    return Field(description=text, **kwargs)


class ModelSection(_Section):
    name: str = _help("'default' (SmolLM2-135M-Instruct, works offline), a local folder, "
                      "or a Hugging Face Hub id.", default="default", min_length=1)
    method: Literal["lora", "qlora", "full"] = _help(
        "lora: small trainable adapter; qlora: lora on a 4-bit base (needs an NVIDIA GPU); "
        "full: train every weight (most memory).", default="lora")
    lora_rank: int = _help("LoRA rank r: adapter capacity.", default=16, ge=1, le=1024)
    lora_alpha: int = _help("LoRA alpha: adapter scale (often 2 x rank).", default=32, ge=1, le=4096)
    lora_dropout: float = _help("Dropout on the adapter input.", default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | None = _help(
        "Layers that get adapters; empty means the architecture's default "
        "(attention and MLP projections).", default=None)
    quantization: Literal["nf4", "fp4"] = _help(
        "4-bit weight format used by qlora.", default="nf4")
    backend: Literal["auto", "unsloth", "transformers"] = _help(
        "auto uses Unsloth when an NVIDIA GPU and unsloth are present, else transformers + PEFT.",
        default="auto")
    trust_remote_code: bool = _help("Run code shipped with a hub model (off unless you trust it).",
                                    default=False)


class FieldMapping(_Section):
    instruction: str | None = _help("Column holding the question / instruction.", default=None)
    input: str | None = _help("Optional column appended to the instruction.", default=None)
    response: str | None = _help("Column holding the answer used for SFT.", default=None)
    reference: str | None = _help(
        "Column holding the reference answer rewards compare against "
        "(defaults to the response; '#### N' answers give N).", default=None)
    messages: str | None = _help("Column holding a chat (list of role/content).", default=None)


class DatasetSection(_Section):
    source: Literal["builtin", "file", "hub"] = _help(
        "builtin: a sample shipped with the app; file: a local file; hub: a Hugging Face dataset.",
        default="builtin")
    path: str = _help("Sample name, file path, or hub id.", default="arithmetic", min_length=1)
    config_name: str | None = _help("Hub dataset configuration (subset), e.g. 'main'.", default=None)
    split: str = _help("Split to train on.", default="train", min_length=1)
    format: Literal["auto", "alpaca", "sharegpt", "messages", "completion", "qa",
                    "prompt_completion", "gsm8k"] = _help(
        "Shape of the rows; auto detects it from the column names.", default="auto")
    txt_mode: Literal["line", "block"] = _help(
        "For .txt files: one example per line, or per block of lines separated by a blank line.",
        default="line")
    mapping: FieldMapping = Field(default_factory=FieldMapping)
    max_samples: int | None = _help("Use at most this many rows (empty: all).", default=None, ge=1)
    validation_split: float = _help("Fraction held out for evaluation.", default=0.0, ge=0.0, le=0.5)
    validation_path: str | None = _help(
        "A file of validation rows (the split tool's validation part, say), read with this "
        "dataset's format and mapping and used for evaluation instead of validation_split.",
        default=None, min_length=1)
    skip_invalid_rows: bool = _help(
        "Skip rows that cannot be read or whose prompt is missing or empty (and say how many) "
        "instead of refusing the dataset.", default=False)


class TemplateSection(_Section):
    system_prompt: str = _help("System message given before every prompt.", default=(
        "Solve the problem. First think inside <think> </think>, "
        "then give only the final number inside <answer> </answer>."))
    reasoning_start: str = _help("Marker that opens the reasoning.", default="<think>")
    reasoning_end: str = _help("Marker that closes the reasoning.", default="</think>")
    solution_start: str = _help("Marker that opens the final answer.", default="<answer>")
    solution_end: str = _help("Marker that closes the final answer.", default="</answer>")
    chat_template: str | None = _help(
        "Jinja chat template; empty uses the model's own.", default=None)


class TrainingSection(_Section):
    epochs: float = _help("Passes over the dataset (ignored when max_steps > 0).",
                          default=1.0, gt=0.0, le=1000.0)
    max_steps: int = _help("Stop after this many optimizer steps; -1 means use epochs.",
                           default=-1, ge=-1)
    batch_size: int = _help("Completions per device per forward pass.", default=4, ge=1, le=4096)
    gradient_accumulation_steps: int = _help("Forward passes per optimizer step.",
                                             default=1, ge=1, le=1024)
    learning_rate: float = _help("Peak learning rate.", default=5e-5, gt=0.0, le=1.0)
    scheduler: str = _help("Learning-rate schedule after warmup.", default="constant_with_warmup")
    warmup_ratio: float = _help("Fraction of steps spent warming up.", default=0.0, ge=0.0, lt=1.0)
    weight_decay: float = _help("L2 weight decay.", default=0.0, ge=0.0, le=1.0)
    max_grad_norm: float = _help("Clip gradients to this norm.", default=1.0, gt=0.0)
    max_seq_length: int = _help("Longest tokenized example (prompt + answer).",
                                default=1024, ge=16, le=1_048_576)
    optimizer: str = _help("Optimizer.", default="adamw_torch")
    seed: int = _help("Random seed (same seed, same run).", default=42, ge=0)
    precision: Literal["auto", "bf16", "fp16", "fp32"] = _help(
        "auto: bf16 where the hardware has it, else fp32. fp16 needs an NVIDIA GPU.",
        default="auto")
    gradient_checkpointing: bool = _help("Trade compute for memory.", default=False)

    _known_scheduler = field_validator("scheduler")(_one_of(SCHEDULERS))
    _known_optimizer = field_validator("optimizer")(_one_of(OPTIMIZERS))


class AlgorithmSection(_Section):
    name: Literal["grpo", "sft"] = _help("grpo: reinforcement learning with rewards; "
                                         "sft: supervised fine-tuning only.", default="grpo")
    variant: str = _help("GRPO loss: grpo, gspo (sequence-level ratios), dr_grpo, dapo, bnpo.",
                         default="grpo")
    num_generations: int = _help("Completions written per prompt (the group).",
                                 default=4, ge=2, le=256)
    max_completion_length: int = _help("Longest completion in tokens.", default=128, ge=1)
    temperature: float = _help("Sampling temperature.", default=1.0, gt=0.0, le=5.0)
    top_p: float = _help("Nucleus sampling.", default=1.0, gt=0.0, le=1.0)
    top_k: int = _help("Top-k sampling; 0 disables.", default=0, ge=0)
    beta: float | None = _help("KL penalty against the reference model; 0 saves memory; "
                               "empty: the variant's default.", default=None, ge=0.0)
    epsilon: float | None = _help("Lower clip range; empty: the variant's default.",
                                  default=None, gt=0.0)
    epsilon_high: float | None = _help("Upper clip range; empty: the variant's default.",
                                       default=None, gt=0.0)
    num_iterations: int = _help("Optimisation passes per generation batch.", default=1, ge=1)

    _known_variant = field_validator("variant")(_one_of(VARIANTS))


class RewardEntry(_Section):
    name: str = _help("Registered reward id, or a custom reward's name.", min_length=1)
    weight: float = _help("Weight in the total reward.", default=1.0)
    params: dict[str, Any] = Field(default_factory=dict)
    source: str | None = _help("A custom reward's Python source (def reward(completions, "
                               "**kwargs)); it runs in a sandbox process.", default=None,
                               max_length=200_000)


class PreTrainingSection(_Section):
    enabled: bool = _help("Run a short SFT phase before GRPO to teach the format.", default=False)
    epochs: float = _help("SFT epochs.", default=1.0, gt=0.0, le=100.0)
    max_steps: int = _help("SFT step cap; -1 means use epochs.", default=-1, ge=-1)
    max_samples: int | None = _help("Rows used for SFT (empty: all).", default=None, ge=1)
    learning_rate: float = _help("SFT learning rate.", default=2e-4, gt=0.0, le=1.0)


class OutputSection(_Section):
    name: str = _help("Label of the run.", default="run", min_length=1, max_length=80)
    save_steps: int = _help("Save a checkpoint every N steps.", default=50, ge=1)
    logging_steps: int = _help("Log metrics every N steps.", default=1, ge=1)
    save_total_limit: int | None = _help(
        "Keep at most this many checkpoints (at least 2, so that a crash while one is being "
        "saved always leaves a complete one).", default=3, ge=2)
    sample_every: int = _help("Record rollout samples every N steps (0: never).", default=1, ge=0)


class ComputeSection(_Section):
    gpu_ids: list[Annotated[int, Field(ge=0)]] = _help(
        "GPUs to train on, as the system monitor numbers them; empty: the first.",
        default_factory=list)
    multi_gpu: bool = _help("Train on every chosen GPU at once (data-parallel, one process per "
                            "GPU through accelerate launch).", default=False)


class RunConfig(_Section):
    description: str = _help("What this config is for (shown in the configs list).", default="")
    model: ModelSection = Field(default_factory=ModelSection)
    dataset: DatasetSection = Field(default_factory=DatasetSection)
    template: TemplateSection = Field(default_factory=TemplateSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    algorithm: AlgorithmSection = Field(default_factory=AlgorithmSection)
    rewards: list[RewardEntry] = Field(default_factory=list)
    pre_training: PreTrainingSection = Field(default_factory=PreTrainingSection)
    output: OutputSection = Field(default_factory=OutputSection)
    compute: ComputeSection = Field(default_factory=ComputeSection)



def variant_settings(algorithm: "AlgorithmSection") -> dict[str, Any]:
    """The variant's TRL settings with the config's explicit beta/epsilon values applied."""
    settings = dict(VARIANT_SETTINGS[algorithm.variant])
    for name in ("beta", "epsilon", "epsilon_high"):
        if getattr(algorithm, name) is not None:
            settings[name] = getattr(algorithm, name)
    return settings


def _cross_field_problems(cfg: RunConfig, cuda: bool) -> list[dict[str, str]]:
    problems = []

    def add(field: str, code: str, **params: Any) -> None:
        problems.append(problem(field, code, **params))

    t, a = cfg.training, cfg.algorithm
    if a.name == "grpo":
        settings = variant_settings(a)
        factor = settings.get("steps_per_generation_factor", 1)
        batch = t.batch_size * t.gradient_accumulation_steps * factor
        if batch % a.num_generations:
            how = (f"batch_size {t.batch_size} x gradient_accumulation_steps "
                   f"{t.gradient_accumulation_steps}" + (f" x {factor} for {a.variant}"
                                                         if factor > 1 else ""))
            add("algorithm.num_generations", "generation_batch", how=how, batch=batch,
                num_generations=a.num_generations)
        if not cfg.rewards:
            add("rewards", "needs_reward")
        if settings.get("epsilon_high", settings["epsilon"]) < settings["epsilon"]:
            add("algorithm.epsilon_high", "clip_range", high=settings.get("epsilon_high"),
                low=settings["epsilon"], variant=a.variant)
        problems.extend(_reward_problems(cfg))
    if cfg.dataset.validation_path and cfg.dataset.validation_split:
        add("dataset.validation_path", "two_validation_sets",
            fraction=cfg.dataset.validation_split)
    if cfg.pre_training.enabled and a.name != "grpo":
        add("pre_training.enabled", "sft_pretraining")
    if not cuda:
        if cfg.model.method == "qlora":
            add("model.method", "needs_cuda", what="qlora", instead="'lora'")
        if t.precision == "fp16":
            add("training.precision", "needs_cuda", what="fp16", instead="'auto' or 'bf16'")
        if t.optimizer in CUDA_ONLY_OPTIMIZERS:
            add("training.optimizer", "needs_cuda", what=t.optimizer, instead="adamw_torch")
        if cfg.model.backend == "unsloth":
            add("model.backend", "needs_cuda", what="Unsloth", instead="'auto' or 'transformers'")
    c = cfg.compute
    if c.gpu_ids and not cuda:
        add("compute.gpu_ids", "needs_cuda", what="choosing GPUs", instead="no GPU (empty)")
    if len(set(c.gpu_ids)) != len(c.gpu_ids):
        add("compute.gpu_ids", "gpu_ids_unique", ids=", ".join(map(str, c.gpu_ids)))
    if c.multi_gpu and len(c.gpu_ids) < 2:
        add("compute.multi_gpu", "multi_gpu")
    if len(c.gpu_ids) > 1 and not c.multi_gpu:
        add("compute.gpu_ids", "gpu_ids_multi", count=len(c.gpu_ids))
    return problems


def _reward_problems(cfg: RunConfig) -> list[dict[str, str]]:
    """Every reward exists and its parameters are valid (checked by building it); a custom
    reward's source compiles (parsed, never run) and defines `reward`."""
    from rewards import CustomReward, RewardError, build_reward, get_spec
    problems = []
    for i, entry in enumerate(cfg.rewards):
        if entry.source is not None:
            try:
                CustomReward(entry.name, entry.source, entry.params)
            except RewardError as err:
                field = "source" if getattr(err, "kind", None) == "syntax" else "name"
                problems.append({"field": f"rewards.{i}.{field}", "message": str(err),
                                 **({"line": err.line} if getattr(err, "line", None) else {})})
            continue
        try:
            get_spec(entry.name)
        except RewardError as err:
            problems.append({"field": f"rewards.{i}.name", "message": str(err)})
            continue
        try:
            build_reward(entry.name, entry.params)
        except RewardError as err:
            problems.append({"field": f"rewards.{i}.params", "message": str(err)})
    return problems


def _pydantic_problems(err: ValidationError) -> list[dict[str, Any]]:
    problems = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "config"
        message = "unknown field (check the spelling)" if e["type"] == "extra_forbidden" \
            else e["msg"].removeprefix("Value error, ")
        params = {k: v if isinstance(v, (int, float, str)) else str(v)
                  for k, v in (e.get("ctx") or {}).items() if k != "error"}
        problems.append({"field": field, "message": message, "code": e["type"],
                         "params": params})
    return problems


def validate_section(section: type[_Section], data: Any, prefix: str) -> Any:
    """One section on its own (e.g. `dataset` for a preview); problems named `<prefix>.<field>`."""
    try:
        return section.model_validate({} if data is None else data)
    except ValidationError as err:
        problems = _pydantic_problems(err)
        for problem in problems:
            problem["field"] = prefix if problem["field"] == "config" else \
                f"{prefix}.{problem['field']}"
        raise ConfigError(problems) from None


def validate_config(data: dict[str, Any] | RunConfig, cuda: bool | None = None) -> RunConfig:
    """Parse and check a config; raise ConfigError listing every problem with its field."""
    if isinstance(data, RunConfig):
        data = data.model_dump()
    if not isinstance(data, dict):
        raise ConfigError([{"field": "config", "message": "must be a JSON object"}])
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_pydantic_problems(err)) from None
    if cuda is None:
        from core.hardware import cuda_available
        cuda = cuda_available()
    problems = _cross_field_problems(cfg, cuda)
    if problems:
        raise ConfigError(problems)
    return cfg


def load_config(path: str | Path, cuda: bool | None = None) -> RunConfig:
    """Read and validate a JSON config file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([{"field": "config", "message": f"file not found: {path}"}]) from None
    except json.JSONDecodeError as err:
        raise ConfigError([{"field": "config", "message":
                            f"{path} is not valid JSON (line {err.lineno}, column {err.colno}: "
                            f"{err.msg})"}]) from None
    return validate_config(data, cuda=cuda)


def save_config(cfg: RunConfig, path: str | Path) -> None:
    """Write a config as indented JSON, atomically."""
    from core.files import write_json_atomic
    write_json_atomic(Path(path), cfg.model_dump(mode="json"))


def config_schema() -> dict[str, Any]:
    """JSON schema with each field's help text (for forms and docs)."""
    return RunConfig.model_json_schema()
