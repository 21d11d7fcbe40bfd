"""How a run's training worker is started on the GPUs its config chose (`compute.gpu_ids`).

Guarantees (`worker_command` is pure: it starts nothing and reads no environment):
- no GPU chosen: `python -m core.worker RUN_DIR`, CUDA_VISIBLE_DEVICES left as it is (the worker
  then takes the first visible GPU, or the CPU);
- one GPU: the same command, pinned with CUDA_VISIBLE_DEVICES=<id>;
- several GPUs: `python -m accelerate.commands.launch --multi_gpu --num_processes N
  --num_machines 1 --main_process_port P -m core.worker RUN_DIR` (DDP, one process per GPU) with
  CUDA_VISIBLE_DEVICES=<ids>. P is 29500 + the lowest id: the jobs service runs two workers at
  once only on disjoint GPUs, so they never share a port;
- ids are NVML's numbering (what the system monitor lists); CUDA_DEVICE_ORDER=PCI_BUS_ID makes
  CUDA count the GPUs the same way;
- the server's pid is passed to every worker process, for its pause-when-the-server-dies watch
  (core/worker.py: by parent pid for a worker the server started, by the pid itself for a rank,
  whose parent is the launcher).

`worker_gpu_environment` is what a worker sets for itself before importing torch, so that a run
started from the CLI (in the foreground, no launcher) trains on the same single GPU.

Does not: check that the GPUs exist (config validation and the worker do), import torch or
accelerate.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from core.config import ComputeSection

PARENT_ENV = "GRPO_STUDIO_PARENT_PID"
BASE_PORT = 29500


def worker_command(compute: ComputeSection, run_dir: Path, python: str,
                   parent_pid: int | None = None) -> tuple[list[str], dict[str, str]]:
    """(argv, environment variables to add) that start the worker of `run_dir`."""
    ids = list(compute.gpu_ids)
    worker = ["-m", "core.worker", str(run_dir)]
    env = {"PYTHONUNBUFFERED": "1", **gpu_pinning(ids)}
    if parent_pid is not None:
        env[PARENT_ENV] = str(parent_pid)
    if len(ids) <= 1:
        return [python, *worker], env
    launcher = ["-m", "accelerate.commands.launch", "--multi_gpu",
                "--num_processes", str(len(ids)), "--num_machines", "1",
                "--main_process_port", str(BASE_PORT + min(ids))]
    return [python, *launcher, *worker], env


def gpu_pinning(gpu_ids: list[int]) -> dict[str, str]:
    """CUDA_VISIBLE_DEVICES (in NVML's order) for the chosen GPUs; {} for none."""
    if not gpu_ids:
        return {}
    return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID",
            "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in gpu_ids)}


def worker_gpu_environment(compute: ComputeSection,
                           environ: Mapping[str, str]) -> dict[str, str]:
    """The CUDA variables a worker sets for itself before importing torch. A rank of `accelerate
    launch` (LOCAL_RANK set) keeps what its launch chose; a single process trains on one GPU, the
    first chosen (else the first visible), since TRL's trainers refuse several GPUs in one
    process."""
    if "LOCAL_RANK" in environ:
        return {}
    if compute.gpu_ids:
        return gpu_pinning(compute.gpu_ids[:1])
    return {"CUDA_VISIBLE_DEVICES": environ.get("CUDA_VISIBLE_DEVICES", "0")}
