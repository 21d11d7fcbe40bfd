"""Reading rows from every supported source, field mapping, GSM8K references, prompt building."""
from __future__ import annotations

import json

import pytest

from core.config import DatasetSection, FieldMapping, TemplateSection
from core.datasets import (DatasetError, build_grpo_dataset, build_sft_dataset, detect_mapping,
                           format_response, load_rows, split_gsm8k, to_example)

ROWS = [{"question": "What is 2 + 3?", "answer": "2 + 3 = 5\n#### 5"},
        {"question": "What is 10 - 4?", "answer": "10 - 4 = 6\n#### 6"}]


def _write(path, rows):
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows))
    elif path.suffix == ".csv":
        import csv
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pandas as pd
        pd.DataFrame(rows).to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv", ".parquet"])
def test_reads_every_file_format(tmp_path, suffix):
    path = _write(tmp_path / f"rows{suffix}", ROWS)
    rows = load_rows(DatasetSection(source="file", path=str(path)))
    assert rows[1]["answer"].endswith("#### 6")


def test_builtin_samples_load_and_max_samples_applies():
    assert len(load_rows(DatasetSection(path="arithmetic", max_samples=7))) == 7
    assert len(load_rows(DatasetSection(path="instructions"))) >= 20


BAD_SOURCES = [
    # unknown bundled sample lists the available ones
    (DatasetSection(path="nope"), "available: arithmetic"),
    # missing file
    (DatasetSection(source="file", path="/no/such/file.jsonl"), "not found"),
]


@pytest.mark.parametrize("section,message", BAD_SOURCES)
def test_bad_sources_are_named(section, message):
    with pytest.raises(DatasetError, match=message):
        load_rows(section)


def test_unsupported_extension_is_named(tmp_path):
    path = tmp_path / "rows.xlsx"
    path.write_text("x")
    with pytest.raises(DatasetError, match="use one of"):
        load_rows(DatasetSection(source="file", path=str(path)))


def test_broken_json_names_the_file(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"question": "a", "answer": "b"}\n{not json\n')
    with pytest.raises(DatasetError, match="broken.jsonl"):
        load_rows(DatasetSection(source="file", path=str(path)))


def test_empty_file_is_an_error(tmp_path):
    path = _write(tmp_path / "empty.json", [])
    with pytest.raises(DatasetError):
        load_rows(DatasetSection(source="file", path=str(path)))


def test_hub_dataset_offline_names_id_and_hub(monkeypatch):
    # The Hub cannot be reached from here; offline mode makes that immediate and certain.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DatasetError, match="openai/gsm8k"):
        load_rows(DatasetSection(source="hub", path="openai/gsm8k", config_name="main"))


MAPPINGS = [
    # alpaca
    (["instruction", "input", "output"], {"instruction": "instruction", "input": "input",
                                          "response": "output"}),
    # GSM8K / question-answer
    (["question", "answer"], {"instruction": "question", "response": "answer"}),
    # prompt / completion
    (["prompt", "completion"], {"instruction": "prompt", "response": "completion"}),
    # prompt / response with an explicit reference column
    (["Prompt", "Response", "ground_truth"], {"instruction": "Prompt", "response": "Response",
                                              "reference": "ground_truth"}),
    # chat messages
    (["messages"], {"messages": "messages"}),
    # ShareGPT
    (["conversations", "source"], {"messages": "conversations"}),
]


@pytest.mark.parametrize("columns,expected", MAPPINGS)
def test_mapping_is_detected_from_common_names(columns, expected):
    found = detect_mapping(columns).model_dump()
    assert {k: v for k, v in found.items() if v} == expected


def test_explicit_mapping_wins_and_is_checked():
    found = detect_mapping(["q", "a", "question"], FieldMapping(instruction="q", response="a"))
    assert (found.instruction, found.response) == ("q", "a")
    with pytest.raises(DatasetError, match="column 'missing'") as info:
        detect_mapping(["q"], FieldMapping(instruction="missing"))
    assert info.value.field == "dataset.mapping.instruction"


def test_no_prompt_column_is_an_error():
    with pytest.raises(DatasetError, match="no prompt column"):
        detect_mapping(["foo", "bar"])


GSM8K = [
    ("steps\n#### 42", ("steps", "42")),
    ("a\n#### 1,234", ("a", "1234")),          # commas dropped from the reference
    ("no marker here", ("no marker here", None)),
]


@pytest.mark.parametrize("answer,expected", GSM8K)
def test_split_gsm8k(answer, expected):
    assert split_gsm8k(answer) == expected


def test_examples_carry_reference():
    mapping = detect_mapping(["question", "answer"])
    assert to_example(ROWS[0], mapping).reference == "5"
    alpaca = detect_mapping(["instruction", "input", "output"])
    ex = to_example({"instruction": "Translate", "input": "hi", "output": "salut"}, alpaca)
    assert ex.prompt_messages[0]["content"] == "Translate\n\nhi" and ex.reference == "salut"


def test_zero_answers_and_null_cells_are_kept_apart():
    mapping = detect_mapping(["question", "answer"])
    assert to_example({"question": "1 - 1?", "answer": 0}, mapping).reference == "0"
    assert to_example({"question": "q", "answer": None}, mapping).reference is None
    chat = detect_mapping(["messages", "reference"])
    row = {"messages": [{"role": "user", "content": "hi"}], "reference": None}
    assert to_example(row, chat).reference is None


def test_chat_rows_split_into_prompt_and_last_answer():
    row = {"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "hi"},
                             {"from": "gpt", "value": "hello"}]}
    ex = to_example(row, detect_mapping(["conversations"]))
    assert ex.prompt_messages == [{"role": "user", "content": "hi"}]
    assert ex.response == "hello" and ex.reference == "hello"


def test_sft_response_uses_the_markers():
    t = TemplateSection()
    assert format_response("2 + 3 = 5\n#### 5", t) == "<think>2 + 3 = 5</think><answer>5</answer>"
    assert format_response("plain answer", t) == "plain answer"


def test_prompts_use_chat_template_and_system_prompt(tiny_model):
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    template = TemplateSection(system_prompt="Be brief.")
    section = DatasetSection(path="arithmetic", max_samples=3)
    grpo = build_grpo_dataset(section, template, tokenizer)
    assert grpo.column_names == ["prompt", "question", "reference"]
    first = grpo[0]
    assert first["prompt"].startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert first["prompt"].endswith("<|im_start|>assistant\n")
    assert first["question"] in first["prompt"] and first["reference"].isdigit()
    sft = build_sft_dataset(section, template, tokenizer)
    assert sft[0]["prompt"] == first["prompt"]
    assert sft[0]["completion"].endswith(f"<answer>{first['reference']}</answer>")


def test_custom_chat_template_is_used(tiny_model):
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    template = TemplateSection(system_prompt="S", chat_template=(
        "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}[assistant] "))
    grpo = build_grpo_dataset(DatasetSection(path="arithmetic", max_samples=1), template, tokenizer)
    assert grpo[0]["prompt"].startswith("[system] S\n[user] ")


def test_split_indices_hold_out_a_seeded_fraction_disjointly():
    from core.datasets import split_indices
    train, held = split_indices(10, 0.25, seed=3)
    assert len(held) == 3 and sorted(train + held) == list(range(10))
    assert split_indices(10, 0.25, seed=3) == (train, held)      # the same rows every time
    assert split_indices(10, 0.25, seed=4)[1] != held
    assert split_indices(5, 0.0, seed=3) == ([0, 1, 2, 3, 4], [])


@pytest.mark.parametrize("count, fraction, message", [
    (1, 0.2, "holds out no row"), (2, 0.2, "holds out no row")])
def test_a_split_that_holds_out_nothing_is_named(count, fraction, message):
    from core.datasets import split_indices
    with pytest.raises(DatasetError, match=message):
        split_indices(count, fraction, seed=0)


# refusing rows without a prompt, and the shapes training reads ---------------------------------
from pathlib import Path  # noqa: E402

from core.datasets import training_examples  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "datasets"


def _prompts(rows, tmp_path, **section):
    path = _write(tmp_path / "rows.jsonl", rows) if rows is not None else None
    return DatasetSection(source="file", path=str(section.pop("path", path)), **section)


def test_rows_without_a_prompt_are_refused_by_row_with_validations_words():
    section = DatasetSection(source="file", path=str(FIXTURES / "empty_field.jsonl"),
                             format="alpaca")
    with pytest.raises(DatasetError) as info:
        training_examples(section, "grpo")
    # the same words as core.formats.validation: missing stays "missing" though `datasets`
    # fills the column with null
    assert str(info.value).startswith('2 rows have no usable prompt: line 4: "instruction" is '
                                      'missing; line 5: "instruction" is empty. Fix them')
    assert info.value.field == "dataset.mapping.instruction"


def test_only_the_first_five_bad_rows_are_named_and_the_rest_counted(tmp_path):
    rows = [{"question": "" if i % 2 else f"q{i}", "answer": "a"} for i in range(20)]
    with pytest.raises(DatasetError) as info:
        training_examples(_prompts(rows, tmp_path), "grpo")
    message = str(info.value)
    assert message.startswith('10 rows have no usable prompt: line 2: "question" is empty; '
                              'line 4: "question" is empty;')
    assert 'line 10: "question" is empty; and 5 more.' in message and "line 12" not in message


def test_skip_invalid_rows_skips_them_and_logs_how_many(tmp_path, caplog):
    rows = [{"question": "q1", "answer": "1"}, {"question": " ", "answer": "2"},
            {"question": "q3", "answer": "3"}]
    section = _prompts(rows, tmp_path, skip_invalid_rows=True)
    with caplog.at_level("WARNING", logger="grpo_studio.datasets"):
        examples = training_examples(section, "grpo")
    assert [e.position for e in examples] == [0, 2]
    assert "skipped 1 of 3 rows whose prompt is missing or empty" in caplog.text


def test_a_chat_without_a_user_turn_is_refused():
    section = DatasetSection(source="file", path=str(FIXTURES / "sharegpt.jsonl"))
    assert len(training_examples(section, "sft")) == 2
    with pytest.raises(DatasetError, match='line 4: "messages" has no user turn'):
        training_examples(DatasetSection(source="file", path=str(FIXTURES / "bad_chat.jsonl"),
                                         skip_invalid_rows=False), "grpo")


@pytest.mark.parametrize("name, fmt, first_prompt, response", [
    # sharegpt: from/value turns, the system turn dropped
    ("sharegpt.jsonl", "sharegpt", "What is the capital of France?", "Paris"),
    ("messages.jsonl", "messages", "Write a haiku about rain.", "Soft rain on the roof"),
    # completion: each text is a prompt, with no response
    ("completion.txt", "completion", "The quick brown fox jumps over the lazy dog.", ""),
    ("prompt_completion.parquet", "prompt_completion", "Complete: the sky is", "blue"),
    ("alpaca.json", "alpaca", "Translate to French.\n\nGood morning", "Bonjour"),
    # BOM and CRLF: read by our CSV reader, like the previews, a CRLF in a quoted cell is a LF
    ("bom_crlf.csv", "gsm8k", "What is 1 + 1?", "1 + 1 = 2\n#### 2"),
])
def test_each_format_trains_through_its_shapes_mapping(name, fmt, first_prompt, response):
    section = DatasetSection(source="file", path=str(FIXTURES / name), format=fmt)
    first = training_examples(section, "grpo")[0]
    assert first.prompt_messages[-1]["content"] == first_prompt and first.response == response


def test_txt_blocks_train_one_example_per_block():
    section = DatasetSection(source="file", path=str(FIXTURES / "blocks.txt"), txt_mode="block")
    prompts = [e.prompt_messages[0]["content"] for e in training_examples(section, "grpo")]
    assert prompts == ["Roses are red,\nviolets are blue.", "The second block\nhas two lines.",
                       "third"]


def test_a_format_whose_columns_are_absent_names_the_role_to_map():
    section = DatasetSection(source="file", path=str(FIXTURES / "qa.csv"), format="messages")
    with pytest.raises(DatasetError, match="a messages dataset needs a column for messages") as e:
        training_examples(section, "grpo")
    assert e.value.field == "dataset.mapping.messages"


def test_a_blank_reference_cell_is_no_reference():
    mapping = FieldMapping(instruction="q", response="a", reference="r")
    assert to_example({"q": "x", "a": "#### 4", "r": ""}, mapping).reference == "4"


def test_training_reads_files_as_the_tools_do(tmp_path):
    """One reader for training, previews and validation: a broken line is named by its line
    number (or skipped), a JSON object holding a list trains, and a column mixing numbers and
    text is read as text."""
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "1+1?", "answer": 2}\n{"question": \n'
                      '{"question": "2+2?", "answer": "4"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"1 row\(s\) cannot be read: line 2: invalid JSON"):
        training_examples(DatasetSection(source="file", path=str(broken)), "grpo")
    examples = training_examples(DatasetSection(source="file", path=str(broken),
                                                skip_invalid_rows=True), "grpo")
    assert [(e.reference, e.position) for e in examples] == [("2", 0), ("4", 1)]
    assert load_rows(DatasetSection(source="file", path=str(broken),
                                    skip_invalid_rows=True))["answer"] == ["2", "4"]
    wrapped = _write(tmp_path / "wrapped.json", {"data": [{"question": "3+3?", "answer": "6"}]})
    assert training_examples(DatasetSection(source="file", path=str(wrapped)),
                             "grpo")[0].reference == "6"
