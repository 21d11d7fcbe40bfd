"""What the rows of a dataset look like (its shape), the field mapping for it, and conversion.

Shapes: alpaca (instruction/input/output), sharegpt (conversations of from/value turns), messages
(ChatML / OpenAI role/content turns), completion (text), qa (question/answer), prompt_completion
(prompt/completion or prompt/response), gsm8k (question/answer ending in `#### N`).

Guarantees: `detect_shape(rows)` scores every shape on the sampled rows: confidence = the fraction
of rows that fit it x how specific the matching column names are (1.0 for a shape's own names such
as `instruction`/`output`, 0.5 for a generic synonym from `core.datasets.AUTO_NAMES` such as
`problem`/`solution`); ties go to the more specific shape (gsm8k before qa, any before completion).
`mapping_for(shape, columns, explicit)` is the mapping a chosen shape implies, with the person's
explicit columns winning; both mappings are what training uses (`core.datasets.to_example` reads
every row through them).

Does not: read files (`core.formats.readers`), check every row (`core.formats.validation`) or
convert rows (`core.formats.convert`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.config import FieldMapping
from core.datasets import AUTO_NAMES, DatasetError, detect_mapping, split_gsm8k

SYNONYM_SPECIFICITY = 0.5


@dataclass(frozen=True)
class Shape:
    """A shape: for each mapping role it fills, the column names it uses (most usual first)."""
    name: str
    columns: dict[str, tuple[str, ...]]
    optional: tuple[str, ...] = ()
    turn_keys: tuple[str, str] | None = None   # chat shapes: the keys of one turn
    synonyms: bool = True                      # also try AUTO_NAMES' generic names for a role

    @property
    def required(self) -> list[str]:
        return [role for role in self.columns if role not in self.optional]


# In tie-break order: on equal confidence the earlier shape wins.
SHAPES = (
    Shape("gsm8k", {"instruction": ("question",), "response": ("answer",)}),
    Shape("qa", {"instruction": ("question",), "response": ("answer",)}),
    Shape("alpaca", {"instruction": ("instruction",), "input": ("input",),
                     "response": ("output",)}, optional=("input",)),
    Shape("prompt_completion", {"instruction": ("prompt",),
                                "response": ("completion", "response")}),
    Shape("sharegpt", {"messages": ("conversations", "conversation")}, turn_keys=("from", "value")),
    Shape("messages", {"messages": ("messages", "chat")}, turn_keys=("role", "content")),
    Shape("completion", {"instruction": ("text",)}, synonyms=False),
)
SHAPE_NAMES = tuple(s.name for s in SHAPES)
_BY_NAME = {s.name: s for s in SHAPES}


@dataclass(frozen=True)
class Detection:
    """The likeliest shape (None when none fits), its confidence in 0..1, its mapping, and the
    other shapes that fit with their confidence, best first."""
    shape: str | None
    confidence: float
    mapping: FieldMapping | None
    alternatives: list[tuple[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"shape": self.shape, "confidence": self.confidence,
                "mapping": self.mapping.model_dump() if self.mapping else None,
                "alternatives": [{"shape": s, "confidence": c} for s, c in self.alternatives]}


def shape_named(name: str) -> Shape:
    if name not in _BY_NAME:
        raise DatasetError(f"unknown dataset format {name!r}; choose one of "
                           f"{', '.join(SHAPE_NAMES)}", field="dataset.format")
    return _BY_NAME[name]


# detection -----------------------------------------------------------------------------------
def detect_shape(rows: list[dict[str, Any]]) -> Detection:
    """The shape of a sample of rows (a preview's first rows are enough)."""
    columns = _columns(rows)
    scores = [(s.name, _confidence(s, rows, columns)) for s in SHAPES]
    ranked = sorted((item for item in scores if item[1] > 0), key=lambda item: -item[1])
    if not ranked:
        return Detection(None, 0.0, None)
    best, confidence = ranked[0]
    return Detection(best, confidence, mapping_for(best, columns), ranked[1:])


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _confidence(shape: Shape, rows: list[dict[str, Any]], columns: list[str]) -> float:
    chosen = _shape_columns(shape, columns)
    if not rows or any(chosen.get(role) is None for role in shape.required):
        return 0.0
    names = [chosen[role] for role in shape.required]
    specificity = sum(1.0 if n.lower() in shape.columns[r] else SYNONYM_SPECIFICITY
                      for r, n in zip(shape.required, names)) / len(names)
    fitting = sum(1 for row in rows if _fits(shape, row, chosen))
    return round(fitting / len(rows) * specificity, 2)


def _shape_columns(shape: Shape, columns: list[str]) -> dict[str, str | None]:
    """role -> the column this shape would use: its own names first, then AUTO_NAMES synonyms."""
    lower = {c.lower(): c for c in columns}
    chosen = {}
    for role, own in shape.columns.items():
        generic = AUTO_NAMES.get(role, ()) if shape.synonyms else ()
        names = own + tuple(n for n in generic if n not in own)
        chosen[role] = next((lower[n] for n in names if n in lower), None)
    return chosen


def _fits(shape: Shape, row: dict[str, Any], chosen: dict[str, str | None]) -> bool:
    if shape.turn_keys:
        return _is_chat(row.get(chosen["messages"]), shape.turn_keys)
    texts = [row.get(chosen[role]) for role in shape.required]
    if not all(isinstance(t, str) and t.strip() for t in texts):
        return False
    if shape.name == "gsm8k":
        return split_gsm8k(row[chosen["response"]])[1] is not None
    return True


def _is_chat(turns: Any, keys: tuple[str, str]) -> bool:
    return isinstance(turns, list) and bool(turns) and all(
        isinstance(t, dict) and all(k in t for k in keys) for t in turns)


# mapping -------------------------------------------------------------------------------------
def mapping_for(shape: str, columns: list[str],
                explicit: FieldMapping | None = None) -> FieldMapping:
    """The mapping of `shape` over `columns`: the shape's roles only (plus a reference column when
    one is there), explicit columns winning. A required role with no column is a DatasetError
    naming the role to map."""
    spec, explicit = shape_named(shape), explicit or FieldMapping()
    chosen = {**_shape_columns(spec, columns),
              **{k: v for k, v in explicit.model_dump().items() if v is not None}}
    missing = [role for role in spec.required if not chosen.get(role)]
    if missing:
        raise DatasetError(f"a {shape} dataset needs a column for {missing[0]} "
                           f"(e.g. {spec.columns[missing[0]][0]!r}); columns: {', '.join(columns)}"
                           f"; set dataset.mapping.{missing[0]}",
                           field=f"dataset.mapping.{missing[0]}")
    named = FieldMapping(**{role: chosen.get(role) for role in (*spec.columns, "reference")})
    found = detect_mapping(columns, named)   # checks that named columns exist, finds a reference
    keep = set(spec.columns) | {"reference"} | {k for k, v in explicit if v is not None}
    return FieldMapping(**{k: v for k, v in found if k in keep})
