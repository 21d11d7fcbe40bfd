"""Crash safety with real workers on the tiny model.

- `kill -9` of a worker: the server's watcher marks the run `failed`, naming the signal, within 5 s,
  and nothing of the worker's process group is left.
- `kill -9` of the server during a run: the worker notices and pauses with a checkpoint, then
  exits (no orphan); the restarted server finds the run paused (or interrupted, or still running
  had its worker survived) and resumes it.
- `kill -9` of the server and its worker together (a machine that lost power): the restarted
  server finds the run `interrupted` and resumes it from its newest complete checkpoint.

Each scenario runs once (module fixtures) and its tests check one property each. Polling has
deadlines; nothing sleeps to synchronise."""
from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import psutil
import pytest

from core.config import validate_config
from services.jobs import Jobs
from services.runs import RunStore
from tests.conftest import LiveServer, kill_workers_of, tiny_config, wait_for

pytestmark = pytest.mark.slow

FIRST_STEPS_S = 300       # a fresh worker imports torch and TRL before its first step
LONG_RUN = {"training": {"max_steps": 300}, "output": {"save_steps": 1000}}


def worker_processes(root: Path) -> list[psutil.Process]:
    """Training workers (or their children) still running over `root`."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "core.worker" in cmdline and any(str(root) in arg for arg in cmdline):
            found.append(proc)
    return found


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def start_run(server: LiveServer, model: Path, **sections: Any) -> str:
    response = server.api("POST", "/api/training/start", json={"config": tiny_config(
        model, **sections)})
    assert response.status_code == 202, response.text
    return response.json()["session_id"]


def state(server: LiveServer, run_id: str) -> dict[str, Any]:
    return server.api("GET", f"/api/training/{run_id}").json()


def trained_steps(server: LiveServer, run_id: str, steps: int) -> bool:
    return len(server.api("GET", f"/api/training/{run_id}/metrics").json()["events"]) >= steps


# ---- a killed worker -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def killed_worker(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A run whose worker was killed with SIGKILL mid-training, the watcher thread running."""
    root = tmp_path_factory.mktemp("killed-worker")
    jobs = Jobs(RunStore(root / "outputs"), lambda *message: None)
    jobs.start()
    try:
        run = jobs.submit(validate_config(tiny_config(tiny_model, **LONG_RUN)))
        wait_for(lambda: run.read_state().get("step", 0) >= 1, FIRST_STEPS_S, "a trained step")
        pid = run.read_state()["pid"]
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: run.read_state()["status"] != "running", 60, "the watcher to notice")
        noticed = time.monotonic() - killed_at
        yield {"run": run, "pid": pid, "seconds": noticed, "jobs": jobs}
    finally:
        jobs.close()
        kill_workers_of(root)


def test_a_killed_worker_shows_failed_within_5_seconds(killed_worker):
    assert killed_worker["run"].read_state()["status"] == "failed"
    assert killed_worker["seconds"] < 5


def test_a_killed_worker_s_run_names_the_signal(killed_worker):
    error = killed_worker["run"].read_state()["error"]
    assert "signal 9" in error and "SIGKILL" in error


def test_a_killed_worker_leaves_no_process_of_its_group(killed_worker):
    wait_for(lambda: not group_alive(killed_worker["pid"]), 10, "the group to be gone")


def test_a_killed_worker_s_run_can_be_resumed(killed_worker):
    assert killed_worker["jobs"].resume(killed_worker["run"].run_id) == "queued"
    killed_worker["jobs"].stop(killed_worker["run"].run_id)


class Servers:
    """The live servers a fixture starts on one folder."""

    def __init__(self, root: Path):
        self.root, self.started = root, []

    def start(self) -> LiveServer:
        self.started.append(LiveServer(self.root).start())
        return self.started[-1]

    def restarted(self, run_id: str) -> dict[str, Any]:
        """A new server on the folder, and the run as it finds it."""
        server = self.start()
        return {"server": server, "run_id": run_id, "root": self.root,
                "found": state(server, run_id)}


@contextmanager
def servers_on(root: Path) -> Iterator[Servers]:
    """Servers started on `root`; all stopped, and every worker of the folder killed, after."""
    servers = Servers(root)
    try:
        yield servers
    finally:
        for server in servers.started:
            server.kill(signal.SIGTERM)
        kill_workers_of(root)


# ---- a killed server -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def killed_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server killed with SIGKILL mid-run, then started again on the same folder."""
    root = tmp_path_factory.mktemp("killed-server")
    with servers_on(root) as servers:
        first = servers.start()
        run_id = start_run(first, tiny_model, **LONG_RUN)
        wait_for(lambda: trained_steps(first, run_id, 2), FIRST_STEPS_S, "two logged steps")
        pid = state(first, run_id)["pid"]
        first.kill(signal.SIGKILL)
        wait_for(lambda: not psutil.pid_exists(pid) or
                 psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, 120,
                 "the orphaned worker to pause and exit")
        yield servers.restarted(run_id)


def test_after_a_server_kill_no_worker_is_left_orphaned(killed_server):
    assert worker_processes(killed_server["root"]) == []


def test_after_a_restart_the_run_is_found_stopped_and_resumable(killed_server):
    found = killed_server["found"]
    assert found["status"] in ("paused", "interrupted", "running"), found
    assert found["best_reward"] is not None    # its history came back with it


def test_after_a_restart_the_run_resumes(killed_server):
    server, run_id = killed_server["server"], killed_server["run_id"]
    before = killed_server["found"]["step"]
    assert server.api("POST", "/api/training/resume",
                      json={"session_id": run_id}).status_code == 202
    wait_for(lambda: state(server, run_id)["step"] > before, FIRST_STEPS_S, "training to go on")
    assert server.api("POST", "/api/training/stop", json={"session_id": run_id}).ok
    wait_for(lambda: state(server, run_id)["status"] == "cancelled", 120, "the stop")
    wait_for(lambda: worker_processes(killed_server["root"]) == [], 30, "the worker to exit")


# ---- a killed server and worker ------------------------------------------------------------------
@pytest.fixture(scope="module")
def lost_power(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server and its worker killed together after a complete checkpoint, then a restart."""
    root = tmp_path_factory.mktemp("lost-power")
    with servers_on(root) as servers:
        first = servers.start()
        run_id = start_run(first, tiny_model, training={"max_steps": 300},
                           output={"save_steps": 1})
        wait_for(lambda: first.api("GET", f"/api/training/{run_id}/checkpoints")
                 .json()["checkpoints"], FIRST_STEPS_S, "a complete checkpoint")
        pid = state(first, run_id)["pid"]
        first.kill(signal.SIGKILL)
        os.killpg(pid, signal.SIGKILL)    # before it can notice and pause
        wait_for(lambda: worker_processes(root) == [], 30, "the worker to die")
        yield servers.restarted(run_id)


def test_a_run_whose_worker_died_with_the_server_is_interrupted(lost_power):
    found = lost_power["found"]
    assert found["status"] == "interrupted" and "not running" in found["error"]


def test_an_interrupted_run_resumes_from_its_newest_complete_checkpoint(lost_power):
    server, run_id = lost_power["server"], lost_power["run_id"]
    assert server.api("POST", "/api/training/resume",
                      json={"session_id": run_id}).status_code == 202
    resumed = wait_for(lambda: state(server, run_id).get("resumed_from"), FIRST_STEPS_S,
                       "the worker to resume")
    assert resumed.startswith("checkpoints/checkpoint-")
    assert (Path(lost_power["root"]) / "outputs" / run_id / resumed / "checkpoint.json").is_file()
    assert server.api("POST", "/api/training/stop", json={"session_id": run_id}).ok
    wait_for(lambda: state(server, run_id)["status"] == "cancelled", 120, "the stop")
    wait_for(lambda: worker_processes(lost_power["root"]) == [], 30, "the worker to exit")
