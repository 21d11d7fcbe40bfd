"""JSON state is written atomically (temp file in the same folder, fsync, rename): a writer killed
with SIGKILL at random moments, 50 times, always leaves a state.json that parses; a write that
fails leaves the old file; and no module writes JSON state any other way."""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest

from core.files import write_json_atomic
from core.run_dir import RunDir
from tests.conftest import REPO, wait_for

KILLS = 50
# rewrites state.json as fast as it can, through the run directory's own writer, with a body
# large enough that a torn write would be caught
WRITER = """
import sys
from core.run_dir import RunDir
run, step = RunDir(sys.argv[1]), 0
while True:
    step += 1
    run.update_state(step=step, padding="x" * (1000 + 97 * (step % 2000)))
"""
# what may call json.dump / write_text(json.dumps) outside core/files.py, and why
NOT_STATE = {
    "rewards/evaluate.py": "its answer goes to stdout",
    "rewards/sandbox.py": "the payload handed to the sandboxed child, in its private work folder "
                          "(rewards/ imports nothing of ours)",
}
JSON_WRITE = re.compile(r"json\.dump\(|write_text\(\s*json\.dumps|write_bytes\(\s*json\.dumps")


@pytest.mark.slow
def test_a_writer_killed_50_times_always_leaves_a_state_file_that_parses(tmp_path):
    run = RunDir(tmp_path)
    write_json_atomic(run.state_path, {"status": "running", "step": 0})
    rng = random.Random(7)
    steps = []
    for _ in range(KILLS):
        before = run.state_path.stat().st_mtime_ns
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=REPO)
        try:   # kill it while it is writing: after it changed the file at least once
            wait_for(lambda: run.state_path.stat().st_mtime_ns != before, 30, "a write")
            time.sleep(rng.uniform(0, 0.02))   # a random moment in its write loop
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        state = json.loads(run.state_path.read_text(encoding="utf-8"))
        assert state["status"] == "running" and len(state["padding"]) >= 1000
        steps.append(state["step"])
    assert len(steps) == KILLS and all(step >= 1 for step in steps)


def test_a_torn_temporary_file_beside_the_state_is_never_read(tmp_path):
    run = RunDir(tmp_path)
    write_json_atomic(run.state_path, {"status": "running"})
    (tmp_path / ".state.json.abc.tmp").write_text('{"status": "runn')   # a torn temp file
    assert json.loads(run.state_path.read_text())["status"] == "running"
    assert RunDir(tmp_path).read_state()["status"] == "running"


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "state.json"
    write_json_atomic(path, {"status": "running"})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"status": object()})       # not JSON: fails half-way
    assert json.loads(path.read_text()) == {"status": "running"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_the_new_file_is_synced_before_it_replaces_the_old(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append("fsync"))
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: calls.append("replace") or
                        real_replace(a, b))
    write_json_atomic(tmp_path / "state.json", {"status": "running"})
    assert calls == ["fsync", "replace"]


def test_json_state_is_written_only_through_the_atomic_writer():
    found = []
    for folder in ("core", "services", "routes", "rewards"):
        for path in sorted((REPO / folder).rglob("*.py")):
            name = str(path.relative_to(REPO))
            if name == "core/files.py" or name in NOT_STATE:
                continue
            found += [f"{name}:{n}" for n, line in
                      enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                      if JSON_WRITE.search(line)]
    assert found == []
