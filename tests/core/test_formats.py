"""Dataset files (tests/data/datasets): readers and their row numbers, shape detection, conversion
between shapes, and validation messages, each asserted exactly."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import FieldMapping
from core.datasets import DatasetError, to_example
from core.formats import count_rows, head_rows, iter_records
from core.formats.convert import convert_file, convert_rows
from core.formats.readers import Record
from core.formats.shapes import detect_shape, mapping_for
from core.formats.validation import validate_file

DATA = Path(__file__).resolve().parent.parent / "data" / "datasets"


def problems(name, txt_mode="line"):
    return [(r.number, r.problem) for r in iter_records(DATA / name, txt_mode) if r.problem]


# readers ------------------------------------------------------------------------------------
READS = [
    # file, txt mode, (number, first row) of the first record, record count
    ("alpaca.json", "line", (1, {"instruction": "Translate to French.", "input": "Good morning",
                                 "output": "Bonjour"}), 3),
    # an object holding exactly one list
    ("alpaca_wrapped.json", "line", (1, {"instruction": "Say hello.", "input": "",
                                         "output": "Hello!"}), 2),
    ("qa.csv", "line", (1, {"question": "What is the boiling point of water in Celsius?",
                            "answer": "100"}), 3),
    # BOM dropped from the header, CRLF inside a quoted cell becomes LF
    ("bom_crlf.csv", "line", (1, {"question": "What is 1 + 1?", "answer": "1 + 1 = 2\n#### 2"}), 2),
    ("bom_crlf.jsonl", "line", (1, {"question": "café?", "answer": "yes"}), 3),
    # parquet read in row groups of 2: the third row comes from the second group
    ("prompt_completion.parquet", "line", (1, {"prompt": "Complete: the sky is",
                                               "completion": "blue"}), 3),
    # one row per non-blank line, numbered by line
    ("completion.txt", "line", (1, {"text": "The quick brown fox jumps over the lazy dog."}), 3),
    # one row per blank-line-separated block, numbered by its first line
    ("blocks.txt", "block", (1, {"text": "Roses are red,\nviolets are blue."}), 3),
]


@pytest.mark.parametrize("name, txt_mode, first, count", READS)
def test_every_file_type_reads_numbered_rows(name, txt_mode, first, count):
    records = list(iter_records(DATA / name, txt_mode))
    assert (records[0].number, records[0].row) == first
    assert len(records) == count == count_rows(DATA / name, txt_mode)


def test_txt_numbers_are_lines_and_blocks_start_lines():
    lines = [(r.number, r.row["text"]) for r in iter_records(DATA / "completion.txt")]
    assert [n for n, _ in lines] == [1, 2, 4]
    blocks = [(r.number, r.row["text"]) for r in iter_records(DATA / "blocks.txt", "block")]
    assert blocks == [(1, "Roses are red,\nviolets are blue."),
                      (5, "The second block\nhas two lines."), (8, "third")]


def test_parquet_keeps_nulls_and_counts_from_its_footer():
    rows = [r.row for r in iter_records(DATA / "prompt_completion.parquet")]
    assert rows[2] == {"prompt": "Complete: snow is", "completion": None}


BROKEN = [
    # a broken JSON line at line 3, a blank line 4 skipped, a list at line 5; reading goes on
    ("broken.jsonl", [(3, "invalid JSON (Expecting value)"),
                      (5, "expected an object with fields, found a list")]),
    # data rows 2 and 3 (file lines 3 and 4) have a missing and an extra cell
    ("missing_cell.csv", [(2, "1 cell where the header has 2 cells; quote cells holding commas"),
                          (3, "3 cells where the header has 2 cells; quote cells holding commas")]),
    # undecodable bytes on line 2 of an otherwise UTF-8 (BOM, CRLF) file
    ("bom_crlf.jsonl", [(2, "not UTF-8 text; save the file as UTF-8")]),
]


@pytest.mark.parametrize("name, expected", BROKEN)
def test_broken_rows_are_records_with_a_problem_and_reading_goes_on(name, expected):
    assert problems(name) == expected
    assert list(iter_records(DATA / name))[-1].row is not None


def test_rows_after_a_broken_one_keep_their_numbers():
    good = [r.number for r in iter_records(DATA / "broken.jsonl") if r.row is not None]
    assert good == [1, 2, 6]
    assert [r.number for r in iter_records(DATA / "missing_cell.csv") if r.row] == [1, 4]


UNREADABLE = [
    ("utf16.jsonl", "utf16.jsonl is not UTF-8 text (byte 0); save it as UTF-8"),
    ("two_lists.json", "two_lists.json: expected a list of rows, or an object holding one"),
]


@pytest.mark.parametrize("name, message", UNREADABLE)
def test_a_file_that_cannot_be_read_at_all_raises(name, message):
    with pytest.raises(DatasetError) as info:
        list(iter_records(DATA / name))
    assert str(info.value) == message


def test_unknown_extension_and_txt_mode_are_refused(tmp_path):
    (tmp_path / "rows.xlsx").write_text("x")
    with pytest.raises(DatasetError, match="use one of .jsonl, .json, .csv, .parquet, .txt"):
        list(iter_records(tmp_path / "rows.xlsx"))
    with pytest.raises(DatasetError, match="txt_mode must be one of line, block"):
        list(iter_records(DATA / "blocks.txt", "paragraph"))


def test_json_parse_error_names_its_line(tmp_path):
    path = tmp_path / "rows.json"
    path.write_text('[\n{"a": 1},\n{"a": }\n]')
    with pytest.raises(DatasetError, match=r"^rows.json line 3: invalid JSON \(Expecting value\)"):
        list(iter_records(path))


def test_head_rows_raises_on_the_first_problem_within_its_rows():
    assert len(head_rows(DATA / "broken.jsonl", 2)) == 2
    with pytest.raises(DatasetError) as info:
        head_rows(DATA / "broken.jsonl", 3)
    assert str(info.value) == "broken.jsonl line 3: invalid JSON (Expecting value)"
    with pytest.raises(DatasetError, match="^missing_cell.csv row 2: 1 cell where"):
        head_rows(DATA / "missing_cell.csv", 5)


def test_head_rows_reads_only_what_it_needs(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"q": "fine"}\n' + "{broken\n" * 1000)  # problems after the head are unseen
    assert head_rows(path, 1) == [{"q": "fine"}]


# shapes -------------------------------------------------------------------------------------
SHAPES = [
    # file, shape, mapping (non-empty roles), confidence at least
    ("alpaca.json", "alpaca", {"instruction": "instruction", "input": "input",
                               "response": "output"}, 1.0),
    ("sharegpt.jsonl", "sharegpt", {"messages": "conversations"}, 1.0),
    ("messages.jsonl", "messages", {"messages": "messages"}, 1.0),
    ("completion.txt", "completion", {"instruction": "text"}, 1.0),
    ("qa.csv", "qa", {"instruction": "question", "response": "answer"}, 1.0),
    ("prompt_response.jsonl", "prompt_completion", {"instruction": "prompt",
                                                    "response": "response"}, 1.0),
    # the third row has an empty completion: 2 of 3 rows fit
    ("prompt_completion.parquet", "prompt_completion", {"instruction": "prompt",
                                                        "response": "completion"}, 0.66),
    # gsm8k beats qa on the same columns because every answer ends in '#### N'
    ("gsm8k.jsonl", "gsm8k", {"instruction": "question", "response": "answer"}, 1.0),
]


@pytest.mark.parametrize("name, shape, mapping, confidence", SHAPES)
def test_shape_and_mapping_are_detected_per_fixture(name, shape, mapping, confidence):
    found = detect_shape(head_rows(DATA / name, 20))
    assert found.shape == shape
    assert {k: v for k, v in found.mapping.model_dump().items() if v} == mapping
    assert found.confidence >= confidence
    assert all(c <= found.confidence for _, c in found.alternatives)


def test_qa_is_an_alternative_to_gsm8k_and_generic_names_score_lower():
    found = detect_shape(head_rows(DATA / "gsm8k.jsonl", 20))
    assert ("qa", 1.0) in found.alternatives
    generic = detect_shape([{"problem": "1+1?", "solution": "2"}])   # AUTO_NAMES synonyms only
    assert generic.shape == "qa" and generic.confidence == 0.5


def test_rows_that_fit_no_shape_are_detected_as_none():
    found = detect_shape([{"colour": "red", "size": 3}])
    assert (found.shape, found.confidence, found.mapping) == (None, 0.0, None)


def test_a_plain_qa_file_is_not_gsm8k():
    found = detect_shape(head_rows(DATA / "qa.csv", 20))
    assert found.shape == "qa" and "gsm8k" not in dict(found.alternatives)


def test_mapping_for_a_chosen_shape_keeps_only_its_roles_and_explicit_columns_win():
    columns = ["question", "answer", "messages", "gold"]
    assert mapping_for("qa", columns).model_dump() == {
        "instruction": "question", "input": None, "response": "answer", "reference": None,
        "messages": None}
    explicit = mapping_for("qa", columns, FieldMapping(reference="gold"))
    assert explicit.reference == "gold" and explicit.messages is None
    with pytest.raises(DatasetError, match="a sharegpt dataset needs a column for messages") as e:
        mapping_for("sharegpt", columns[:2])
    assert e.value.field == "dataset.mapping.messages"
    with pytest.raises(DatasetError, match="unknown dataset format 'csv'"):
        mapping_for("csv", columns)


# conversion ---------------------------------------------------------------------------------
def _convert(src, target, tmp_path, suffix=".jsonl"):
    mapping = detect_shape(head_rows(src, 20)).mapping
    dst = tmp_path / f"{src.stem}.{target}{suffix}"
    result = convert_file(src, dst, mapping, target)
    return dst, result


def test_alpaca_to_messages_to_alpaca_keeps_the_text(tmp_path):
    chat, result = _convert(DATA / "alpaca.json", "messages", tmp_path)
    assert (result.written, result.skipped) == (3, 0)
    assert json.loads(chat.read_text().splitlines()[0]) == {"messages": [
        {"role": "user", "content": "Translate to French.\n\nGood morning"},
        {"role": "assistant", "content": "Bonjour"}]}
    back, _ = _convert(chat, "alpaca", tmp_path)
    rows = [json.loads(line) for line in back.read_text().splitlines()]
    original = json.loads((DATA / "alpaca.json").read_text())
    # instruction and input become one prompt, as training sees them
    assert [r["instruction"] for r in rows] == [
        f"{o['instruction']}\n\n{o['input']}" if o["input"] else o["instruction"] for o in original]
    assert [r["output"] for r in rows] == [o["output"] for o in original]


def test_gsm8k_to_messages_keeps_the_reference(tmp_path):
    chat, _ = _convert(DATA / "gsm8k.jsonl", "messages", tmp_path)
    rows = [json.loads(line) for line in chat.read_text().splitlines()]
    assert rows[0]["messages"][-1]["content"] == "3 + 4 = 7\n#### 7"
    assert [r["reference"] for r in rows] == ["7", "36", "1250"]
    mapping = mapping_for("messages", ["messages", "reference"])
    assert to_example(rows[2], mapping).reference == "1250"
    back, _ = _convert(chat, "gsm8k", tmp_path)
    assert json.loads(back.read_text().splitlines()[0]) == json.loads(
        (DATA / "gsm8k.jsonl").read_text().splitlines()[0])


def test_sharegpt_converts_to_messages_without_system_turns(tmp_path):
    chat, _ = _convert(DATA / "sharegpt.jsonl", "messages", tmp_path)
    assert json.loads(chat.read_text().splitlines()[0])["messages"] == [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris"}]


def test_qa_to_sharegpt_and_csv_output(tmp_path):
    conv, _ = _convert(DATA / "qa.csv", "sharegpt", tmp_path)
    assert json.loads(conv.read_text().splitlines()[1])["conversations"] == [
        {"from": "human", "value": 'Who wrote "Hamlet"?'},
        {"from": "gpt", "value": "William Shakespeare"}]
    table, result = _convert(DATA / "gsm8k.jsonl", "alpaca", tmp_path, ".csv")
    assert result.written == 3
    assert head_rows(table, 1)[0]["output"] == "3 + 4 = 7\n#### 7"


def test_rows_that_cannot_convert_are_skipped_and_named(tmp_path):
    _, result = _convert(DATA / "empty_field.jsonl", "qa", tmp_path)
    assert (result.written, result.skipped) == (2, 3)
    assert result.problems == [{"row": 2, "message": 'line 2: "output" is empty'},
                               {"row": 4, "message": 'line 4: "instruction" is missing'},
                               {"row": 5, "message": 'line 5: "instruction" is empty'}]


def test_a_multi_turn_chat_cannot_become_one_question():
    row = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
                        {"role": "user", "content": "bye"}]}
    [record] = convert_rows([Record(1, row)], FieldMapping(messages="messages"), "qa")
    assert record.problem == ("a chat of 3 turns before the answer cannot become one question; "
                              "convert to messages or sharegpt")


def test_conversion_refuses_chats_in_csv_and_leaves_nothing(tmp_path):
    with pytest.raises(DatasetError, match="a CSV cell cannot; convert to .jsonl"):
        _convert(DATA / "qa.csv", "messages", tmp_path, ".csv")
    assert list(tmp_path.iterdir()) == []


# validation ---------------------------------------------------------------------------------
VALIDATION = [
    # file, shape, (rows, valid, invalid), messages
    ("empty_field.jsonl", "alpaca", (5, 2, 3), ['line 2: "output" is empty',
                                                'line 4: "instruction" is missing',
                                                'line 5: "instruction" is empty']),
    ("wrong_type.jsonl", "alpaca", (4, 1, 3), [
        'line 1: "output" is a number, expected text',
        'line 2: "instruction" is a list, expected text',
        'line 4: "instruction" holds non-text content (U+0007 at character 8)']),
    ("bad_chat.jsonl", "messages", (5, 1, 4), [
        'line 2: "messages" is a string, expected a list of turns',
        'line 3: "messages" turn 1 is not a role/content or from/value object',
        'line 4: "messages" has no user turn',
        'line 5: "messages" is empty']),
    ("broken.jsonl", "qa", (5, 3, 2), ["line 3: invalid JSON (Expecting value)",
                                       "line 5: expected an object with fields, found a list"]),
    ("missing_cell.csv", "qa", (4, 2, 2), [
        "row 2: 1 cell where the header has 2 cells; quote cells holding commas",
        "row 3: 3 cells where the header has 2 cells; quote cells holding commas"]),
    ("bom_crlf.jsonl", "qa", (3, 2, 1), ["line 2: not UTF-8 text; save the file as UTF-8"]),
    ("prompt_completion.parquet", "auto", (3, 2, 1), ['row 3: "completion" is empty']),
    ("gsm8k.jsonl", "auto", (3, 3, 0), []),
]


@pytest.mark.parametrize("name, shape, counts, messages", VALIDATION)
def test_validation_names_each_problem_by_row(name, shape, counts, messages):
    report = validate_file(DATA / name, shape)
    assert (report.rows, report.valid, report.invalid) == counts
    assert [p["message"] for p in report.problems] == messages
    assert report.more is False


def test_problems_carry_row_and_field():
    report = validate_file(DATA / "empty_field.jsonl", "alpaca")
    assert report.problems[0] == {"row": 2, "field": "output",
                                  "message": 'line 2: "output" is empty'}
    assert validate_file(DATA / "broken.jsonl", "qa").problems[0]["field"] is None


def test_too_long_fields_are_named_with_the_limit():
    report = validate_file(DATA / "gsm8k.jsonl", "gsm8k", max_chars=53)
    assert [p["message"] for p in report.problems] == [
        'line 1: "question" is 63 characters long, over the 53 limit',
        'line 3: "question" is 54 characters long, over the 53 limit']


def test_only_the_first_problems_are_listed_and_more_says_so(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text('{"question": "", "answer": "a"}\n' * 60)
    report = validate_file(path, "qa")
    assert len(report.problems) == 50 and report.more is True and report.invalid == 60
    assert report.problems[-1]["message"] == 'line 50: "question" is empty'
    assert validate_file(path, "qa", limit=60).more is False


def test_an_explicit_mapping_is_validated_as_given():
    assert validate_file(DATA / "qa.csv", FieldMapping(instruction="answer")).valid == 3
    report = validate_file(DATA / "completion.txt", FieldMapping(instruction="prompt"))
    assert report.invalid == 3 and report.problems[0]["message"] == 'line 1: "prompt" is missing'


def test_a_line_nested_too_deep_is_one_broken_row(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text('{"q": "a"}\n' + "[" * 100_000 + "\n" + '{"q": "b"}\n', encoding="utf-8")
    records = list(iter_records(path))
    assert [(r.number, r.row) for r in records if r.row] == [(1, {"q": "a"}), (3, {"q": "b"})]
    assert records[1].number == 2 and records[1].problem.startswith("invalid JSON")


def test_csv_cells_longer_than_the_csv_modules_default_limit_are_read(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("question,answer\n" + "x" * 200_000 + ",y\n", encoding="utf-8")
    assert len(head_rows(path, 1)[0]["question"]) == 200_000


def test_validation_reads_dotted_columns_as_training_does():
    from core.formats.validation import validate_file
    squad = Path(__file__).resolve().parents[1] / "data" / "datasets" / "catalog" / \
        "squad_v2.jsonl"
    report = validate_file(squad, FieldMapping(instruction="question", input="context",
                                               response="answers.text",
                                               reference="answers.text"))
    assert not [p for p in report.problems if "missing" in p["message"]], report.problems
