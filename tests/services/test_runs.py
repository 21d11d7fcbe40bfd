"""Reading runs back from their directories: histories, summaries, logs, checkpoints, ids."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.config import RunConfig
from core.files import write_json_atomic
from core.run_dir import RunDir, create_run
from services.runs import RunNotFound, RunStore, running_time, tail_lines, valid_run_id


def make_run(root: Path, run_id: str = "run-1") -> RunDir:
    return create_run(RunConfig(), root, run_id=run_id)


@pytest.mark.parametrize("run_id, ok", [
    ("20261123-101010-quickstart-ab12", True),  # what new_run_id makes
    ("my.run_2", True),                         # letters, digits, '.', '_', '-'
    ("../etc", False),                          # parent folder
    ("a/b", False),                             # a separator
    (".hidden", False),                         # a dotfile
    ("a..b", False),                            # '..' anywhere
    ("", False),                                # empty
    ("x" * 129, False),                         # too long
])
def test_run_ids_are_checked(run_id, ok):
    assert valid_run_id(run_id) is ok


def test_unknown_or_traversing_run_is_not_found(tmp_path):
    store = RunStore(tmp_path)
    make_run(tmp_path)
    assert store.run("run-1").run_id == "run-1"
    for bad in ("run-2", "../run-1", "run-1/..", "%2e%2e"):
        with pytest.raises(RunNotFound):
            store.run(bad)


def test_metrics_since_gives_each_step_once_and_the_next_index(tmp_path):
    run = make_run(tmp_path)
    for step in (1, 2, 3):
        run.append_event("metric", phase="grpo", step=step, reward=step / 10)
    run.append_event("resume", phase="grpo", step=2)   # steps after 2 are logged again
    run.append_event("metric", phase="grpo", step=3, reward=0.9)
    store = RunStore(tmp_path)
    history = store.metrics_since(run)
    assert [(e["step"], e["reward"]) for e in history["events"]] == [(1, 0.1), (2, 0.2), (3, 0.9)]
    assert history["next"] == 5
    later = store.metrics_since(run, since=4)
    assert [e["index"] for e in later["events"]] == [4]


def test_summary_has_best_reward_and_is_recomputed_when_events_grow(tmp_path):
    run = make_run(tmp_path)
    run.append_event("metric", phase="grpo", step=1, reward=0.5, num_tokens=100)
    store = RunStore(tmp_path)
    assert store.summary(run)["best_reward"] == 0.5
    run.append_event("metric", phase="grpo", step=2, reward=0.75, num_tokens=250)
    summary = store.summary(run)
    assert summary["best_reward"] == 0.75 and summary["num_tokens"] == 250


def test_running_time_sums_every_finished_stretch_and_names_the_open_one():
    events = [{"type": "status", "status": "running", "time": 100.0},
              {"type": "metric", "time": 105.0},
              {"type": "status", "status": "paused", "time": 110.0},
              {"type": "status", "status": "queued", "time": 200.0},
              {"type": "status", "status": "running", "time": 300.0},
              {"type": "status", "status": "completed", "time": 305.0}]
    assert running_time(events) == (15.0, None)
    assert running_time(events[:5]) == (10.0, 300.0)    # still running since 300


def test_samples_come_newest_first_with_paging(tmp_path):
    run = make_run(tmp_path)
    for step in range(5):
        run.append_event("sample", phase="grpo", step=step, prompt="p", completions=["c"],
                         scores={"r": [1.0]}, total=[1.0], reference="1")
    page = RunStore(tmp_path).samples(run, limit=2, offset=1)
    assert page["total"] == 5 and [s["step"] for s in page["samples"]] == [3, 2]


def test_log_tail_reads_the_last_lines_of_a_large_log(tmp_path):
    log = tmp_path / "worker.log"
    log.write_text("".join(f"line {i}\n" for i in range(50_000)))
    assert tail_lines(log, 3) == ["line 49997", "line 49998", "line 49999"]
    assert tail_lines(tmp_path / "missing.log", 3) == []


def test_checkpoints_lists_complete_ones_with_their_metrics(tmp_path):
    run = make_run(tmp_path)
    complete = run.checkpoints_dir("grpo") / "checkpoint-4"
    complete.mkdir(parents=True)
    write_json_atomic(complete / "checkpoint.json", {"step": 4, "phase": "grpo",
                                                     "metrics": {"reward": 0.8}})
    (run.checkpoints_dir("grpo") / "checkpoint-8").mkdir()   # being written: no marker yet
    found = RunStore(tmp_path).checkpoints(run)
    assert found == [{"name": "checkpoint-4", "phase": "grpo", "step": 4,
                      "path": "checkpoints/checkpoint-4", "metrics": {"reward": 0.8},
                      "best": True}]


def test_runs_are_listed_newest_first(tmp_path):
    first, second = make_run(tmp_path, "a-run"), make_run(tmp_path, "b-run")
    first.update_state(created_at="2026-01-02T00:00:00+00:00")
    second.update_state(created_at="2026-01-01T00:00:00+00:00")
    (tmp_path / ".hidden").mkdir()
    assert [r.run_id for r in RunStore(tmp_path).runs()] == ["a-run", "b-run"]
