"""The command line and the Python API: validate, train with a progress bar and summary, resume."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests.conftest import REPO, tiny_config, wait_for


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
    bad.write_text(json.dumps({"training": {"batch_size": 6},
                               "rewards": [{"name": "answer_correct"}, {"name": "nope"}]}))
    out = cli("validate", str(bad))
    assert "algorithm.num_generations: the generation batch" in out.stderr
    assert "rewards.1.name: unknown reward 'nope'" in out.stderr


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
def test_ctrl_c_stops_cleanly_with_a_checkpoint_and_resume_finishes(tmp_path, tiny_model):
    config = tmp_path / "c.json"
    config.write_text(json.dumps(tiny_config(tiny_model, training={"max_steps": 5})))
    outputs = tmp_path / "outputs"
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "train", str(config), "--outputs",
                             str(outputs)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)

    def state_of() -> dict:
        try:
            return json.loads(next(outputs.iterdir()).joinpath("state.json").read_text())
        except (FileNotFoundError, StopIteration):
            return {}

    wait_for(lambda: (state_of().get("step") or 0) >= 1, what="first step")
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0
    assert "status: cancelled" in stdout and "resume with:" in stdout
    run_dir = next(outputs.iterdir())
    assert list((run_dir / "checkpoints").glob("checkpoint-*"))
    out = cli("resume", str(run_dir))
    assert out.returncode == 0 and "status: completed" in out.stdout
    assert state_of()["step"] == 5


@pytest.mark.slow
def test_python_api_trains_from_a_dict(tmp_path, tiny_model):
    from core import train
    result = train(tiny_config(tiny_model, training={"max_steps": 1}), tmp_path / "out",
                   show_progress=False)
    assert result.status == "completed" and len(result.rewards()) == 1
    assert (result.run_dir / "adapter").is_dir()


@pytest.mark.slow
def test_python_api_restores_output_and_signal_handlers(tmp_path, tiny_model, capfd):
    import signal as signals

    from core import train
    before = signals.getsignal(signals.SIGINT)
    train(tiny_config(tiny_model, training={"max_steps": 1}), tmp_path / "out", show_progress=False)
    assert signals.getsignal(signals.SIGINT) is before
    print("after the run")
    assert "after the run" in capfd.readouterr().out
