"""The inference client against a real worker process: streaming in order, several threads at
once, cancelling, timeouts, and a worker killed mid-request replaced by a fresh one. The default
model's GGUF answers (it loads in a fraction of a second); one slow test goes through
transformers."""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from core.default_model import default_gguf_path
from services.inference import (InferenceCancelled, InferenceClient, InferenceError,
                                InferenceTimeout)
from tests.conftest import wait_for

GGUF = {"kind": "gguf", "path": str(default_gguf_path())}


@pytest.fixture
def client() -> Any:
    client = InferenceClient()
    yield client
    client.close()


def request(prompt: str = "Name three colours.", **fields: Any) -> dict[str, Any]:
    return {"model": GGUF, "prompt": prompt, "temperature": 0, "max_tokens": 24, **fields}


def endless(**fields: Any) -> dict[str, Any]:
    """A request that only ends when it is stopped."""
    return request("Tell me a long story.", max_tokens=3000, ignore_eos=True, **fields)


class Background:
    """`client.generate` in a thread, with its tokens and its outcome."""

    def __init__(self, client: InferenceClient, req: dict[str, Any], **kwargs: Any):
        self.tokens: list[str] = []
        self.result: dict[str, Any] | None = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, args=(client, req, kwargs))
        self.thread.start()

    def _run(self, client: InferenceClient, req: dict[str, Any], kwargs: dict[str, Any]) -> None:
        try:
            self.result = client.generate(req, self.tokens.append, **kwargs)
        except Exception as err:  # handed to the test
            self.error = err

    def join(self) -> "Background":
        self.thread.join(60)
        assert not self.thread.is_alive()
        return self


def test_the_web_side_does_not_import_torch():
    import subprocess
    code = "import sys, services.inference; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False", out.stderr


def test_the_worker_answers_what_it_was_sent_in_json_lines_then_exits():
    import json
    import subprocess
    lines = ['{"id": "a", "op": "ping"}', "not json", '{"id": "b", "op": "generate", "model": '
             + json.dumps(GGUF) + ', "prompt": "Hi", "temperature": 0, "max_tokens": 3}']
    out = subprocess.run([sys.executable, "-m", "core.inference"], input="\n".join(lines) + "\n",
                         capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[2])
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 0
    assert [(a["id"], a["event"]) for a in answers if a["event"] != "token"] == \
        [("a", "done"), (None, "error"), ("b", "done")]


def test_the_worker_starts_on_the_first_request(client):
    assert client.pid is None
    assert client.call("ping")["pong"] is True
    assert client.pid is not None


def test_tokens_arrive_in_order_before_the_answer(client):
    tokens: list[str] = []
    result = client.generate(request(), tokens.append)
    assert len(tokens) > 1 and "".join(tokens) == result["text"]
    assert result["tokens"] >= len(tokens) and result["tokens_per_second"] > 0
    assert result["prompt"].endswith("<|im_start|>assistant\n")


def test_two_threads_get_their_own_answers(client):
    alone = {p: client.generate(request(p))["text"] for p in ("Name a fruit.", "Count to five.")}
    both = [Background(client, request(p)) for p in alone]
    for call, prompt in zip(both, alone):
        call.join()
        assert call.error is None and call.result["text"] == alone[prompt]
        assert "".join(call.tokens) == call.result["text"]


def test_a_running_request_is_cancelled_at_its_next_token(client):
    call = Background(client, endless(id="story"))
    wait_for(lambda: call.tokens, 30, "the first token")
    client.cancel("story")
    call.join()
    assert call.result["finish_reason"] == "cancelled"
    assert call.result["tokens"] < 3000 and call.result["text"] == "".join(call.tokens)


def test_a_queued_request_is_cancelled_before_it_starts(client):
    first = Background(client, endless(id="first"))
    wait_for(lambda: first.tokens, 30, "the first request to run")
    second = Background(client, request(id="second"))
    wait_for(lambda: "second" in client.call("status")["queued"], 10, "the second to queue")
    client.cancel("second")
    assert isinstance(second.join().error, InferenceCancelled)
    client.cancel("first")
    assert first.join().result["finish_reason"] == "cancelled"


def test_a_request_past_its_timeout_is_cancelled(client):
    client.call("ping")
    with pytest.raises(InferenceTimeout, match="no answer .* within 0.5s"):
        client.generate(endless(), timeout=0.5)
    wait_for(lambda: client.call("status")["busy"] is None, 10, "the worker to be free again")


def test_a_killed_worker_fails_its_request_and_is_replaced(client):
    call = Background(client, endless())
    wait_for(lambda: call.tokens, 30, "the first token")
    killed = client.pid
    os.kill(killed, signal.SIGKILL)
    call.join()
    assert isinstance(call.error, InferenceError)
    assert "killed by signal 9" in str(call.error) and "out of memory" in str(call.error)
    assert "last log lines" in str(call.error)
    assert client.generate(request())["text"]
    assert client.pid not in (None, killed)


def test_errors_name_what_to_fix(client):
    with pytest.raises(InferenceError, match="GGUF file not found") as err:
        client.generate(request(model={"kind": "gguf", "path": "/nowhere/model.gguf"}))
    assert err.value.field == "model.path"
    with pytest.raises(InferenceError, match="unknown op"):
        client.call("train")


def test_unload_frees_the_models(client):
    client.generate(request(max_tokens=1))
    assert [m["backend"] for m in client.call("status")["models"]] == ["gguf"]
    assert client.call("unload")["unloaded"] == 1
    assert client.call("status")["models"] == []


def test_close_ends_the_worker(client):
    client.call("ping")
    pid = client.pid
    client.close()
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or
             "zombie" in Path(f"/proc/{pid}/status").read_text().lower(), 10, "the worker to end")


@pytest.mark.slow
def test_a_transformers_model_streams_through_the_worker(client, tiny_model):
    tokens: list[str] = []
    result = client.generate(request(model={"kind": "hf", "path": str(tiny_model)},
                                     max_tokens=12), tokens.append, timeout=120)
    assert result["backend"] == "hf" and result["tokens"] == 12
    assert "".join(tokens) == result["text"]
