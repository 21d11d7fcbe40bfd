"""The inference worker process (`python -m core.inference`): JSON lines in on stdin and out on
stdout.

Requests (one JSON object a line): `{"id", "op": "generate", "model": {...}, "prompt" | "messages",
"temperature"?, "top_p"?, "top_k"?, "max_tokens"?, "system_prompt"?, "seed"?, "raw"?,
"ignore_eos"?}` (engine.py says what each means),
`{"id", "op": "perplexity", "model", "pairs": [{"prompt", "completion"}], "system_prompt"?}`,
`{"id", "op": "unload", "model"?}`, `{"id", "op": "ping"}`, `{"id", "op": "status"}` and
`{"op": "cancel", "id"}`. Answers: `{"id", "event": "token", "token"}` while generating, then
exactly one `{"id", "event": "done", "result"}` or `{"id", "event": "error", "error", "field"?}`.

Guarantees: generate and unload run one at a time, first come first served; ping, status and cancel
are answered at once, even during a generation. A cancelled running request stops at its next token
and ends `done` with `finish_reason` "cancelled" and the text so far; a cancelled queued one ends
`error` with `"cancelled": true`. Only protocol lines reach stdout: whatever else writes to it (C
libraries included) goes to stderr with the logs. At the end of stdin the requests already sent are
answered, then the worker exits (so `python -m core.inference < requests.jsonl` works); once its
stdout is closed (the web process went away) it stops at the next token and exits.

Does not: authenticate (it trusts its parent, which holds its pipes), or run requests in parallel.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import traceback
from collections import deque
from typing import Any, Callable, Iterable, TextIO

from core.inference.engine import InferenceEngine
from core.inference.refs import InferenceError

log = logging.getLogger("grpo_studio.inference")
GENERATE_FIELDS = ("messages", "prompt", "temperature", "top_p", "top_k", "max_tokens",
                   "system_prompt", "seed", "ignore_eos", "raw")
QUEUED_OPS = ("generate", "perplexity", "unload")


class Worker:
    def __init__(self, engine: InferenceEngine, out: TextIO):
        self.engine, self.out = engine, out
        self._write_lock = threading.Lock()
        self._cv = threading.Condition()
        self.queue: deque[dict[str, Any]] = deque()
        self.current: str | None = None
        self.cancelled: set[str] = set()
        self.closing = False   # no more requests will come
        self.gone = False      # nobody reads the answers any more

    def emit(self, request_id: Any, event: str, **fields: Any) -> None:
        line = json.dumps({"id": request_id, "event": event, **fields}, ensure_ascii=False)
        with self._write_lock:
            if self.gone:
                return
            try:
                self.out.write(line + "\n")
                self.out.flush()
            except (BrokenPipeError, ValueError):  # the reader went away: stop everything
                self.gone = True
        if self.gone:
            with self._cv:
                self.closing = True
                self.queue.clear()
                self._cv.notify_all()

    # the reader side: every line at once ----------------------------------------------------
    def read(self, lines: Iterable[str]) -> None:
        for line in lines:
            if line.strip():
                self.accept(line)
        with self._cv:
            self.closing = True
            self._cv.notify_all()

    def accept(self, line: str) -> None:
        try:
            message = json.loads(line)
        except json.JSONDecodeError as err:
            return self.emit(None, "error", error=f"a request must be one JSON object a line "
                                                  f"({err.msg})")
        if not isinstance(message, dict):
            return self.emit(None, "error", error="a request must be a JSON object")
        op, request_id = message.get("op"), message.get("id")
        if op == "cancel":
            return self.cancel(request_id)
        if op == "ping":
            return self.emit(request_id, "done", result={"pong": True, "pid": os.getpid()})
        if op == "status":
            return self.emit(request_id, "done", result=self.status())
        if op not in QUEUED_OPS:
            return self.emit(request_id, "error", field="op", error=f"unknown op {op!r}; use "
                             "generate, perplexity, unload, cancel, ping or status")
        if not isinstance(request_id, str) or not request_id:
            return self.emit(request_id, "error", field="id", error="a request needs an id "
                                                                    "(a string)")
        with self._cv:
            self.queue.append(message)
            self._cv.notify_all()

    def cancel(self, request_id: Any) -> None:
        with self._cv:
            if request_id == self.current:
                self.cancelled.add(request_id)
                return
            queued = [m for m in self.queue if m["id"] == request_id]
            for message in queued:
                self.queue.remove(message)
        for message in queued:
            self.emit(request_id, "error", error="cancelled before it started", cancelled=True)

    def status(self) -> dict[str, Any]:
        with self._cv:
            queued = [m["id"] for m in self.queue]
        return {"pid": os.getpid(), "busy": self.current, "queued": queued,
                "models": self.engine.loaded()}

    # the serving side: one request at a time --------------------------------------------------
    def serve(self) -> None:
        while (message := self._next()) is not None:
            event, fields = self.handle(message)
            with self._cv:  # free before the answer, so a status right after it is not busy
                self.cancelled.discard(message["id"])
                self.current = None
            self.emit(message["id"], event, **fields)

    def _next(self) -> dict[str, Any] | None:
        with self._cv:
            while not self.queue and not self.closing:
                self._cv.wait()
            if not self.queue:
                return None
            message = self.queue.popleft()
            self.current = message["id"]
            return message

    def handle(self, message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The final event of one request and its fields."""
        try:
            if message["op"] == "unload":
                return "done", {"result": {"unloaded": self.engine.unload(message.get("model"))}}
            if message["op"] == "perplexity":
                return "done", {"result": self.engine.perplexity(
                    message.get("model"), message.get("pairs"), message.get("system_prompt"),
                    should_stop=self._stop_check(message["id"]))}
            return "done", {"result": self.generate(message["id"], message)}
        except InferenceError as err:
            return "error", {"error": str(err), **({"field": err.field} if err.field else {})}
        except Exception as err:  # the worker must outlive any one request
            log.error("request %s failed:\n%s", message["id"], traceback.format_exc())
            return "error", {"error": self.describe(err)}

    def generate(self, request_id: str, message: dict[str, Any]) -> dict[str, Any]:
        fields = {k: message[k] for k in GENERATE_FIELDS if message.get(k) is not None}
        return self.engine.generate(
            message.get("model"), **fields,
            on_token=lambda piece: self.emit(request_id, "token", token=piece),
            should_stop=self._stop_check(request_id))

    def _stop_check(self, request_id: str) -> Callable[[], bool]:
        return lambda: self.gone or request_id in self.cancelled

    def describe(self, err: Exception) -> str:
        from core.errors import is_out_of_memory
        if is_out_of_memory(err):
            freed = self.engine.unload()
            return (f"out of memory ({freed} model(s) unloaded to recover): use a smaller or "
                    "quantized (GGUF) model, or lower max_tokens")
        lines = str(err).strip().splitlines()
        return f"{type(err).__name__}: {lines[0][:300] if lines else ''} (details in the log)"


def protocol_stdout() -> TextIO:
    """The real stdout, for protocol lines only; file descriptor 1 then points at stderr, so stray
    prints (ours, a library's, C code's) cannot corrupt the protocol."""
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.inference", description=(
        "The warm inference worker: JSON-lines requests on stdin, answers on stdout."))
    parser.add_argument("--max-models", type=int, default=2)
    parser.add_argument("--max-memory-gb", type=float, default=None,
                        help="weights kept loaded at most (default: half of the memory)")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp16", "fp32"))
    parser.add_argument("--n-ctx", type=int, default=None, help="llama.cpp context (4096)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for generation (default: every core)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no bars in the log
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = protocol_stdout()
    max_bytes = int(args.max_memory_gb * 2**30) if args.max_memory_gb else None
    engine = InferenceEngine(args.max_models, max_bytes, args.precision, args.n_ctx, args.threads)
    worker = Worker(engine, out)
    threading.Thread(target=worker.read, args=(sys.stdin,), name="requests", daemon=True).start()
    log.info("inference worker ready (pid %d)", os.getpid())
    worker.serve()
    worker.engine.unload()
    return 0
