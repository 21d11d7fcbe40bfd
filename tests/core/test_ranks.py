"""Data-parallel runs (core/training/ranks.py): two real processes on this CPU (gloo), launched by
torch's launcher (what `accelerate launch --multi_gpu` runs for a GPU launch, core/launch.py; the
same RANK / WORLD_SIZE environment), train one run and leave one record of it; a pause reaching
one process only is agreed by both, which end at the same step."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import validate_config
from core.run_dir import CHECKPOINT_MARKER, RunDir, create_run
from tests.conftest import free_port, tiny_config, wait_for


def launch(run: RunDir) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                             "2", "--master_port", str(free_port()), "-m", "core.worker",
                             str(run.path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def new_run(tmp_path: Path, tiny_model: Path, **training: int) -> RunDir:
    cfg = validate_config(tiny_config(tiny_model, training=training, output={"save_steps": 1,
                                                                             "sample_every": 0}))
    return create_run(cfg, tmp_path / "outputs")


@pytest.mark.slow
def test_two_processes_train_one_run_and_keep_one_record(tmp_path, tiny_model):
    run = new_run(tmp_path, tiny_model, max_steps=2)
    process = launch(run)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output[-3000:] + run.log_path.read_text()[-3000:]
    state = run.read_state()
    assert (state["status"], state["processes"]) == ("completed", 2)
    events = list(run.iter_events())
    assert [e["step"] for e in events if e["type"] == "metric"] == [1, 2]  # not once per process
    assert [e["status"] for e in events if e["type"] == "status"] == ["running", "completed"]
    assert len(run.complete_checkpoints("grpo")) == 2
    marker = json.loads((run.complete_checkpoints("grpo")[-1] / CHECKPOINT_MARKER).read_text())
    assert marker["step"] == 2
    assert (run.path / "adapter" / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_a_pause_reaching_one_process_pauses_both_at_the_same_step(tmp_path, tiny_model):
    import psutil
    run = new_run(tmp_path, tiny_model, max_steps=200)
    process = launch(run)
    try:
        wait_for(lambda: (run.read_state().get("step") or 0) >= 1, 240, "a first step")
        ranks = {int(p.environ().get("RANK", -1)): p
                 for p in psutil.Process(process.pid).children(recursive=True)
                 if "core.worker" in " ".join(p.cmdline())}
        ranks[1].send_signal(signal.SIGUSR1)   # rank 1 only: rank 0 learns it at the step's end
        output = process.communicate(timeout=240)[0]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output[-3000:]
    state = run.read_state()
    assert state["status"] == "paused" and state["step"] < 200
    newest = run.newest_checkpoint("grpo")
    assert newest is not None and newest.name == f"checkpoint-{state['step']}"


AGREE = """
import os, sys
import torch.distributed as dist
from core.training.control import PAUSE, STOP
from core.training.ranks import agreed_request
dist.init_process_group("gloo", rank=int(sys.argv[1]), world_size=3,
                        init_method="tcp://127.0.0.1:" + sys.argv[2])
mine = {0: None, 1: PAUSE, 2: STOP}[int(sys.argv[1])] if sys.argv[3] == "stop" else \\
    {0: None, 1: PAUSE, 2: None}[int(sys.argv[1])]
print(agreed_request(mine))
dist.destroy_process_group()
"""


@pytest.mark.parametrize("case, agreed", [("stop", "stop"), ("pause", "pause")])
def test_every_process_takes_the_strongest_request(case, agreed):
    port = str(free_port())
    ranks = [subprocess.Popen([sys.executable, "-c", AGREE, str(rank), port, case],
                              stdout=subprocess.PIPE, text=True) for rank in range(3)]
    answers = [process.communicate(timeout=120)[0].strip() for process in ranks]
    assert answers == [agreed] * 3


def test_alone_a_request_is_its_own_answer():
    from core.training.ranks import agreed_request, process_rank
    assert agreed_request("pause") == "pause" and agreed_request(None) is None
    assert process_rank() == 0
