"""Datasets for the wizard and the datasets page: the list (bundled samples, public catalog,
uploads), uploads and their labels, a page of rows with the detected shape, one prompt formatted
exactly as training will see it, and the files the tools derive from an upload.

Guarantees: an upload is streamed (from werkzeug's spooled copy) to a temporary file in the
uploads folder and renamed to a
server-chosen name (`<id><ext>`) only once complete and within the size limit; nothing is left
behind otherwise; the original file name is kept as a label in `<id>.meta.json`. An upload or a
derived file is listed only once its `<id>.meta.json` exists, which is written (atomically) after
the data file is whole, so nothing half-written is ever listed; derived files (split parts,
converted or deduplicated copies) are written in a hidden scratch folder inside the uploads folder
and renamed into place. Previews stream: a page at `offset` reads only the rows up to it, and
broken rows met there are listed, not raised. Files are addressed by id; a request path is
accepted only for a data file directly inside the uploads folder (never a meta file or a scratch
folder) or a bundled sample. Labels never hold path separators or control characters. What a
killed server left (temporary files, scratch folders, data files without meta) is removed at
start (`remove_leftovers`). The formatted prompt uses
transformers' own chat-template renderer (a sandboxed Jinja environment) with the model's
template, so it is the string the trainer builds.

Does not: validate whole files at upload (the first `dataset_tools.UPLOAD_CHECK_ROWS` rows; the
full check is `DatasetTools.validate`), or import Flask.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import threading
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from core.config import DatasetSection, TemplateSection, validate_section
from core.datasets import (BUILTIN_DIR, DatasetError, builtin_path, detect_mapping,
                           format_response, hub_failure, to_example, with_system_prompt)
from core.files import PathRefused, read_json, resolve_inside, write_json_atomic
from core.formats import READABLE, count_rows, head_rows, iter_records
from core.formats.readers import unit_of
from core.run_dir import now_iso
from services.catalog import DATASETS, builtin_datasets, catalog_dataset
from services.dataset_tools import SAMPLE_ROWS, detection_of, inspect_upload, sample_rows

CHUNK = 1 << 20
META_SUFFIX = ".meta.json"  # beside `<id><ext>`; never `<id>.json`, which a JSON upload may be
UPLOAD_ID = re.compile(r"[0-9a-f]{16}")
STORED_NAME = re.compile(r"\b([0-9a-f]{16})\.[a-z]+\b")  # `<id><ext>` in a message
MAX_LABEL = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
UPLOAD_EXTRAS = ("fields", "shape", "confidence", "mapping", "errors", "invalid", "more",
                 "checked_rows", "complete")


class UploadTooLarge(ValueError):
    field = "file"


class DatasetNotFound(LookupError):
    """No upload (or bundled sample) with that id; `field` is the body key that named it."""

    def __init__(self, message: str, field: str = "id"):
        super().__init__(message)
        self.field = field


class DatasetLibrary:
    def __init__(self, uploads_dir: str | Path, max_upload_bytes: int):
        self.uploads_dir = Path(uploads_dir)
        self.max_upload_bytes = max_upload_bytes
        self._meta_lock = threading.Lock()   # one read-modify-write of a meta file at a time

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
                found.append(self._entry(meta))
        return sorted(found, key=lambda m: m.get("uploaded_at", ""), reverse=True)

    def entry(self, upload_id: Any) -> dict[str, Any]:
        """The listed entry of an upload, or DatasetNotFound."""
        return self._entry(self._meta(upload_id))

    def _entry(self, meta: dict[str, Any]) -> dict[str, Any]:
        """The listed entry; a split downloaded from the public catalog carries the catalog's
        field mapping (SQuAD's nested answers are not found by column names alone)."""
        catalog = catalog_dataset((meta.get("hub") or {}).get("id") or "")
        mapping = {"mapping": catalog["mapping"]} if catalog and "mapping" not in meta else {}
        return {"rows": None, **mapping, **meta, "source": "file",
                "path": str((self.uploads_dir / meta["file"]).resolve())}

    def _meta(self, upload_id: Any) -> dict[str, Any]:
        meta = None
        if isinstance(upload_id, str) and UPLOAD_ID.fullmatch(upload_id) \
                and self._inside(self._meta_path(upload_id).name):
            meta = read_json(self._meta_path(upload_id), default=None)
        if not isinstance(meta, dict) or not isinstance(meta.get("file"), str) \
                or not self._inside(meta["file"]) \
                or not (self.uploads_dir / meta["file"]).is_file():
            raise DatasetNotFound(f"no uploaded dataset with id {upload_id!r}; it may have been "
                                  "deleted (reload the list)")
        return meta

    def _inside(self, name: str) -> bool:
        """Whether `name` is a file of the uploads folder itself (never a symlink leading out)."""
        try:
            resolve_inside(self.uploads_dir, name)
        except PathRefused:
            return False
        return True

    def _meta_path(self, upload_id: str) -> Path:
        return self.uploads_dir / f"{upload_id}{META_SUFFIX}"

    def source_path(self, dataset_id: Any) -> Path:
        """The file of an upload or a bundled sample, by id (what the tools read)."""
        if isinstance(dataset_id, str) and dataset_id in {d["id"] for d in builtin_datasets()}:
            return builtin_path(dataset_id)
        if not isinstance(dataset_id, str) or not dataset_id:
            raise DatasetError("name the dataset (id from the list)", field="id")
        return self.uploads_dir / self._meta(dataset_id)["file"]

    def with_labels(self, message: str) -> str:
        """`message` with each upload's stored file name (`<id><ext>`) replaced by its label, as
        the user knows it."""
        def label(match: re.Match[str]) -> str:
            try:
                return self._meta(match.group(1))["name"]
            except DatasetNotFound:
                return match.group(0)
        return STORED_NAME.sub(label, message)

    def label_of(self, dataset_id: str) -> str:
        if UPLOAD_ID.fullmatch(dataset_id):
            return self._meta(dataset_id)["name"]
        return f"{dataset_id}.jsonl"

    # labels, deletion, download -------------------------------------------------------------
    def rename(self, upload_id: str, name: Any) -> dict[str, Any]:
        label = checked_label(name)
        with self._meta_lock:
            meta = {**self._meta(upload_id), "name": label}
            write_json_atomic(self._meta_path(upload_id), meta)
        return self._entry(meta)

    def delete(self, upload_id: str) -> str:
        """Unlisted first (its meta goes), then the file."""
        with self._meta_lock:
            meta = self._meta(upload_id)
            self._meta_path(upload_id).unlink(missing_ok=True)
        (self.uploads_dir / meta["file"]).unlink(missing_ok=True)
        return upload_id

    def download(self, upload_id: str) -> tuple[Path, str]:
        """(file, the name to save it under: its label, with the file's extension)."""
        meta = self._meta(upload_id)
        path = self.uploads_dir / meta["file"]
        label = meta["name"]
        if Path(label).suffix.lower() != path.suffix:
            label += path.suffix
        return path, label

    def remember_rows(self, dataset_id: str, rows: int) -> None:
        """Keep a row count a full read found (validation) in the entry; a bundled sample's or a
        deleted upload's is not kept."""
        with self._meta_lock:
            try:
                meta = self._meta(dataset_id)
            except DatasetNotFound:
                return
            if meta.get("rows") != rows:
                write_json_atomic(self._meta_path(dataset_id), {**meta, "rows": rows})

    def remove_leftovers(self) -> list[str]:
        """At start, before any upload can be in flight: what a killed server left behind —
        `.upload-*` temporary files, `.derived-*` scratch folders, and data files whose
        `.meta.json` was never written (never listed, so never used). Their names."""
        if not self.uploads_dir.is_dir():
            return []
        listed = {(read_json(m, default={}) or {}).get("file")
                  for m in self.uploads_dir.glob(f"*{META_SUFFIX}")}
        removed = []
        for path in self.uploads_dir.iterdir():
            leftover = path.name.startswith((".upload-", ".derived-")) or (
                path.is_file() and not path.name.endswith(META_SUFFIX)
                and not path.name.startswith(".") and path.name not in listed)
            if leftover:
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
                removed.append(path.name)
        return removed

    # uploads --------------------------------------------------------------------------------
    def save_upload(self, stream: BinaryIO, filename: str) -> dict[str, Any]:
        """Store the stream as a new upload: its entry, plus fields, detected shape and the
        first problems (`dataset_tools.inspect_upload`)."""
        suffix = Path(filename or "").suffix.lower()
        if suffix not in READABLE:
            raise DatasetError(f"cannot use {filename!r}: upload one of {', '.join(READABLE)}",
                               field="file")
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        upload_id = new_upload_id()
        target = self.uploads_dir / f"{upload_id}{suffix}"
        size = self._write_limited(stream, target)
        label = base_name(filename) or target.name
        try:
            found = inspect_upload(target)
            meta = self._new_meta(upload_id, target, label, found["rows"], found)
            write_json_atomic(self._meta_path(upload_id), {**meta, "size": size})
        except BaseException as err:
            target.unlink(missing_ok=True)
            if isinstance(err, DatasetError):  # named as the user named the file
                raise DatasetError(str(err).replace(target.name, label), field="file") from None
            raise
        return {**self._entry({**meta, "size": size}),
                **{key: found[key] for key in UPLOAD_EXTRAS}}

    def _new_meta(self, upload_id: str, target: Path, label: str, rows: int | None,
                  detected: dict[str, Any], derived_from: str | None = None) -> dict[str, Any]:
        meta = {"id": upload_id, "name": label[:MAX_LABEL], "file": target.name,
                "format": target.suffix.lstrip("."), "rows": rows, "size": target.stat().st_size,
                "uploaded_at": now_iso(), "shape": detected.get("shape"),
                "confidence": detected.get("confidence")}
        return {**meta, "derived_from": derived_from} if derived_from else meta

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

    # derived files --------------------------------------------------------------------------
    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """A hidden folder inside the uploads folder (same file system, so files written there
        rename into place); removed with whatever is left in it."""
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=".derived-", dir=self.uploads_dir))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def store_derived(self, files: list[tuple[Path, str, int | None]],
                      derived_from: str) -> list[dict[str, Any]]:
        """Make each whole file (in `scratch()`) an upload labelled `label` with `rows` rows:
        renamed to `<new id><ext>`, then its meta written. All or none are listed."""
        stored: list[tuple[Path, Path]] = []
        try:
            for path, label, rows in files:
                upload_id = new_upload_id()
                target = self.uploads_dir / f"{upload_id}{path.suffix}"
                os.replace(path, target)
                stored.append((target, self._meta_path(upload_id)))
                meta = self._new_meta(upload_id, target, label, rows,
                                      detection_of(sample_rows(target)), derived_from)
                write_json_atomic(stored[-1][1], meta)
        except BaseException:
            for target, meta_path in stored:
                meta_path.unlink(missing_ok=True)
                target.unlink(missing_ok=True)
            raise
        return [self.entry(meta_path.name[:-len(META_SUFFIX)]) for _, meta_path in stored]

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

    def preview(self, section: DatasetSection, samples: int = 5, offset: int = 0,
                txt_mode: str = "line") -> dict[str, Any]:
        """`samples` records from `offset` (records of the file, broken ones included, read
        streaming): the readable ones as `rows`, the broken ones as `problems`; `detection` and
        `suggested_mapping` come from the file's first rows, whatever the page."""
        rows, problems, more = self._page(section, offset, samples, txt_mode)
        sample = self._sample(section, rows, offset, txt_mode)
        fields = _fields(rows) or _fields(sample)
        try:
            mapping = detect_mapping(_fields(sample) or fields, section.mapping).model_dump()
        except DatasetError as err:
            mapping = {"error": str(err), "field": err.field}
        return {"rows": rows, "fields": fields, "suggested_mapping": mapping,
                "format": section.format, "stats": {"rows_shown": len(rows)},
                "offset": offset, "more": more, "problems": problems,
                "detection": detection_of(sample)}

    def _page(self, section: DatasetSection, offset: int, count: int, txt_mode: str
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        """(rows, broken rows as {"row", "message"}, whether records follow the page)."""
        if section.source == "hub":
            rows = _hub_rows(section, offset, count + 1)
            return rows[:count], [], len(rows) > count
        path = self._local_path(section)
        unit, rows, problems = unit_of(path), [], []
        for index, record in enumerate(islice(iter_records(path, txt_mode), offset,
                                              offset + count + 1)):
            if index == count:
                return rows, problems, True
            if record.row is None:
                problems.append({"row": record.number,
                                 "message": f"{unit} {record.number}: {record.problem}"})
            else:
                rows.append(record.row)
        return rows, problems, False

    def _sample(self, section: DatasetSection, page: list[dict[str, Any]], offset: int,
                txt_mode: str) -> list[dict[str, Any]]:
        """The first readable rows, to detect the shape from."""
        if section.source == "hub":
            return page if offset == 0 else _hub_rows(section, 0, SAMPLE_ROWS)
        return sample_rows(self._local_path(section), SAMPLE_ROWS, txt_mode)

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

    def head_rows_of(self, section: DatasetSection, count: int) -> list[dict[str, Any]]:
        """The first `count` rows of a bundled sample, an upload or a hub dataset."""
        return self._head(section, count)

    def formatted_texts(self, cfg: Any, row: dict[str, Any], model_dir: Path) -> tuple[str, str]:
        """(prompt string, SFT target) of one row as training formats them (a config's template
        and mapping, the model's chat template)."""
        example = to_example(row, detect_mapping(list(row), cfg.dataset.mapping))
        messages = with_system_prompt(cfg.template, example.prompt_messages)
        chat_template = cfg.template.chat_template or _model_chat_template(model_dir)
        prompt = _render(chat_template, messages) if chat_template else \
            "\n".join(m["content"] for m in messages)
        return prompt, format_response(example.response, cfg.template)

    def rows_of(self, section: DatasetSection) -> int | None:
        """How many rows training will read, when known without reading the file: a bundled
        sample's, an upload's counted rows, a catalog dataset's (capped by max_samples)."""
        rows = None
        if section.source == "builtin":
            rows = count_rows(builtin_path(section.path))
        elif section.source == "hub":
            rows = (catalog_dataset(section.path) or {}).get("rows")
        else:
            listed = [u for u in self.uploads() if u["path"] == str(Path(section.path).resolve())]
            rows = listed[0].get("rows") if listed else None
        return min(rows, section.max_samples) if rows and section.max_samples else rows

    def _head(self, section: DatasetSection, count: int) -> list[dict[str, Any]]:
        if section.source == "hub":
            return _hub_rows(section, 0, count)
        return head_rows(self._local_path(section), count)

    def _local_path(self, section: DatasetSection) -> Path:
        if section.source == "builtin":
            return builtin_path(section.path)
        for root in (self.uploads_dir, BUILTIN_DIR):
            try:
                path = resolve_inside(root, _name_within(section.path, root))
            except ValueError:
                continue
            inner = path.relative_to(root.resolve()).parts
            if path.is_file() and len(inner) == 1 and not path.name.startswith(".") \
                    and not path.name.endswith(META_SUFFIX):  # data files only, never scratch
                return path
        raise DatasetError("only uploaded files and bundled samples can be previewed here; "
                           "upload the file first")


def _name_within(path: str, root: Path) -> str:
    """The name under `root` of a path this app handed out absolute (an upload's `path`), for
    `resolve_inside`, which refuses absolute paths; anything else as it is."""
    candidate = Path(path)
    if not candidate.is_absolute():
        return path
    try:
        return str(candidate.relative_to(root.resolve()))
    except ValueError:
        return path  # elsewhere: refused by resolve_inside


def human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit in ("bytes", "KB") else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} GB"


def new_upload_id() -> str:
    return secrets.token_hex(8)


def base_name(filename: str) -> str:
    """The last part of a browser's file name (`../../x.jsonl`, `C:\\x.jsonl` -> `x.jsonl`)."""
    return _CONTROL.sub("", re.split(r"[\\/]", filename or "")[-1])[:MAX_LABEL]


def checked_label(name: Any) -> str:
    """A label a person gave: 1 to MAX_LABEL characters of text on one line."""
    label = name.strip() if isinstance(name, str) else ""
    if not label or len(label) > MAX_LABEL or _CONTROL.search(label):
        raise DatasetError(f"name must be 1 to {MAX_LABEL} characters on one line",
                           field="name")
    return label


def _fields(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _hub_rows(section: DatasetSection, offset: int, count: int) -> list[dict[str, Any]]:
    import datasets
    try:
        stream = datasets.load_dataset(section.path, section.config_name, split=section.split,
                                       streaming=True)
        return [dict(row) for row in islice(stream, offset, offset + count)]
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

