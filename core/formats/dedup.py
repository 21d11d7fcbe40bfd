"""Exact and near-duplicate rows of a dataset file, and a cleaned copy without them.

Guarantees:
- Exact duplicates: rows whose chosen fields are equal after `normalise` (lower-cased, runs of
  whitespace collapsed, ends stripped). `duplicate_key` is that comparison; `core.formats.stats`
  counts duplicates with it, so both pages agree.
- Near duplicates: a MinHash signature (128 permutations, fixed seed) of each distinct row's word
  n-gram shingles (words are runs of letters and digits, so punctuation does not count), indexed
  with MinHashLSH at the threshold; a candidate pair is linked when the signatures' estimate of
  the Jaccard similarity reaches the threshold. Clusters are the linked groups (transitively).
  The same file, fields and parameters give the same clusters on every run.
- A cluster keeps its first row. `write_deduplicated` writes the other readable rows in file
  order to a temporary file renamed into place (whole or absent): CSV stays CSV with its header,
  every other format becomes JSONL. It refuses a plan made from a file that has changed since.

Does not: find paraphrases (the similarity is on words), promise to find every pair just above the
threshold (LSH and MinHash estimates are probabilistic; pairs well above it are found), keep
broken rows in the cleaned copy (they are counted), or hold the rows' text in memory.
Memory is bounded: near duplicates are searched among the first `MAX_NEAR_ROWS` distinct rows
(a signature and its LSH entries take 5 to 7 KB and 0.15 to 0.22 ms per row: 150,000 rows is
about 1 GB and half a minute); later rows are still compared exactly, and the plan says how many were left out of the
near search (`near_searched`, `near_unsearched`). Exact comparison keeps about 500 bytes per
distinct row; a file of more than `MAX_ROWS` rows is refused when reading reaches that row.
`datasketch` is imported only when searching.
"""
from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from core.config import FieldMapping
from core.datasets import DatasetError, detect_mapping
from core.formats.readers import Record, iter_records
from core.formats.split import atomic_output, jsonl_line

DEFAULT_THRESHOLD = 0.85
NUM_PERM = 128
MINHASH_SEED = 1            # fixed, so the same file gives the same clusters
SHINGLE_WORDS = 3
PROGRESS_EVERY = 1000       # rows between on_progress calls
EXAMPLES_PER_CLUSTER = 3
CLUSTERS_WITH_EXAMPLES = 50
EXAMPLE_CHARS = 300
MAX_NEAR_ROWS = 150_000     # distinct rows in the near-duplicate index (about 1 GB)
MAX_ROWS = 2_000_000        # readable rows a search reads (exact keys: about 1 GB)
FIELD_SEPARATOR = "\x1f"    # keeps ("a b", "") and ("a", "b") apart

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")


# what makes two rows the same ------------------------------------------------------------------
def normalise(text: str) -> str:
    """Lower-cased, whitespace runs collapsed to one space, ends stripped."""
    return _SPACE.sub(" ", text).strip().lower()


def cell_text(value: Any) -> str:
    """A cell as text: strings as they are, None empty, lists and dicts (chats) as their leaves
    joined by newlines, anything else printed."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(cell_text(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return "\n".join(cell_text(v) for v in value)
    return str(value)


def normalised_text(row: dict[str, Any], fields: Sequence[str]) -> str:
    return FIELD_SEPARATOR.join(normalise(cell_text(row.get(name))) for name in fields)


def duplicate_key(row: dict[str, Any], fields: Sequence[str]) -> bytes:
    """Equal for exact duplicates (a 128-bit hash of the normalised fields)."""
    return text_key(normalised_text(row, fields))


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def key_fields(mapping: FieldMapping) -> list[str]:
    """The columns that make a row what it is: its chat, or its prompt columns, and its response."""
    names = [mapping.messages] if mapping.messages else [mapping.instruction, mapping.input]
    return [name for name in [*names, mapping.response] if name]


def default_fields(row: dict[str, Any]) -> list[str]:
    """The mapped prompt and response columns of a row like this one, else all its columns."""
    try:
        return key_fields(detect_mapping(list(row)))
    except DatasetError:  # no recognisable prompt column (a .txt file's "text"...)
        return list(row)


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[bytes]:
    """Word n-grams of a normalised text; a text shorter than `size` words is one shingle."""
    words = _WORD.findall(text)
    if len(words) <= size:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i:i + size]).encode() for i in range(len(words) - size + 1)}


# the result ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cluster:
    rows: tuple[int, ...]           # row numbers (Record.number) in file order; the first is kept
    kind: str                       # "exact": one normalised text; "near": similar texts
    examples: tuple[str, ...] = ()  # the first rows' text, for the largest clusters only


@dataclass(frozen=True)
class DedupPlan:
    source: Path
    fingerprint: tuple[int, int]    # the source's (size, mtime_ns) when it was read
    txt_mode: str
    fields: tuple[str, ...]
    threshold: float
    rows: int                       # readable rows
    broken_rows: int
    exact_duplicates: int           # rows repeating an earlier row's normalised text
    near_duplicates: int            # further rows similar to an earlier one
    clusters: tuple[Cluster, ...] = field(repr=False)  # largest first
    near_searched: int = 0          # distinct rows the near-duplicate search compared
    near_unsearched: int = 0        # distinct rows past MAX_NEAR_ROWS, compared exactly only

    @property
    def kept(self) -> int:
        return self.rows - self.exact_duplicates - self.near_duplicates

    def removed_rows(self) -> set[int]:
        return {number for cluster in self.clusters for number in cluster.rows[1:]}

    def to_dict(self, max_clusters: int = CLUSTERS_WITH_EXAMPLES) -> dict[str, Any]:
        """Counts and the largest clusters, for the API."""
        return {"fields": list(self.fields), "threshold": self.threshold, "rows": self.rows,
                "broken_rows": self.broken_rows, "exact_duplicates": self.exact_duplicates,
                "near_duplicates": self.near_duplicates, "kept": self.kept,
                "near_searched": self.near_searched, "near_unsearched": self.near_unsearched,
                "near_limit": MAX_NEAR_ROWS, "cluster_count": len(self.clusters),
                "clusters": [{"rows": list(c.rows), "kind": c.kind, "examples": list(c.examples)}
                             for c in self.clusters[:max_clusters]]}


# the search ------------------------------------------------------------------------------------
def find_duplicates(path: Path, fields: Sequence[str] | None = None,
                    threshold: float = DEFAULT_THRESHOLD, *, shingle_words: int = SHINGLE_WORDS,
                    txt_mode: str = "line",
                    on_progress: Callable[[int], None] | None = None) -> DedupPlan:
    """Exact and near-duplicate clusters of `path` over `fields` (default: the mapped prompt and
    response columns). `on_progress(rows_read)` is called every PROGRESS_EVERY rows."""
    if not 0 < threshold <= 1:
        raise DatasetError(f"the similarity threshold must be above 0 and at most 1, not "
                           f"{threshold}", field="threshold")
    if shingle_words < 1:
        raise DatasetError(f"shingles need at least 1 word, not {shingle_words}",
                           field="shingle_words")
    path = Path(path)
    fingerprint = _fingerprint(path)
    index = _SimilarityIndex(threshold, shingle_words)
    chosen, rows, broken = _scan(path, txt_mode, fields, index, on_progress)
    clusters = _with_examples(path, txt_mode, chosen, index.clusters())
    return DedupPlan(path, fingerprint, txt_mode, tuple(chosen), threshold, rows, broken,
                     index.exact_duplicates(), index.near_duplicates(), tuple(clusters),
                     index.near_searched, index.near_unsearched)


def _scan(path: Path, txt_mode: str, fields: Sequence[str] | None, index: _SimilarityIndex,
          on_progress: Callable[[int], None] | None) -> tuple[list[str], int, int]:
    chosen = list(fields) if fields else None
    rows = broken = 0
    for record in iter_records(path, txt_mode):
        if record.row is None:
            broken += 1
            continue
        if rows == MAX_ROWS:
            raise DatasetError(f"a duplicate search reads at most {MAX_ROWS:,} rows and "
                               f"{path.name} has more; split it (the split tool) and search "
                               "each part")
        chosen = chosen or default_fields(record.row)
        index.add(record.number, normalised_text(record.row, chosen))
        rows += 1
        if on_progress and rows % PROGRESS_EVERY == 0:
            on_progress(rows)
    return chosen or [], rows, broken


class _SimilarityIndex:
    """Distinct texts ("representatives"), their exact copies, and a union-find of similar ones."""

    def __init__(self, threshold: float, shingle_words: int):
        from datasketch import MinHash, MinHashLSH
        self.threshold, self.shingle_words = threshold, shingle_words
        self.template = MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED)
        self.lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self.by_key: dict[bytes, int] = {}
        self.first_rows: list[int] = []          # representative -> its first row number
        self.copies: dict[int, list[int]] = {}   # representative -> later rows with its text
        self.parent: list[int] = []
        self.signatures: dict[int, Any] = {}
        self.near_searched = self.near_unsearched = 0

    def add(self, number: int, text: str) -> None:
        key = text_key(text)
        if key in self.by_key:
            self.copies.setdefault(self.by_key[key], []).append(number)
            return
        rep = len(self.first_rows)
        self.by_key[key] = rep
        self.first_rows.append(number)
        self.parent.append(rep)
        if self.near_searched < MAX_NEAR_ROWS:
            self.near_searched += 1
            self._link_similar(rep, text)
        else:
            self.near_unsearched += 1

    def _link_similar(self, rep: int, text: str) -> None:
        grams = shingles(text, self.shingle_words)
        if not grams:
            return
        signature = self.template.copy()
        signature.update_batch(grams)
        for other in self.lsh.query(signature):
            if _similarity(signature.hashvalues, self.signatures[other]) >= self.threshold:
                self._union(rep, other)
        self.lsh.insert(rep, signature, check_duplication=False)
        self.signatures[rep] = signature.hashvalues

    def _find(self, rep: int) -> int:
        while self.parent[rep] != rep:
            self.parent[rep] = self.parent[self.parent[rep]]
            rep = self.parent[rep]
        return rep

    def _union(self, a: int, b: int) -> None:
        a, b = self._find(a), self._find(b)
        self.parent[max(a, b)] = min(a, b)  # the earliest row stays the cluster's root

    def exact_duplicates(self) -> int:
        return sum(len(rows) for rows in self.copies.values())

    def near_duplicates(self) -> int:
        return sum(1 for rep in range(len(self.parent)) if self._find(rep) != rep)

    def clusters(self) -> list[Cluster]:
        groups: dict[int, list[int]] = {}
        for rep in range(len(self.parent)):
            groups.setdefault(self._find(rep), []).append(rep)
        clusters = [self._cluster(reps) for reps in groups.values()]
        clusters = [c for c in clusters if len(c.rows) > 1]
        return sorted(clusters, key=lambda c: (-len(c.rows), c.rows[0]))

    def _cluster(self, reps: list[int]) -> Cluster:
        rows = sorted(number for rep in reps
                      for number in [self.first_rows[rep], *self.copies.get(rep, [])])
        return Cluster(tuple(rows), "exact" if len(reps) == 1 else "near")


def _similarity(a: Any, b: Any) -> float:
    """The MinHash estimate of the Jaccard similarity: the share of equal signature values."""
    return float((a == b).sum()) / NUM_PERM


def _with_examples(path: Path, txt_mode: str, fields: Sequence[str],
                   clusters: list[Cluster]) -> list[Cluster]:
    """The largest clusters with their first rows' text (a second pass over the file)."""
    wanted = {number: i for i, c in enumerate(clusters[:CLUSTERS_WITH_EXAMPLES])
              for number in c.rows[:EXAMPLES_PER_CLUSTER]}
    texts = {record.number: example_text(record.row, fields)
             for record in _records_numbered(path, txt_mode, wanted)}
    return [Cluster(c.rows, c.kind, tuple(texts[n] for n in c.rows[:EXAMPLES_PER_CLUSTER]))
            if i < CLUSTERS_WITH_EXAMPLES else c for i, c in enumerate(clusters)]


def example_text(row: dict[str, Any], fields: Sequence[str]) -> str:
    """A row's chosen fields as a person reads them (one per line), cut to EXAMPLE_CHARS."""
    return "\n".join(cell_text(row.get(name)) for name in fields)[:EXAMPLE_CHARS]


def _records_numbered(path: Path, txt_mode: str, numbers: dict[int, Any]) -> Iterator[Record]:
    """The readable records whose number is in `numbers`, stopping after the last one."""
    if not numbers:
        return
    last = max(numbers)
    for record in iter_records(path, txt_mode):
        if record.row is not None and record.number in numbers:
            yield record
        if record.number >= last:
            return


# the cleaned copy ------------------------------------------------------------------------------
def output_format(src: Path) -> str:
    """The cleaned copy's format: "csv" for a CSV source, else "jsonl"."""
    return "csv" if Path(src).suffix.lower() == ".csv" else "jsonl"


def write_deduplicated(src: Path, dst: Path, plan: DedupPlan) -> dict[str, Any]:
    """Write `src` without the rows `plan` removes (keeping each cluster's first row) to `dst`,
    in `output_format(src)`. Returns `{"path", "format", "rows", "removed", "broken_skipped"}`."""
    src, dst = Path(src), Path(dst)
    if src.resolve() != plan.source.resolve() or _fingerprint(src) != plan.fingerprint:
        raise DatasetError(f"{src.name} is not the file this duplicate search read (or it changed "
                           "since); search again")
    removed = plan.removed_rows()
    kept = (record.row for record in iter_records(src, plan.txt_mode)
            if record.row is not None and record.number not in removed)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(dst) as f:
        written = _write_rows(f, kept, output_format(src))
    return {"path": str(dst), "format": output_format(src), "rows": written,
            "removed": len(removed), "broken_skipped": plan.broken_rows}


def _write_rows(f: Any, rows: Iterable[dict[str, Any]], fmt: str) -> int:
    written = 0
    writer = None
    for row in rows:
        if fmt == "jsonl":
            f.write(jsonl_line(row))
        else:
            writer = writer or _csv_writer(f, list(row))
            writer.writerow(row)
        written += 1
    return written


def _csv_writer(f: Any, header: list[str]) -> csv.DictWriter:
    writer = csv.DictWriter(f, fieldnames=header)
    writer.writeheader()
    return writer


def _fingerprint(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        raise DatasetError(f"dataset file not found: {path}") from None
    return stat.st_size, stat.st_mtime_ns
