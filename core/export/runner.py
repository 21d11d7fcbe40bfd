"""Running one export described by `EXPORT_DIR/export.json`, in this process.

Per format: adapter (PEFT copy, loaded back in PEFT), merged (safetensors, logits checked against
base + adapter), gguf (merged model -> convert_hf_to_gguf.py -> llama_model_quantize where the
converter cannot write the type itself -> tensor types checked -> Modelfile -> loaded and run in
llama.cpp), gguf_lora (convert_lora_to_gguf.py, checked by loading it on an f16 GGUF of the base),
bitsandbytes (the merged model quantized to int8 or nf4, saved, reloaded and compared).

Guarantees: export.json goes queued -> running -> done | failed with progress and a message at each
step; `done` only after every check passed, with `files` and `verified`; `failed` with a one-line
`error` saying what to change, the traceback on stderr, and no result file left (intermediate
files live in `.work/`, removed at the end either way). Does not: queue or start processes
(services/exports.py does).
"""
from __future__ import annotations

import logging
import os
import shutil
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from core.export import convert, hf
from core.export.modelfile import modelfile_text, verify_modelfile
from core.export.request import (LOG_FILE, STATE_FILE, ExportError, ExportRequestError,
                                 list_files, normalize_quantization, read_export,
                                 update_export)
from core.export.source import ModelSource, resolve_source
from core.export.tensor_types import check_tensor_types
from core.run_dir import now_iso

log = logging.getLogger("grpo_studio.export")
Progress = Callable[[dict[str, Any]], None]


class ExportJob:
    """One export's folder, its state and progress reports."""

    def __init__(self, path: Path, on_progress: Progress | None = None):
        self.path, self.on_progress = Path(path), on_progress
        self.work = self.path / ".work"
        self.log_path = self.path / LOG_FILE

    def step(self, progress: float, message: str) -> None:
        state = update_export(self.path, progress=round(progress, 3), message=message)
        log.info("%3.0f%% %s", progress * 100, message)
        if self.on_progress:
            self.on_progress(state)

    def clean(self, keep_results: bool) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        if keep_results:
            return
        for path in self.path.iterdir():
            if path.name not in (STATE_FILE, LOG_FILE):
                shutil.rmtree(path) if path.is_dir() else path.unlink()


def run_export(export_dir: str | Path, on_progress: Progress | None = None) -> dict[str, Any]:
    """Run the export in `export_dir`; its final export.json (status done or failed)."""
    job = ExportJob(Path(export_dir), on_progress)
    request = read_export(job.path)
    update_export(job.path, status="running", pid=os.getpid(), error=None, finished_at=None,
                  files=[], verified={})
    try:
        job.clean(keep_results=False)
        job.work.mkdir()
        job.step(0.02, "reading the source")
        # the service writes requests too: check them the same way
        quant = normalize_quantization(request["format"], request.get("quantization"))
        src = resolve_source(request["source"])
        verified = EXPORTERS[request["format"]](job, src, quant)
        job.clean(keep_results=True)
        state = update_export(job.path, status="done", progress=1.0, message="done",
                              files=list_files(job.path), verified=verified,
                              finished_at=now_iso())
    except BaseException as err:  # the export must end with a readable state, whatever happened
        log.error("export failed: %s\n%s", err, traceback.format_exc())
        job.clean(keep_results=False)
        state = update_export(job.path, status="failed", message="failed", error=describe(err),
                              files=[], finished_at=now_iso())
        if not isinstance(err, Exception):
            raise
    finally:
        if job.on_progress:
            job.on_progress(read_export(job.path))
    return state


def describe(err: BaseException) -> str:
    from core.errors import describe_error
    if isinstance(err, (ExportError, ExportRequestError)):
        return str(err)
    if isinstance(err, KeyboardInterrupt):
        return "the export was stopped before it finished"
    return describe_error(err, None, None).replace("worker.log", "export.log")


def export_adapter(job: ExportJob, src: ModelSource, _quant: None) -> dict[str, Any]:
    job.step(0.1, "copying the adapter and loading it back with PEFT")
    return hf.export_adapter(src, job.path)


def export_merged(job: ExportJob, src: ModelSource, _quant: None) -> dict[str, Any]:
    job.step(0.1, "merging the adapter into the base model" if src.adapter_dir
             else "copying the model")
    return hf.export_merged(src, job.path)


def export_gguf(job: ExportJob, src: ModelSource, quant: str) -> dict[str, Any]:
    job.step(0.05, "merging the adapter into the base model" if src.adapter_dir
             else "preparing the model for the converter")
    merged = hf.converter_folder(src, job.work / "hf")
    direct = quant in convert.GGUF_OUTTYPES
    outtype = quant if direct else ("bf16" if hf.saved_dtype(src.model_dir) == "bfloat16"
                                    else "f16")
    target = job.path / f"model-{quant}.gguf"
    job.step(0.35, f"converting to GGUF ({outtype}) with llama.cpp's convert_hf_to_gguf.py")
    converted = convert.hf_to_gguf(job.work / "hf", target if direct else
                                   job.work / f"model-{outtype}.gguf", outtype, job.log_path)
    if not direct:
        job.step(0.6, f"quantizing to {quant} with llama_model_quantize")
        convert.quantize(converted, target, quant, job.log_path)
    job.step(0.75, "checking the tensor types")
    verified = checked_types(target, quant)
    job.step(0.8, "writing the Ollama Modelfile")
    tokenizer = hf.load_tokenizer(src)
    verified.update(write_modelfile(job, src, tokenizer, target.name))
    job.step(0.85, "loading the GGUF in llama.cpp and generating")
    verified.update(llama_check(job, target, tokenizer, src.system_prompt))
    if merged:
        verified["merge"] = {k: merged[k] for k in ("max_logit_diff", "tolerance", "dtype")}
    return verified


def checked_types(path: Path, quant: str) -> dict[str, Any]:
    """The tensor-type check; a file that fails it is deleted (never a mislabelled file)."""
    try:
        return check_tensor_types(path, quant)
    except Exception:
        path.unlink(missing_ok=True)
        raise


def write_modelfile(job: ExportJob, src: ModelSource, tokenizer: Any, gguf_name: str,
                    adapter_name: str | None = None) -> dict[str, Any]:
    from transformers import AutoConfig
    config = AutoConfig.from_pretrained(src.model_dir)
    context = getattr(config, "max_position_embeddings", None) or 2048
    path = job.path / "Modelfile"
    path.write_text(modelfile_text(gguf_name, tokenizer, src.system_prompt, context,
                                   adapter_name), encoding="utf-8")
    return {"modelfile": verify_modelfile(path, tokenizer)}


def llama_check(job: ExportJob, model: Path, tokenizer: Any, system_prompt: str | None,
                lora: Path | None = None) -> dict[str, Any]:
    prompt = hf.chat_prompt(tokenizer, system_prompt)
    result = convert.llama_generate(model, prompt, job.log_path, lora=lora)
    if result["n_tokens"] == 0:
        raise ExportError(f"llama.cpp loaded {model.name} but generated no token")
    expected = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return {"loads": True, "loader": "llama.cpp", "generated": result["text"],
            "tokens_match": result["prompt_tokens"] == expected,
            "template_embedded": result["chat_template"] == tokenizer.chat_template}


def export_gguf_lora(job: ExportJob, src: ModelSource, quant: str) -> dict[str, Any]:
    if src.adapter_dir is None:
        raise ExportError(f"{src.label} is a whole model, not a LoRA adapter; export it as "
                          f"'gguf'")
    job.step(0.05, f"converting the adapter to GGUF ({quant}) with convert_lora_to_gguf.py")
    lora = convert.lora_to_gguf(src.adapter_dir, src.model_dir, job.path / f"lora-{quant}.gguf",
                                quant, job.log_path)
    verified = lora_fields(lora, quant)
    job.step(0.3, "converting the base model to GGUF (f16) to load the adapter on")
    base_src = replace(src, adapter_dir=None)
    hf.converter_folder(base_src, job.work / "hf")
    base = convert.hf_to_gguf(job.work / "hf", job.path / "base-f16.gguf", "f16", job.log_path)
    job.step(0.7, "writing the Ollama Modelfile")
    tokenizer = hf.load_tokenizer(src)
    verified.update(write_modelfile(job, src, tokenizer, base.name, lora.name))
    job.step(0.8, "loading base + adapter in llama.cpp and generating")
    verified.update(llama_check(job, base, tokenizer, src.system_prompt, lora=lora))
    return verified


def lora_fields(path: Path, quant: str) -> dict[str, Any]:
    """A LoRA GGUF says it is one and holds A/B pairs of the requested type."""
    from collections import Counter

    from core.export.tensor_types import MIXES, read_tensors
    tensors, fields = read_tensors(path)
    counts = Counter(kind for _, kind, _ in tensors)
    pairs = sum(1 for name, _, _ in tensors if name.endswith(".lora_a"))
    if fields.get("general.type") != "adapter" or fields.get("adapter.type") != "lora" or \
            pairs == 0 or counts[MIXES[quant][0]] == 0:
        path.unlink(missing_ok=True)
        raise ExportError(f"{path.name} is not a {quant} LoRA adapter GGUF (type "
                          f"{fields.get('general.type')}/{fields.get('adapter.type')}, "
                          f"tensors {dict(counts)})")
    return {"adapter_type": "lora", "lora_pairs": pairs, "tensor_types": dict(counts),
            "lora_alpha": fields.get("adapter.lora.alpha")}


def export_bitsandbytes(job: ExportJob, src: ModelSource, quant: str) -> dict[str, Any]:
    job.step(0.05, "merging the adapter into the base model" if src.adapter_dir
             else "reading the model")
    merge = hf.converter_folder(src, job.work / "merged")
    job.step(0.4, f"quantizing to {quant} with bitsandbytes, saving and loading it back")
    verified = hf.export_bitsandbytes(src, job.work / "merged", job.path, quant)
    return {**verified, **({"max_logit_diff": merge["max_logit_diff"]}
                           if "max_logit_diff" in merge else {})}


EXPORTERS = {"adapter": export_adapter, "merged": export_merged, "gguf": export_gguf,
             "gguf_lora": export_gguf_lora, "bitsandbytes": export_bitsandbytes}
