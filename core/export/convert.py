"""llama.cpp's own tools, each in a child process: `convert_hf_to_gguf.py` and
`convert_lora_to_gguf.py` from the llama-cpp-python source distribution (fetched by `make install`
into `.cache/llama.cpp-<version>/`, run with the gguf-py bundled there), and
`llama_cpp.llama_model_quantize` / `llama_cpp.Llama` through core/export/llama_child.py.

Guarantees: every tool's output goes to the export's log; a tool that fails (even by aborting)
raises ExportError with its last lines and leaves no output file behind; the converter never
reaches the Hugging Face Hub (HF_HUB_OFFLINE). Does not: judge the result (tensor_types.py does).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from core.export.request import ExportError

REPO = Path(__file__).resolve().parents[2]
CONVERTER_ENV = "GRPO_STUDIO_LLAMA_CPP_DIR"   # another converter folder (tests, packagers)
MARKER = ".complete"
GGUF_OUTTYPES = ("f32", "f16", "bf16", "q8_0")   # what the converters write directly


def converter_dir() -> Path:
    default = REPO / ".cache" / f"llama.cpp-{version('llama_cpp_python')}"
    folder = Path(os.environ.get(CONVERTER_ENV) or default)
    if not (folder / MARKER).is_file() or not (folder / "convert_hf_to_gguf.py").is_file():
        raise ExportError(f"llama.cpp's GGUF converter is missing from {folder}; run "
                          f"'make install' (or 'python tools/fetch_converter.py') once")
    return folder


def run_tool(args: list[str], log_path: Path, what: str, output: Path | None = None,
             env: dict[str, str | None] | None = None) -> str:
    """Run `python ARGS`, appending its output to the log; its stdout. ExportError (and no
    `output` file left) when it fails. `env` adds variables (None removes one)."""
    child_env = {**os.environ, **(env or {})}
    child_env = {k: v for k, v in child_env.items() if v is not None}
    with log_path.open("ab") as log:
        log.write(f"\n$ {what}\n".encode())
        log.flush()
        done = subprocess.run([sys.executable, *args], stdout=subprocess.PIPE, stderr=log,
                              stdin=subprocess.DEVNULL, env=child_env,
                              cwd=REPO)
        log.write(done.stdout)
    if done.returncode != 0:
        if output is not None:
            output.unlink(missing_ok=True)
        raise ExportError(f"{what} failed (exit status {done.returncode}): "
                          f"{last_error_line(log_path)}; the full output is in {log_path.name}")
    return done.stdout.decode("utf-8", "replace")


def last_error_line(log_path: Path) -> str:
    lines = [ln.strip() for ln in log_path.read_text("utf-8", "replace").splitlines()
             if ln.strip() and not ln.startswith(("Writing", "INFO:"))]
    errors = [ln for ln in lines if "error" in ln.lower() or "failed" in ln.lower()]
    return ((errors or lines or ["no output"])[-1])[:300]


def converter_env(folder: Path) -> dict[str, str | None]:
    """The converter's own gguf-py (the one its llama.cpp revision expects), never the Hub."""
    return {"PYTHONPATH": str(folder / "gguf-py"), "HF_HUB_OFFLINE": "1", "NO_LOCAL_GGUF": None}


def hf_to_gguf(model_dir: Path, out_file: Path, outtype: str, log_path: Path) -> Path:
    if outtype not in GGUF_OUTTYPES:
        raise ValueError(f"the converter writes {GGUF_OUTTYPES}, not {outtype}")
    folder = converter_dir()
    env = converter_env(folder)
    run_tool([str(folder / "convert_hf_to_gguf.py"), str(model_dir), "--outfile", str(out_file),
              "--outtype", outtype], log_path, f"convert_hf_to_gguf.py --outtype {outtype}",
             out_file, env)
    return _exists(out_file, "convert_hf_to_gguf.py")


def lora_to_gguf(adapter_dir: Path, base_dir: Path, out_file: Path, outtype: str,
                 log_path: Path) -> Path:
    folder = converter_dir()
    env = converter_env(folder)
    run_tool([str(folder / "convert_lora_to_gguf.py"), str(adapter_dir), "--base", str(base_dir),
              "--outfile", str(out_file), "--outtype", outtype], log_path,
             f"convert_lora_to_gguf.py --outtype {outtype}", out_file, env)
    return _exists(out_file, "convert_lora_to_gguf.py")


def quantize(source: Path, out_file: Path, quantization: str, log_path: Path) -> Path:
    """`llama_cpp.llama_model_quantize` from `source` (f16/bf16 GGUF) to `quantization`."""
    run_tool(["-m", "core.export.llama_child", "quantize", str(source), str(out_file),
              quantization], log_path, f"llama_model_quantize {quantization}", out_file)
    return _exists(out_file, "llama_model_quantize")


def llama_generate(model: Path, prompt: str, log_path: Path, lora: Path | None = None,
                   max_tokens: int = 16) -> dict[str, Any]:
    """Load `model` (and a LoRA) in llama_cpp.Llama and complete `prompt` greedily: {"text",
    "prompt_tokens", "chat_template", "n_tokens"}."""
    args = ["-m", "core.export.llama_child", "generate", str(model), "--max-tokens",
            str(max_tokens)] + (["--lora", str(lora)] if lora else [])
    out = run_tool(args, log_path, f"llama_cpp.Llama {model.name}",
                   env={"GRPO_STUDIO_PROMPT": prompt})
    return json.loads(out.strip().splitlines()[-1])


def _exists(path: Path, tool: str) -> Path:
    if not path.is_file() or path.stat().st_size == 0:
        raise ExportError(f"{tool} reported success but wrote no {path.name}")
    return path
