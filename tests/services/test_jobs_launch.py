"""How the jobs service starts workers: through core/launch.py's command (checked with a stand-in
interpreter that records what it was given), and one run per GPU, a run holding every GPU it
chose."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from core.launch import PARENT_ENV
from services.jobs import JobConflict, Jobs, Worker
from services.runs import RunStore
from tests.conftest import wait_for
from tests.services.test_jobs import Published, config, stand_in

RECORDER = """#!/bin/sh
# stands in for the Python interpreter: records its arguments and CUDA variables, then exits
printf '%s\\n' "$@" > "{out}/argv"
printf 'CUDA_VISIBLE_DEVICES=%s\\nCUDA_DEVICE_ORDER=%s\\nPARENT=%s\\n' \
  "${{CUDA_VISIBLE_DEVICES-unset}}" "${{CUDA_DEVICE_ORDER-unset}}" "${{{parent}-unset}}" \
  > "{out}/env"
"""


@pytest.fixture
def recorder(tmp_path: Path) -> Path:
    script = tmp_path / "python"
    script.write_text(RECORDER.format(out=tmp_path, parent=PARENT_ENV))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.fixture
def jobs(tmp_path: Path, recorder: Path) -> Any:
    service = Jobs(RunStore(tmp_path / "outputs"), Published(), python=str(recorder))
    yield service
    service.close()
    for worker in service.workers.values():
        worker.process.wait(10)


def launched(jobs: Jobs, tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    jobs.tick()
    recorded = tmp_path / "env"
    wait_for(lambda: recorded.is_file() and recorded.read_text().count("\n") == 3, 10,
             "the stand-in interpreter to run")
    argv = (tmp_path / "argv").read_text().splitlines()
    env = dict(line.split("=", 1) for line in recorded.read_text().splitlines())
    return argv, env


def test_a_run_without_gpu_ids_starts_one_worker(jobs, tmp_path):
    run = jobs.submit(config())
    argv, env = launched(jobs, tmp_path)
    assert argv == ["-m", "core.worker", str(run.path.resolve())]
    assert env["PARENT"] == str(os.getpid())


def test_a_run_on_one_gpu_is_pinned_to_it(jobs, tmp_path):
    run = jobs.submit(config(compute={"gpu_ids": [1]}))
    argv, env = launched(jobs, tmp_path)
    assert argv == ["-m", "core.worker", str(run.path.resolve())]
    assert env["CUDA_VISIBLE_DEVICES"] == "1" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


@pytest.mark.parametrize("held, wanted, busy", [
    ("0,1", [1], True),     # a DDP run on GPUs 0 and 1 holds GPU 1
    ("0,1", [0], True),
    ("0,1", [2], False),
    ("1", [], False),       # no gpu_ids means the first GPU
    ("0", [], True),
])
def test_a_run_holds_every_gpu_it_chose(tmp_path, held, wanted, busy):
    jobs = Jobs(RunStore(tmp_path / "outputs"), Published())
    first = jobs.submit(config())
    jobs.queue.clear()
    process = stand_in("import time; time.sleep(60)")
    jobs.workers[first.run_id] = Worker(first, held, process.pid, process)
    try:
        if busy:
            with pytest.raises(JobConflict, match="busy"):
                jobs.submit(config(compute={"gpu_ids": wanted}), queue=False)
        else:
            jobs.submit(config(compute={"gpu_ids": wanted}), queue=False)
    finally:
        process.kill()
        process.wait()
