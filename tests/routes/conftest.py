"""An app over a temporary root, its test client and a Socket.IO test client sharing its session.
The jobs watcher is off: tests call `jobs.tick()` themselves when they want workers launched."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flask_app import create_app
from tests.conftest import kill_workers_of


@pytest.fixture
def app(tmp_path: Path) -> Any:
    app = create_app({"ROOT": tmp_path, "TESTING": True, "START_JOBS": False,
                      "SYSTEM_UPDATE_SECONDS": 0, "MAX_UPLOAD_BYTES": 64 << 10})
    yield app
    jobs = app.extensions["grpo_studio"].jobs
    jobs.close()
    for worker in jobs.workers.values():
        if worker.process and worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()
    exports = app.extensions["grpo_studio"].exports
    exports.close()
    if exports.running:
        exports._stop(exports.running[1])
    app.extensions["grpo_studio"].test_jobs.close()
    app.extensions["grpo_studio"].inference.close()
    kill_workers_of(tmp_path)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def services(app: Any) -> Any:
    return app.extensions["grpo_studio"]
