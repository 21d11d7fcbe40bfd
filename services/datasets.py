"""Datasets for the wizard: the list (bundled samples, public catalog, uploads), uploads, a preview
of rows with the suggested field mapping, and one prompt formatted exactly as training will see it.

Guarantees: an upload is streamed to a temporary file in the uploads folder and renamed to a
server-chosen name (`<id><ext>`) only once complete and within the size limit; nothing is left
behind otherwise; the original file name is kept as a label in `<id>.meta.json`. Previews read
only the first rows. Files are addressed by id; a request path is accepted only inside the uploads folder
or the bundled samples. The formatted prompt uses transformers' own chat-template renderer (a
sandboxed Jinja environment) with the model's template, so it is the string the trainer builds.

Does not: validate whole files, deduplicate or split (the dataset-tools issue), or import Flask.
"""
from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from core.config import DatasetSection, TemplateSection, validate_section
from core.datasets import (BUILTIN_DIR, DatasetError, builtin_path, detect_mapping,
                           format_response, hub_failure, to_example, with_system_prompt)
from core.files import read_json, resolve_inside, write_json_atomic
from core.formats import READABLE, head_rows
from core.run_dir import now_iso
from services.catalog import DATASETS, builtin_datasets

CHUNK = 1 << 20
META_SUFFIX = ".meta.json"  # beside `<id><ext>`; never `<id>.json`, which a JSON upload may be


class UploadTooLarge(ValueError):
    pass


class DatasetLibrary:
    def __init__(self, uploads_dir: str | Path, max_upload_bytes: int):
        self.uploads_dir = Path(uploads_dir)
        self.max_upload_bytes = max_upload_bytes

    # listing --------------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        catalog = [{"id": d["id"], "name": d["name"], "format": "hub", "rows": None,
                    "source": "hub", "config_name": d["config_name"], "split": d["split"],
                    "mapping": d["mapping"], "rewards": d["rewards"],
                    "description": d["description"]} for d in DATASETS]
        return builtin_datasets() + catalog + self.uploads()

    def uploads(self) -> list[dict[str, Any]]:
        found = []
        for meta_path in sorted(self.uploads_dir.glob(f"*{META_SUFFIX}")):
            meta = read_json(meta_path, default=None)
            if isinstance(meta, dict) and (self.uploads_dir / meta.get("file", "")).is_file():
                found.append({**meta, "source": "file",
                              "path": str((self.uploads_dir / meta["file"]).resolve())})
        return sorted(found, key=lambda m: m.get("uploaded_at", ""), reverse=True)

    # uploads --------------------------------------------------------------------------------
    def save_upload(self, stream: BinaryIO, filename: str) -> dict[str, Any]:
        suffix = Path(filename or "").suffix.lower()
        if suffix not in READABLE:
            raise DatasetError(f"cannot use {filename!r}: upload one of {', '.join(READABLE)}",
                               field="file")
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        upload_id = secrets.token_hex(8)
        target = self.uploads_dir / f"{upload_id}{suffix}"
        size = self._write_limited(stream, target)
        meta = {"id": upload_id, "name": Path(filename).name[:200], "file": target.name,
                "format": suffix.lstrip("."), "size": size, "uploaded_at": now_iso()}
        try:
            rows = head_rows(target, 5)
            write_json_atomic(self.uploads_dir / f"{upload_id}{META_SUFFIX}", meta)
        except BaseException as err:
            target.unlink(missing_ok=True)
            if isinstance(err, DatasetError):
                raise DatasetError(str(err), field="file") from None
            raise
        return {**meta, "source": "file", "path": str(target.resolve()),
                "fields": _fields(rows), "rows": None, "errors": []}

    def _write_limited(self, stream: BinaryIO, target: Path) -> int:
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=self.uploads_dir)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > self.max_upload_bytes:
                        raise UploadTooLarge(f"the file is larger than the "
                                             f"{human_size(self.max_upload_bytes)} limit")
                    out.write(chunk)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    # previews -------------------------------------------------------------------------------
    def section_for(self, body: dict[str, Any]) -> DatasetSection:
        """A dataset section from `{"source", "path", "config", "split", "mapping"}`, or from
        `{"id"}` naming a bundled sample, a catalog entry or an upload."""
        if "id" in body and "path" not in body:
            found = [d for d in self.list() if d["id"] == body["id"]]
            if not found:
                raise DatasetError(f"no dataset with id {body['id']!r}", field="id")
            entry = found[0]
            body = {**body, "source": entry["source"], "path": entry.get("path", entry["id"]),
                    "config": entry.get("config_name"), "split": entry.get("split", "train")}
        return validate_section(DatasetSection, {
            "source": body.get("source", "file"), "path": body.get("path") or "",
            "config_name": body.get("config") or body.get("config_name"),
            "split": body.get("split") or "train", "mapping": body.get("mapping") or {}},
            "dataset")

    def preview(self, section: DatasetSection, samples: int = 5) -> dict[str, Any]:
        rows = self._head(section, samples)
        fields = _fields(rows)
        try:
            mapping = detect_mapping(fields, section.mapping).model_dump()
        except DatasetError as err:
            mapping = {"error": str(err), "field": err.field}
        return {"rows": rows, "fields": fields, "suggested_mapping": mapping,
                "format": section.format, "stats": {"rows_shown": len(rows)}}

    def formatted_example(self, section: DatasetSection, template: TemplateSection,
                          model_dir: Path | None) -> dict[str, Any]:
        """The first row as training formats it: prompt string, SFT target and reference."""
        rows = self._head(section, 1)
        if not rows:
            raise DatasetError(f"dataset {section.path!r} has no rows")
        example = to_example(rows[0], detect_mapping(_fields(rows), section.mapping))
        messages = with_system_prompt(template, example.prompt_messages)
        chat_template = template.chat_template or _model_chat_template(model_dir)
        prompt = _render(chat_template, messages) if chat_template else None
        return {"prompt": prompt, "messages": messages,
                "response": format_response(example.response, template),
                "reference": example.reference,
                "template_source": "config" if template.chat_template else
                ("model" if chat_template else None)}

    def _head(self, section: DatasetSection, count: int) -> list[dict[str, Any]]:
        if section.source == "hub":
            return _hub_head(section, count)
        return head_rows(self._local_path(section), count)

    def _local_path(self, section: DatasetSection) -> Path:
        if section.source == "builtin":
            return builtin_path(section.path)
        for root in (self.uploads_dir, BUILTIN_DIR):
            try:
                path = resolve_inside(root, section.path)
            except ValueError:
                continue
            if path.is_file():
                return path
        raise DatasetError("only uploaded files and bundled samples can be previewed here; "
                           "upload the file first")


def human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit in ("bytes", "KB") else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} GB"


def _fields(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _hub_head(section: DatasetSection, count: int) -> list[dict[str, Any]]:
    from itertools import islice

    import datasets
    try:
        stream = datasets.load_dataset(section.path, section.config_name, split=section.split,
                                       streaming=True)
        return [dict(row) for row in islice(stream, count)]
    except Exception as err:  # datasets raises many kinds; the person needs a cause to act on
        raise DatasetError(f"could not preview hub dataset {section.path!r}: "
                           f"{hub_failure(err)}") from None


def _model_chat_template(model_dir: Path | None) -> str | None:
    if model_dir is None:
        return None
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    config = read_json(model_dir / "tokenizer_config.json", default={}) or {}
    template = config.get("chat_template")
    return template if isinstance(template, str) else None


def _render(chat_template: str, messages: list[dict[str, str]]) -> str:
    from transformers.utils.chat_template_utils import render_jinja_template
    try:
        rendered, _ = render_jinja_template([messages], chat_template=chat_template,
                                            add_generation_prompt=True)
    except Exception as err:  # a user's template: show what Jinja said
        raise DatasetError(f"the chat template failed: {err}", field="template.chat_template") \
            from None
    return rendered[0]

