"""The jobs service: queueing, recovery after a restart, tailing events to rooms, and real
training workers on the tiny model (slow)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.config import validate_config
from core.run_dir import RunDir
from services.jobs import FileTail, JobConflict, Jobs, Worker, socket_message
from services.runs import RunStore
from tests.conftest import kill_workers_of, tiny_config, wait_for


class Published:
    """Collects what the service publishes, as a Socket.IO server would receive it."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any], str]] = []

    def __call__(self, event: str, payload: dict[str, Any], room: str) -> None:
        self.messages.append((event, payload, room))

    def named(self, event: str) -> list[dict[str, Any]]:
        return [p for e, p, _ in self.messages if e == event]


@pytest.fixture
def jobs(tmp_path: Path) -> Any:
    service = Jobs(RunStore(tmp_path / "outputs"), Published())
    yield service
    service.close()
    for worker in service.workers.values():
        if worker.process:
            worker.process.kill()
            worker.process.wait()
    kill_workers_of(tmp_path)


def config(model_dir: Path | None = None, **sections: Any) -> Any:
    """A valid tiny config; one that chooses GPUs is validated as on a CUDA machine (these tests
    schedule GPUs, they never use one)."""
    return validate_config(tiny_config(model_dir or Path("/nonexistent"), **sections),
                           cuda=True if "compute" in sections else None)


def stand_in(code: str) -> subprocess.Popen:
    """A real process standing where a worker would (for queue and exit bookkeeping), leading its
    own process group as a worker does."""
    return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)


def occupy(jobs: Jobs, run: RunDir, code: str = "import time; time.sleep(60)",
           status: str = "running") -> subprocess.Popen:
    """Take `run` off the queue as a launch would, with a stand-in process as its worker."""
    process = stand_in(code)
    jobs.queue = [(r, d) for r, d in jobs.queue if r != run.run_id]
    jobs.workers[run.run_id] = Worker(run, "0", process.pid, process)
    run.update_state(status=status)
    return process


def test_file_tail_returns_complete_lines_once(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("old\n")
    tail = FileTail(path)               # starts at the end: old lines are history
    with path.open("a") as f:
        f.write("one\ntw")
    assert tail.new_lines() == ["one"]
    with path.open("a") as f:
        f.write("o\n")
    assert tail.new_lines() == ["two"]
    assert tail.new_lines() == []


@pytest.mark.parametrize("event, name, checks", [
    # a metric becomes training_update with TRL's keys under metrics
    ({"type": "metric", "time": 1.0, "step": 3, "phase": "grpo", "total_steps": 9,
      "eta_seconds": 12.0, "reward": 0.5, "kl": 0.01}, "training_update",
     {"step": 3, "total_steps": 9, "phase": "grpo", "eta_seconds": 12.0,
      "metrics": {"reward": 0.5, "kl": 0.01}}),
    # a sample keeps its fields
    ({"type": "sample", "time": 1.0, "prompt": "p", "completions": ["c"]}, "training_sample",
     {"prompt": "p", "completions": ["c"]}),
    # a failed status carries its error
    ({"type": "status", "time": 1.0, "status": "failed", "error": "boom"}, "training_status",
     {"status": "failed", "error": "boom"}),
    # a reward alert keeps its kind, message and advice
    ({"type": "alert", "time": 1.0, "step": 10, "kind": "no_signal", "message": "m",
      "advice": "a"}, "training_alert", {"kind": "no_signal", "step": 10, "advice": "a"}),
    # anything else (checkpoint, phase, resume) is a training_event
    ({"type": "checkpoint", "time": 1.0, "step": 4}, "training_event", {"type": "checkpoint"}),
])
def test_events_map_to_socket_messages(event, name, checks):
    got_name, payload = socket_message("run-1", event)
    assert got_name == name and payload["session_id"] == "run-1"
    for key, value in checks.items():
        assert payload[key] == value


def test_queue_positions_follow_the_order_of_starts(jobs):
    first, second = jobs.submit(config()), jobs.submit(config())
    assert jobs.queued() == [first.run_id, second.run_id]
    positions = [jobs.live_status(r.run_id, r.read_state())["queue_position"]
                 for r in (first, second)]
    assert positions == [1, 2]


def test_a_busy_device_refuses_a_start_when_queueing_is_off(jobs):
    occupy(jobs, jobs.submit(config()))
    assert jobs.queued() == []
    with pytest.raises(JobConflict, match="busy"):
        jobs.submit(config(), queue=False)
    assert jobs.submit(config(), queue=True).read_state()["status"] == "queued"


def test_session_ids_are_checked_and_unique(jobs):
    with pytest.raises(ValueError, match="session_id"):
        jobs.submit(config(), run_id="../escape")
    jobs.submit(config(), run_id="mine")
    with pytest.raises(JobConflict, match="already exists"):
        jobs.submit(config(), run_id="mine")


def test_stop_pause_and_resume_of_runs_without_a_worker(jobs):
    a, b = jobs.submit(config()), jobs.submit(config())
    assert jobs.stop(a.run_id) == "cancelled" and a.read_state()["status"] == "cancelled"
    assert jobs.pause(b.run_id) == "paused" and jobs.queued() == []
    assert jobs.resume(b.run_id) == "queued" and jobs.queued() == [b.run_id]
    a.update_state(status="completed")
    with pytest.raises(JobConflict, match="completed"):
        jobs.resume(a.run_id)
    with pytest.raises(JobConflict, match="nothing to stop"):
        jobs.stop(a.run_id)


def test_a_restart_marks_runs_with_a_dead_worker_interrupted(tmp_path, jobs):
    dead = jobs.submit(config())
    finished = stand_in("pass")
    finished.wait()
    dead.update_state(status="running", pid=finished.pid)
    waiting = jobs.submit(config())
    restarted = Jobs(RunStore(tmp_path / "outputs"), Published())
    restarted.recover()
    assert dead.read_state()["status"] == "interrupted"
    assert "server was not running" in dead.read_state()["error"]
    assert restarted.queued() == [waiting.run_id]   # still waits its turn


def test_a_restart_skips_a_damaged_run_directory(tmp_path, jobs):
    damaged, fine = jobs.submit(config()), jobs.submit(config())
    damaged.state_path.write_text('{"status": "runn')   # torn by a crash mid-write
    restarted = Jobs(RunStore(tmp_path / "outputs"), Published())
    restarted.recover()
    assert restarted.queued() == [fine.run_id]
    assert [r.run_id for r in restarted.store.runs()] == [fine.run_id]
    restarted.tick()   # the watcher goes on: the readable run is launched
    worker = restarted.workers[fine.run_id]
    worker.process.kill()
    worker.process.wait()


def test_new_event_and_log_lines_are_published_to_the_run_room(jobs):
    run = jobs.submit(config())
    occupy(jobs, run)
    run.append_event("metric", phase="grpo", step=1, reward=0.25, kl=0.0)
    run.log_path.write_text("loading model\n")
    jobs.tick()
    updates = jobs.publish.named("training_update")
    assert [u["metrics"]["reward"] for u in updates] == [0.25]
    assert jobs.publish.named("training_log") == [{"session_id": run.run_id,
                                                   "line": "loading model"}]
    assert {room for _, _, room in jobs.publish.messages} == {run.run_id}
    jobs.tick()
    assert len(jobs.publish.named("training_update")) == 1   # each line once


def test_a_worker_that_dies_without_an_end_fails_with_its_exit_status(jobs):
    run = jobs.submit(config())
    occupy(jobs, run, "import sys; sys.exit(3)").wait()
    jobs.tick()
    state = run.read_state()
    assert state["status"] == "failed" and "exit status 3" in state["error"]
    assert jobs.publish.named("training_status")[-1]["status"] == "failed"
    assert run.run_id not in jobs.workers


def ready_when(tmp_path: Path, setup: str) -> tuple[str, Path]:
    """Stand-in code that runs `setup` (signal handlers), then says so in a file."""
    flag = tmp_path / "ready"
    return f"import signal, sys, time\n{setup}\nopen({str(flag)!r}, 'w').close()\n" \
           "time.sleep(60)", flag


def test_a_crash_while_pausing_is_not_reported_as_a_pause(jobs, tmp_path):
    run = jobs.submit(config())
    code, ready = ready_when(tmp_path, "signal.signal(signal.SIGUSR1, lambda *a: sys.exit(9))")
    process = occupy(jobs, run, code)
    wait_for(ready.exists, 30, "the stand-in's handlers")
    jobs.pause(run.run_id)
    process.wait()
    jobs.tick()
    assert run.read_state()["status"] == "failed"
    assert "exit status 9" in run.read_state()["error"]


def test_a_second_stop_kills_a_worker_that_does_not_stop(jobs, tmp_path):
    run = jobs.submit(config())
    code, ready = ready_when(tmp_path, "signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    process = occupy(jobs, run, code)
    wait_for(ready.exists, 30, "the stand-in's handlers")
    assert jobs.stop(run.run_id) == "stopping"
    assert jobs.live_status(run.run_id, run.read_state())["status"] == "stopping"
    assert jobs.stop(run.run_id) == "killed"
    assert process.wait(10) == -9
    jobs.tick()
    assert run.read_state()["status"] == "cancelled"


def test_a_worker_launched_before_a_restart_is_found_by_its_pid_file(tmp_path, jobs):
    run = jobs.submit(config())
    # what _launch leaves behind: worker.pid naming a process whose command line names
    # core.worker and the run
    real = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "core.worker",
                             str(run.path)], start_new_session=True)
    (run.path / "worker.pid").write_text(str(real.pid))
    wait_for(lambda: b"core.worker" in Path(f"/proc/{real.pid}/cmdline").read_bytes(), 10,
             "the stand-in to start")
    restarted = Jobs(RunStore(tmp_path / "outputs"), Published())
    restarted.recover()
    try:
        assert run.run_id in restarted.workers and restarted.queued() == []
    finally:
        real.kill()
        real.wait()


# ---- real workers on the tiny model ---------------------------------------------------------
def run_until(jobs: Jobs, run: RunDir, statuses: tuple[str, ...], timeout: float = 240) -> str:
    def done() -> str | None:
        jobs.tick()
        status = run.read_state()["status"]
        return status if status in statuses and run.run_id not in jobs.workers else None
    return wait_for(done, timeout, f"run {run.run_id} to reach {statuses}")


@pytest.mark.slow
def test_a_real_run_streams_grpo_metrics_and_completes(jobs, tiny_model):
    run = jobs.submit(config(tiny_model, training={"max_steps": 2}))
    assert run_until(jobs, run, ("completed", "failed")) == "completed", \
        run.log_path.read_text()[-3000:]
    metrics = jobs.publish.named("training_update")[-1]["metrics"]
    for key in ("reward", "reward_std", "kl", "clip_ratio/region_mean", "loss", "learning_rate"):
        assert key in metrics, key
    assert jobs.publish.named("training_sample")
    statuses = [p["status"] for p in jobs.publish.named("training_status")]
    assert statuses[0] == "running" and statuses[-1] == "completed"


@pytest.mark.slow
def test_second_run_waits_for_the_first_then_pause_and_resume_continue_it(jobs, tiny_model):
    long_run = jobs.submit(config(tiny_model, training={"max_steps": 40},
                                  output={"save_steps": 100}))
    waiting = jobs.submit(config(tiny_model, training={"max_steps": 1}))
    wait_for(lambda: jobs.tick() or long_run.read_state().get("step", 0) >= 1, 240,
             "the first run to train a step")
    assert waiting.read_state()["status"] == "queued"
    assert jobs.live_status(waiting.run_id, waiting.read_state())["queue_position"] == 1
    assert jobs.pause(long_run.run_id) == "pausing"
    assert run_until(jobs, long_run, ("paused",)) == "paused"
    assert long_run.newest_checkpoint("grpo") is not None      # paused with a checkpoint
    assert run_until(jobs, waiting, ("completed",)) == "completed"
    paused_at = long_run.read_state()["step"]
    jobs.resume(long_run.run_id)
    wait_for(lambda: jobs.tick() or long_run.read_state()["step"] > paused_at, 240,
             "the resumed run to go on")
    assert long_run.read_state()["resumed_from"].startswith("checkpoints/checkpoint-")
    assert jobs.stop(long_run.run_id) == "stopping"
    assert run_until(jobs, long_run, ("cancelled",)) == "cancelled"
    history = [json.loads(line) for line in long_run.events_path.read_text().splitlines()]
    assert any(e["type"] == "resume" for e in history)


def test_a_paused_run_whose_worker_is_still_exiting_is_not_watched_again(tmp_path, jobs):
    run = jobs.submit(config())
    exiting = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                                "core.worker", str(run.path)], start_new_session=True)
    (run.path / "worker.pid").write_text(str(exiting.pid))
    run.update_state(status="paused", pid=exiting.pid)
    wait_for(lambda: b"core.worker" in Path(f"/proc/{exiting.pid}/cmdline").read_bytes(), 10,
             "the stand-in to start")
    restarted = Jobs(RunStore(tmp_path / "outputs"), Published())
    try:
        restarted.recover()
        assert restarted.workers == {} and restarted.resume(run.run_id) == "queued"
    finally:
        exiting.kill()
        exiting.wait()
