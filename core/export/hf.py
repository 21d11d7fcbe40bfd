"""The transformers side of exports: the PEFT adapter, the merged model, and the folder the GGUF
converter reads.

Guarantees: an adapter export holds only the adapter's own files (no optimizer state, no TRL
reference adapter) plus the tokenizer with the chat template the run trained with, and it loads
with `PeftModel.from_pretrained` and generates; a merged export is safetensors + tokenizer + chat
template whose logits on a fixed chat prompt equal base + adapter within a tolerance (the largest
difference is recorded), saved in the base model's own dtype; a bitsandbytes export is that merged
model quantized (int8, nf4), saved, and reloaded with the same logits as in memory. Does not:
write GGUF (convert.py).
"""
from __future__ import annotations

import gc
import importlib.util
import os
import shutil
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from core.export.request import ExportError
from core.export.source import ModelSource

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin",
                 "README.md")
MODEL_FILES = ("*.safetensors", "*.safetensors.index.json", "config.json",
               "generation_config.json")
# largest logit difference allowed, relative to the largest logit, per saved dtype
TOLERANCE = {"float32": 1e-4, "float16": 2e-2, "bfloat16": 5e-2}
SAMPLE_QUESTION = "What is 7 + 5?"


def chat_messages(system_prompt: str | None, question: str = SAMPLE_QUESTION) -> list[dict]:
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return system + [{"role": "user", "content": question}]


def load_tokenizer(src: ModelSource) -> Any:
    """The tokenizer with the chat template the run trained with."""
    from transformers import AutoTokenizer

    from core.models import allowed_remote_code
    tokenizer = AutoTokenizer.from_pretrained(
        src.tokenizer_dir, trust_remote_code=allowed_remote_code(src.trust_remote_code))
    if src.chat_template:
        tokenizer.chat_template = src.chat_template
    if not tokenizer.chat_template:
        raise ExportError(f"the tokenizer in {src.tokenizer_dir} has no chat template; set "
                          f"template.chat_template in the run's config")
    return tokenizer


def chat_prompt(tokenizer: Any, system_prompt: str | None) -> str:
    return tokenizer.apply_chat_template(chat_messages(system_prompt), tokenize=False,
                                         add_generation_prompt=True)


def load_model(folder: Path, src: ModelSource, adapter: Path | None = None) -> Any:
    """fp32 on CPU: exports compare logits, and merging in low precision loses the adapter."""
    import torch
    from transformers import AutoModelForCausalLM

    from core.models import allowed_remote_code, require_safetensors
    require_safetensors(folder)
    model = AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float32, use_safetensors=True,
        trust_remote_code=allowed_remote_code(src.trust_remote_code))
    if adapter is not None:
        from peft import PeftModel
        require_safetensors(adapter, "adapter_model.safetensors")
        model = PeftModel.from_pretrained(model, str(adapter))
    return model.eval()


def logits(model: Any, tokenizer: Any, prompt: str) -> Any:
    import torch
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        return model(**ids).logits[0].float()


def generate(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int = 8) -> str:
    import torch
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    new = out[0, ids["input_ids"].shape[1]:]
    if len(new) == 0:
        raise ExportError("the exported model loaded but generated no token")
    return tokenizer.decode(new, skip_special_tokens=False)


def saved_dtype(model_dir: Path) -> str:
    """The dtype the base model is stored in (merged models are saved the same way)."""
    from transformers import AutoConfig
    config = AutoConfig.from_pretrained(model_dir)
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "float32"
    return str(dtype).removeprefix("torch.")


def copy_matching(source: Path, target: Path, patterns: tuple[str, ...]) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in sorted(source.iterdir()):
        if path.is_file() and any(fnmatch(path.name, p) for p in patterns):
            shutil.copy2(path, target / path.name)
            copied.append(target / path.name)
    return copied


def export_adapter(src: ModelSource, out: Path) -> dict[str, Any]:
    """The adapter's files + tokenizer into `out`; verified by loading it in PEFT."""
    if src.adapter_dir is None:
        raise ExportError(f"{src.label} is a whole model, not a LoRA adapter; export it as "
                          f"'merged' or 'gguf'")
    copy_matching(src.adapter_dir, out, ADAPTER_FILES)
    tokenizer = load_tokenizer(src)
    tokenizer.save_pretrained(out)
    model = load_model(src.model_dir, src, adapter=out)
    lora = sum(1 for name, _ in model.named_parameters() if "lora_" in name)
    if lora == 0:
        raise ExportError(f"PEFT loaded {out} but found no LoRA weights in it")
    text = generate(model, tokenizer, chat_prompt(tokenizer, src.system_prompt))
    del model
    gc.collect()
    return {"loads": True, "loader": "peft", "lora_tensors": lora, "generated": text,
            "base_model": str(src.model_dir)}


def export_merged(src: ModelSource, out: Path) -> dict[str, Any]:
    """Base + adapter merged (or a whole model copied) into `out`; verified by comparing logits
    of the saved model with those of the source on a fixed chat prompt."""
    tokenizer = load_tokenizer(src)
    prompt = chat_prompt(tokenizer, src.system_prompt)
    source = load_model(src.model_dir, src, adapter=src.adapter_dir)
    reference = logits(source, tokenizer, prompt)
    dtype = saved_dtype(src.model_dir)
    if src.adapter_dir is None:
        copy_matching(src.model_dir, out, MODEL_FILES)
    else:
        import torch
        merged = source.merge_and_unload()
        merged.to(getattr(torch, dtype)).save_pretrained(out)
        del merged
    del source
    gc.collect()
    tokenizer.save_pretrained(out)
    exported = load_model(out, src)
    if any("lora_" in name for name, _ in exported.named_parameters()):
        raise ExportError(f"the merged model in {out} still holds LoRA layers")
    diff = float((logits(exported, tokenizer, prompt) - reference).abs().max())
    tolerance = TOLERANCE.get(dtype, 5e-2) * max(1.0, float(reference.abs().max()))
    text = generate(exported, tokenizer, prompt)
    del exported
    gc.collect()
    if not diff <= tolerance:
        raise ExportError(f"the merged model's logits differ from base + adapter by {diff:.3g} "
                          f"(allowed {tolerance:.3g}); the merge is wrong, nothing was kept")
    return {"loads": True, "loader": "transformers", "generated": text, "dtype": dtype,
            "max_logit_diff": diff, "tolerance": tolerance,
            "merged_adapter": src.adapter_dir is not None}


def converter_folder(src: ModelSource, folder: Path) -> dict[str, Any]:
    """A transformers folder for convert_hf_to_gguf.py: the merged model (verified as above)
    when there is an adapter, else the model's weights linked beside the trained tokenizer."""
    if src.adapter_dir is not None:
        return export_merged(src, folder)
    folder.mkdir(parents=True, exist_ok=True)
    for path in src.model_dir.iterdir():
        if path.is_file() and any(fnmatch(path.name, p) for p in MODEL_FILES):
            os.symlink(path.resolve(), folder / path.name)
    load_tokenizer(src).save_pretrained(folder)
    return {}


BNB_LAYERS = {"int8": "Linear8bitLt", "nf4": "Linear4bit"}


def export_bitsandbytes(src: ModelSource, merged_dir: Path, out: Path,
                        quant: str) -> dict[str, Any]:
    """The verified merged model in `merged_dir` quantized with bitsandbytes (`int8` or `nf4`)
    and saved in transformers format into `out`. Verified by reloading the saved copy: its layers
    are bitsandbytes layers, its logits on the chat prompt equal those of the model quantized in
    memory, and it generates; how often its next-token choice agrees with the full-precision
    model is recorded."""
    tokenizer = load_tokenizer(src)
    prompt = chat_prompt(tokenizer, src.system_prompt)
    full = logits(load_model(merged_dir, src), tokenizer, prompt)
    quantized = _load_bnb(merged_dir, src, quant)
    in_memory = logits(quantized, tokenizer, prompt)
    quantized.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del quantized
    gc.collect()
    reloaded = _load_bnb(out, src, None)
    layers = sum(1 for m in reloaded.modules() if type(m).__name__ == BNB_LAYERS[quant])
    if layers == 0:
        raise ExportError(f"the saved {quant} copy loads without bitsandbytes layers")
    diff = float((logits(reloaded, tokenizer, prompt) - in_memory).abs().max())
    tolerance = 1e-3 * max(1.0, float(in_memory.abs().max()))
    if not diff <= tolerance:
        raise ExportError(
            f"the saved {quant} copy does not reload the same: its logits differ by {diff:.3g} "
            f"from the model quantized in memory ({_device()}). "
            + ("bitsandbytes 4-bit copies do not reload correctly on CPU; export nf4 on an "
               "NVIDIA GPU, or choose int8 or a GGUF quantization" if _device() == "cpu" else
               "nothing was kept"))
    text = generate(reloaded, tokenizer, prompt)
    del reloaded
    gc.collect()
    agreement = float((in_memory.argmax(-1) == full.argmax(-1)).float().mean())
    return {"loads": True, "loader": "transformers + bitsandbytes", "generated": text,
            "quantization": quant, "bnb_layers": layers, "device": _device(),
            "reload_logit_diff": diff, "top1_agreement_with_full_precision": round(agreement, 3),
            "merged_adapter": src.adapter_dir is not None}


def _device() -> str:
    from core.hardware import cuda_available
    return "cuda" if cuda_available() else "cpu"


def _load_bnb(folder: Path, src: ModelSource, quant: str | None) -> Any:
    """`folder` quantized on load (`quant`), or a saved bitsandbytes copy as it is (None)."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ExportError("bitsandbytes is not installed; pip install bitsandbytes==0.50.2 "
                          "(make install does)")
    options: dict[str, Any] = {}  # a saved copy carries its own quantization_config
    if quant == "int8":
        options["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    elif quant == "nf4":
        options["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    from core.models import allowed_remote_code, require_safetensors
    require_safetensors(folder)
    model = AutoModelForCausalLM.from_pretrained(
        folder, device_map=_device(), use_safetensors=True,
        trust_remote_code=allowed_remote_code(src.trust_remote_code), **options)
    return model.eval()
