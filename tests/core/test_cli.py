"""The command line and the Python API: validate, train with a progress bar and summary, resume."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, tiny_config


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_validate_accepts_the_quickstart():
    out = cli("validate", "configs/examples/quickstart.json")
    assert out.returncode == 0 and "valid (grpo/grpo)" in out.stdout


def test_validate_lists_every_problem_with_its_field(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"training": {"batch_size": 6, "optimizer": "nope"},
                               "rewards": [{"name": "answer_correct"}]}))
    out = cli("validate", str(bad))
    assert out.returncode == 2
    assert "training.optimizer: unknown value 'nope'" in out.stderr


def test_resume_of_a_non_run_folder_is_a_clear_error(tmp_path):
    out = cli("resume", str(tmp_path))
    assert out.returncode == 2 and "not a run directory" in out.stderr


@pytest.mark.slow
def test_train_shows_progress_and_summary_and_keeps_chatter_in_the_log(tmp_path, tiny_model):
    config = tmp_path / "c.json"
    config.write_text(json.dumps(tiny_config(tiny_model, training={"max_steps": 2})))
    out = cli("train", str(config), "--outputs", str(tmp_path / "outputs"))
    assert out.returncode == 0, out.stderr
    assert "status: completed" in out.stdout and "reward: first" in out.stdout
    assert "grpo: 100%" in out.stdout or "grpo:" in out.stdout
    run_dir = next((tmp_path / "outputs").iterdir())
    assert "Tokenizing" not in out.stdout + out.stderr  # library chatter is in worker.log
    assert (run_dir / "worker.log").stat().st_size > 0


@pytest.mark.slow
def test_python_api_trains_from_a_dict(tmp_path, tiny_model):
    from core import train
    result = train(tiny_config(tiny_model, training={"max_steps": 1}), tmp_path / "out",
                   show_progress=False)
    assert result.status == "completed" and len(result.rewards()) == 1
    assert (result.run_dir / "adapter").is_dir()
