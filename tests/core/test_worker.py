"""The worker as a real process: stop and pause by signal, resume, kill -9, failure."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from core.config import validate_config
from core.run_dir import CHECKPOINT_MARKER, RunDir, create_run
from tests.conftest import REPO, tiny_config, wait_for

pytestmark = pytest.mark.slow


def start_worker(run: RunDir) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "core.worker", str(run.path)], cwd=REPO,
                            stdin=subprocess.DEVNULL)


def new_run(tmp_path, tiny_model, **sections) -> RunDir:
    return create_run(validate_config(tiny_config(tiny_model, **sections)), tmp_path / "outputs")


def step_reached(run: RunDir, step: int) -> bool:
    return run.read_state().get("step", 0) >= step and run.read_state()["status"] == "running"


def finish(proc: subprocess.Popen, timeout: float = 240) -> int:
    return proc.wait(timeout=timeout)


def test_sigterm_stops_with_checkpoint_and_resume_continues_the_steps(tmp_path, tiny_model):
    run = new_run(tmp_path, tiny_model, training={"max_steps": 6})
    proc = start_worker(run)
    wait_for(lambda: step_reached(run, 2), what="step 2")
    proc.send_signal(signal.SIGTERM)
    assert finish(proc) == 0
    state = run.read_state()
    assert state["status"] == "cancelled"
    stopped_at = state["step"]
    assert 2 <= stopped_at < 6
    assert run.newest_checkpoint("grpo").name == f"checkpoint-{stopped_at}"

    assert finish(start_worker(run)) == 0
    state = run.read_state()
    assert (state["status"], state["step"]) == ("completed", 6)
    assert state["resumed_from"] == f"checkpoints/checkpoint-{stopped_at}"
    resumes = [e for e in run.iter_events() if e["type"] == "resume"]
    assert [r["step"] for r in resumes] == [stopped_at]
    assert [m["step"] for m in run.metric_history()] == [1, 2, 3, 4, 5, 6]


def test_sigusr1_pauses_and_resume_finishes(tmp_path, tiny_model):
    run = new_run(tmp_path, tiny_model, training={"max_steps": 5})
    proc = start_worker(run)
    wait_for(lambda: step_reached(run, 1), what="step 1")
    proc.send_signal(signal.SIGUSR1)
    assert finish(proc) == 0
    assert run.read_state()["status"] == "paused"
    assert run.newest_checkpoint("grpo") is not None
    assert finish(start_worker(run)) == 0
    assert run.read_state()["status"] == "completed"


def test_kill_9_resumes_from_last_complete_checkpoint(tmp_path, tiny_model):
    run = new_run(tmp_path, tiny_model, training={"max_steps": 8},
                  output={"save_steps": 2, "save_total_limit": 5})
    proc = start_worker(run)
    wait_for(lambda: (c := run.newest_checkpoint("grpo")) and c.name in
             ("checkpoint-4", "checkpoint-6"), timeout=240, what="checkpoint 4")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert run.read_state()["status"] == "running"  # nobody could say otherwise: the pid is dead
    newest = run.newest_checkpoint("grpo")
    # a checkpoint torn by the kill has no marker and must not be used
    torn = run.checkpoints_dir("grpo") / "checkpoint-7"
    torn.mkdir(exist_ok=True)
    (torn / "trainer_state.json").write_text("{")
    assert finish(start_worker(run)) == 0
    state = run.read_state()
    assert (state["status"], state["step"]) == ("completed", 8)
    resume = [e for e in run.iter_events() if e["type"] == "resume"][-1]
    assert resume["checkpoint"] == newest.name
    assert [m["step"] for m in run.metric_history()] == list(range(1, 9))
    assert all((c / CHECKPOINT_MARKER).is_file()
               for c in run.checkpoints_dir("grpo").glob("checkpoint-*"))


def test_failure_exits_nonzero_with_readable_error(tmp_path, tiny_model):
    run = new_run(tmp_path, tiny_model, dataset={"source": "file", "path": "/missing.jsonl"})
    assert finish(start_worker(run)) == 1
    state = run.read_state()
    assert state["status"] == "failed" and "dataset file not found" in state["error"]
    assert "Traceback" in run.log_path.read_text()


def test_completed_run_is_not_started_again(tmp_path, tiny_model):
    run = new_run(tmp_path, tiny_model, training={"max_steps": 1})
    assert finish(start_worker(run)) == 0
    assert finish(start_worker(run)) == 1
    assert "already completed" in run.log_path.read_text()


def test_resume_before_any_checkpoint_counts_each_step_once(tmp_path, tiny_model):
    run = new_run(tmp_path, tiny_model, training={"max_steps": 4})  # save_steps 100: none saved
    proc = start_worker(run)
    wait_for(lambda: step_reached(run, 2), what="step 2")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert run.newest_checkpoint("grpo") is None
    assert finish(start_worker(run)) == 0
    assert [m["step"] for m in run.metric_history()] == [1, 2, 3, 4]
