"""Rewards for the web app: the library of saved custom rewards, test cases from a dataset, and
reward tests run out of the web process.

Guarantees: a custom reward is saved under its name, which is also its id, the file name and the
name training logs it under (`rewards/<name>/mean`); names are checked (letters, digits, `_`, `-`;
never a path, never a preset's id), the file resolved inside the library's folder
(core.files.resolve_inside: a symlink leading out is refused), and the source is parsed — never run
— before it is written, atomically; saving the same name replaces it. A reward test runs in a child
process (`python -m rewards.evaluate`) with a deadline, so the web process never executes reward
code, user-written or not, and stays responsive whatever the reward does.

Does not: import Flask; sandbox anything itself (rewards/sandbox.py does, inside the child).
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO

from core.config import DatasetSection
from core.datasets import detect_mapping, to_example
from core.files import PathRefused, read_json, resolve_inside, write_json_atomic
from core.run_dir import now_iso
from rewards import RewardError, get_spec
from rewards.custom import check_name
from rewards.sandbox import SandboxError, check_source

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAX_CASES = 500
MAX_TEXT = 100_000
MAX_SOURCE_BYTES = 256 * 1024
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 60
TEST_DEADLINE_SECONDS = 120.0  # the whole test, presets and custom reward together


class RewardRequestError(RewardError):
    """A reward request that cannot be served; `field` names what to fix, `extra` carries the
    line of a custom reward's source and what it printed."""

    def __init__(self, message: str, field: str, **extra: Any):
        super().__init__(message)
        self.field, self.extra = field, {k: v for k, v in extra.items() if v not in (None, "")}


class CustomRewardNotFound(LookupError):
    pass


class TooManyTests(RuntimeError):
    pass


MAX_RUNNING_TESTS = 2
_running_tests = threading.BoundedSemaphore(MAX_RUNNING_TESTS)


def checked_source(source: Any, field: str = "source") -> str:
    """`source` when it parses and defines `reward`; else a RewardRequestError with its line."""
    if not isinstance(source, str) or not source.strip():
        raise RewardRequestError("write the reward's Python source", field)
    if len(source.encode("utf-8")) > MAX_SOURCE_BYTES:
        raise RewardRequestError(f"the source is larger than {MAX_SOURCE_BYTES // 1024} KB", field)
    try:
        check_source(source)
    except SandboxError as err:
        raise RewardRequestError(str(err), field, line=err.line) from None
    return source


class CustomRewardLibrary:
    """Saved custom rewards: `<folder>/<name>.json` holding {name, source, updated_at}."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _path(self, name: Any) -> Path:
        try:
            check_name(name if isinstance(name, str) else "")
            return resolve_inside(self.folder, f"{name}.json")
        except (RewardError, PathRefused) as err:
            raise RewardRequestError(str(err), "name") from None

    def list(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.folder.glob("*.json")):
            entry = read_json(path, default=None)
            if isinstance(entry, dict) and entry.get("name") == path.stem:
                found.append({"id": path.stem, "name": path.stem,
                              "updated_at": entry.get("updated_at"),
                              "size": len(entry.get("source", ""))})
        return found

    def get(self, name: str) -> dict[str, Any]:
        path = self._path(name)
        entry = read_json(path, default=None) if path.is_file() else None
        if not isinstance(entry, dict) or not isinstance(entry.get("source"), str):
            raise CustomRewardNotFound(f"no saved custom reward named {name!r}")
        return {"id": name, "name": name, "source": entry["source"],
                "updated_at": entry.get("updated_at")}

    def save(self, name: Any, source: Any) -> dict[str, Any]:
        path = self._path(name)
        try:
            get_spec(name)
        except RewardError:
            pass
        else:
            raise RewardRequestError(f"{name!r} is a preset's id; choose another name", "name")
        source = checked_source(source)
        write_json_atomic(path, {"name": name, "source": source, "updated_at": now_iso()})
        return {"id": name, "name": name, "source": source}

    def save_upload(self, stream: BinaryIO, filename: str, name: str | None) -> dict[str, Any]:
        if not filename.lower().endswith(".py"):
            raise RewardRequestError("upload a Python file (.py)", "file")
        data = stream.read(MAX_SOURCE_BYTES + 1)
        if len(data) > MAX_SOURCE_BYTES:
            raise RewardRequestError(f"the file is larger than {MAX_SOURCE_BYTES // 1024} KB",
                                     "file")
        try:
            source = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise RewardRequestError("the file is not UTF-8 text", "file") from None
        return self.save(name or Path(filename).stem.replace(" ", "_"), source)

    def delete(self, name: str) -> None:
        path = self._path(name)
        if not path.is_file():
            raise CustomRewardNotFound(f"no saved custom reward named {name!r}")
        path.unlink()


def _text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise RewardRequestError("must be text", field)
    value = str(value)
    if len(value) > MAX_TEXT:
        raise RewardRequestError(f"is longer than {MAX_TEXT} characters", field)
    return value


def test_request(body: dict[str, Any]) -> dict[str, Any]:
    """The body of `POST /api/rewards/test`, checked for shape (the child checks the rest)."""
    rewards = body.get("rewards") or []
    if not isinstance(rewards, list) or not all(isinstance(r, dict) and isinstance(
            r.get("name"), str) for r in rewards):
        raise RewardRequestError("rewards must be a list of {name, weight, params}", "rewards")
    for i, entry in enumerate(rewards):
        _number(entry.get("weight", 1.0), f"rewards.{i}.weight")
        if entry.get("source") is not None:
            checked_source(entry["source"], f"rewards.{i}.source")
        if not isinstance(entry.get("params") or {}, dict):
            raise RewardRequestError("params must be an object", f"rewards.{i}.params")
    custom = body.get("custom_code")
    if custom is not None:
        checked_source(custom, "custom_code")
    template = body.get("template") or {}
    if not isinstance(template, dict) or not all(isinstance(v, str) for v in template.values()):
        raise RewardRequestError("template must be an object of marker texts", "template")
    cases = body.get("cases")
    if not isinstance(cases, list) or not cases:
        raise RewardRequestError("add at least one case (prompt, completion, reference)", "cases")
    if len(cases) > MAX_CASES:
        raise RewardRequestError(f"at most {MAX_CASES} cases at a time", "cases")
    for i, case in enumerate(cases):
        if not isinstance(case, dict):
            raise RewardRequestError("each case is {prompt, completion, reference}", f"cases.{i}")
        for key in ("prompt", "completion", "reference"):
            _text(case.get(key), f"cases.{i}.{key}")
    timeout = _number(body.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS), "timeout_seconds")
    if not 1 <= timeout <= MAX_TIMEOUT_SECONDS:
        raise RewardRequestError(f"timeout_seconds must be from 1 to {MAX_TIMEOUT_SECONDS}",
                                 "timeout_seconds")
    return {"rewards": rewards, "custom_code": custom, "timeout_seconds": timeout,
            "custom_weight": _number(body.get("custom_weight", 1.0), "custom_weight"),
            "template": template, "cases": cases}


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RewardRequestError("must be a number", field)
    return float(value)


def run_reward_test(body: dict[str, Any], protected: list[str] | None = None,
                    deadline: float = TEST_DEADLINE_SECONDS, wait: bool = False
                    ) -> dict[str, Any]:
    """Scores the cases in a child process; RewardRequestError names what to fix. `protected`:
    the app's folders, which a custom reward may not read. At most `MAX_RUNNING_TESTS` run at
    once (each is a process doing real work on a machine that may have two cores); beyond that,
    TooManyTests, or with `wait` (background jobs) a wait for a free slot."""
    request = {**test_request(body), "protected": [str(p) for p in protected or []]}
    if not _running_tests.acquire(blocking=wait):
        raise TooManyTests(f"{MAX_RUNNING_TESTS} reward tests are already running; try again "
                           f"when one has finished")
    try:
        return _evaluate(request, deadline)
    finally:
        _running_tests.release()


def _evaluate(request: dict[str, Any], deadline: float) -> dict[str, Any]:
    try:
        done = subprocess.run([sys.executable, "-m", "rewards.evaluate"], cwd=PROJECT_ROOT,
                              input=json.dumps(request).encode("utf-8"), capture_output=True,
                              timeout=deadline)
    except subprocess.TimeoutExpired:
        raise RewardRequestError(f"the rewards took longer than {deadline:g} s for these cases; "
                                 f"test fewer cases", "cases") from None
    try:
        answer = json.loads(done.stdout.decode("utf-8"))
    except ValueError:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        raise RuntimeError(f"the reward test process failed: {' '.join(tail)}") from None
    if "error" in answer:
        raise RewardRequestError(answer["error"], answer.get("field", "rewards"),
                                 line=answer.get("line"), output=answer.get("output"))
    return answer


def dataset_cases(section: DatasetSection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Test cases from raw dataset rows: the user's question, the reference and the dataset's own
    answer, plus the row's other columns (test cases, keywords, ...)."""
    if not rows:
        return []
    mapping = detect_mapping(list(rows[0]), section.mapping)
    cases = []
    for row in rows:
        example = to_example(row, mapping)
        prompt = example.prompt_messages[-1]["content"] if example.prompt_messages else ""
        extra = {k: v for k, v in row.items() if k not in ("prompt", "completion", "reference")
                 and isinstance(v, (str, int, float, list)) and not isinstance(v, bool)}
        cases.append({**extra, "prompt": prompt, "reference": example.reference,
                      "response": example.response})
    return cases
