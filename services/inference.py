"""The web process's side of the inference worker (`python -m core.inference`, DESIGN.md §1).

Guarantees: the worker starts on the first request and stays warm; `generate` blocks until its
request is answered and may be called from many threads at once (the worker answers one request
at a time, in order); each request's tokens reach its own `on_token`, in order, before `generate`
returns. A worker that dies (killed, out of memory, a crash) fails the requests it held with an
error naming how it ended and its last log lines; the next request starts a fresh worker. A
request not answered within its timeout is cancelled and raises `InferenceTimeout`.

Does not: import torch (the web process never does), decide which models a client may use (routes
resolve ids to paths), or retry a failed request.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from services.jobs import exit_reason

REPO_ROOT = Path(__file__).resolve().parent.parent
LOG_LINES = 20
TokenCallback = Callable[[str], None]
log = logging.getLogger("grpo_studio.inference")


class InferenceError(RuntimeError):
    """A request the worker could not answer; `field` names the input to blame, when one is."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(message)


class InferenceCancelled(InferenceError):
    """The request was cancelled before it started."""


class InferenceTimeout(InferenceError):
    """No answer within the request's timeout (the request was cancelled)."""


class WorkerGone(Exception):
    """The connection's worker has ended; a new one must be started."""


@dataclass
class Call:
    id: str
    on_token: TokenCallback | None = None
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None
    error: InferenceError | None = None

    def finish(self, result: dict[str, Any] | None = None,
               error: InferenceError | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


class Connection:
    """One worker process, the calls it holds, and the threads reading its output."""

    def __init__(self, command: Sequence[str], cwd: Path, env: dict[str, str]):
        self.process = subprocess.Popen(list(command), cwd=cwd, env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        start_new_session=True)
        self.calls: dict[str, Call] = {}
        self.lock = threading.Lock()
        self.closed = False
        self.log_tail: deque[str] = deque(maxlen=LOG_LINES)
        self._stderr = threading.Thread(target=self._read_stderr, daemon=True,
                                        name="inference-stderr")
        self._stderr.start()
        threading.Thread(target=self._read_stdout, daemon=True, name="inference-out").start()

    def send(self, message: dict[str, Any], call: Call | None = None) -> None:
        """Write one request; `call` is registered first, so every answer finds it. WorkerGone
        when the worker has ended (a registered call is then failed by the reader)."""
        line = (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8")
        with self.lock:
            if self.closed:
                raise WorkerGone()
            if call is not None:
                if call.id in self.calls:
                    raise InferenceError(f"a request with id {call.id!r} is already running",
                                         "id")
                self.calls[call.id] = call
            try:
                self.process.stdin.write(line)
                self.process.stdin.flush()
            except (OSError, ValueError):  # a broken pipe: the reader fails the call at EOF
                if call is None:
                    raise WorkerGone() from None

    def forget(self, call_id: str) -> None:
        with self.lock:
            self.calls.pop(call_id, None)

    def _read_stdout(self) -> None:
        for raw in self.process.stdout:
            try:
                self._dispatch(json.loads(raw))
            except (json.JSONDecodeError, TypeError, AttributeError):
                log.warning("inference worker: unreadable line %r", raw[:200])
        self.process.stdout.close()
        self._ended()

    def _dispatch(self, message: dict[str, Any]) -> None:
        with self.lock:
            call = self.calls.get(message.get("id"))
            if call is not None and message.get("event") in ("done", "error"):
                del self.calls[call.id]
        if call is None:
            return
        event = message.get("event")
        if event == "token":
            self._deliver(call, message.get("token", ""))
        elif event == "done":
            call.finish(result=message.get("result") or {})
        elif event == "error":
            kind = InferenceCancelled if message.get("cancelled") else InferenceError
            call.finish(error=kind(message.get("error") or "unknown error", message.get("field")))

    @staticmethod
    def _deliver(call: Call, token: str) -> None:
        if call.on_token is None:
            return
        try:
            call.on_token(token)
        except Exception:  # a failing listener must not stop the other requests' answers
            log.exception("token callback of request %s", call.id)

    def _read_stderr(self) -> None:
        for raw in self.process.stderr:
            line = raw.decode("utf-8", errors="replace").rstrip()
            self.log_tail.append(line)
            log.info("inference worker: %s", line)
        self.process.stderr.close()

    def _ended(self) -> None:
        """Stdout closed: the worker is ending. Fail every call it held, naming why."""
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._stderr.join(timeout=5)
        with self.lock:
            self.closed = True
            calls, self.calls = list(self.calls.values()), {}
            _close_quietly(self.process.stdin)
        if calls:
            error = InferenceError(self.death_message(code))
            log.error("%s", error)
            for call in calls:
                call.finish(error=error)

    def death_message(self, code: int) -> str:
        tail = [line for line in self.log_tail if line.strip()][-5:]
        last = "; its last log lines: " + " | ".join(tail) if tail else ""
        return f"the inference worker stopped ({exit_reason(code)}) before answering{last}"

    def close(self, timeout: float) -> None:
        """Cancel what it holds, then end of input asks the worker to stop; it is killed if it
        has not within `timeout`."""
        with self.lock:
            for call_id in self.calls:
                try:
                    self.process.stdin.write(json.dumps({"op": "cancel", "id": call_id})
                                             .encode() + b"\n")
                except (OSError, ValueError):
                    break
            _close_quietly(self.process.stdin)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _close_quietly(pipe: Any) -> None:
    try:
        pipe.close()
    except OSError:  # a broken pipe flushing on close: the worker has gone anyway
        pass


class InferenceClient:
    """Sends requests to the warm inference worker, starting (or restarting) it when needed."""

    def __init__(self, python: str = sys.executable, worker_args: Sequence[str] = (),
                 timeout: float = 600.0, cwd: Path = REPO_ROOT):
        self.command = [python, "-m", "core.inference", *worker_args]
        self.timeout, self.cwd = timeout, cwd
        self._connection: Connection | None = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The running worker's pid (None before the first request or after it ended)."""
        conn = self._connection
        return conn.process.pid if conn is not None and not conn.closed else None

    def generate(self, request: dict[str, Any], on_token: TokenCallback | None = None,
                 timeout: float | None = None) -> dict[str, Any]:
        """Answer one generate request (core/inference/worker.py lists its fields); `on_token`
        receives each piece of text as it comes. Returns the worker's result (text, tokens,
        seconds, tokens_per_second, prompt, finish_reason ...)."""
        message = {**request, "op": "generate", "id": request.get("id") or uuid.uuid4().hex}
        return self._call(message, on_token, timeout)

    def call(self, op: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """Any other request: "ping", "status", "unload" (with `model`, or every model),
        "perplexity" (`model`, `pairs`); an `id` field lets the caller cancel it."""
        return self._call({**fields, "op": op, "id": fields.get("id") or uuid.uuid4().hex},
                          None, timeout)

    def cancel(self, request_id: str) -> None:
        """Stop a request at its next token (or before it starts); its caller gets the answer."""
        conn = self._connection
        if conn is not None:
            try:
                conn.send({"op": "cancel", "id": request_id})
            except WorkerGone:
                pass

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            conn, self._connection, self._closed = self._connection, None, True
        if conn is not None:
            conn.close(timeout)

    def _call(self, message: dict[str, Any], on_token: TokenCallback | None,
              timeout: float | None) -> dict[str, Any]:
        call = Call(message["id"], on_token)
        conn = self._send(message, call)
        timeout = self.timeout if timeout is None else timeout
        if not call.done.wait(timeout):
            self.cancel(call.id)
            if not call.done.wait(5):
                conn.forget(call.id)
            raise InferenceTimeout(f"no answer from the inference worker within {timeout:g}s; "
                                   "the request was cancelled (a large model may still be "
                                   "loading: try again, or raise the timeout)")
        if call.error is not None:
            raise call.error
        return call.result or {}

    def _send(self, message: dict[str, Any], call: Call) -> Connection:
        for _ in range(2):  # a worker found dead at this moment is replaced once
            conn = self._live_connection()
            try:
                conn.send(message, call)
                return conn
            except WorkerGone:
                continue
        raise InferenceError("the inference worker ends as soon as it starts; see the server "
                             "log for its output")

    def _live_connection(self) -> Connection:
        with self._lock:
            if self._closed:
                raise InferenceError("the server is shutting down; the inference worker is "
                                     "stopped")
            if self._connection is None or self._connection.closed:
                if self._connection is not None:
                    log.warning("the inference worker had stopped; starting a new one")
                self._connection = self._start()
            return self._connection

    def _start(self) -> Connection:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            return Connection(self.command, self.cwd, env)
        except OSError as err:
            raise InferenceError(f"could not start the inference worker ({self.command[0]}): "
                                 f"{err}") from err
