"""core.formats.json_stream: a .json file read item by item gives what json.loads gives, whatever
the chunk size, and names the line of what is wrong."""
import json
import random

import pytest

from core.datasets import DatasetError
from core.formats import json_stream
from core.formats.json_stream import json_rows


@pytest.fixture(params=[1, 3, 7, 64, 1 << 16], ids=lambda n: f"chunk{n}")
def chunk(request, monkeypatch):
    """Small chunks put every boundary (inside strings, escapes, numbers, literals) in play."""
    monkeypatch.setattr(json_stream, "CHUNK_BYTES", request.param)
    return request.param


def _write(tmp_path, text, name="rows.json"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


ROWS = [{"instruction": "Say \"hi\"\n", "output": "h\u00e9llo \u2603 \\u00e9", "n": 123456789012},
        {"q": "", "a": [1, 2.5e-3, True, False, None], "nested": {"x": {"y": ["z"]}}},
        {"long": "x" * 5000, "emoji": "\U0001F600", "neg": -0.0, "big": 10**30}]


def test_items_equal_json_loads_at_every_chunk_size(tmp_path, chunk):
    text = json.dumps(ROWS, indent=2)
    assert list(json_rows(_write(tmp_path, text))) == json.loads(text)


def test_a_number_cut_at_a_chunk_boundary_is_read_whole(tmp_path, chunk):
    values = [random.Random(seed).randrange(10**15) for seed in range(30)]
    path = _write(tmp_path, json.dumps([{"v": v} for v in values] + [7, 12345, 1.5, True, None],
                                       separators=(",", ":")))
    assert list(json_rows(path)) == [{"v": v} for v in values] + [7, 12345, 1.5, True, None]


def test_an_object_holding_one_list_gives_its_items(tmp_path, chunk):
    text = '\ufeff{"version": {"a": [1, 2]}, "note": "x", "data": [{"a": 1}, {"a": 2}], "n": 3}'
    assert list(json_rows(_write(tmp_path, text))) == [{"a": 1}, {"a": 2}]


def test_empty_list_and_empty_lines(tmp_path, chunk):
    assert list(json_rows(_write(tmp_path, "\r\n  [ \r\n ]\r\n"))) == []


INVALID = [
    ('[\n{"a": 1},\n{"a": }\n]', "rows.json line 3: invalid JSON (Expecting value)"),
    ('[\n{"a": 1}\n{"a": 2}\n]', "rows.json line 3: invalid JSON (Expecting ',' delimiter)"),
    ('[\n{"a": 1},\n', "rows.json line 3: invalid JSON (Expecting value)"),
    ('[{"a": "unterminated}]', "rows.json line 1: invalid JSON (Unterminated string starting at)"),
    ('[{"a": 1}]\n\n{"b": 2}', "rows.json line 3: invalid JSON (Extra data)"),
    ('{"data": [{"a": 1}] "x": 1}', "rows.json line 1: invalid JSON (Expecting ',' delimiter)"),
    ('{data: []}', "rows.json line 1: invalid JSON "
                   "(Expecting property name enclosed in double quotes)"),
    ('[' * 100_000 + ']' * 100_000, "rows.json line 1: invalid JSON (RecursionError)"),
]


@pytest.mark.parametrize("text, message", INVALID)
def test_invalid_json_names_its_line(tmp_path, chunk, text, message):
    with pytest.raises(DatasetError) as info:
        list(json_rows(_write(tmp_path, text)))
    assert str(info.value) == message


@pytest.mark.parametrize("text", ['"rows"', "42", '{"a": 1}', '{"a": [1], "b": [2]}', ""])
def test_a_file_without_one_row_list_is_refused(tmp_path, text):
    with pytest.raises(DatasetError) as info:
        list(json_rows(_write(tmp_path, text)))
    assert str(info.value) == "rows.json: expected a list of rows, or an object holding one"


@pytest.mark.parametrize("bad", [b"\xe9", b"\xc3(", b"\xe2\x82("], ids=["latin1", "cut2", "cut3"])
def test_a_file_that_is_not_utf8_names_the_byte(tmp_path, chunk, bad):
    path = _write(tmp_path, b'[{"a": "ok"}, {"a": "caf' + bad + b'"}]')
    with pytest.raises(DatasetError) as info:
        list(json_rows(path))
    assert str(info.value) == "rows.json is not UTF-8 text (byte 24); save it as UTF-8"


def test_the_first_rows_of_a_huge_file_are_read_without_reading_it_whole(tmp_path, monkeypatch):
    """Reading stops where the consumer stops: the file's tail is never read (it is not JSON)."""
    path = _write(tmp_path, "[" + ",".join(['{"a": 1}'] * 50_000) + "," + "@" * 5_000_000)
    rows = json_rows(path)
    assert [next(rows) for _ in range(3)] == [{"a": 1}] * 3
    rows.close()


def test_a_row_over_the_limit_is_refused_with_its_line(tmp_path, monkeypatch):
    monkeypatch.setattr(json_stream, "MAX_ROW_CHARS", 1000)
    path = _write(tmp_path, '[\n{"a": 1},\n{"a": "' + "x" * 5000 + '"}]')
    with pytest.raises(DatasetError, match=r"^rows.json line 3: an item over 0 MB"):
        list(json_rows(path))
