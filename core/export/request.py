"""An export's folder and its `export.json` (DESIGN.md §7, the request/state **contract**).

`EXPORT_DIR/export.json` holds the request (`export_id`, `format`, `quantization`, `source`,
`created_at`) and the state the worker keeps up to date (`status` queued|running|done|failed,
`progress` 0..1, `message`, `files` [{name, size}] relative to EXPORT_DIR, `verified`, `error`,
`pid`, `finished_at`).

Guarantees: `export.json` is only ever replaced atomically (core.files.write_json_atomic); a request
that `create_export` accepted names a known format, a quantization that format takes and a source
of one of the two shapes. Does not: run anything (core/export/runner.py does), import torch.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from core.files import read_json, write_json_atomic
from core.run_dir import now_iso

STATE_FILE = "export.json"
LOG_FILE = "export.log"
FORMATS = ("adapter", "merged", "gguf", "gguf_lora", "bitsandbytes")
GGUF_QUANTIZATIONS = ("f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0", "q3_k_m")
LORA_QUANTIZATIONS = ("f16", "bf16", "q8_0")
BNB_QUANTIZATIONS = ("int8", "nf4")  # bitsandbytes LLM.int8() and 4-bit NormalFloat
QUANTIZATIONS = {"gguf": GGUF_QUANTIZATIONS, "gguf_lora": LORA_QUANTIZATIONS,
                 "bitsandbytes": BNB_QUANTIZATIONS}
DEFAULT_QUANTIZATION = {"gguf": "q4_k_m", "gguf_lora": "f16", "bitsandbytes": "int8"}
STATUSES = ("queued", "running", "done", "failed")
EXPORT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ExportError(RuntimeError):
    """An export that cannot be done; the message says what to change."""


class ExportRequestError(ValueError):
    """A request that names an unknown format, quantization or source (`field` says which)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def normalize_quantization(fmt: str, quantization: str | None) -> str | None:
    """The quantization `fmt` will use: gguf, gguf_lora and bitsandbytes take one of theirs
    (DEFAULT_QUANTIZATION when none is given), the others take none."""
    if fmt not in FORMATS:
        raise ExportRequestError(f"format must be one of {', '.join(FORMATS)} (got {fmt!r})",
                                 "format")
    quant = quantization.lower() if isinstance(quantization, str) and quantization else None
    allowed = QUANTIZATIONS.get(fmt, ())
    if allowed and quant is None:
        return DEFAULT_QUANTIZATION[fmt]
    if not allowed and quant is not None:
        raise ExportRequestError(f"a {fmt} export takes no quantization (got {quant!r}); "
                                 f"quantizations apply to {', '.join(QUANTIZATIONS)}",
                                 "quantization")
    if allowed and quant not in allowed:
        raise ExportRequestError(f"a {fmt} export needs a quantization among "
                                 f"{', '.join(allowed)} (got {quantization!r})", "quantization")
    return quant


def normalize_source(source: dict[str, Any]) -> dict[str, Any]:
    """{"run_dir", "checkpoint"} or {"base_model", "adapter"}, with local paths made absolute."""
    if not isinstance(source, dict):
        raise ExportRequestError("source must be an object", "source")
    if set(source) <= {"run_dir", "checkpoint"} and source.get("run_dir"):
        run_dir = Path(source["run_dir"]).expanduser().resolve()
        if not (run_dir / "config.json").is_file():
            raise ExportRequestError(f"{run_dir} is not a run directory (no config.json)",
                                     "source.run_dir")
        return {"run_dir": str(run_dir), "checkpoint": source.get("checkpoint") or None}
    if set(source) <= {"base_model", "adapter"} and source.get("base_model"):
        base = str(source["base_model"])
        if Path(base).expanduser().is_dir():
            base = str(Path(base).expanduser().resolve())
        adapter = source.get("adapter") or None
        if adapter is not None:
            adapter_dir = Path(adapter).expanduser().resolve()
            if not (adapter_dir / "adapter_config.json").is_file():
                raise ExportRequestError(f"{adapter_dir} is not a PEFT adapter folder (no "
                                         f"adapter_config.json)", "source.adapter")
            adapter = str(adapter_dir)
        return {"base_model": base, "adapter": adapter}
    raise ExportRequestError('source must be {"run_dir", "checkpoint"} or '
                             '{"base_model", "adapter"}', "source")


def new_export_id(label: str, fmt: str, quantization: str | None) -> str:
    label = re.sub(r"^\d{8}-\d{6}-", "", label)  # a run id already starts with its date
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40] or "export"
    quant = f"-{quantization}" if quantization else ""
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{slug}-{fmt}{quant}-" \
           f"{secrets.token_hex(2)}"


def create_export(exports_root: str | Path, export_id: str, fmt: str,
                  quantization: str | None, source: dict[str, Any]) -> Path:
    """Write a new export's request (status queued) into `exports_root/export_id/`; its folder.
    ExportRequestError for a bad request, FileExistsError when the id is taken."""
    if not EXPORT_ID.match(export_id or ""):
        raise ExportRequestError(f"export id {export_id!r} must be letters, digits, '.', '_' or "
                                 f"'-'", "export_id")
    quant = normalize_quantization(fmt, quantization)
    request = {"export_id": export_id, "format": fmt, "quantization": quant,
               "source": normalize_source(source), "created_at": now_iso()}
    folder = Path(exports_root) / export_id
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir()
    write_json_atomic(folder / STATE_FILE, {
        **request, "status": "queued", "progress": 0.0, "message": "waiting to start",
        "files": [], "verified": {}, "error": None, "pid": None, "finished_at": None})
    return folder


def read_export(export_dir: str | Path) -> dict[str, Any]:
    state = read_json(Path(export_dir) / STATE_FILE)
    if not isinstance(state, dict):
        raise FileNotFoundError(f"{export_dir} is not an export folder (no {STATE_FILE})")
    return state


def update_export(export_dir: str | Path, **changes: Any) -> dict[str, Any]:
    state = {**read_export(export_dir), **changes}
    write_json_atomic(Path(export_dir) / STATE_FILE, state)
    return state


def list_files(export_dir: str | Path) -> list[dict[str, Any]]:
    """The export's result files (not its state, log or hidden work folder), sorted by name."""
    root = Path(export_dir)
    found = [p for p in root.rglob("*") if p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(root).parts)
             and p.name not in (STATE_FILE, LOG_FILE)]
    return [{"name": p.relative_to(root).as_posix(), "size": p.stat().st_size}
            for p in sorted(found)]
