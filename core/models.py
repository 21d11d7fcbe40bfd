"""Loading a model and tokenizer ready to train: resolve the name, pick backend, precision and
method (LoRA, QLoRA, full).

Guarantees: "default" is the offline SmolLM2-135M-Instruct (converted once, core/default_model.py);
a local folder loads as is; a hub id that cannot be fetched raises `ModelError` naming the id and
that the hub is unreachable. Unsloth is imported only when CUDA is present (and the config allows
it); otherwise transformers + PEFT. The tokenizer always has a pad token.

A hub id downloaded on the models page (services/model_cache.py) loads from its cache folder,
`<cache>/models/<owner>--<name>/`, without asking the hub again.

Only safetensors weights are loaded (`use_safetensors=True`; a local folder holding pickled weights
only is refused with `ModelError` before transformers sees it), since unpickling can run code. Code
shipped with a model runs only when `model.trust_remote_code` asks for it and this process was
started with GRPO_STUDIO_TRUST_REMOTE_CODE=1 (the server's and the CLI's --trust-remote-code);
`allowed_remote_code` is the one gate every loader (training, inference, export) goes through.

Does not: download with progress or manage the cache (the models page does), merge or export.
"""
from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import ModelSection, TrainingSection
from core.default_model import cache_root, ensure_default_model

REMOTE_CODE_ENV = "GRPO_STUDIO_TRUST_REMOTE_CODE"
PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
# A hub id as the models page takes it: owner/name of letters, digits, . _ - (never a path; like
# huggingface_hub's own check, no ".." and no "--", which the cache folder name uses).
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")

# LoRA targets per architecture (config.model_type); other architectures use PEFT's "all-linear".
DEFAULT_TARGET_MODULES = {
    **{t: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
       for t in ("llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe",
                 "gemma", "gemma2", "gemma3_text", "phi3", "olmo2", "granite", "smollm3")},
    "phi": ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
}


class ModelError(RuntimeError):
    """A model that cannot be loaded; the message names the model and what to do."""

    field = "model.name"


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    backend: str          # "unsloth" | "transformers"
    precision: str        # "bf16" | "fp16" | "fp32"
    source: str           # folder or hub id the weights came from


def allowed_remote_code(requested: bool) -> bool:
    """`trust_remote_code` for a loader: False unless asked for; asked for without this process's
    permission (REMOTE_CODE_ENV), a ModelError saying how to give it."""
    if requested and os.environ.get(REMOTE_CODE_ENV) != "1":
        raise ModelError("model.trust_remote_code is on, but this server (or command) was not "
                         "started with --trust-remote-code; restart it with that flag if you "
                         "trust the model's code, or turn the option off")
    return bool(requested)


def require_safetensors(folder: str | Path, weights: str = "*.safetensors") -> None:
    """A local weights folder holding pickled weights (.bin, .pt...) but no `weights` file is
    refused: pickles can run code when loaded. Hub ids and missing folders pass (loading checks)."""
    path = Path(folder)
    if not path.is_dir() or any(path.glob(weights)):
        return
    pickled = sorted(p.name for pattern in PICKLED_WEIGHTS for p in path.glob(pattern))
    if pickled:
        raise ModelError(f"{path} holds pickled weights ({', '.join(pickled[:3])}) but no "
                         f"safetensors; GRPO Studio loads only .safetensors weights from a "
                         f"folder (convert them with save_pretrained(safe_serialization=True))")


def is_hub_id(name: str) -> bool:
    return bool(HUB_ID.fullmatch(name)) and ".." not in name and "--" not in name


def hub_cache_dir(model_id: str) -> Path:
    """Where the models page puts hub id `model_id` (checked with `is_hub_id` first)."""
    return cache_root() / "models" / model_id.replace("/", "--")


def downloaded_model_dir(name: str) -> Path | None:
    """The cache folder of hub id `name` when it has been downloaded (or copied in), else None."""
    if not is_hub_id(name):
        return None
    folder = hub_cache_dir(name)
    return folder if (folder / "config.json").is_file() else None


def resolve_model_source(name: str) -> str:
    """'default' -> the converted cache folder; an existing folder -> itself; a downloaded hub id
    -> its cache folder; else the hub id (transformers fetches it)."""
    if name == "default":
        return str(ensure_default_model())
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if path.is_absolute() or name.startswith((".", "~")):
        raise ModelError(f"model folder not found: {path}")
    downloaded = downloaded_model_dir(name)
    return str(downloaded) if downloaded else name


def choose_precision(requested: str, cuda: bool) -> str:
    """'auto' -> bf16 where the hardware has it, else fp32."""
    if requested != "auto":
        return requested
    if cuda:
        import torch
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    from core.hardware import cpu_has_bf16
    return "bf16" if cpu_has_bf16() else "fp32"


def torch_dtype(precision: str) -> Any:
    import torch
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


def use_unsloth(section: ModelSection, cuda: bool) -> bool:
    if section.backend == "transformers" or not cuda:
        return False
    available = importlib.util.find_spec("unsloth") is not None
    if section.backend == "unsloth" and not available:
        raise ModelError("model.backend is 'unsloth' but unsloth is not installed "
                         "(pip install -r requirements-gpu.txt)")
    return available


def import_backend_first(section: ModelSection) -> None:
    """Unsloth patches transformers and TRL, so it must be imported before them."""
    from core.hardware import cuda_available
    if use_unsloth(section, cuda_available()):
        import unsloth  # noqa: F401


def default_target_modules(model_type: str) -> list[str] | str:
    return DEFAULT_TARGET_MODULES.get(model_type, "all-linear")


def load_model(section: ModelSection, training: TrainingSection,
               init_from: Path | None = None) -> LoadedModel:
    """The model ready for its method. `init_from` continues from an earlier phase's result
    (an adapter folder for LoRA/QLoRA, a model folder for full fine-tuning)."""
    from core.hardware import cuda_available
    cuda = cuda_available()
    precision = choose_precision(training.precision, cuda)
    source = resolve_model_source(section.name)
    if section.method == "full" and init_from is not None:
        source = str(init_from)
    if use_unsloth(section, cuda):
        from core.unsloth_backend import load_with_unsloth
        model, tokenizer = load_with_unsloth(section, training, source, precision, init_from)
        return LoadedModel(model, _ready_tokenizer(tokenizer), "unsloth", precision, source)
    model = _load_transformers(section, source, precision)
    tokenizer = _ready_tokenizer(_load_tokenizer(section, source))
    if section.method != "full":
        model = _with_adapter(model, section, init_from, training.gradient_checkpointing)
    return LoadedModel(model, tokenizer, "transformers", precision, source)


def hub_error(name: str, err: Exception) -> ModelError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or "connect" in str(err).lower() \
        or "resolve" in str(err).lower() or "offline" in str(err).lower()
    cause = "the Hugging Face Hub cannot be reached (offline?); use 'default' or a local folder" \
        if offline else str(err).strip().splitlines()[0]
    return ModelError(f"could not load model {name!r}: {cause}")


def _load_transformers(section: ModelSection, source: str, precision: str) -> Any:
    from transformers import AutoModelForCausalLM
    # full fine-tuning in fp16 keeps fp32 master weights (the grad scaler cannot unscale fp16)
    weights = "fp32" if section.method == "full" and precision == "fp16" else precision
    require_safetensors(source)
    kwargs: dict[str, Any] = {"dtype": torch_dtype(weights), "use_safetensors": True,
                              "trust_remote_code": allowed_remote_code(section.trust_remote_code)}
    if section.method == "qlora":
        from transformers import BitsAndBytesConfig
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type=section.quantization,
            bnb_4bit_compute_dtype=torch_dtype(precision), bnb_4bit_use_double_quant=True)
        kwargs["device_map"] = {"": 0}
    try:
        return AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except OSError as err:
        raise hub_error(section.name, err) from err


def _load_tokenizer(section: ModelSection, source: str) -> Any:
    from transformers import AutoTokenizer
    try:
        return AutoTokenizer.from_pretrained(
            source, trust_remote_code=allowed_remote_code(section.trust_remote_code))
    except OSError as err:
        raise hub_error(section.name, err) from err


def _ready_tokenizer(tokenizer: Any) -> Any:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _with_adapter(model: Any, section: ModelSection, init_from: Path | None,
                  gradient_checkpointing: bool) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
    if section.method == "qlora":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gradient_checkpointing)
    if init_from is not None:
        require_safetensors(init_from, "adapter_model.safetensors")
        return PeftModel.from_pretrained(model, str(init_from), is_trainable=True)
    targets = section.target_modules or default_target_modules(model.config.model_type)
    lora = LoraConfig(r=section.lora_rank, lora_alpha=section.lora_alpha,
                      lora_dropout=section.lora_dropout, target_modules=targets,
                      task_type="CAUSAL_LM")
    return get_peft_model(model, lora)
