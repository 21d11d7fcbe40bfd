"""Dataset tools: statistics, exact and near-duplicate search with its cleaned copy, and split.

Fixtures are written per test from literal rows, so each expectation sits beside its data. Near
duplicates are built from 100-word texts whose Jaccard similarity (3-word shingles) is known:
one word changed gives 96/102 = 0.94; eight words changed far apart give 75/123 = 0.61.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from core.datasets import DatasetError, split_indices
from core.formats import dedup
from core.formats.dedup import find_duplicates, write_deduplicated
from core.formats.split import split_file
from core.formats.stats import dataset_statistics, histogram


def write_jsonl(path: Path, rows: list, extra_lines: tuple[str, ...] = ()) -> Path:
    lines = [json.dumps(row) for row in rows] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def text(start: int, words: int = 100) -> str:
    return " ".join(f"word{start + i}" for i in range(words))


def changed(base: str, positions: tuple[int, ...]) -> str:
    words = base.split()
    for p in positions:
        words[p] = f"other{p}"
    return " ".join(words)


def punctuated(base: str) -> str:
    words = base.split()
    return " ".join(w + ("," if i % 7 == 3 else ".") if i % 5 == 0 else w
                    for i, w in enumerate(words)) + "!"


A, B, C, D = text(0), text(1000), text(2000), text(3000)
# row number -> row; comments say what each row is to the others
DEDUP_ROWS = [
    {"instruction": A, "output": "yes"},                                 # 1
    {"instruction": B, "output": "yes"},                                 # 2
    {"instruction": "  " + A.upper().replace(" ", "  "), "output": "YES"},  # 3 exact copy of 1
    {"instruction": changed(A, (50,)), "output": "yes"},                 # 4 one word off 1: 0.94
    {"instruction": punctuated(B), "output": "yes"},                     # 5 2 with punctuation
    {"instruction": C, "output": "yes"},                                 # 6
    {"instruction": changed(C, (5, 17, 29, 41, 53, 65, 77, 89)), "output": "yes"},  # 7 6 at 0.61
    {"instruction": D, "output": "yes"},                                 # 8
    {"instruction": D + " ", "output": "yes "},                          # 9 exact copy of 8
]


@pytest.fixture
def dedup_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "data.jsonl", DEDUP_ROWS, ('{"broken": ',))


# deduplication ---------------------------------------------------------------------------------
def test_default_threshold_finds_exact_and_near_clusters(dedup_file):
    plan = find_duplicates(dedup_file)
    clusters = {c.rows: c.kind for c in plan.clusters}
    assert clusters == {(1, 3, 4): "near", (2, 5): "near", (8, 9): "exact"}
    assert (plan.rows, plan.broken_rows) == (9, 1)
    assert (plan.exact_duplicates, plan.near_duplicates, plan.kept) == (2, 2, 5)
    assert plan.fields == ("instruction", "output")


def test_a_lower_threshold_joins_less_similar_rows(dedup_file):
    plan = find_duplicates(dedup_file, threshold=0.4)
    assert {c.rows for c in plan.clusters} == {(1, 3, 4), (2, 5), (6, 7), (8, 9)}
    assert (plan.near_duplicates, plan.kept) == (3, 4)


def test_the_same_search_gives_the_same_clusters(dedup_file):
    assert find_duplicates(dedup_file).clusters == find_duplicates(dedup_file).clusters


def test_clusters_show_their_first_rows_text_largest_first(dedup_file):
    first = find_duplicates(dedup_file).clusters[0]
    assert first.rows == (1, 3, 4)
    assert first.examples[0] == f"{A}\nyes"[:300]
    assert len(first.examples) == 3


def test_near_search_past_its_limit_compares_later_rows_exactly(dedup_file, monkeypatch):
    """The distinct rows 1, 2, 4, 5, 6 fill the near index (3 is 1's exact copy); 7 and 8 are
    compared exactly only (9 is 8's copy), so 7 is not found near 6."""
    monkeypatch.setattr(dedup, "MAX_NEAR_ROWS", 5)
    plan = find_duplicates(dedup_file, threshold=0.4)
    assert {c.rows for c in plan.clusters} == {(1, 3, 4), (2, 5), (8, 9)}  # (6, 7) not searched
    assert (plan.near_searched, plan.near_unsearched) == (5, 2)
    assert plan.to_dict()["near_unsearched"] == 2 and plan.to_dict()["near_limit"] == 5


def test_a_file_past_the_row_limit_is_refused_naming_the_limit(dedup_file, monkeypatch):
    monkeypatch.setattr(dedup, "MAX_ROWS", 4)
    with pytest.raises(DatasetError, match="^a duplicate search reads at most 4 rows and "
                                           "data.jsonl has more; split it"):
        find_duplicates(dedup_file)


def test_chosen_fields_decide_what_is_compared(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"q": "one", "a": "Same  answer"},
                                              {"q": "two", "a": "same answer"},
                                              {"q": "three", "a": "another"}])
    assert [c.rows for c in find_duplicates(path, fields=["a"]).clusters] == [(1, 2)]
    assert find_duplicates(path, fields=["q", "a"]).clusters == ()


def test_a_threshold_out_of_range_is_refused(dedup_file):
    with pytest.raises(DatasetError, match="threshold"):
        find_duplicates(dedup_file, threshold=0)


def test_cleaned_copy_keeps_the_first_row_of_each_cluster(dedup_file, tmp_path):
    plan = find_duplicates(dedup_file)
    result = write_deduplicated(dedup_file, tmp_path / "out" / "clean.jsonl", plan)
    expected = [DEDUP_ROWS[n - 1] for n in (1, 2, 6, 7, 8)]
    assert read_jsonl(tmp_path / "out" / "clean.jsonl") == expected
    assert result | {"path": None} == {"path": None, "format": "jsonl", "rows": 5, "removed": 4,
                                       "broken_skipped": 1}
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["clean.jsonl"]  # no temp file left


def test_cleaned_copy_of_a_csv_is_a_csv_with_its_header(tmp_path):
    src = tmp_path / "d.csv"
    src.write_text("question,answer\nWhat is 1?,1\nwhat is  1?,1\nWhat is 2?,2\n",
                   encoding="utf-8")
    plan = find_duplicates(src)
    result = write_deduplicated(src, tmp_path / "clean.csv", plan)
    with (tmp_path / "clean.csv").open(newline="", encoding="utf-8") as f:
        assert list(csv.reader(f)) == [["question", "answer"], ["What is 1?", "1"],
                                       ["What is 2?", "2"]]
    assert (result["format"], result["rows"], result["removed"]) == ("csv", 2, 1)


def test_cleaned_copy_of_a_parquet_file_is_jsonl(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    src = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "a b", "completion": "c"},
                                         {"prompt": "A  B", "completion": "C"}]), src)
    result = write_deduplicated(src, tmp_path / "clean.jsonl", find_duplicates(src))
    assert result["format"] == "jsonl"
    assert read_jsonl(tmp_path / "clean.jsonl") == [{"prompt": "a b", "completion": "c"}]


def test_a_plan_for_a_changed_file_is_refused(dedup_file, tmp_path):
    plan = find_duplicates(dedup_file)
    with dedup_file.open("a") as f:
        f.write(json.dumps({"instruction": "new", "output": "row"}) + "\n")
    with pytest.raises(DatasetError, match="search again"):
        write_deduplicated(dedup_file, tmp_path / "clean.jsonl", plan)
    assert not (tmp_path / "clean.jsonl").exists()


# statistics ------------------------------------------------------------------------------------
STATS_ROWS = [
    {"question": "hello world", "answer": "4", "note": "x"},   # 11 + 1 characters
    {"question": "Hello   World", "answer": "4"},              # exact duplicate of row 1
    {"question": "What is 2+2?", "answer": ""},                # empty answer
    {"question": "", "answer": "The quick brown fox"},         # empty question
    {"question": "The quick brown fox", "answer": "hello world"},
]


@pytest.fixture
def stats_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "stats.jsonl", STATS_ROWS, ("not json",))


def test_statistics_count_rows_fields_empty_cells_and_duplicates(stats_file):
    stats = dataset_statistics(stats_file, None, None, None)
    assert (stats["rows"], stats["broken_rows"]) == (5, 1)
    assert stats["broken"] == [{"row": 6, "message": "invalid JSON (Expecting value)"}]
    assert stats["row_unit"] == "line"
    assert stats["fields"] == {"question": 5, "answer": 5, "note": 1}
    assert stats["empty"] == {"question": 1, "answer": 1}
    assert stats["duplicates"] == 1
    assert stats["mapping"]["instruction"] == "question"


def test_statistics_without_a_tokenizer_count_characters(stats_file):
    stats = dataset_statistics(stats_file, None, None, max_seq_length=14)
    prompt, response = stats["prompt"], stats["response"]
    assert stats["unit"] == "characters"
    assert [prompt[k] for k in ("count", "total", "min", "median", "max")] == [5, 55, 0, 12.0, 19]
    assert [response[k] for k in ("total", "min", "max")] == [32, 0, 19]
    assert sum(prompt["histogram"]["counts"]) == 5 == sum(response["histogram"]["counts"])
    # row totals 12, 14, 12, 19, 30: two exceed 14; the epoch counts each row cut at 14
    assert stats["over_max_seq_length"] == 2
    assert stats["tokens_per_epoch"] == 12 + 14 + 12 + 14 + 14


def test_statistics_with_the_models_tokenizer_count_tokens(stats_file, tiny_model):
    stats = dataset_statistics(stats_file, None, tiny_model, max_seq_length=6)
    # tokens: "hello world" 2, "Hello   World" 3, "What is 2+2?" 7, "" 0,
    # "The quick brown fox" 4, "4" 1 (no special tokens added)
    assert stats["unit"] == "tokens"
    assert [stats["prompt"][k] for k in ("total", "min", "max")] == [2 + 3 + 7 + 0 + 4, 0, 7]
    assert stats["response"]["total"] == 1 + 1 + 0 + 4 + 2
    assert stats["prompt"]["histogram"] == {"edges": [0, 1, 2, 3, 4, 5, 6, 7, 8],
                                            "counts": [1, 0, 1, 1, 1, 0, 0, 1]}
    # row totals 3, 4, 7, 4, 6: one exceeds 6
    assert stats["over_max_seq_length"] == 1
    assert stats["tokens_per_epoch"] == 3 + 4 + 6 + 4 + 6


def test_statistics_of_chat_rows_split_prompt_and_last_answer(tmp_path):
    chat = [{"role": "system", "content": "ignored"}, {"role": "user", "content": "abc"},
            {"role": "assistant", "content": "de"}]
    stats = dataset_statistics(write_jsonl(tmp_path / "c.jsonl", [{"messages": chat}]), None,
                               None, None)
    assert (stats["prompt"]["total"], stats["response"]["total"]) == (3, 2)


def test_statistics_report_progress_every_thousand_rows(tmp_path):
    path = write_jsonl(tmp_path / "big.jsonl", [{"question": f"q{i}", "answer": "a"}
                                                   for i in range(2500)])
    seen: list[int] = []
    stats = dataset_statistics(path, None, None, None, on_progress=seen.append)
    assert seen == [1000, 2000]
    assert stats["rows"] == 2500


def test_statistics_and_dedup_agree_on_exact_duplicates(dedup_file):
    assert dataset_statistics(dedup_file, None, None, None)["duplicates"] == \
        find_duplicates(dedup_file).exact_duplicates == 2


def test_statistics_name_a_missing_tokenizer(stats_file, tmp_path):
    with pytest.raises(DatasetError, match="no tokenizer.json"):
        dataset_statistics(stats_file, None, tmp_path, None)


@pytest.mark.parametrize("values, bins, edges, counts", [
    ([3], 20, [3, 4], [1]),                                  # one value, one bin
    ([0, 1, 2, 3], 2, [0, 2, 4], [2, 2]),                    # width 2
    ([0, 10], 3, [0, 4, 8, 12], [1, 0, 1]),                  # width ceil(11 / 3) = 4
    ([5, 5, 6, 100], 20, list(range(5, 106, 5)), [3] + [0] * 18 + [1]),
])
def test_histogram_bins_are_integer_ranges(values, bins, edges, counts):
    import numpy as np
    assert histogram(np.array(values), bins) == {"edges": edges, "counts": counts}


# split -----------------------------------------------------------------------------------------
def split_rows(count: int) -> list[dict]:
    return [{"question": f"q{i}", "answer": str(i)} for i in range(count)]


def test_split_parts_are_disjoint_and_complete(tmp_path):
    src = write_jsonl(tmp_path / "d.jsonl", split_rows(50), ("{broken",))
    result = split_file(src, tmp_path / "parts", validation=0.2, test=0.1)
    parts = {name: read_jsonl(Path(part["path"])) for name, part in result["parts"].items()}
    assert {name: len(rows) for name, rows in parts.items()} == \
        {"train": 35, "validation": 10, "test": 5}
    assert {name: part["rows"] for name, part in result["parts"].items()} == \
        {"train": 35, "validation": 10, "test": 5}
    answers = [row["answer"] for rows in parts.values() for row in rows]
    assert sorted(answers, key=int) == [str(i) for i in range(50)]
    assert result["broken_rows"] == 1
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == \
        ["d.test.jsonl", "d.train.jsonl", "d.validation.jsonl"]


def test_the_same_seed_gives_the_same_parts(tmp_path):
    src = write_jsonl(tmp_path / "d.jsonl", split_rows(40))
    first = split_file(src, tmp_path / "a", 0.25, seed=7)["parts"]["validation"]["path"]
    again = split_file(src, tmp_path / "b", 0.25, seed=7)["parts"]["validation"]["path"]
    other = split_file(src, tmp_path / "c", 0.25, seed=8)["parts"]["validation"]["path"]
    assert read_jsonl(Path(first)) == read_jsonl(Path(again)) != read_jsonl(Path(other))


def test_validation_part_is_what_training_holds_out(tmp_path):
    src = write_jsonl(tmp_path / "d.jsonl", split_rows(30))
    result = split_file(src, tmp_path, validation=0.2, seed=3)
    _, held_out = split_indices(30, 0.2, 3)
    validation = read_jsonl(Path(result["parts"]["validation"]["path"]))
    assert [int(row["answer"]) for row in validation] == sorted(held_out)
    assert "test" not in result["parts"]


@pytest.mark.parametrize("validation, test, message", [
    (0.0, 0.0, "validation must be above 0"),             # no validation part
    (1.0, 0.0, "validation must be above 0 and below 1"),  # everything held out
    (0.2, -0.1, "test must be 0"),
    (0.01, 0.0, "validation 0.01 of 10 rows holds out no row"),
    (0.2, 0.01, "test 0.01 of 10 rows holds out no row"),
    (0.5, 0.5, "leave no row to train on"),
])
def test_fractions_that_leave_a_part_empty_are_refused(tmp_path, validation, test, message):
    src = write_jsonl(tmp_path / "d.jsonl", split_rows(10))
    with pytest.raises(DatasetError, match=message):
        split_file(src, tmp_path / "parts", validation, test)
    assert not (tmp_path / "parts").exists()
