"""Shared fixtures: the converted default model, a tiny random model built from its config, and
small config builders. Polling helpers wait with a deadline instead of sleeping blindly."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_model import make_tiny_model
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def tiny_config(model_dir: Path, /, **sections: dict[str, Any]) -> dict[str, Any]:
    """A GRPO config on the tiny model that takes about a second a step."""
    cfg: dict[str, Any] = {
        "model": {"name": str(model_dir), "lora_rank": 8, "lora_alpha": 16},
        "dataset": {"source": "builtin", "path": "arithmetic", "max_samples": 32},
        "training": {"max_steps": 2, "batch_size": 4, "learning_rate": 1e-3,
                     "precision": "fp32"},
        "algorithm": {"num_generations": 4, "max_completion_length": 8},
        # a character band that random-token completions hit unevenly, so advantages are nonzero
        "rewards": [{"name": "length_band", "params": {"min_length": 1, "max_length": 30,
                                                       "unit": "characters"}},
                    {"name": "answer_correct"}, {"name": "format_markers"}],
        "output": {"name": "test", "save_steps": 100, "logging_steps": 1, "sample_every": 1},
    }
    for name, values in sections.items():
        cfg[name] = {**cfg.get(name, {}), **values}
    return cfg


def wait_for(predicate: Callable[[], Any], timeout: float = 120.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port_url() -> str:
    """A local address nobody listens on: connecting is refused at once, like a machine without
    network (a stand-in for the unreachable hub)."""
    return f"http://127.0.0.1:{free_port()}"


class LiveServer:
    """`python flask_app.py` in its own process, over its own root folder (outputs, configs)."""

    def __init__(self, root: Path, port: int | None = None, env: dict[str, str] | None = None):
        self.root = root
        self.port = port or free_port()
        self.env = env  # added to this process's environment (e.g. GRPO_STUDIO_CACHE)
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Any = None

    def start(self) -> "LiveServer":
        import os
        import subprocess
        import sys

        import requests
        with (self.root / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "flask_app.py", "--port", str(self.port), "--root",
                 str(self.root)], cwd=REPO, stdout=log, stderr=log,
                env={**os.environ, **(self.env or {})})

        def answers() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {(self.root / 'server.log').read_text()}")
            try:
                return requests.get(f"{self.url}/api/system/status", timeout=2).ok
            except requests.ConnectionError:
                return False
        wait_for(answers, 60, "the server to answer")
        return self

    def kill(self, sig: int = 9) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        import requests
        return requests.request(method, f"{self.url}{path}", timeout=30, **kwargs)


def kill_workers_of(root: Path) -> None:
    """End any training worker still running over `root` (tests must not leave processes)."""
    import psutil
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(root) in arg for arg in proc.info["cmdline"] or []) and \
                "core.worker" in (proc.info["cmdline"] or []):
            proc.kill()
            proc.wait(10)


@pytest.fixture
def live_server(tmp_path: Path) -> Any:
    server = LiveServer(tmp_path).start()
    yield server
    server.kill(15)
    kill_workers_of(tmp_path)


@pytest.fixture(scope="session")
def hub_repo(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hub repository's files: the tiny model plus what a download must skip (pickled .bin
    weights, a subfolder, a README)."""
    import shutil
    folder = tmp_path_factory.mktemp("hub-repo") / "repo"
    shutil.copytree(tiny_model, folder)
    (folder / "pytorch_model.bin").write_bytes(b"pickle, never fetched")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model.onnx").write_bytes(b"not fetched either")
    (folder / "README.md").write_text("# tiny\n")
    return folder


@pytest.fixture
def model_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$GRPO_STUDIO_CACHE for this test (children inherit it); the models land in its models/."""
    cache = tmp_path / "model-cache"
    monkeypatch.setenv("GRPO_STUDIO_CACHE", str(cache))
    return cache


@pytest.fixture
def hub_stand_in(hub_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The local stand-in for the Hugging Face hub (tests/hub_stand_in.py) serving `hub_repo` as
    acme/tiny, reached through HF_ENDPOINT."""
    from tests.hub_stand_in import HubStandIn
    hub = HubStandIn({"acme/tiny": hub_repo})
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield hub
    hub.close()
