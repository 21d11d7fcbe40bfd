"""The exports service: requests checked, one worker at a time in order, progress published once
per change, files served only by listed name, dead workers reported, deletion stops the worker."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from core.config import validate_config
from core.files import write_json_atomic
from core.run_dir import create_run
from services.exports import ExportNotFound, ExportRequestError, Exports
from services.runs import RunStore
from tests.conftest import wait_for


class Published(list):
    def __call__(self, event, payload, room):
        self.append((event, payload, room))


def fake_python(tmp_path: Path, script: str) -> str:
    """An executable standing where the Python interpreter would: it receives `-m core.export
    DIR` and runs `script` (a shell script) with DIR as $3."""
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


@pytest.fixture
def finished_run(tmp_path):
    run = create_run(validate_config({"rewards": [{"name": "answer_correct"}]}),
                     tmp_path / "outputs", run_id="r1")
    (run.path / "adapter").mkdir()
    return run


def make_exports(tmp_path, script="exit 0") -> tuple[Exports, Published]:
    published = Published()
    exports = Exports(tmp_path / "exports", RunStore(tmp_path / "outputs"), published,
                      python=fake_python(tmp_path, script))
    return exports, published


@pytest.mark.parametrize("body,field", [
    ({"session_id": "r1", "format": "zip"}, "format"),                      # unknown format
    ({"session_id": "r1", "format": "gguf", "quantization": "q2"}, "quantization"),
    ({"session_id": "r1", "format": "adapter", "quantization": "q8_0"}, "quantization"),
    ({"format": "adapter"}, "session_id"),                                  # no run named
    ({"session_id": "r1", "format": "merged", "checkpoint": "checkpoint-9"}, "checkpoint"),
])
def test_bad_requests_name_the_field_and_create_nothing(tmp_path, finished_run, body, field):
    exports, _ = make_exports(tmp_path)
    with pytest.raises(ExportRequestError) as err:
        exports.create(body)
    assert err.value.field == field
    assert exports.list() == []


def test_a_run_without_a_result_cannot_be_exported(tmp_path, finished_run):
    (finished_run.path / "adapter").rmdir()
    exports, _ = make_exports(tmp_path)
    with pytest.raises(ExportRequestError, match="no trained result"):
        exports.create({"session_id": "r1", "format": "adapter"})


def test_a_worker_that_finishes_is_reported_with_its_progress(tmp_path, finished_run):
    script = ('python3 -c "import json,sys; p=sys.argv[1]+\'/export.json\'; '
              's=json.load(open(p)); s.update(status=\'done\', progress=1.0, message=\'verified\', '
              'files=[{\'name\': \'model-q8_0.gguf\', \'size\': 3}]); json.dump(s, open(p, \'w\'))" '
              '"$3" && printf abc > "$3/model-q8_0.gguf"')
    exports, published = make_exports(tmp_path, script)
    export_id = exports.create({"session_id": "r1", "format": "gguf", "quantization": "q8_0",
                                "socket_id": "sid-1"})["export_id"]
    assert export_id.startswith("r1-gguf-q8_0-")
    wait_for(lambda: exports.tick() or exports.running is None, 30, "the worker to end")
    state = exports.get(export_id)
    assert (state["status"], state["size"], state["source"]["run_dir"]) == \
        ("done", 3, str(finished_run.path.resolve()))
    assert exports.file_path(export_id, "model-q8_0.gguf").read_bytes() == b"abc"
    statuses = [p["status"] for e, p, room in published if e == "export_progress"]
    assert statuses[-1] == "done" and all(room == "sid-1" for _, _, room in published)
    assert len(statuses) == len(set(statuses))  # one message per change


def test_a_worker_that_dies_leaves_a_failed_export_naming_its_exit_status(tmp_path, finished_run):
    exports, _ = make_exports(tmp_path, "exit 3")
    export_id = exports.create({"session_id": "r1", "format": "adapter"})["export_id"]
    wait_for(lambda: exports.tick() or exports.running is None, 30, "the worker to end")
    state = exports.get(export_id)
    assert state["status"] == "failed" and "exit status 3" in state["error"]


def test_exports_run_one_at_a_time_in_order(tmp_path, finished_run):
    exports, _ = make_exports(tmp_path, "sleep 30")
    first = exports.create({"session_id": "r1", "format": "adapter"})["export_id"]
    second = exports.create({"session_id": "r1", "format": "merged"})["export_id"]
    assert exports.running[0] == first and exports.queue == [second]
    exports.delete(first)          # stops the running worker, and the next one starts
    exports.tick()
    assert exports.running[0] == second and not (tmp_path / "exports" / first).exists()
    exports.delete(second)
    assert exports.running is None and exports.list() == []


@pytest.mark.parametrize("name", ["../state.json", "export.json/..", "/etc/passwd", "x.gguf",
                                  "export.log"])
def test_files_are_served_only_by_a_listed_name(tmp_path, finished_run, name):
    exports, _ = make_exports(tmp_path, "sleep 30")
    export_id = exports.create({"session_id": "r1", "format": "adapter"})["export_id"]
    exports.delete(export_id)
    folder = tmp_path / "exports" / "e1"
    folder.mkdir(parents=True)
    write_json_atomic(folder / "export.json", {"status": "done", "files": [
        {"name": "model.gguf", "size": 1}]})
    (folder / "model.gguf").write_bytes(b"x")
    assert exports.file_path("e1", "model.gguf").name == "model.gguf"
    with pytest.raises(ExportNotFound):
        exports.file_path("e1", name)
    with pytest.raises(ExportNotFound):
        exports.get("../outputs")


def test_a_restarted_server_fails_exports_whose_worker_is_gone(tmp_path, finished_run):
    folder = tmp_path / "exports" / "old"
    folder.mkdir(parents=True)
    (folder / "export.json").write_text(json.dumps({"status": "running", "pid": 999999999}))
    exports, _ = make_exports(tmp_path)
    exports.start()
    exports.close()
    state = exports.get("old")
    assert state["status"] == "failed" and "server stopped" in state["error"]
