"""Statistics of a dataset file, read in one streaming pass (fit for the web process's threads).

Guarantees: `dataset_statistics` reports rows and broken rows (with the first few problems),
every field with how many rows have it, empty cells per mapped column, exact duplicates (the same
comparison as `core.formats.dedup`), and the lengths of prompts and responses: count, total, min,
median, mean, p95, max and a histogram whose counts sum to the readable rows. Lengths are tokens of
the model's own `tokenizer.json` (loaded with the `tokenizers` library, no torch, no special tokens
added, no truncation), or characters when no tokenizer is given. It also counts rows whose prompt
plus response exceed `max_seq_length` and estimates tokens per epoch (each row's prompt + response,
cut at `max_seq_length` as training cuts it; in `unit`, so characters without a tokenizer).
Memory: two integers per row plus 16 bytes per distinct row.

Does not: count the chat template and system prompt around each prompt (they add the same few
dozen tokens to every row), validate rows (`core.formats.validation`), or guess shapes beyond
`core.datasets.detect_mapping`. A prompt is the user turns' text joined by newlines; a chat row's
response is its last assistant turn.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from core.config import FieldMapping
from core.datasets import DatasetError, detect_mapping, to_example
from core.formats.dedup import duplicate_key, key_fields
from core.formats.readers import iter_records, unit_of

BATCH_ROWS = 1000        # rows per tokenizer batch and between on_progress calls
BROKEN_EXAMPLES = 5      # problems listed with the broken-row count

LengthMeasure = Callable[[list[str]], list[int]]


def dataset_statistics(path: Path, mapping: FieldMapping | Mapping[str, Any] | None = None,
                       tokenizer_path: Path | None = None, max_seq_length: int | None = None,
                       bins: int = 20, on_progress: Callable[[int], None] | None = None, *,
                       txt_mode: str = "line") -> dict[str, Any]:
    """Statistics of `path`. `mapping` names columns (others are detected from the first row);
    `tokenizer_path` is a model folder or its tokenizer.json (None counts characters);
    `on_progress(rows_read)` is called every BATCH_ROWS rows."""
    path = Path(path)
    unit, measure = length_measure(tokenizer_path)
    tally = _Tally(path, _explicit(mapping))
    batch: list[tuple[str, str]] = []
    for record in iter_records(path, txt_mode):
        texts = tally.add(record.number, record.row, record.problem)
        if texts is not None:
            batch.append(texts)
        if len(batch) >= BATCH_ROWS:
            tally.add_lengths(measure, batch)
            batch.clear()
            if on_progress:
                on_progress(tally.rows)
    tally.add_lengths(measure, batch)
    return tally.summary(unit, max_seq_length, bins)


def _explicit(mapping: FieldMapping | Mapping[str, Any] | None) -> FieldMapping | None:
    if mapping is None or isinstance(mapping, FieldMapping):
        return mapping
    return FieldMapping.model_validate(dict(mapping))


# lengths ---------------------------------------------------------------------------------------
def length_measure(tokenizer_path: Path | None) -> tuple[str, LengthMeasure]:
    """("tokens", a batch token counter) for a tokenizer, else ("characters", len per text)."""
    if tokenizer_path is None:
        return "characters", lambda texts: [len(text) for text in texts]
    tokenizer = load_tokenizer(Path(tokenizer_path))

    def count_tokens(texts: list[str]) -> list[int]:
        return [len(encoding.ids)
                for encoding in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]
    return "tokens", count_tokens


def load_tokenizer(path: Path) -> Any:
    """A model's fast tokenizer from its folder (tokenizer.json) or the file itself, set to count
    whole texts (the file's own truncation and padding settings are switched off)."""
    from tokenizers import Tokenizer
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise DatasetError(f"no tokenizer.json in {file.parent}: token counts need a model "
                           "folder with a fast tokenizer; choose another model or count "
                           "characters", field="model.name")
    try:
        tokenizer = Tokenizer.from_file(str(file))
    except Exception as err:  # the Rust library raises its own Exception type
        raise DatasetError(f"cannot load {file}: {str(err).splitlines()[0]}",
                           field="model.name") from None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def length_summary(lengths: Any, bins: int) -> dict[str, Any]:
    """count, total, min, median, mean, p95, max and an integer histogram of `lengths`."""
    import numpy as np
    values = np.asarray(lengths, dtype=np.int64)
    if values.size == 0:
        return {"count": 0, "total": 0, "min": None, "median": None, "mean": None, "p95": None,
                "max": None, "histogram": {"edges": [], "counts": []}}
    return {"count": int(values.size), "total": int(values.sum()), "min": int(values.min()),
            "median": float(np.median(values)), "mean": round(float(values.mean()), 2),
            "p95": float(np.percentile(values, 95)), "max": int(values.max()),
            "histogram": histogram(values, bins)}


def histogram(values: Any, bins: int) -> dict[str, list[int]]:
    """At most `bins` bins of equal integer width: bin i holds edges[i] <= length < edges[i+1]."""
    import numpy as np
    low, high = int(values.min()), int(values.max())
    width = max(1, -(-(high - low + 1) // max(1, bins)))
    counts = np.bincount((values - low) // width)
    return {"edges": [low + width * i for i in range(len(counts) + 1)],
            "counts": [int(c) for c in counts]}


# the running tally -----------------------------------------------------------------------------
@dataclass
class _Tally:
    path: Path
    explicit: FieldMapping | None
    mapping: FieldMapping | None = None
    rows: int = 0
    broken: list[dict[str, Any]] = field(default_factory=list)
    broken_count: int = 0
    fields: dict[str, int] = field(default_factory=dict)
    empty: dict[str, int] = field(default_factory=dict)
    keys: set[bytes] = field(default_factory=set)
    prompt_lengths: array = field(default_factory=lambda: array("q"))
    response_lengths: array = field(default_factory=lambda: array("q"))

    def add(self, number: int, row: dict[str, Any] | None,
            problem: str | None) -> tuple[str, str] | None:
        """Count one record; the (prompt, response) texts to measure, or None for a broken row."""
        if row is None:
            return self._broken(number, problem or "unreadable")
        self.mapping = self.mapping or detect_mapping(list(row), self.explicit)
        try:
            example = to_example(row, self.mapping)
        except (AttributeError, TypeError, KeyError) as err:  # a chat cell that is not a chat
            return self._broken(number, f"the mapped fields cannot be read ({err})")
        self.rows += 1
        self._count_fields(row)
        self.keys.add(duplicate_key(row, key_fields(self.mapping)))
        prompt = "\n".join(turn["content"] for turn in example.prompt_messages)
        return prompt, example.response

    def _broken(self, number: int, problem: str) -> None:
        """Count a broken row; the first few are listed as {"row", "message"} (`row_unit` says
        whether the number is a line or a data row)."""
        self.broken_count += 1
        if len(self.broken) < BROKEN_EXAMPLES:
            self.broken.append({"row": number, "message": problem})
        return None

    def _count_fields(self, row: dict[str, Any]) -> None:
        for name in row:
            self.fields[name] = self.fields.get(name, 0) + 1
        for name in self.mapped_columns():
            if _is_empty(row.get(name)):
                self.empty[name] = self.empty.get(name, 0) + 1

    def mapped_columns(self) -> list[str]:
        names = self.mapping.model_dump().values() if self.mapping else []
        return list(dict.fromkeys(name for name in names if name))

    def add_lengths(self, measure: LengthMeasure, batch: list[tuple[str, str]]) -> None:
        if batch:
            self.prompt_lengths.extend(measure([prompt for prompt, _ in batch]))
            self.response_lengths.extend(measure([response for _, response in batch]))

    def summary(self, unit: str, max_seq_length: int | None, bins: int) -> dict[str, Any]:
        import numpy as np
        totals = np.asarray(self.prompt_lengths, dtype=np.int64) + \
            np.asarray(self.response_lengths, dtype=np.int64)
        cut = np.minimum(totals, max_seq_length) if max_seq_length else totals
        return {"rows": self.rows, "broken_rows": self.broken_count, "broken": self.broken,
                "row_unit": unit_of(self.path),
                "fields": self.fields,
                "mapping": self.mapping.model_dump() if self.mapping else None,
                "empty": {name: self.empty.get(name, 0) for name in self.mapped_columns()},
                "duplicates": self.rows - len(self.keys), "unit": unit,
                "prompt": length_summary(self.prompt_lengths, bins),
                "response": length_summary(self.response_lengths, bins),
                "max_seq_length": max_seq_length,
                "over_max_seq_length": int((totals > max_seq_length).sum())
                if max_seq_length else None,
                "tokens_per_epoch": int(cut.sum())}


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, (list, dict)) and not value
