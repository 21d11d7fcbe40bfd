"""Runs code we did not write — custom reward functions and the code in completions — in a
separate, limited process, one process per batch.

Every run gets: a fresh temporary working directory (removed afterwards), no stdin, an environment
with nothing of the server's (no tokens, no keys, no PATH tricks), a wall-clock timeout after which
its whole process group is killed (and an alarm of its own, so it ends even when nobody waits for
it), a CPU-time limit, an address-space (memory) limit, a file-size limit, a small open-file
limit, and an audit hook that refuses starting processes (multiprocessing included), signalling
processes, name lookups and network connections, and writing, renaming or deleting files outside
the temporary directory, and reading files inside the project's and the app's own folders.

What it protects against: accidents. A reward with an infinite loop, a runaway allocation, a stray
`os.system`, `shutil.rmtree` on the wrong path or a print storm cannot hang training, exhaust the
machine's memory, read the server's secrets or damage the project.

What it does not protect against: a determined attacker. Python code can escape an audit hook
(ctypes, native extensions), and on this process the kernel enforces only the resource limits.
Anyone who can submit a custom reward can already start training runs on this machine, so the
boundary is who may use the server at all: the access token and the same-origin rules
(routes/security.py). Do not expose the server to people you would not let run code.

Does not: decide what a misbehaving result means; callers turn `SandboxError` into messages that
name the reward and the row.
"""
from __future__ import annotations

import ast
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rewards.registry import RewardError

CHILD = Path(__file__).with_name("sandbox_child.py")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUTPUT_SHOWN_BYTES = 8192


@dataclass(frozen=True)
class Limits:
    timeout_seconds: float = 10.0
    memory_mb: int = 1024
    file_mb: int = 16
    protected: tuple[str, ...] = field(default_factory=lambda: (str(PROJECT_ROOT),))

    def for_child(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_seconds": self.timeout_seconds + 1,
                "protected": list(self.protected)}


class SandboxError(RewardError):
    """Sandboxed code failed. `kind`: syntax, exception, refused, timeout, memory, crash,
    no_answer; `line`: the line of the user's source and `row` the completion that failed, when
    known; `output`: what it printed (and the traceback of its own frames)."""

    def __init__(self, message: str, kind: str, line: int | None = None, output: str = "",
                 row: int | None = None):
        super().__init__(message)
        self.kind, self.line, self.output, self.row = kind, line, output, row


@dataclass
class SandboxResult:
    answer: dict[str, Any]
    output: str


def check_source(source: str) -> None:
    """Raises SandboxError (kind `syntax`, with the line) unless `source` parses and defines
    `reward(completions, **kwargs)` at module level. Parses only: nothing is run."""
    try:
        tree = ast.parse(source, filename="<reward>")
    except SyntaxError as err:
        where = f"line {err.lineno}: " if err.lineno else ""
        raise SandboxError(f"{where}{err.msg}", "syntax", err.lineno) from None
    except (ValueError, MemoryError, RecursionError) as err:  # NUL bytes, absurd nesting
        raise SandboxError(f"the source cannot be parsed: {err or type(err).__name__}",
                           "syntax") from None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "reward":
            if isinstance(node, ast.AsyncFunctionDef):
                raise SandboxError("reward must be a plain function, not async", "syntax",
                                   node.lineno)
            if not node.args.args and not node.args.posonlyargs and not node.args.vararg:
                raise SandboxError("reward must take the completions as its first argument: "
                                   "def reward(completions, **kwargs)", "syntax", node.lineno)
            return
    raise SandboxError("the code defines no function `reward`; write "
                       "def reward(completions, **kwargs) -> list[float]", "syntax", 1)


def scrubbed_env(work_dir: str) -> dict[str, str]:
    """The child's whole environment: nothing inherited from the server."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": work_dir,
            "TMPDIR": work_dir, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def run(payload: dict[str, Any], limits: Limits = Limits()) -> SandboxResult:
    """Runs one payload in a fresh child; raises SandboxError when it did not answer."""
    work_dir = tempfile.mkdtemp(prefix="grpo-reward-")
    try:
        Path(work_dir, ".payload.json").write_text(json.dumps(payload), encoding="utf-8")
        with open(Path(work_dir, "output.txt"), "wb") as output, subprocess.Popen(
                [sys.executable, "-I", "-B", "-u", str(CHILD), json.dumps(limits.for_child())],
                cwd=work_dir, env=scrubbed_env(work_dir), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=output, start_new_session=True) as proc:
            try:
                raw, _ = proc.communicate(timeout=limits.timeout_seconds)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise SandboxError(f"timed out after {limits.timeout_seconds:g} s (an endless "
                                   f"loop, or too slow for the limit)", "timeout",
                                   output=_output(work_dir)) from None
            finally:
                _kill_group(proc)  # nothing it started outlives it
        return SandboxResult(_answer(raw, proc.returncode, limits, work_dir), _output(work_dir))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _output(work_dir: str) -> str:
    path = Path(work_dir, "output.txt")
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - OUTPUT_SHOWN_BYTES))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _answer(raw: bytes, returncode: int, limits: Limits, work_dir: str) -> dict[str, Any]:
    output = _output(work_dir)
    try:
        answer = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except ValueError:
        answer = None
    if answer is None:
        raise SandboxError(_death_cause(returncode, limits), "crash" if returncode else
                           "no_answer", output=output)
    if not answer.get("ok"):
        kind = answer.get("kind", "exception")
        message = answer.get("message", "failed")
        if kind == "memory":
            message = f"ran out of memory (the limit is {limits.memory_mb} MB)"
        raise SandboxError(message, kind, answer.get("line"),
                           output=(answer.get("traceback") or "") + output, row=answer.get("row"))
    return answer


def _death_cause(returncode: int, limits: Limits) -> str:
    if returncode == -signal.SIGXCPU or returncode == -signal.SIGKILL:
        return f"used more than {limits.timeout_seconds + 1:g} s of CPU time"
    if returncode == -signal.SIGXFSZ:
        return f"wrote more than {limits.file_mb} MB (print output or files)"
    if returncode < 0:
        return f"crashed ({signal.Signals(-returncode).name})"
    return f"ended the process (exit status {returncode}) before returning its scores"


def run_reward(source: str, completions: list[str], kwargs: dict[str, Any],
               limits: Limits = Limits()) -> tuple[list[float | None], str]:
    """The scores of a custom reward's `reward(completions, **kwargs)` and what it printed.
    Scores are numbers or None (NaN/inf are returned as they came: callers check them)."""
    check_source(source)
    if not completions:
        return [], ""
    payload = {"mode": "reward", "source": source, "completions": completions,
               "kwargs": _jsonable(kwargs), "search_seconds": limits.timeout_seconds * 0.3}
    result = run(payload, limits)
    return result.answer["scores"], result.output


def run_code_tests(items: list[tuple[str, list[str]]], timeout_seconds: float = 5.0
                   ) -> list[float]:
    """For each (code, tests) pair, the share of `tests` (Python statements, usually asserts)
    that pass after `code` ran; 0.0 when the code does not run, crashes or takes longer than
    `timeout_seconds`. One process for the batch; when code ends that process (os._exit, a
    crash), the pairs are run again one process each, so one bad completion costs only itself."""
    if not items:
        return []
    payload = {"mode": "tests", "row_seconds": timeout_seconds,
               "items": [{"code": code, "tests": list(tests)} for code, tests in items]}
    try:
        return run(payload, _test_limits(timeout_seconds * len(items) + 1)).answer["shares"]
    except SandboxError:
        if len(items) == 1:
            return [0.0]
    return [run_code_tests([item], timeout_seconds)[0] for item in items]


def _test_limits(timeout_seconds: float) -> Limits:
    return Limits(timeout_seconds=timeout_seconds, memory_mb=512, file_mb=4)


def _jsonable(value: Any) -> Any:
    """Dataset columns as JSON: lists and dicts kept, other objects as text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)
