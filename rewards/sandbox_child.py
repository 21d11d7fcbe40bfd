"""The reward sandbox's child process: run as `python -I sandbox_child.py LIMITS_JSON` by
rewards/sandbox.py, in a fresh temporary working directory, with no stdin and a scrubbed
environment. Standard library only, and never imported by the rest of the project.

Order matters: resource limits first, then the payload (`.payload.json` in the working directory,
deleted once read), then the audit hook, and only then the user's code. The answer goes to the
original stdout as one JSON object; anything the user's code prints goes to `output.txt` (the
stderr the parent gave us), which the file-size limit caps.

What the audit hook refuses (accidents, not attackers; see rewards/sandbox.py): starting processes
(fork+exec is also replaced, as multiprocessing's raises no audit event), signalling other
processes, name lookups and network connections, writing, renaming or deleting files (sqlite
databases included) outside the working directory, and reading files under the folders the parent
names. Once the answer is written the process exits at once, whatever threads are left.
"""
import json
import math
import os
import resource
import signal
import sys
import threading
import time
import traceback

USER_FILE = "<reward>"
BLOCKED_EVENTS = {
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill",
    "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "os.startfile",
    "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
    "socket.gethostbyname_ex",
}
PATH_EVENTS = {  # event -> indexes of its path arguments that must stay inside the work dir
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1),
    "os.chmod": (0,), "os.chown": (0,), "os.symlink": (1,), "os.link": (1,), "os.utime": (0,),
    "os.truncate": (0,), "shutil.rmtree": (0,), "shutil.copyfile": (1,), "os.chflags": (0,),
    "os.mkfifo": (0,), "os.mknod": (0,), "os.removexattr": (0,), "os.setxattr": (0,),
    "sqlite3.connect": (0,),
}
IN_MEMORY = {":memory:", b":memory:", ""}
WALL_DEADLINE = math.inf  # set by apply_limits
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class SandboxRefusal(PermissionError):
    pass


def apply_limits(limits):
    """Kernel limits, and a wall-clock alarm so that the child ends even when whoever waits for
    it has gone (SIGALRM and SIGXFSZ end the process; CPython would ignore SIGXFSZ)."""
    mb = 1024 * 1024
    cpu = int(math.ceil(limits["cpu_seconds"]))
    global WALL_DEADLINE
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    WALL_DEADLINE = time.monotonic() + limits["timeout_seconds"] + 2
    signal.alarm(int(math.ceil(limits["timeout_seconds"])) + 2)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_mb"] * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_mb"] * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def _inside(path, root):
    return path == root or path.startswith(root + os.sep)


def make_hook(work_dir, protected, readable):
    state = threading.local()  # the hook's own calls raise no event it checks; guard per thread

    def resolve(path):
        if isinstance(path, int) or path in IN_MEMORY:
            return None
        return os.path.realpath(os.fsdecode(path))  # relative to the current directory

    def check_write(event, path):
        resolved = resolve(path)
        if resolved is not None and not _inside(resolved, work_dir):
            raise SandboxRefusal(f"{event} outside the reward's temporary folder is not allowed "
                                 f"({os.fsdecode(path)})")

    def check_read(path):
        resolved = resolve(path)
        if resolved is None or _inside(resolved, work_dir):
            return
        if any(_inside(resolved, root) for root in readable):
            return
        if any(_inside(resolved, root) for root in protected):
            raise SandboxRefusal(f"reading {os.fsdecode(path)} is not allowed: it belongs to "
                                 f"GRPO Studio's own folders")

    def hook(event, args):
        if getattr(state, "busy", False):
            return
        if event in BLOCKED_EVENTS:
            raise SandboxRefusal(f"{event} is not allowed in a reward function")
        if event not in PATH_EVENTS and event != "open":
            return
        state.busy = True
        try:
            if event == "open":
                path, mode, flags = args
                writes = any(c in (mode or "") for c in "wax+") or bool((flags or 0) & WRITE_FLAGS)
                (check_write("writing", path) if writes else check_read(path))
            else:
                for i in PATH_EVENTS[event]:
                    if i < len(args) and isinstance(args[i], (str, bytes, os.PathLike)):
                        check_write(event, args[i])
        finally:
            state.busy = False
    return hook


def refuse_process_starts():
    """multiprocessing's and subprocess's fork+exec raises no audit event: refuse it outright."""
    import _posixsubprocess

    def fork_exec(*_args, **_kwargs):
        raise SandboxRefusal("starting processes is not allowed in a reward function")
    _posixsubprocess.fork_exec = fork_exec


def user_line(exc):
    """The line of the user's source where `exc` happened (innermost), or None."""
    if isinstance(exc, SyntaxError) and exc.filename == USER_FILE:
        return exc.lineno
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == USER_FILE:
            line = frame.lineno
    return line


def user_traceback(exc):
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == USER_FILE]
    text = "".join(traceback.format_list(frames))
    return text + "".join(traceback.format_exception_only(type(exc), exc))


def as_score(value):
    if value is None:
        return None
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        return float(value)  # ints, floats, bools, numpy scalars
    except (TypeError, ValueError):
        raise TypeError(f"a score must be a number or None, got {type(value).__name__} "
                        f"{value!r:.60}") from None


class RowFailure(Exception):
    def __init__(self, row, cause):
        super().__init__(str(cause))
        self.row, self.cause = row, cause


def call_reward(fn, completions, kwargs):
    scores = fn(list(completions), **kwargs)
    if isinstance(scores, (str, bytes, dict)) or not hasattr(scores, "__iter__"):
        raise TypeError(f"reward must return a list of numbers, got {type(scores).__name__}")
    converted = []
    for row, value in enumerate(scores):
        try:
            converted.append(as_score(value))
        except TypeError as exc:
            raise RowFailure(row, exc) from None
    return converted


def failing_row(fn, completions, kwargs, budget_seconds):
    """The first row that fails on its own (the batch failed), or None when none does or the
    search would take longer than `budget_seconds` (the real error must not become a timeout)."""
    n = len(completions)
    deadline = time.monotonic() + budget_seconds
    for row in range(n):
        if time.monotonic() > deadline:
            return None
        one = {k: v[row:row + 1] if isinstance(v, list) and len(v) == n else v
               for k, v in kwargs.items()}
        try:
            call_reward(fn, completions[row:row + 1], one)
        except Exception:  # noqa: BLE001 - any failure locates the row
            return row
    return None


def run_reward(payload):
    namespace = {"__name__": "reward_module"}
    exec(compile(payload["source"], USER_FILE, "exec"), namespace)
    fn = namespace.get("reward")
    if not callable(fn):
        raise NameError("the code defines no function named `reward`")
    completions, kwargs = payload["completions"], payload["kwargs"]
    try:
        return {"scores": call_reward(fn, completions, kwargs)}
    except (MemoryError, SandboxRefusal, RowFailure):
        raise
    except Exception as exc:
        budget = payload.get("search_seconds", 1.0)
        row = failing_row(fn, completions, kwargs, budget) if len(completions) > 1 else 0
        raise RowFailure(row, exc) from exc


class RowTimeout(Exception):
    pass


def _row_alarm(_signum, _frame):
    raise RowTimeout()


def passed_share(code, tests, seconds):
    """The share of `tests` that pass after `code` ran, within `seconds` (0 when it fails)."""
    namespace = {"__name__": "solution"}
    passed = 0
    signal.signal(signal.SIGALRM, _row_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(min(seconds, WALL_DEADLINE - time.monotonic()), 0.01))
    try:
        exec(compile(code, USER_FILE, "exec"), namespace)
        for test in tests:
            try:
                exec(compile(test, USER_FILE, "exec"), namespace)
                passed += 1
            except Exception:  # noqa: BLE001 - a failing test, whatever it raises
                pass
    except (Exception, SystemExit, RowTimeout):  # noqa: BLE001 - the code failed: 0
        passed = 0
    finally:  # back to the whole process's wall-clock alarm
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, max(WALL_DEADLINE - time.monotonic(), 0.01))
    return passed / len(tests) if tests else 0.0


def run_tests(payload):
    """Each item's code and tests, in a fresh namespace, with its own time limit."""
    return {"shares": [passed_share(item["code"], item["tests"], payload["row_seconds"])
                       for item in payload["items"]]}


def answer(out, result):
    """Writes the answer and ends the process at once (threads the user's code left running
    must not keep it alive)."""
    out.write(json.dumps(result))
    out.flush()
    os._exit(0)


def main():
    limits = json.loads(sys.argv[1])
    apply_limits(limits)
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what the user's code prints goes to output.txt, not into the answer
    work_dir = os.path.realpath(os.getcwd())
    with open(".payload.json", encoding="utf-8") as f:
        payload = json.load(f)
    os.unlink(".payload.json")
    readable = [os.path.realpath(p) for p in
                {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.__file__)}]
    protected = [os.path.realpath(p) for p in limits.get("protected", [])]
    sys.addaudithook(make_hook(work_dir, protected, readable))
    refuse_process_starts()
    run = run_reward if payload["mode"] == "reward" else run_tests
    try:
        answer(out, {"ok": True, **run(payload)})
    except MemoryError:
        answer(out, {"ok": False, "kind": "memory", "message": "MemoryError"})
    except RowFailure as failure:
        exc = failure.cause
        answer(out, {"ok": False, "kind": "exception", "row": failure.row, "line": user_line(exc),
                     "message": "".join(traceback.format_exception_only(type(exc), exc)).strip(),
                     "traceback": user_traceback(exc)})
    except BaseException as exc:  # noqa: BLE001 - everything the user's code raises is reported
        kind = "refused" if isinstance(exc, SandboxRefusal) else \
            "syntax" if isinstance(exc, SyntaxError) else "exception"
        answer(out, {"ok": False, "kind": kind, "line": user_line(exc),
                     "message": "".join(traceback.format_exception_only(type(exc), exc)).strip(),
                     "traceback": user_traceback(exc)})


if __name__ == "__main__":
    main()
