"""The dataset tools as the web uses them: request values checked, a file's shape detected, its
rows validated (the whole file, or the first rows at upload), split and converted into new uploads.

Guarantees: every error is a `DatasetError` (or a `ConfigError` for a bad mapping) whose `field`
is the request body's key to fix (`mapping.instruction`, `format`, `target`, `validation`,
`model`...), never the engine's config path. Validation, split and conversion are the engine's own
(`core.formats`), so the web reports the same rows and messages as the CLI and training. Split
parts and converted copies become new uploads through `DatasetLibrary.store_derived`: written
under a hidden scratch folder in the uploads folder, then renamed to `<id><ext>` and listed only
once their `<id>.meta.json` exists, so a half-written file is never listed.

Does not: run in the background (statistics and deduplication do: `services.dataset_jobs`), or
read more than `UPLOAD_CHECK_ROWS` rows when checking an upload (the full check is `validate`).
"""
from __future__ import annotations

from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from core.config import FieldMapping, validate_section
from core.datasets import DatasetError, detect_mapping
from core.formats.convert import convert_file
from core.formats.readers import TXT_MODES, iter_records, unit_of
from core.formats.shapes import SHAPE_NAMES, detect_shape, mapping_for
from core.formats.split import split_file
from core.formats.validation import record_problems, resolve_mapping, validate_file

if TYPE_CHECKING:
    from services.datasets import DatasetLibrary

SAMPLE_ROWS = 20              # readable rows read to detect a shape and its columns
UPLOAD_CHECK_ROWS = 200_000   # rows checked while an upload is answered (about 1.5 s)
PROBLEM_LIMIT = 50
MAX_CHARS_LIMIT = 10_000_000
CONVERT_TO = ("jsonl", "csv")
# the engine names config paths; the web names the request body's keys
_BODY_FIELDS = (("dataset.mapping.", "mapping."), ("dataset.format", "format"),
                ("model.name", "model"), ("dataset.path", "id"))


# request values ------------------------------------------------------------------------------
def txt_mode_of(body: dict[str, Any]) -> str:
    mode = body.get("txt_mode", "line")
    if mode not in TXT_MODES:
        raise DatasetError(f"txt_mode must be one of {', '.join(TXT_MODES)}", field="txt_mode")
    return mode


def mapping_of(body: dict[str, Any]) -> FieldMapping | None:
    """The body's explicit column mapping (None when absent or empty); a bad role or value is a
    ConfigError naming `mapping.<role>`."""
    raw = body.get("mapping")
    if raw is None or raw == {}:
        return None
    mapping = validate_section(FieldMapping, raw, "mapping")
    return mapping if any(v is not None for _, v in mapping) else None


def shape_of(body: dict[str, Any], key: str = "format", default: str | None = "auto") -> str:
    """A shape name from `body[key]`; "auto" is allowed where there is a default."""
    value = body.get(key, default)
    allowed = SHAPE_NAMES if default is None else ("auto", *SHAPE_NAMES)
    if value not in allowed:
        raise DatasetError(f"{key} must be one of {', '.join(allowed)}", field=key)
    return value


def number_of(body: dict[str, Any], key: str, default: Any, low: float, high: float, *,
              whole: bool = False, above_low: bool = False) -> Any:
    """`body[key]` (or `default` when absent) checked to lie in [low, high] ((low, high] with
    `above_low`), a whole number with `whole`."""
    value = body.get(key, default)
    if value is None and default is None:
        return None
    kind = "a whole number" if whole else "a number"
    wrong_type = isinstance(value, bool) or not isinstance(value, int if whole else (int, float))
    out = wrong_type or value < low or value > high or (above_low and value == low)
    if out:
        bounds = f"above {low}" if above_low else f"at least {low}"
        raise DatasetError(f"{key} must be {kind} {bounds} and at most {high}", field=key)
    return value


@contextmanager
def named_for_body(format_key: str = "format") -> Iterator[None]:
    """Re-raise the engine's DatasetError with the request body's key as its field."""
    try:
        yield
    except DatasetError as err:
        field = err.field or "id"
        for engine, body in _BODY_FIELDS:
            if field.startswith(engine):
                field = body.replace("format", format_key) + field[len(engine):]
                break
        raise DatasetError(str(err), field=field) from None


# reading -------------------------------------------------------------------------------------
def sample_rows(path: Path, count: int = SAMPLE_ROWS, txt_mode: str = "line"
                ) -> list[dict[str, Any]]:
    """The first `count` readable rows (broken ones are passed over)."""
    good = (record.row for record in iter_records(path, txt_mode) if record.row is not None)
    return list(islice(good, count))


def columns_of(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row))


def detection_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """`{"shape", "confidence", "mapping", "alternatives": [[shape, confidence]]}`."""
    found = detect_shape(rows) if rows else None
    if found is None or found.shape is None:
        return {"shape": None, "confidence": 0.0, "mapping": None, "alternatives": []}
    return {"shape": found.shape, "confidence": found.confidence,
            "mapping": found.mapping.model_dump() if found.mapping else None,
            "alternatives": [[shape, confidence] for shape, confidence in found.alternatives]}


def resolve(path: Path, shape: str, explicit: FieldMapping | None, txt_mode: str) -> FieldMapping:
    """The mapping to read `path` with: a shape's (or the detected one's) over the file's columns,
    explicit columns winning; with `auto` and explicit columns, training's own `detect_mapping`."""
    if explicit is None:
        return resolve_mapping(path, shape, txt_mode)
    columns = columns_of(sample_rows(path, SAMPLE_ROWS, txt_mode))
    return detect_mapping(columns, explicit) if shape == "auto" else \
        mapping_for(shape, columns, explicit)


def inspect_upload(path: Path) -> dict[str, Any]:
    """What an upload answers beside its entry: fields, detected shape and the first problems of
    its first `UPLOAD_CHECK_ROWS` rows; `rows` is the record count when every row was read."""
    rows = sample_rows(path)
    detection = detection_of(rows)
    mapping = FieldMapping(**detection["mapping"]) if detection["mapping"] else FieldMapping()
    checked = check_head(path, mapping, UPLOAD_CHECK_ROWS)
    return {"fields": columns_of(rows[:5]), "shape": detection["shape"],
            "confidence": detection["confidence"], "mapping": detection["mapping"], **checked}


def check_head(path: Path, mapping: FieldMapping, max_rows: int) -> dict[str, Any]:
    """validate_file's check of the first `max_rows` records (`complete` when that was all)."""
    unit, errors, counts = unit_of(path), [], {"read": 0, "invalid": 0, "problems": 0}
    records = iter_records(path)
    for record in islice(records, max_rows):
        found = list(record_problems(record, mapping))
        counts["read"] += 1
        counts["invalid"] += bool(found)
        counts["problems"] += len(found)
        errors += [{"row": record.number, "field": name,
                    "message": f"{unit} {record.number}: {text}"}
                   for name, text in found[:max(0, PROBLEM_LIMIT - len(errors))]]
    complete = next(records, None) is None
    return {"errors": errors, "invalid": counts["invalid"],
            "more": counts["problems"] > len(errors), "checked_rows": counts["read"], "complete": complete,
            "rows": counts["read"] if complete else None}


# the tools -----------------------------------------------------------------------------------
class DatasetTools:
    """Validate, split and convert uploads (and bundled samples) by id."""

    def __init__(self, library: DatasetLibrary):
        self.library = library

    def validate(self, body: dict[str, Any]) -> dict[str, Any]:
        """Report.as_dict() of the whole file; the entry's row count is remembered."""
        path = self.library.source_path(body.get("id"))
        shape, explicit, txt_mode = shape_of(body), mapping_of(body), txt_mode_of(body)
        max_chars = number_of(body, "max_chars", None, 1, MAX_CHARS_LIMIT, whole=True)
        with named_for_body():
            report = validate_file(path, resolve(path, shape, explicit, txt_mode), max_chars,
                                   PROBLEM_LIMIT, txt_mode)
        self.library.remember_rows(body["id"], report.rows)
        return report.as_dict()

    def split(self, body: dict[str, Any]) -> dict[str, Any]:
        """Train / validation (/ test) parts, each stored as a new upload."""
        source_id = body.get("id")
        path = self.library.source_path(source_id)
        validation = number_of(body, "validation", None, 0, 1, above_low=True)
        if validation is None:
            raise DatasetError("validation (the share of rows held out, e.g. 0.1) is required",
                               field="validation")
        test = number_of(body, "test", 0, 0, 1)
        seed = number_of(body, "seed", 42, 0, 2**32 - 1, whole=True)
        txt_mode, label = txt_mode_of(body), self.library.label_of(source_id)
        with self.library.scratch() as folder, named_for_body():
            result = split_file(path, folder, validation, test, seed, txt_mode=txt_mode)
            parts = result["parts"]
            stored = self.library.store_derived(
                [(Path(part["path"]), derived_label(label, part_name, ".jsonl"), part["rows"])
                 for part_name, part in parts.items()], source_id)
        return {"parts": dict(zip(parts, stored)), "seed": seed,
                "broken_rows": result["broken_rows"]}

    def convert(self, body: dict[str, Any]) -> dict[str, Any]:
        """The file in another shape, stored as a new upload."""
        source_id = body.get("id")
        path = self.library.source_path(source_id)
        target, suffix = shape_of(body, "target", default=None), body.get("as", "jsonl")
        if suffix not in CONVERT_TO:
            raise DatasetError(f"as must be one of {', '.join(CONVERT_TO)}", field="as")
        if suffix == "csv" and target in ("messages", "sharegpt"):
            raise DatasetError(f"a {target} dataset holds lists of turns, which a CSV cell "
                               "cannot; convert as jsonl", field="as")
        shape, explicit, txt_mode = shape_of(body), mapping_of(body), txt_mode_of(body)
        with self.library.scratch() as folder:
            with named_for_body():
                mapping = resolve(path, shape, explicit, txt_mode)
            with named_for_body("target"):
                done = convert_file(path, folder / f"converted.{suffix}", mapping, target,
                                    txt_mode, PROBLEM_LIMIT)
            if done.written == 0:
                first = done.problems[0]["message"] if done.problems else "the file has no rows"
                raise DatasetError(f"no row could be converted to {target} ({first})",
                                   field="target")
            label = derived_label(self.library.label_of(source_id), target, f".{suffix}")
            [entry] = self.library.store_derived([(folder / f"converted.{suffix}", label,
                                                   done.written)], source_id)
        return {"entry": entry, "written": done.written, "skipped": done.skipped,
                "problems": done.problems}


def derived_label(label: str, what: str, suffix: str) -> str:
    """"data.csv" -> "data (train).jsonl": the source's label, what was made, the new type."""
    stem = Path(label).stem if Path(label).suffix else label
    return f"{stem} ({what}){suffix}"[-200:]
