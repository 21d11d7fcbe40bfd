"""The public dataset catalog, offline: each entry's mapping read through the same code training
uses, on a hand-written file with the dataset's real schema (tests/data/datasets/catalog/), and
its suggested rewards checked against the registry. Also the dotted-path mapping (SQuAD's
`answers.text`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.config import DatasetSection, FieldMapping, validate_section
from core.datasets import DatasetError, column_value, detect_mapping, to_example, training_examples
from rewards import build_reward, get_spec
from rewards.registry import Markers
from services.catalog import DATASETS, catalog_dataset

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "datasets" / "catalog"
ENTRIES = {entry["key"]: entry for entry in DATASETS}

# key -> one (prompt start, response start, reference) per fixture row; a reference ending
# in "..." is the start of a longer one
EXPECTED: dict[str, list[tuple[str, str, str | None]]] = {
    "alpaca": [  # the input is appended to the instruction after a blank line
        ("Give three tips for staying healthy.", "1. Eat a balanced diet.", "1. Eat a balanced..."),
        ("Translate the sentence into French.\n\nThe cat sleeps.", "Le chat dort.",
         "Le chat dort."),
        ("Classify the animal as a mammal or a bird.\n\nPenguin", "Bird", "Bird")],
    "gsm8k": [  # '#### N' gives the reference N, thousands separators dropped
        ("Natalia sold clips", "Natalia sold 48/2", "72"),
        ("Weng earns $12 an hour", "Weng earns 12/60", "10"),
        ("A shop sold 1,250 pens", "On Tuesday it sold", "3750")],
    "openmathreasoning": [  # expected_answer is the reference, the long solution the response
        ("A fair coin is tossed once.", "<think>\nTwo equally likely", "\\frac{1}{2}"),
        ("Find the number of positive divisors of 60.", "<think>\n60 = 2^2", "12"),
        ("Let x be a real number", "<think>\nThe left side", "3")],
    "code_alpaca": [
        ("Create an array of length 5", "arr = [2, 4, 6, 8, 10]", "arr = [2, 4, 6, 8, 10]"),
        ("Write a function that returns the sum", "def add(a, b):", "def add(a, b):..."),
        ("Write a SQL query that selects every column of the given table.\n\nTable: employees",
         "SELECT * FROM employees;", "SELECT * FROM employees;")],
    "dolly": [  # the context (Wikipedia passage) follows the instruction
        ("When did Virgin Australia start operating?\n\nVirgin Australia commenced",
         "Virgin Australia commenced", "Virgin Australia commenced..."),
        ("Which is a species of fish? Tope or Rope", "Tope", "Tope"),
        ("Give me three ideas for a rainy afternoon.", "Bake bread",
         "Bake bread, read a novel, or play a board game.")],
    "orca_math": [  # no final-answer column: the worked answer is the reference
        ("Jungkook has 6 apples", "To find the total", "To find the total..."),
        ("A number divided by 4 equals 7.", "Multiply both sides", "Multiply both sides..."),
        ("There are 35 students", "Divide the students", "Divide the students...")],
    "squad_v2": [  # answers.text[0]; an unanswerable question has no reference and no response
        ("In what country is Normandy located?\n\nThe Normans were", "France", "France"),
        ("When were the Normans in Normandy?\n\nThe Normans", "10th and 11th centuries",
         "10th and 11th centuries"),
        ("Who gave their name to Normandy in the 1000s and 1100s?\n\nThe Normans", "", None)],
}

# key -> (reward id, the completion of each fixture row that the reward scores 1)
CORRECT: dict[str, tuple[str, list[str]]] = {
    "gsm8k": ("answer_correct", ["<answer>72</answer>", "<answer>$10</answer>",
                                 "<answer>3,750</answer>"]),
    "openmathreasoning": ("answer_correct", ["<answer>0.5</answer>", "<answer>12</answer>",
                                             "<answer>x = 3</answer>"]),
    # math_verify reads the final number of Orca's worked answer
    "orca_math": ("answer_correct", ["<answer>10</answer>", "<answer>28</answer>",
                                     "<answer>7</answer>"]),
    "squad_v2": ("exact_match", ["<answer>france</answer>", "<answer>10th and 11th "
                                 "centuries</answer>", "<answer>anything</answer>"]),
}


def wizard_section(entry: dict[str, Any]) -> DatasetSection:
    """The dataset section the wizard builds for a catalog entry, on its local fixture."""
    return validate_section(DatasetSection, {
        "source": "file", "path": str(FIXTURES / f"{entry['key']}.jsonl"),
        "config_name": entry["config_name"], "split": entry["split"],
        "mapping": entry["mapping"]}, "dataset")


def test_the_catalog_has_the_seven_datasets_each_with_a_fixture() -> None:
    assert [d["name"] for d in DATASETS] == ["Alpaca", "GSM8K", "OpenMathReasoning",
                                             "Code Alpaca", "Dolly 15k", "Orca Math", "SQuAD v2"]
    assert sorted(ENTRIES) == sorted(EXPECTED)
    assert sorted(p.stem for p in FIXTURES.glob("*.jsonl")) == sorted(EXPECTED)


@pytest.mark.parametrize("hub_id, config, split", [
    ("openai/gsm8k", "main", "train"),              # config 'main' (the other is 'socratic')
    ("nvidia/OpenMathReasoning", None, "cot"),       # splits are cot / tir / genselect
    ("rajpurkar/squad_v2", "squad_v2", "train"),
    ("tatsu-lab/alpaca", None, "train"),
])
def test_entries_name_the_config_and_split_the_hub_has(hub_id: str, config: str | None,
                                                       split: str) -> None:
    entry = catalog_dataset(hub_id)
    assert entry is not None and (entry["config_name"], entry["split"]) == (config, split)
    assert split in entry["splits"]


def test_every_entry_is_well_formed() -> None:
    for entry in DATASETS:
        assert entry["description"] and entry["rows"] > 0 and entry["rewards"], entry["id"]
        FieldMapping(**entry["mapping"])  # the config schema accepts the mapping as it is
        assert entry["download_rows"] is None or entry["download_rows"] > 0


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_training_reads_each_row_through_the_entry_mapping(key: str) -> None:
    examples = training_examples(wizard_section(ENTRIES[key]), "grpo")
    assert len(examples) == len(EXPECTED[key])
    for example, (prompt, response, reference) in zip(examples, EXPECTED[key]):
        assert [m["role"] for m in example.prompt_messages] == ["user"]
        assert example.prompt_messages[0]["content"].startswith(prompt)
        assert example.response.startswith(response)
        if reference is not None and reference.endswith("..."):  # a long one: its start
            assert example.reference.startswith(reference[:-3])
        else:
            assert example.reference == reference


def test_sft_keeps_only_squad_rows_that_have_an_answer() -> None:
    examples = training_examples(wizard_section(ENTRIES["squad_v2"]), "sft")
    assert [e.response for e in examples] == ["France", "10th and 11th centuries"]


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_every_suggested_reward_exists_and_finds_its_columns(key: str) -> None:
    entry = ENTRIES[key]
    examples = training_examples(wizard_section(entry), "grpo")
    for reward_id in entry["rewards"]:
        needed = get_spec(reward_id).fields()  # raises for an id the registry does not have
        for column in needed:
            assert column == "reference", (reward_id, column)  # the only column we provide
            assert any(e.reference for e in examples), (key, reward_id)


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_every_suggested_reward_scores_the_dataset_rows(key: str) -> None:
    examples = training_examples(wizard_section(ENTRIES[key]), "grpo")
    completions = [e.response or "x" for e in examples]
    for reward_id in ENTRIES[key]["rewards"]:
        reward = build_reward(reward_id, {}, Markers())
        scores = reward(completions, prompt=[e.prompt_messages[-1]["content"] for e in examples],
                        reference=[e.reference for e in examples])
        assert len(scores) == len(examples), reward_id
        assert all(s is None or 0.0 <= s <= 1.0 for s in scores), (reward_id, scores)


@pytest.mark.parametrize("key", sorted(CORRECT))
def test_a_correct_answer_scores_one_against_the_mapped_reference(key: str) -> None:
    reward_id, completions = CORRECT[key]
    examples = training_examples(wizard_section(ENTRIES[key]), "grpo")
    scores = build_reward(reward_id, {}, Markers())(
        completions, reference=[e.reference for e in examples])
    expected = [1.0 if e.reference else None for e in examples]  # no reference: skipped (None)
    assert scores == expected


# ---- dotted paths into nested columns -------------------------------------------------------
@pytest.mark.parametrize("row, column, value", [
    ({"answers": {"text": ["France", "in France"]}}, "answers.text", "France"),  # first element
    ({"answers": {"text": []}}, "answers.text", None),                          # unanswerable
    ({"answers": [{"text": "Paris"}]}, "answers.text", "Paris"),                # list of objects
    ({"answers": None}, "answers.text", None),
    ({"meta": {"a": {"b": 7}}}, "meta.a.b", 7),
    ({"a.b": "literal", "a": {"b": "nested"}}, "a.b", "literal"),               # exact name wins
    ({"question": "q"}, "question", "q"),
    ({"tags": ["x", "y"]}, "tags", ["x", "y"]),                                 # plain: untouched
])
def test_a_mapping_column_may_be_a_dotted_path(row: dict[str, Any], column: str,
                                               value: Any) -> None:
    assert column_value(row, column) == value


def test_a_dotted_path_must_start_at_an_existing_column() -> None:
    mapping = detect_mapping(["question", "answers"], FieldMapping(reference="answers.text"))
    assert mapping.reference == "answers.text"
    with pytest.raises(DatasetError) as err:
        detect_mapping(["question", "answers"], FieldMapping(reference="replies.text"))
    assert err.value.field == "dataset.mapping.reference"


def test_a_nested_reference_reaches_the_example() -> None:
    mapping = FieldMapping(instruction="question", reference="answers.text")
    example = to_example({"question": "Where?", "answers": {"text": ["Here", "There"]}}, mapping)
    assert example.reference == "Here"
    assert to_example({"question": "Where?", "answers": {"text": []}}, mapping).reference is None
