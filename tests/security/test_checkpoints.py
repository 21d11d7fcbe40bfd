"""Checkpoints count only when complete: the marker (`checkpoint.json`) is written after the trainer
saved everything else, a folder without it (a save cut short) or a symlink is never listed,
exported, chatted with or resumed from, and a worker removes its phase's incomplete ones before it
resumes from the newest complete one."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from core.config import validate_config
from core.files import write_json_atomic
from core.run_dir import CHECKPOINT_MARKER, RunDir, create_run
from tests.conftest import tiny_config


def checkpoint(run: RunDir, step: int, complete: bool = True) -> Path:
    folder = run.checkpoints_dir("grpo") / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    if complete:
        write_json_atomic(folder / CHECKPOINT_MARKER, {"step": step, "phase": "grpo"})
    return folder


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    """A run with complete checkpoints 1 and 2 and an incomplete, newer checkpoint 3."""
    made = create_run(validate_config(tiny_config(Path("/nonexistent"))), tmp_path / "outputs",
                      run_id="saved-run")
    checkpoint(made, 1)
    checkpoint(made, 2)
    checkpoint(made, 3, complete=False)
    return made


# ---- on disk -------------------------------------------------------------------------------------
def test_a_checkpoint_without_its_marker_does_not_count(run):
    assert [p.name for p in run.complete_checkpoints("grpo")] == ["checkpoint-1", "checkpoint-2"]


def test_the_newest_checkpoint_is_the_newest_complete_one(run):
    assert run.newest_checkpoint("grpo").name == "checkpoint-2"


def test_a_symlinked_checkpoint_never_counts(run, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    write_json_atomic(elsewhere / CHECKPOINT_MARKER, {"step": 9, "phase": "grpo"})
    (run.checkpoints_dir("grpo") / "checkpoint-9").symlink_to(elsewhere)
    assert run.newest_checkpoint("grpo").name == "checkpoint-2"


def test_a_worker_removes_incomplete_checkpoints_of_its_phase(run):
    removed = run.remove_incomplete_checkpoints("grpo")
    assert [p.name for p in removed] == ["checkpoint-3"] and not removed[0].exists()
    assert [p.name for p in run.complete_checkpoints("grpo")] == ["checkpoint-1", "checkpoint-2"]


# ---- through the app -----------------------------------------------------------------------------
@pytest.fixture
def app_run(app: Any) -> RunDir:
    made = create_run(validate_config(tiny_config(Path("/nonexistent"))),
                      app.config["OUTPUTS_DIR"], run_id="saved-run")
    made.update_state(status="paused", phase="grpo")
    checkpoint(made, 1)
    checkpoint(made, 3, complete=False)
    return made


def test_the_api_lists_only_complete_checkpoints(client, app_run):
    listed = client.get(f"/api/training/{app_run.run_id}/checkpoints").json["checkpoints"]
    assert [c["name"] for c in listed] == ["checkpoint-1"]


def test_an_incomplete_checkpoint_cannot_be_exported(client, app_run):
    response = client.post("/api/exports/create", json={
        "session_id": app_run.run_id, "checkpoint": "checkpoint-3", "format": "adapter"})
    assert response.status_code == 400 and response.json["field"] == "checkpoint"


def test_an_incomplete_checkpoint_cannot_be_chatted_with(client, app_run):
    response = client.post("/api/models/test", json={
        "session_id": app_run.run_id, "checkpoint": "checkpoint-3", "prompt": "hi"})
    assert response.status_code == 400 and response.json["field"] == "checkpoint"


def test_the_inference_worker_refuses_an_incomplete_checkpoint(app_run):
    from core.inference.refs import InferenceError, resolve_run
    with pytest.raises(InferenceError, match="incomplete"):
        resolve_run(app_run.path, "checkpoint-3")


# ---- a real run ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A finished run of 2 GRPO steps with a checkpoint at each."""
    from core.worker import run_worker
    made = create_run(validate_config(tiny_config(tiny_model, training={"max_steps": 2},
                                                  output={"save_steps": 1})),
                      tmp_path_factory.mktemp("trained") / "outputs")
    assert run_worker(made) == "completed", made.log_path.read_text()[-2000:]
    return made


@pytest.mark.slow
def test_the_marker_is_written_after_everything_the_trainer_saved(trained):
    folders = trained.complete_checkpoints("grpo")
    assert [p.name for p in folders] == ["checkpoint-1", "checkpoint-2"]
    for folder in folders:
        marker = (folder / CHECKPOINT_MARKER).stat().st_mtime_ns
        saved = [p for p in folder.rglob("*") if p.is_file() and p.name != CHECKPOINT_MARKER]
        assert saved and all(p.stat().st_mtime_ns <= marker for p in saved), folder


@pytest.mark.slow
def test_a_resume_skips_a_newer_incomplete_checkpoint(trained, tmp_path):
    from core.worker import run_worker
    run = RunDir(shutil.copytree(trained.path, tmp_path / trained.run_id))
    shutil.rmtree(run.adapter_dir)                       # the phase has not finished yet
    shutil.rmtree(run.checkpoints_dir("grpo") / "checkpoint-2")
    torn = run.checkpoints_dir("grpo") / "checkpoint-7"  # a save cut short, newer than any
    torn.mkdir()
    (torn / "adapter_model.safetensors").write_bytes(b"half")
    run.update_state(status="failed")
    assert run_worker(run) == "completed", run.log_path.read_text()[-2000:]
    assert run.read_state()["resumed_from"] == "checkpoints/checkpoint-1"
    assert not torn.exists()
