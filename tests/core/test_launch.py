"""The worker's launch command for 0, 1 and several GPUs (pure: built and checked on a CPU), and
the CUDA variables a worker sets for itself."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ComputeSection
from core.launch import PARENT_ENV, worker_command, worker_gpu_environment

RUN = Path("/runs/outputs/a-run")
PYTHON = "/venv/bin/python"


def compute(*gpu_ids: int) -> ComputeSection:
    # built without validation: the config schema may still cap compute.gpu_ids at one GPU, and
    # the launch must already be right for several
    return ComputeSection.model_construct(gpu_ids=list(gpu_ids), multi_gpu=len(gpu_ids) > 1)


def test_no_gpu_chosen_runs_one_worker_and_leaves_cuda_alone():
    argv, env = worker_command(compute(), RUN, PYTHON, parent_pid=123)
    assert argv == [PYTHON, "-m", "core.worker", str(RUN)]
    assert "CUDA_VISIBLE_DEVICES" not in env and "CUDA_DEVICE_ORDER" not in env
    assert env[PARENT_ENV] == "123" and env["PYTHONUNBUFFERED"] == "1"


@pytest.mark.parametrize("gpu", [0, 3])
def test_one_gpu_is_pinned_with_cuda_visible_devices(gpu):
    argv, env = worker_command(compute(gpu), RUN, PYTHON, parent_pid=123)
    assert argv == [PYTHON, "-m", "core.worker", str(RUN)]
    assert env["CUDA_VISIBLE_DEVICES"] == str(gpu)
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"  # CUDA counts as NVML (the monitor) does
    assert env[PARENT_ENV] == "123"


@pytest.mark.parametrize("gpus, port", [((0, 1), "29500"), ((2, 3, 5), "29502")])
def test_several_gpus_launch_one_process_each_through_accelerate(gpus, port):
    argv, env = worker_command(compute(*gpus), RUN, PYTHON, parent_pid=123)
    assert argv == [PYTHON, "-m", "accelerate.commands.launch", "--multi_gpu",
                    "--num_processes", str(len(gpus)), "--num_machines", "1",
                    "--main_process_port", port, "-m", "core.worker", str(RUN)]
    assert env["CUDA_VISIBLE_DEVICES"] == ",".join(map(str, gpus))
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    # every rank watches the server itself (its parent is the launcher)
    assert env[PARENT_ENV] == "123"


def test_without_a_server_no_parent_pid_is_passed():
    assert PARENT_ENV not in worker_command(compute(0), RUN, PYTHON)[1]


def test_the_launch_module_is_accelerates():
    import importlib.util
    assert importlib.util.find_spec("accelerate.commands.launch") is not None


@pytest.mark.parametrize("gpus, environ, expected", [
    ((), {}, {"CUDA_VISIBLE_DEVICES": "0"}),                      # the first GPU, or the CPU
    ((), {"CUDA_VISIBLE_DEVICES": "2"}, {"CUDA_VISIBLE_DEVICES": "2"}),  # as the user set it
    ((1,), {}, {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}),
    # the CLI runs one process: several chosen GPUs train on the first
    ((1, 2), {}, {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}),
    # a rank of accelerate launch keeps what its launch set
    ((1, 2), {"LOCAL_RANK": "1", "CUDA_VISIBLE_DEVICES": "1,2"}, {}),
])
def test_a_worker_sets_its_own_gpus_before_importing_torch(gpus, environ, expected):
    assert worker_gpu_environment(compute(*gpus), environ) == expected
