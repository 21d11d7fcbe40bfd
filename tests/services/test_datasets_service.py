"""The datasets services: uploads and their labels, derived files (all or nothing), the tools'
errors naming body keys, and background jobs (limits, progress to one socket, close)."""
from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest

from core.datasets import DatasetError
from services import dataset_jobs, dataset_tools
from services.dataset_jobs import DatasetJobNotFound, DatasetJobs
from services.dataset_tools import DatasetTools
from services.datasets import DatasetLibrary, DatasetNotFound
from services.rewards import TooManyTests
from tests.conftest import wait_for

DATA = Path(__file__).resolve().parent.parent / "data" / "datasets"


@pytest.fixture
def library(tmp_path):
    return DatasetLibrary(tmp_path / "uploads", 1 << 20)


def add(library, name):
    return library.save_upload(io.BytesIO((DATA / name).read_bytes()), name)


def listed(library):
    return {e["id"]: e for e in library.uploads()}


def test_an_upload_with_broken_lines_is_kept_with_its_problems_by_line(library):
    entry = add(library, "broken.jsonl")
    assert entry["rows"] == 5 and entry["complete"] and entry["shape"] == "qa"
    assert [(e["row"], e["field"]) for e in entry["errors"]] == [(3, None), (5, None)]
    assert entry["errors"][0]["message"] == "line 3: invalid JSON (Expecting value)"
    assert entry["invalid"] == 2 and entry["more"] is False
    assert listed(library)[entry["id"]]["rows"] == 5


def test_an_upload_past_the_check_limit_has_no_row_count_yet(library, monkeypatch):
    monkeypatch.setattr(dataset_tools, "UPLOAD_CHECK_ROWS", 2)
    entry = add(library, "gsm8k.jsonl")
    assert (entry["rows"], entry["checked_rows"], entry["complete"]) == (None, 2, False)


def test_validation_remembers_the_row_count(library, monkeypatch):
    monkeypatch.setattr(dataset_tools, "UPLOAD_CHECK_ROWS", 1)
    entry = add(library, "empty_field.jsonl")
    report = DatasetTools(library).validate({"id": entry["id"], "format": "alpaca"})
    assert (report["rows"], report["valid"], report["invalid"]) == (5, 2, 3)
    assert library.entry(entry["id"])["rows"] == 5


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "two\nlines", 3])
def test_a_label_must_be_short_text_on_one_line(library, name):
    entry = add(library, "qa.csv")
    with pytest.raises(DatasetError) as info:
        library.rename(entry["id"], name)
    assert info.value.field == "name"


def test_rename_and_delete(library):
    entry = add(library, "qa.csv")
    assert library.rename(entry["id"], " capitals ")["name"] == "capitals"
    assert library.download(entry["id"])[1] == "capitals.csv"
    assert library.delete(entry["id"]) == entry["id"]
    assert listed(library) == {} and list(library.uploads_dir.iterdir()) == []
    for bad in (entry["id"], "../../etc/passwd", None):
        with pytest.raises(DatasetNotFound):
            library.entry(bad)


def test_derived_files_are_listed_all_or_none(library):
    source = add(library, "qa.csv")
    with library.scratch() as folder:
        (folder / "a.jsonl").write_text('{"question": "q", "answer": "a"}\n')
        with pytest.raises(FileNotFoundError):   # the second file is missing
            library.store_derived([(folder / "a.jsonl", "a", 1), (folder / "b.jsonl", "b", 1)],
                                  source["id"])
    assert list(listed(library)) == [source["id"]]
    assert sorted(p.name for p in library.uploads_dir.iterdir()) == \
        sorted([source["file"], f"{source['id']}.meta.json"])


def test_split_parts_are_new_uploads_from_the_source(library):
    source = add(library, "broken.jsonl")
    parts = DatasetTools(library).split({"id": source["id"], "validation": 0.34})
    entries = parts["parts"]
    assert set(entries) == {"train", "validation"} and parts["broken_rows"] == 2
    assert entries["train"]["rows"] + entries["validation"]["rows"] == 3
    assert {e["derived_from"] for e in entries.values()} == {source["id"]}
    assert entries["validation"]["name"] == "broken (validation).jsonl"
    assert set(listed(library)) == {source["id"], *(e["id"] for e in entries.values())}


@pytest.mark.parametrize("body, field", [
    ({"target": "alpaca", "as": "xml"}, "as"),
    ({"target": "messages", "as": "csv"}, "as"),             # turns do not fit a cell
    ({"target": "poem"}, "target"),
    ({"target": "alpaca", "format": "messages"}, "mapping.messages"),  # qa rows hold no chat
    ({"target": "alpaca", "mapping": {"instruction": "nope"}}, "mapping.instruction"),
    ({"target": "alpaca", "txt_mode": "page"}, "txt_mode"),
])
def test_convert_errors_name_the_body_key(library, body, field):
    source = add(library, "qa.csv")
    with pytest.raises(ValueError) as info:
        DatasetTools(library).convert({"id": source["id"], **body})
    assert info.value.field == field
    assert list(listed(library)) == [source["id"]]


class Published(list):
    def __call__(self, event, payload, room):
        self.append((event, payload, room))


def test_a_stats_job_reports_to_its_socket_only_and_counts_characters(library):
    source, sent = add(library, "gsm8k.jsonl"), Published()
    jobs = DatasetJobs(library, sent)
    job_id = jobs.start_stats({"id": source["id"], "socket_id": "sid-1"})
    done = wait_for(lambda: (j := jobs.get(job_id))["status"] != "running" and j, 30)
    assert done["status"] == "done" and done["result"]["unit"] == "characters"
    assert done["result"]["rows"] == 3 and done["result"]["duplicates"] == 0
    assert {(event, room) for event, _, room in sent} == {("dataset_progress", "sid-1")}
    assert sent[-1][1] == {"job_id": job_id, "kind": "stats", "status": "done", "done": 0,
                           "message": "done: 3 rows"}


def test_jobs_without_a_socket_publish_nothing(library):
    source, sent = add(library, "gsm8k.jsonl"), Published()
    jobs = DatasetJobs(library, sent)
    job_id = jobs.start_dedup({"id": source["id"]})
    wait_for(lambda: jobs.get(job_id)["status"] == "done", 30)
    assert sent == []


def test_at_most_two_jobs_run_and_close_stops_them(library, monkeypatch):
    release = threading.Event()

    def slow(path, *args, on_progress, **kwargs):
        release.wait(10)
        on_progress(1000)   # the job's next progress call: stops after close()
        return {"rows": 0, "broken_rows": 0}
    monkeypatch.setattr(dataset_jobs, "dataset_statistics", slow)
    source = add(library, "qa.csv")
    jobs = DatasetJobs(library, Published())
    running = [jobs.start_stats({"id": source["id"]}) for _ in range(2)]
    with pytest.raises(TooManyTests):
        jobs.start_stats({"id": source["id"]})
    threads = [t for t in threading.enumerate() if t.name.startswith("dataset-stats")]
    jobs.close()
    release.set()
    for thread in threads:
        thread.join(10)
    with pytest.raises(DatasetJobNotFound):
        jobs.get(running[0])


def test_finished_jobs_are_forgotten_beyond_the_bound(library, monkeypatch):
    monkeypatch.setattr(dataset_jobs, "MAX_FINISHED", 1)
    source = add(library, "qa.csv")
    jobs = DatasetJobs(library, Published())
    first = jobs.start_stats({"id": source["id"]})
    wait_for(lambda: jobs.get(first)["status"] == "done", 30)
    second = jobs.start_stats({"id": source["id"]})
    wait_for(lambda: jobs.get(second)["status"] == "done", 30)
    jobs.start_stats({"id": source["id"]})
    with pytest.raises(DatasetJobNotFound):
        jobs.get(first)


def test_a_cleaned_copy_is_refused_once_the_source_changed(library):
    source = library.save_upload(io.BytesIO(b"".join(
        json.dumps({"question": q, "answer": "a"}).encode() + b"\n"
        for q in ("same", "same", "other"))), "dups.jsonl")
    jobs = DatasetJobs(library, Published())
    job_id = jobs.start_dedup({"id": source["id"]})
    assert wait_for(lambda: jobs.get(job_id)["status"] == "done", 30)
    with Path(source["path"]).open("a") as f:
        f.write('{"question": "new", "answer": "b"}\n')
    with pytest.raises(DatasetError) as info:
        jobs.write_dedup(job_id, {})
    assert info.value.field == "job_id" and "search again" in str(info.value)
    assert sorted(p.name for p in library.uploads_dir.iterdir()) == \
        sorted([source["file"], f"{source['id']}.meta.json"])


def test_what_a_killed_server_left_in_the_uploads_folder_is_removed_at_start(tmp_path):
    library = DatasetLibrary(tmp_path, 1 << 20)
    kept = library.save_upload(io.BytesIO(b'{"question": "a", "answer": "b"}\n'), "kept.jsonl")
    (tmp_path / ".upload-abc123").write_bytes(b"half an upload")
    (tmp_path / ".derived-xyz").mkdir()
    (tmp_path / ".derived-xyz" / "part.jsonl").write_text("{}\n")
    (tmp_path / "0123456789abcdef.jsonl").write_text("{}\n")  # renamed, its meta never written
    assert sorted(library.remove_leftovers()) == [".derived-xyz", ".upload-abc123",
                                                  "0123456789abcdef.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [kept["file"], f"{kept['id']}.meta.json"])
    assert [e["id"] for e in library.uploads()] == [kept["id"]]
