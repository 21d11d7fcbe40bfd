"""Run directory: atomic state, append-only events, complete checkpoints, deduplicated history."""
from __future__ import annotations

import json

import pytest

from core.config import validate_config
from core.files import resolve_inside, write_json_atomic
from core.run_dir import CHECKPOINT_MARKER, RunDir, create_run, metric_history


@pytest.fixture
def run(tmp_path):
    return create_run(validate_config({"rewards": [{"name": "answer_correct"}]}, cuda=False),
                      tmp_path)


def test_new_run_has_config_and_queued_state(run):
    state = run.read_state()
    assert state["status"] == "queued" and state["run_id"] == run.run_id
    assert set(state) >= {"run_id", "name", "status", "phase", "step", "total_steps", "pid",
                          "created_at", "started_at", "finished_at", "error", "resumed_from"}
    assert json.loads(run.config_path.read_text())["rewards"][0]["name"] == "answer_correct"


def test_atomic_write_leaves_no_temp_files(tmp_path):
    write_json_atomic(tmp_path / "s.json", {"a": 1})
    write_json_atomic(tmp_path / "s.json", {"a": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": 2}


def test_events_append_and_a_torn_last_line_is_skipped(run):
    run.append_event("log", line="one")
    run.append_event("log", line="two")
    with run.events_path.open("a") as f:
        f.write('{"type": "log", "li')  # a crash in the middle of a write
    assert [e["line"] for e in run.iter_events()] == ["one", "two"]


def test_only_checkpoints_with_marker_count(run):
    for step, complete in ((2, True), (4, True), (6, False)):
        folder = run.checkpoints_dir("grpo") / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        if complete:
            (folder / CHECKPOINT_MARKER).write_text("{}")
    assert run.newest_checkpoint("grpo").name == "checkpoint-4"
    assert [p.name for p in run.remove_incomplete_checkpoints("grpo")] == ["checkpoint-6"]
    assert not (run.checkpoints_dir("grpo") / "checkpoint-6").exists()


def test_pre_training_checkpoints_are_kept_apart(run):
    assert run.checkpoints_dir("pre_training") != run.checkpoints_dir("grpo")


def test_history_drops_steps_replayed_after_resume():
    events = [{"type": "metric", "phase": "grpo", "step": s} for s in (1, 2, 3, 4)]
    events += [{"type": "resume", "phase": "grpo", "step": 2}]
    events += [{"type": "metric", "phase": "grpo", "step": s} for s in (3, 4, 5)]
    assert [e["step"] for e in metric_history(events)] == [1, 2, 3, 4, 5]


def test_history_keeps_other_phases_on_resume():
    events = [{"type": "metric", "phase": "pre_training", "step": 5},
              {"type": "resume", "phase": "grpo", "step": 0}]
    assert len(metric_history(events)) == 1


def test_not_a_run_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        RunDir(tmp_path).read_state()


PATHS = [("a/b.json", True), ("../escape.json", False), ("/etc/passwd", False),
         ("a/../../x", False)]


@pytest.mark.parametrize("user_path,inside", PATHS)
def test_resolve_inside(tmp_path, user_path, inside):
    if inside:
        assert resolve_inside(tmp_path, user_path).is_relative_to(tmp_path.resolve())
    else:  # outside, or refused before it is resolved (an absolute path, '..')
        with pytest.raises(ValueError, match="outside|refused"):
            resolve_inside(tmp_path, user_path)
