"""The checkpoint browser's API: a run's complete checkpoints with the best one marked, deleting
one, and resuming from a chosen one. A checkpoint is named by its name in the run's own listing,
never by a path; a run with a worker (or about to get one) keeps its checkpoints."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.files import write_json_atomic
from core.run_dir import CHECKPOINT_MARKER, RunDir
from tests.conftest import tiny_config
from tests.services.test_jobs import occupy


def make_run(client: Any, services: Any, run_id: str = "r", status: str = "paused",
             phase: str = "grpo") -> RunDir:
    """A run with no worker, in `status`, at `phase`."""
    response = client.post("/api/training/start",
                           json={"config": tiny_config(Path("/nonexistent")), "session_id": run_id})
    assert response.status_code == 202
    run = services.runs.run(run_id)
    services.jobs.queue.clear()  # the watcher is off: nothing would start it anyway
    run.update_state(status=status, phase=phase)
    return run


def add_checkpoint(run: RunDir, step: int, reward: float | None = None, phase: str = "grpo",
                   complete: bool = True) -> Path:
    folder = run.checkpoints_dir(phase) / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    if complete:
        metrics = {"loss": 0.1} if reward is None else {"reward": reward, "loss": 0.1}
        write_json_atomic(folder / CHECKPOINT_MARKER, {"step": step, "phase": phase,
                                                       "metrics": metrics})
    return folder


def listed(client: Any, run_id: str = "r") -> list[tuple[str, str]]:
    return [(c["phase"], c["name"])
            for c in client.get(f"/api/training/{run_id}/checkpoints").json["checkpoints"]]


# ---- listing -----------------------------------------------------------------------------------
@pytest.mark.parametrize("rewards, best", [
    ([0.2, 0.7, 0.5], "checkpoint-2"),       # the highest mean reward
    ([0.5, 0.5, 0.1], "checkpoint-2"),       # a tie goes to the later checkpoint
    ([None, None, None], None),              # SFT checkpoints have no reward: none is best
    ([0.1, None, 0.3], "checkpoint-3"),      # a checkpoint without a reward is skipped
])
def test_the_best_checkpoint_by_mean_reward_is_marked(client, services, rewards, best):
    run = make_run(client, services)
    for step, reward in enumerate(rewards, start=1):
        add_checkpoint(run, step, reward)
    checkpoints = client.get("/api/training/r/checkpoints").json["checkpoints"]
    assert [c["name"] for c in checkpoints if c["best"]] == ([best] if best else [])
    assert [c["step"] for c in checkpoints] == [1, 2, 3]


def test_an_incomplete_checkpoint_is_not_listed(client, services):
    run = make_run(client, services)
    add_checkpoint(run, 1, 0.1)
    add_checkpoint(run, 2, complete=False)
    assert listed(client) == [("grpo", "checkpoint-1")]


# ---- delete ------------------------------------------------------------------------------------
def test_delete_removes_one_checkpoint(client, services):
    run = make_run(client, services)
    first, second = add_checkpoint(run, 1, 0.1), add_checkpoint(run, 2, 0.2)
    response = client.delete("/api/training/r/checkpoints/checkpoint-1")
    assert response.status_code == 200
    assert response.json == {"deleted": "checkpoint-1", "phase": "grpo"}
    assert not first.exists() and second.is_dir()
    assert listed(client) == [("grpo", "checkpoint-2")]


@pytest.mark.parametrize("name", [
    "checkpoint-9",                # no such checkpoint
    "checkpoint-2",                # exists, but incomplete (no marker)
    "..",                          # the run's parent folder
    "...",
    "state.json",                  # a file of the run, not a checkpoint
    "checkpoints",                 # the checkpoints folder itself
    "%2E%2E",                      # '..' encoded
    "checkpoint-1%00",             # a NUL byte
])
def test_delete_refuses_a_name_not_in_the_list(client, services, name):
    run = make_run(client, services)
    kept = add_checkpoint(run, 1, 0.1)
    add_checkpoint(run, 2, complete=False)
    response = client.delete(f"/api/training/r/checkpoints/{name}")
    assert response.status_code == 404, response.json
    assert response.json.get("field") == "checkpoint" and "checkpoint-1" in response.json["error"]
    assert kept.is_dir() and run.state_path.is_file() and run.config_path.is_file()


@pytest.mark.parametrize("path", [
    "/api/training/r/checkpoints/..%2Fstate.json",           # a separator, encoded
    "/api/training/r/checkpoints/checkpoint-1%2F..%2F..",
    "/api/training/r/checkpoints/../../state.json",
])
def test_delete_refuses_a_path(client, services, path):
    run = make_run(client, services)
    kept = add_checkpoint(run, 1, 0.1)
    assert client.delete(path).status_code in (404, 405)
    assert kept.is_dir() and run.state_path.is_file()


@pytest.mark.parametrize("status", ["running", "stopping"])
def test_delete_is_refused_while_a_worker_runs(client, services, status):
    run = make_run(client, services, status=status)
    kept = add_checkpoint(run, 1, 0.1)
    process = occupy(services.jobs, run, status=status)
    try:
        response = client.delete("/api/training/r/checkpoints/checkpoint-1")
    finally:
        process.kill()
        process.wait()
    assert response.status_code == 409 and "pause or stop" in response.json["error"]
    assert kept.is_dir()


def test_delete_is_refused_while_queued(client, services):
    run = make_run(client, services, status="queued")
    kept = add_checkpoint(run, 1, 0.1)
    assert client.delete("/api/training/r/checkpoints/checkpoint-1").status_code == 409
    assert kept.is_dir()


def test_delete_of_an_unknown_run_is_404(client):
    assert client.delete("/api/training/nope/checkpoints/checkpoint-1").status_code == 404


def test_a_name_both_phases_use_means_the_main_phase_unless_the_phase_is_given(client, services):
    run = make_run(client, services)
    add_checkpoint(run, 2, phase="pre_training")
    add_checkpoint(run, 2, 0.5)
    assert client.delete("/api/training/r/checkpoints/checkpoint-2").json["phase"] == "grpo"
    add_checkpoint(run, 2, 0.5)
    answer = client.delete("/api/training/r/checkpoints/checkpoint-2?phase=pre_training").json
    assert answer["phase"] == "pre_training"
    assert listed(client) == [("grpo", "checkpoint-2")]


# ---- resume from a checkpoint ----------------------------------------------------------------
def resume(client: Any, **body: Any) -> Any:
    return client.post("/api/training/resume", json={"session_id": "r", **body})


def test_resume_from_a_checkpoint_deletes_the_later_ones_and_queues_the_run(client, services):
    run = make_run(client, services)
    for step in (2, 4, 6):
        add_checkpoint(run, step, step / 10)
    response = resume(client, checkpoint="checkpoint-4")
    assert response.status_code == 202 and response.json["status"] == "queued"
    # the worker resumes from the newest complete checkpoint of the phase: now the chosen one
    assert run.newest_checkpoint("grpo").name == "checkpoint-4"
    assert listed(client) == [("grpo", "checkpoint-2"), ("grpo", "checkpoint-4")]
    assert services.jobs.queued() == ["r"]


def test_resume_without_a_checkpoint_keeps_every_checkpoint(client, services):
    run = make_run(client, services)
    for step in (2, 4):
        add_checkpoint(run, step, 0.1)
    assert resume(client).status_code == 202
    assert len(listed(client)) == 2


@pytest.mark.parametrize("name", ["checkpoint-9", "..", "../state.json", "checkpoints/checkpoint-2",
                                  "/etc/passwd", ""])
def test_resume_refuses_a_checkpoint_not_in_the_list(client, services, name):
    run = make_run(client, services)
    for step in (2, 4):
        add_checkpoint(run, step, 0.1)
    response = resume(client, checkpoint=name)
    assert response.status_code == 404 and response.json["field"] == "checkpoint"
    assert len(listed(client)) == 2 and run.read_state()["status"] == "paused"
    assert services.jobs.queued() == []


def test_resume_from_a_checkpoint_is_refused_while_running(client, services):
    run = make_run(client, services, status="running")
    for step in (2, 4):
        add_checkpoint(run, step, 0.1)
    process = occupy(services.jobs, run)
    try:
        response = resume(client, checkpoint="checkpoint-2")
    finally:
        process.kill()
        process.wait()
    assert response.status_code == 409
    assert len(listed(client)) == 2


def test_resume_from_a_finished_phase_is_refused(client, services):
    run = make_run(client, services, phase="grpo")
    add_checkpoint(run, 2, phase="pre_training")
    add_checkpoint(run, 4, 0.3)
    response = resume(client, checkpoint="checkpoint-2", phase="pre_training")
    assert response.status_code == 409 and "finished" in response.json["error"]
    assert len(listed(client)) == 2 and run.read_state()["status"] == "paused"


@pytest.mark.parametrize("body, field", [
    ({"checkpoint": 4}, "checkpoint"),
    ({"checkpoint": ["checkpoint-2"]}, "checkpoint"),
    ({"checkpoint": "checkpoint-2", "phase": 1}, "phase"),
])
def test_resume_names_a_bad_checkpoint_value(client, services, body, field):
    run = make_run(client, services)
    add_checkpoint(run, 2, 0.1)
    response = resume(client, **body)
    assert response.status_code == 400 and response.json["field"] == field
