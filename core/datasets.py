"""Training data: read rows, map their fields, and build the SFT and GRPO datasets.

Guarantees: rows come from a bundled sample, a JSON/JSONL/CSV/Parquet/TXT file or a hub dataset;
the field mapping is detected from common column names unless the config names columns or a shape
(`dataset.format`, see `core.formats.shapes`); every row
becomes `prompt_messages` (the user/assistant turns before the answer), `response` and `reference`
(GSM8K answers `... #### 42` give reference "42"). A mapped column may be a dotted path into a
nested value (`answers.text` reads `row["answers"]["text"]`; a list there gives its first element,
an empty list nothing), as SQuAD's answers are stored. GRPO prompts and SFT prompts are built by
the same function, with the model's chat template (or the config's), the system prompt and the
markers.
Local files are read by the project's own readers (`core.formats.readers`), the ones previews,
validation and the dataset tools use, so every tool numbers and judges rows the same way. A
missing column, an empty dataset or an unreachable hub raises `DatasetError` naming what to fix;
so do rows that cannot be read and rows whose mapped prompt is missing or empty (the first 5
named by line or row number with the same words as `core.formats.validation`), unless
`dataset.skip_invalid_rows` skips them, logging how many. A column holding both numbers and text
is read as text.

Does not: stream local files into training (their rows are read into memory, at most
`dataset.max_samples` of them; hub datasets are memory-mapped by `datasets`), compute statistics
or check answers (`core.formats` does previews, validation, statistics).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from core.config import DatasetSection, FieldMapping, TemplateSection

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "data"
FILE_SUFFIXES = (".csv", ".json", ".jsonl", ".parquet", ".txt")  # core.formats.readers reads them
NAMED_BAD_ROWS = 5   # rows named in a refusal; the rest are counted
log = logging.getLogger("grpo_studio.datasets")

# Column names tried in order when the config does not name one (lower-cased comparison).
AUTO_NAMES = {
    "messages": ("messages", "conversations", "conversation", "chat"),
    "instruction": ("instruction", "question", "prompt", "query", "problem", "input_text",
                    "text"),
    "input": ("input", "context"),
    "response": ("output", "answer", "response", "completion", "solution", "target"),
    "reference": ("reference", "final_answer", "ground_truth", "label"),
}


class DatasetError(ValueError):
    """Data that cannot be used; `field` names the config field to change."""

    def __init__(self, message: str, field: str = "dataset.path"):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class Example:
    prompt_messages: list[dict[str, str]]
    response: str
    reference: str | None
    row: dict[str, Any] = field(default_factory=dict, repr=False)  # the raw row it came from
    position: int = -1                                               # and its place in the file


def builtin_datasets() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.jsonl"))


def load_rows(section: DatasetSection) -> Any:
    """The raw rows as a `datasets.Dataset` (at most `max_samples`)."""
    if section.source == "hub":
        return _hub_rows(section)[0]
    rows, _ = _read_file(_file_path(section), section)
    return _as_dataset(rows, _file_path(section))


def _numbered_rows(section: DatasetSection) -> tuple[Sequence[dict[str, Any]], list[str],
                                                     list[str]]:
    """The rows as read (at most `max_samples`; a local file's rows lack the columns they lack),
    the columns, and per row how to name it in a message ("line 7", "row 3")."""
    if section.source == "hub":
        ds, names = _hub_rows(section)
        rows, columns = ds, ds.column_names
    else:
        rows, names = _read_file(_file_path(section), section)
        columns = list(dict.fromkeys(key for row in rows for key in row))
    if len(rows) == 0:
        raise DatasetError(f"dataset {section.path!r} has no rows")
    return rows, columns, names


def _hub_rows(section: DatasetSection) -> tuple[Any, list[str]]:
    ds = _load_hub(section)
    if section.max_samples:
        ds = ds.select(range(min(section.max_samples, len(ds))))
    return ds, [f"row {i + 1}" for i in range(len(ds))]


def builtin_path(name: str) -> Path:
    """The file of a bundled sample, by name only (a name is never a path)."""
    if name not in builtin_datasets():
        raise DatasetError(f"no bundled dataset named {name!r}; available: "
                           f"{', '.join(builtin_datasets())}")
    return BUILTIN_DIR / f"{name}.jsonl"


def _file_path(section: DatasetSection) -> Path:
    if section.source == "builtin":
        return builtin_path(section.path)
    path = Path(section.path).expanduser()
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path}")
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise DatasetError(f"cannot read {path.name}: use one of {', '.join(FILE_SUFFIXES)}")
    return path


def _read_file(path: Path, section: DatasetSection) -> tuple[list[dict[str, Any]], list[str]]:
    """A local file through core.formats.readers: the readable rows (broken ones refused, or
    skipped with `skip_invalid_rows`) and their names."""
    from core.formats.readers import iter_records, unit_of
    unit, rows, names, broken = unit_of(path), [], [], []
    for record in iter_records(path, section.txt_mode):
        if record.row is None:
            broken.append(f"{unit} {record.number}: {record.problem}")
            continue
        rows.append(record.row)
        names.append(f"{unit} {record.number}")
        if section.max_samples and len(rows) >= section.max_samples:
            break
    if not rows and not broken:
        raise DatasetError(f"dataset {path.name!r} has no rows")
    if broken and not section.skip_invalid_rows:
        more = f"; and {len(broken) - NAMED_BAD_ROWS} more" if len(broken) > NAMED_BAD_ROWS \
            else ""
        raise DatasetError(f"{path.name}: {len(broken)} row(s) cannot be read: "
                           f"{'; '.join(broken[:NAMED_BAD_ROWS])}{more}. Fix them and load the "
                           "file again, or set dataset.skip_invalid_rows to skip them")
    if broken:
        log.warning("skipped %d rows of %s that cannot be read (dataset.skip_invalid_rows)",
                    len(broken), path.name)
    return rows, names


def _as_dataset(rows: list[dict[str, Any]], path: Path) -> Any:
    """Rows as a Dataset: every column any row has (None where a row lacks it); a column mixing
    numbers, booleans and text becomes text."""
    import datasets
    columns = list(dict.fromkeys(key for row in rows for key in row))
    mixed = {c for c in columns if len({type(row[c]) for row in rows if row.get(c) is not None
                                         and not isinstance(row[c], (dict, list))}) > 1}
    table = [{c: _as_text(row.get(c)) if c in mixed else row.get(c) for c in columns}
             for row in rows]
    try:
        return datasets.Dataset.from_list(table)
    except Exception as err:  # pyarrow: values of one column that no type holds together
        raise DatasetError(f"could not read {path.name}: {_first_line(err)}; a column holds "
                           "values of different kinds (e.g. a list in one row, text in another)"
                           ) from err


def _as_text(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, dict, list)) else str(value)


def _load_hub(section: DatasetSection) -> Any:
    import datasets
    try:
        return datasets.load_dataset(section.path, section.config_name, split=section.split)
    except Exception as err:
        raise DatasetError(f"could not load hub dataset {section.path!r} "
                           f"(config {section.config_name!r}, split {section.split!r}): "
                           f"{hub_failure(err)}") from err


def hub_failure(err: BaseException) -> str:
    """What went wrong reaching a hub dataset, in one line ("offline" named as such)."""
    text = f"{type(err).__name__} {err}".lower()
    if any(w in text for w in ("offline", "connection", "resolve", "unreachable", "timed out",
                               "couldn't reach", "network")):
        return "the Hugging Face Hub cannot be reached (offline?)"
    return _first_line(err)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def detect_mapping(columns: list[str], explicit: FieldMapping | None = None) -> FieldMapping:
    """Explicitly named columns (checked to exist) plus auto-detected ones for the rest."""
    explicit = explicit or FieldMapping()
    lower = {c.lower(): c for c in columns}
    found: dict[str, str | None] = {}
    for role, names in AUTO_NAMES.items():
        chosen = getattr(explicit, role)
        if chosen is not None:
            if not has_column(columns, chosen):
                raise DatasetError(f"column {chosen!r} is not in the dataset; columns: "
                                   f"{', '.join(columns)}", field=f"dataset.mapping.{role}")
            found[role] = chosen
        else:
            found[role] = next((lower[n] for n in names if n in lower), None)
    if found["input"] == found["instruction"]:
        found["input"] = None
    if not found["messages"] and not found["instruction"]:
        raise DatasetError(f"no prompt column found among {', '.join(columns)}; set "
                           f"dataset.mapping.instruction (or messages)",
                           field="dataset.mapping.instruction")
    return FieldMapping(**found)


def split_gsm8k(answer: str) -> tuple[str, str | None]:
    """'steps #### 42' -> ('steps', '42'); otherwise (answer, None)."""
    if "####" not in answer:
        return answer, None
    steps, final = answer.rsplit("####", 1)
    return steps.strip(), final.strip().replace(",", "")


def to_example(row: dict[str, Any], mapping: FieldMapping) -> Example:
    if mapping.messages:
        return _chat_example(row[mapping.messages], row, mapping)
    text = _cell(row, mapping.instruction).strip()
    extra = _cell(row, mapping.input).strip()
    user = f"{text}\n\n{extra}" if extra else text
    response = _cell(row, mapping.response)
    reference = _reference(row, mapping)
    if reference is None and response:
        _, final = split_gsm8k(response)
        reference = final if final is not None else response.strip()
    return Example([{"role": "user", "content": user}], response, reference)


def _chat_example(turns: Any, row: dict[str, Any], mapping: FieldMapping) -> Example:
    turns = [_normalise_turn(t) for t in turns or []]
    turns = [t for t in turns if t["role"] != "system"]
    response = ""
    if turns and turns[-1]["role"] == "assistant":
        response = turns.pop()["content"]
    reference = _reference(row, mapping)
    return Example(turns, response, reference if reference is not None else (response or None))


def _reference(row: dict[str, Any], mapping: FieldMapping) -> str | None:
    """The mapped reference cell; a missing, null or blank cell is no reference."""
    value = _cell(row, mapping.reference)
    return value if value.strip() else None


def _cell(row: dict[str, Any], column: str | None) -> str:
    """A cell as text; a missing column or a null cell is empty (0 stays '0')."""
    value = column_value(row, column)
    return "" if value is None else str(value)


def has_column(columns: Sequence[str], column: str) -> bool:
    """Whether `column` names one of `columns`, or a path inside one (`answers.text`)."""
    return column in columns or ("." in column and column.split(".", 1)[0] in columns)


def column_value(row: dict[str, Any], column: str | None) -> Any:
    """The value `column` names in `row`: the column itself when the row has one by that exact
    name, else a dotted path through nested objects, where a list stands for its first element
    (`answers.text` of `{"answers": {"text": ["1905"]}}` is "1905"; of an empty list, None)."""
    if not column:
        return None
    if column in row or "." not in column:
        return row.get(column)
    value: Any = row
    for key in column.split("."):
        value = _first(value)
        value = value.get(key) if isinstance(value, dict) else None
    return _first(value)


def _first(value: Any) -> Any:
    """A list's first element (None for an empty one); anything else as it is."""
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    return value


def _normalise_turn(turn: dict[str, Any]) -> dict[str, str]:
    """Accept OpenAI (role/content) and ShareGPT (from/value) turns."""
    role = turn.get("role") or {"human": "user", "gpt": "assistant"}.get(turn.get("from"),
                                                                         turn.get("from"))
    return {"role": str(role), "content": str(turn.get("content", turn.get("value", "")))}


def with_system_prompt(template: TemplateSection,
                       prompt_messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The turns the chat template renders: the system prompt (if any), then the row's turns."""
    return ([{"role": "system", "content": template.system_prompt}]
            if template.system_prompt else []) + prompt_messages


def format_prompt(tokenizer: Any, template: TemplateSection,
                  prompt_messages: list[dict[str, str]]) -> str:
    """The prompt string the model sees: system prompt + turns through the chat template,
    ending where the assistant's answer starts."""
    return tokenizer.apply_chat_template(with_system_prompt(template, prompt_messages),
                                         tokenize=False, add_generation_prompt=True,
                                         chat_template=template.chat_template)


def format_response(response: str, template: TemplateSection) -> str:
    """The SFT target: GSM8K answers become reasoning + solution inside the template's markers;
    other answers are kept as they are."""
    steps, final = split_gsm8k(response)
    if final is None:
        return response
    return (f"{template.reasoning_start}{steps}{template.reasoning_end}"
            f"{template.solution_start}{final}{template.solution_end}")


def section_mapping(section: DatasetSection, columns: list[str]) -> FieldMapping:
    """The mapping training uses: the shape's (`dataset.format`) or detected, explicit columns
    winning either way."""
    if section.format == "auto":
        return detect_mapping(columns, section.mapping)
    from core.formats.shapes import mapping_for  # core.formats imports this module
    return mapping_for(section.format, columns, section.mapping)


def _examples(section: DatasetSection) -> list[Example]:
    rows, columns, names = _numbered_rows(section)
    mapping = section_mapping(section, columns)
    bad = _bad_prompts(rows, mapping)
    if bad and not section.skip_invalid_rows:
        raise _refusal(mapping, bad, names)
    if bad:
        log.warning("skipped %d of %d rows whose prompt is missing or empty "
                    "(dataset.skip_invalid_rows)", len(bad), len(rows))
    return [replace(to_example(row, mapping), row=row, position=i) for i, row in enumerate(rows)
            if i not in bad]


def _bad_prompts(rows: Any, mapping: FieldMapping) -> dict[int, tuple[str, str]]:
    """position -> (column, problem) for each row whose mapped prompt is unusable."""
    from core.formats.validation import prompt_problem
    found = ((i, prompt_problem(row, mapping)) for i, row in enumerate(rows))
    return {i: problem for i, problem in found if problem}


def _refusal(mapping: FieldMapping, bad: dict[int, tuple[str, str]],
             names: list[str]) -> DatasetError:
    named = [f"{names[i]}: {bad[i][1]}" for i in sorted(bad)[:NAMED_BAD_ROWS]]
    more = f"; and {len(bad) - len(named)} more" if len(bad) > len(named) else ""
    rows = "1 row has" if len(bad) == 1 else f"{len(bad)} rows have"
    role = "messages" if mapping.messages else "instruction"
    return DatasetError(f"{rows} no usable prompt: {'; '.join(named)}{more}. Fix them and load "
                        "the file again, map another column, or set dataset.skip_invalid_rows "
                        "to skip them", field=f"dataset.mapping.{role}")


def training_examples(section: DatasetSection, kind: str) -> list[Example]:
    """The rows a phase trains on, in order: those with a prompt (GRPO) or with a response (SFT).
    Their positions are what `split_indices` splits."""
    if kind == "sft":
        return [e for e in _examples(section) if e.response.strip()]
    return [e for e in _examples(section) if e.prompt_messages]


def validation_section(section: DatasetSection) -> DatasetSection | None:
    """The section that reads `dataset.validation_path` (a local file with the training rows'
    format, mapping and txt_mode, at most `max_samples` of its rows like the training file, so
    evaluation stays bounded), or None when the config names no such file."""
    if not section.validation_path:
        return None
    return section.model_copy(update={"source": "file", "path": section.validation_path,
                                      "validation_split": 0.0, "validation_path": None})


def validation_failure(err: DatasetError) -> DatasetError:
    """An error reading the validation file, named as such and at its field."""
    return DatasetError(f"validation file: {err}", field="dataset.validation_path")


def split_indices(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) row positions: `fraction` of `count` rows held out, chosen with `seed`.
    Training's evaluation split and the testing page's held-out rows both come from here (unless
    the config names a validation file: `validation_section`)."""
    if not fraction:
        return list(range(count)), []
    held = math.ceil(count * fraction)
    if round(count * fraction) < 1:
        raise DatasetError(f"validation_split {fraction} of {count} rows holds out no row",
                           field="dataset.validation_split")
    if held >= count:
        raise DatasetError(f"validation_split {fraction} of {count} rows leaves no row to "
                           "train on", field="dataset.validation_split")
    import numpy as np
    order = np.random.default_rng(seed).permutation(count).tolist()
    return order[held:], order[:held]


GRPO_COLUMNS = ("prompt", "question", "reference")


def build_grpo_dataset(section: DatasetSection, template: TemplateSection, tokenizer: Any,
                       extra_fields: Sequence[str] = (), all_fields: bool = False) -> Any:
    """Columns: `prompt` (chat-formatted string), `question`, `reference`, plus the raw row's
    `extra_fields` (None where a row lacks one) or, with `all_fields`, every raw column, for
    rewards that read them (test cases, keywords, ...)."""
    import datasets
    examples = training_examples(section, "grpo")
    names = list(dict.fromkeys(extra_fields))
    if all_fields:
        names += [k for e in examples for k in e.row if k not in names]
    names = [n for n in names if n not in GRPO_COLUMNS]
    return datasets.Dataset.from_list([
        {"prompt": format_prompt(tokenizer, template, e.prompt_messages),
         "question": e.prompt_messages[-1]["content"], "reference": e.reference,
         **{n: e.row.get(n) for n in names}}
        for e in examples])


def build_sft_dataset(section: DatasetSection, template: TemplateSection, tokenizer: Any,
                      max_samples: int | None = None) -> Any:
    """Columns: `prompt` (chat-formatted string) and `completion` (formatted response), for TRL's
    prompt-completion SFT: loss on the completion only, TRL appends the end-of-turn token."""
    import datasets
    examples = training_examples(section, "sft")
    if not examples:
        raise DatasetError("no row has a response to learn from; map dataset.mapping.response",
                           field="dataset.mapping.response")
    rows = [{"prompt": format_prompt(tokenizer, template, e.prompt_messages),
             "completion": format_response(e.response, template)}
            for e in examples[:max_samples]]
    return datasets.Dataset.from_list(rows)

