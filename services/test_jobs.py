"""Batch tests and held-out evaluations: long jobs that generate with the inference worker and score
with rewards, reporting progress as they go.

Guarantees: a job runs in its own thread of the web process but does no heavy work there —
generation happens in the inference worker, scoring in `python -m rewards.evaluate` children (the
reward testing page's path), perplexity in the worker. Progress is published as `test_progress`
after every answer, to the requesting socket only; a finished job (done, failed or cancelled) is written to
`<root>/<job_id>.json`, so its results and downloads survive a restart. A batch result has one row
per prompt with each reward's score and the weighted total; its CSV columns are `index, prompt,
reference, completion, tokens, seconds`, one per reward, then `total` (text a spreadsheet would
run as a formula starts with a quote). An evaluation compares the
run's base model with its result (or a checkpoint) on rows the run held out for validation — the
same rows training held out (core.datasets.split_indices, or every row of the config's validation
file, `dataset.validation_path`) — or, when it held none out, on the last
rows of its dataset, and says so in `note`. Accuracy counts a row as correct when every preset
reward that compares with the reference reaches its maximum; it is None when no such reward is
configured.

Does not: run two generations at once (the worker queues them), or keep more than `MAX_JOBS` jobs
in memory (older finished ones are read back from disk).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.config import TemplateSection, validate_section
from core.datasets import (DatasetError, split_indices, training_examples, validation_failure,
                           validation_section)
from core.files import PathRefused, read_json, resolve_inside, write_json_atomic
from core.run_dir import now_iso
from core.inference.sampling import Sampling
from rewards import RewardError
from services.inference import InferenceCancelled, InferenceClient, InferenceError
from services.rewards import RewardRequestError, run_reward_test
from services.runs import RunStore
from services.rewards import TooManyTests, test_request
from services.testing import (GENERATE_TIMEOUT_SECONDS, MAX_PROMPTS, ModelSelector,
                              TestRequestError, check_prompts, dataset_section, generate_request)

MAX_JOBS = 50                 # finished jobs kept in memory (older ones are read from disk)
MAX_RUNNING_JOBS = 4
MAX_SAVED_JOBS = 200          # result files kept under the root, newest first
MAX_EVAL_ROWS = 200
# presets whose maximum means "the answer is right": accuracy counts these (others that read the
# reference, such as token_f1 or conciseness, grade how well, not whether)
CORRECTNESS_REWARDS = ("answer_correct", "exact_match")
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
DEFAULT_EVAL_ROWS = 10
JOB_ID_BYTES = 6
BASE_COLUMNS = ("index", "prompt", "reference", "completion", "tokens", "seconds")
Publish = Callable[[str, dict[str, Any], Any], None]
log = logging.getLogger("grpo_studio.testing")


class TestJobNotFound(LookupError):
    pass


@dataclass
class Job:
    job_id: str
    kind: str                       # "batch" | "eval"
    socket_id: str | None = None
    status: str = "running"         # running | done | failed | cancelled
    done: int = 0
    total: int = 0
    message: str = ""
    error: str | None = None
    note: str | None = None
    result: dict[str, Any] | None = None
    created_at: str = field(default_factory=now_iso)
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    current: str | None = field(default=None, repr=False)   # the worker request running now

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "kind": self.kind, "status": self.status,
                "done": self.done, "total": self.total, "message": self.message,
                "error": self.error, "note": self.note, "result": self.result,
                "created_at": self.created_at}


class Cancelled(Exception):
    pass


@dataclass
class Plan:
    """What a job generates and how it scores: prompts, rewards, the markers they read."""
    ref: dict[str, Any]
    label: str
    cases: list[dict[str, Any]]
    rewards: list[dict[str, Any]]
    template: dict[str, Any]
    defaults: dict[str, Any]
    note: str | None = None


def _pre_trained_positions(config: dict[str, Any], section: Any, seed: int) -> set[int]:
    """Rows (file positions) the SFT pre-training phase trained on: it splits its own rows (those
    with a response, at most pre_training.max_samples) with the same seed (core/training/phases)."""
    pre = config.get("pre_training") or {}
    if not pre.get("enabled"):
        return set()
    rows = training_examples(section, "sft")[:pre.get("max_samples") or None]
    train, _ = split_indices(len(rows), section.validation_split, seed)
    return {rows[i].position for i in train}


class TestJobs:
    def __init__(self, root: str | Path, runs: RunStore, selector: ModelSelector,
                 client: InferenceClient, publish: Publish, protected: list[str] | None = None):
        self.root, self.runs, self.selector = Path(root), runs, selector
        self.client, self.publish = client, publish
        self.protected = protected or []
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    # ---- starting -----------------------------------------------------------------------------
    def start_batch(self, body: dict[str, Any]) -> str:
        ref, label = self.selector.resolve(body)
        config = self._run_config(body) if body.get("session_id") else None
        if body.get("validation_rows") is not None:
            if config is None:
                raise TestRequestError("validation rows come from a run: choose a run",
                                       "validation_rows")
            cases, note = self._held_out_cases(config, _count(body["validation_rows"],
                                                              "validation_rows", MAX_PROMPTS))
        else:
            cases, note = check_prompts(body.get("prompts")), None
        rewards = body.get("rewards")
        if rewards is None:
            rewards = (config or {}).get("rewards") or []
        template = body.get("template") or (config or {}).get("template") or {}
        defaults = {"temperature": 0.0, "max_tokens": 256}
        request_fields = {k: body[k] for k in ("temperature", "top_p", "top_k", "max_tokens",
                                               "seed", "system_prompt") if k in body}
        plan = Plan(ref, label, cases, _checked_rewards(rewards, template), template,
                    _checked_sampling({**defaults, **request_fields}), note)
        return self._start("batch", body.get("socket_id"), len(cases),
                           lambda job: self._run_batch(job, plan))

    def start_eval(self, body: dict[str, Any]) -> str:
        if not body.get("session_id"):
            raise TestRequestError("choose the run to evaluate", "session_id")
        config = self._run_config(body)
        count = _count(body.get("rows", DEFAULT_EVAL_ROWS), "rows")
        tuned_ref, tuned_label = self.selector.resolve(
            {"session_id": body["session_id"], "checkpoint": body.get("checkpoint")})
        base_ref, base_label = self.selector.resolve({"session_id": body["session_id"],
                                                      "base": True})
        cases, note = self._held_out_cases(config, count)
        template = config.get("template") or {}
        rewards = _checked_rewards(config.get("rewards") or [], template)
        defaults = _checked_sampling({"temperature": 0.0, "max_tokens": body.get("max_tokens",
                                                                                 256)})
        plans = [Plan(base_ref, base_label, cases, rewards, template, defaults, note),
                 Plan(tuned_ref, tuned_label, cases, rewards, template, defaults, note)]
        perplexity = body.get("perplexity", True) is not False
        steps = 2 * len(cases) + (2 if perplexity else 0)
        return self._start("eval", body.get("socket_id"), steps,
                           lambda job: self._run_eval(job, plans, perplexity))

    def _run_config(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            run = self.runs.run(body["session_id"])
        except LookupError as err:
            raise TestRequestError(str(err), "session_id") from None
        return self.runs.config(run)

    def _held_out_cases(self, config: dict[str, Any], count: int
                        ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `count` rows the run held out (as cases), and a note when it held none out."""
        section = dataset_section(config)
        kind = "sft" if (config.get("algorithm") or {}).get("name") == "sft" else "grpo"
        seed = int((config.get("training") or {}).get("seed", 42))
        validation = validation_section(section)
        try:
            if validation is not None:  # a validation file: all its rows were held out
                try:
                    examples = training_examples(validation, kind)
                except DatasetError as err:
                    raise validation_failure(err) from None
                held_out, trained = list(range(len(examples))), set()
            else:
                examples = training_examples(section, kind)
                _, held_out = split_indices(len(examples), section.validation_split, seed)
                trained = _pre_trained_positions(config, section, seed) if kind == "grpo" \
                    else set()
        except (ValueError, OSError) as err:
            raise TestRequestError(f"the run's dataset cannot be read: {err}",
                                   "session_id") from None
        held_out = [i for i in held_out if examples[i].position not in trained
                    and examples[i].prompt_messages]
        note = None
        if not held_out and validation is not None:
            raise TestRequestError("the run's validation file has no row with a prompt",
                                   "session_id")
        if not held_out:
            held_out = list(range(max(0, len(examples) - count), len(examples)))
            note = (f"this run held out no validation rows (dataset.validation_split is 0), so "
                    f"these are the last {len(held_out)} rows of its dataset, which it may have "
                    "trained on")
        cases = []
        for position in held_out[:count]:
            example = examples[position]
            extra = {k: v for k, v in example.row.items() if isinstance(v, (str, int, float))
                     and not isinstance(v, bool) and k not in ("prompt", "completion",
                                                               "reference")}
            cases.append({**extra, "prompt": example.prompt_messages[-1]["content"],
                          "reference": example.reference, "response": example.response,
                          "row": example.position})
        return cases, note

    def _start(self, kind: str, socket_id: Any, total: int,
               work: Callable[[Job], dict[str, Any]]) -> str:
        with self._lock:
            if sum(j.status == "running" for j in self.jobs.values()) >= MAX_RUNNING_JOBS:
                raise TooManyTests(f"{MAX_RUNNING_JOBS} test jobs are already running; wait for "
                                   "one to finish or stop one")
        job = Job(f"{kind}-{secrets.token_hex(JOB_ID_BYTES)}", kind,
                  socket_id if isinstance(socket_id, str) else None, total=total,
                  message="waiting for the inference worker")
        with self._lock:
            self.jobs[job.job_id] = job
            self._forget_old()
        threading.Thread(target=self._run, args=(job, work), daemon=True,
                         name=f"test-{job.job_id}").start()
        return job.job_id

    def _forget_old(self) -> None:
        finished = [j for j in self.jobs.values() if j.status != "running"]
        for job in finished[:max(0, len(self.jobs) - MAX_JOBS)]:
            del self.jobs[job.job_id]

    def _run(self, job: Job, work: Callable[[Job], dict[str, Any]]) -> None:
        status, error, result = "done", None, None
        try:
            result = work(job)
            if job.cancelled.is_set():
                raise Cancelled()
        except Cancelled:
            status = "cancelled"
        except (InferenceError, RewardError, TestRequestError) as err:
            status, error = ("cancelled", None) if job.cancelled.is_set() else ("failed", str(err))
        except Exception as err:  # noqa: BLE001 - a job must always end, and say why
            log.exception("test job %s", job.job_id)
            status, error = "failed", f"{type(err).__name__}: {err} (details in the server log)"
        with self._lock:
            forgotten = job.job_id not in self.jobs
            job.result, job.error, job.message = result, error, status
            job.status = status
            if not forgotten:
                self._save(job)
        self._progress(job)

    def close(self, timeout: float = 10.0) -> None:
        """Cancel every running job (the inference client is closed after this)."""
        with self._lock:
            running = [j for j in self.jobs.values() if j.status == "running"]
        for job in running:
            job.cancelled.set()
            if job.current:
                self.client.cancel(job.current)

    # ---- the work -----------------------------------------------------------------------------
    def _run_batch(self, job: Job, plan: Plan) -> dict[str, Any]:
        job.note = plan.note
        rows = self._answers(job, plan, offset=0)
        return self._scored(job, plan, rows)

    def _run_eval(self, job: Job, plans: list[Plan], perplexity: bool) -> dict[str, Any]:
        job.note = plans[0].note
        models = []
        for number, (plan, label) in enumerate(zip(plans, ("base", "fine-tuned"))):
            scored = self._scored(job, plan, self._answers(job, plan, number * len(plan.cases)))
            models.append({"label": label, "model": plan.label, "rows": len(scored["rows"]),
                           "mean_reward": scored["summary"]["mean_total"],
                           "accuracy": _accuracy(plan.rewards, scored["rewards"],
                                                 scored["rows"]),
                           "means": scored["summary"]["means"], "perplexity": None})
        if perplexity:
            for plan, model in zip(plans, models):
                model["perplexity"] = self._perplexity(job, plan)
        return {"held_out": plans[0].note is None, "note": plans[0].note,
                "rows": len(plans[0].cases), "rewards": [r["name"] for r in plans[0].rewards],
                "models": models}

    def _answers(self, job: Job, plan: Plan, offset: int) -> list[dict[str, Any]]:
        rows = []
        for index, case in enumerate(plan.cases):
            result = self._call(job, lambda request_id: self.client.generate(
                generate_request({"prompt": case["prompt"]}, plan.ref, request_id,
                                 plan.defaults), timeout=GENERATE_TIMEOUT_SECONDS))
            rows.append({"index": index + 1, "prompt": case["prompt"],
                         "reference": case.get("reference"), "completion": result["text"],
                         "tokens": result["tokens"], "seconds": result["seconds"]})
            job.done = offset + index + 1
            job.message = f"{plan.label}: {index + 1} of {len(plan.cases)} answered"
            self._progress(job)
        return rows

    def _call(self, job: Job, send: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        if job.cancelled.is_set():
            raise Cancelled()
        job.current = f"{job.job_id}-{secrets.token_hex(4)}"
        try:
            result = send(job.current)
        except InferenceCancelled:
            raise Cancelled() from None
        finally:
            job.current = None
        if job.cancelled.is_set():
            raise Cancelled()
        return result

    def _scored(self, job: Job, plan: Plan, rows: list[dict[str, Any]]) -> dict[str, Any]:
        names: list[str] = []
        totals: list[float | None] = [None] * len(rows)
        components: list[dict[str, Any]] = [{} for _ in rows]
        if plan.rewards and rows:
            job.message = f"{plan.label}: scoring {len(rows)} answers"
            self._progress(job)
            cases = [{**case, "completion": row["completion"]}
                     for case, row in zip(plan.cases, rows)]
            cases = [{k: v for k, v in c.items() if k not in ("response", "row")} for c in cases]
            try:
                answer = run_reward_test({"rewards": plan.rewards, "cases": cases,
                                          "template": _markers(plan.template)},
                                         self.protected, wait=True)
            except RewardRequestError as err:
                raise RewardError(f"scoring failed ({err.field}): {err}") from None
            names = [r["name"] for r in answer["rewards"]]
            totals = [r["total"] for r in answer["results"]]
            components = [r["components"] for r in answer["results"]]
        scored = [{**row, "scores": scores, "total": total}
                  for row, scores, total in zip(rows, components, totals)]
        means = {n: _mean([s["scores"].get(n) for s in scored]) for n in names}
        seconds = sum(r["seconds"] for r in rows)
        return {"model": plan.label, "rewards": names, "rows": scored,
                "summary": {"mean_total": _mean(totals), "means": means,
                            "tokens_per_second": round(sum(r["tokens"] for r in rows) / seconds,
                                                       2) if seconds else None}}

    def _perplexity(self, job: Job, plan: Plan) -> float | None:
        pairs = [{"prompt": c["prompt"], "completion": c["response"]} for c in plan.cases
                 if (c.get("response") or "").strip()]
        if not pairs:
            job.done += 1
            return None
        job.message = f"{plan.label}: perplexity of the reference answers"
        self._progress(job)
        result = self._call(job, lambda request_id: self.client.call(
            "perplexity", GENERATE_TIMEOUT_SECONDS, id=request_id, model=plan.ref,
            pairs=pairs))
        job.done += 1
        self._progress(job)
        return round(result["perplexity"], 4)

    # ---- reading, cancelling ------------------------------------------------------------------
    def get(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self.jobs.get(job_id)
        if job is not None:
            return job.to_dict()
        saved = read_json(self._path(job_id), default=None)
        if not isinstance(saved, dict):
            raise TestJobNotFound(f"no test job {job_id!r}")
        return saved

    def list(self) -> list[dict[str, Any]]:
        found = {j.job_id: j.to_dict() for j in list(self.jobs.values())}
        for path in self.root.glob("*.json") if self.root.is_dir() else []:
            if path.stem not in found and (saved := read_json(path, default=None)):
                found[path.stem] = saved
        listed = [{k: v for k, v in job.items() if k != "result"} for job in found.values()]
        return sorted(listed, key=lambda j: j.get("created_at") or "", reverse=True)

    def cancel_or_delete(self, job_id: str) -> str:
        """Cancel a running job ("cancelled"), or forget a finished one ("deleted")."""
        self.get(job_id)
        with self._lock:
            job = self.jobs.get(job_id)
        if job is not None and job.status == "running":
            job.cancelled.set()
            if job.current:
                self.client.cancel(job.current)
            return "cancelled"
        with self._lock:
            self.jobs.pop(job_id, None)
        self._path(job_id).unlink(missing_ok=True)
        return "deleted"

    def download(self, job_id: str, fmt: str) -> tuple[bytes, str, str]:
        """(content, file name, mimetype) of a finished batch job's results."""
        job = self.get(job_id)
        result = job.get("result")
        if job.get("kind") != "batch" or not isinstance(result, dict):
            raise TestRequestError(f"test job {job_id!r} has no batch results to download "
                                   f"({job.get('status')})", "job_id")
        if fmt == "json":
            return (json.dumps(result, ensure_ascii=False, indent=1).encode("utf-8"),
                    f"{job_id}.json", "application/json")
        if fmt == "csv":
            return results_csv(result).encode("utf-8"), f"{job_id}.csv", "text/csv"
        raise TestRequestError("format must be csv or json", "format")

    def _path(self, job_id: str) -> Path:
        if not isinstance(job_id, str) or not job_id.replace("-", "").isalnum():
            raise TestJobNotFound(f"no test job {job_id!r}")
        try:  # a symlinked result pointing elsewhere is no result of this folder
            resolve_inside(self.root, f"{job_id}.json")
        except PathRefused:
            raise TestJobNotFound(f"no test job {job_id!r}") from None
        return self.root / f"{job_id}.json"

    def _save(self, job: Job) -> None:
        """Write the finished job; only the newest MAX_SAVED_JOBS results are kept."""
        try:
            write_json_atomic(self._path(job.job_id), job.to_dict())
            saved = sorted(self.root.glob("*.json"), key=lambda p: p.stat().st_mtime,
                           reverse=True)
            for old in saved[MAX_SAVED_JOBS:]:
                old.unlink(missing_ok=True)
        except OSError:
            log.exception("could not save test job %s", job.job_id)

    def _progress(self, job: Job) -> None:
        if job.socket_id is None:  # nobody to tell: progress is never broadcast (pages poll)
            return
        self.publish("test_progress", {"job_id": job.job_id, "kind": job.kind,
                                       "status": job.status, "done": job.done,
                                       "total": job.total, "message": job.message,
                                       "error": job.error}, job.socket_id)


def results_csv(result: dict[str, Any]) -> str:
    """A batch result as CSV: the base columns, one per reward, then the total."""
    names = list(result.get("rewards") or [])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*BASE_COLUMNS, *names, "total"])
    for row in result.get("rows") or []:
        scores = row.get("scores") or {}
        writer.writerow([*(_cell(row.get(c)) for c in BASE_COLUMNS),
                         *(_cell(scores.get(n)) for n in names), _cell(row.get("total"))])
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A CSV cell; text a spreadsheet would run as a formula is quoted with a leading '."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def _mean(values: list[Any]) -> float | None:
    found = [v for v in values if isinstance(v, (int, float))]
    return sum(found) / len(found) if found else None


def _accuracy(rewards: list[dict[str, Any]], names: list[str],
              rows: list[dict[str, Any]]) -> float | None:
    """Share of rows where every correctness reward (CORRECTNESS_REWARDS) scores its maximum,
    1.0; None when none is configured."""
    judges = [name for name, entry in zip(names, rewards)
              if entry.get("source") is None and entry["name"] in CORRECTNESS_REWARDS]
    if not judges or not rows:
        return None
    correct = sum(all((row["scores"].get(n) or 0) >= 1.0 - 1e-9 for n in judges)
                  for row in rows)
    return correct / len(rows)


def _markers(template: dict[str, Any]) -> dict[str, str]:
    section = validate_section(TemplateSection, template, "template")
    return {k: getattr(section, k) for k in ("reasoning_start", "reasoning_end",
                                             "solution_start", "solution_end")}


def _checked_rewards(rewards: Any, template: Any) -> list[dict[str, Any]]:
    """The rewards and markers, checked as the reward test checks them, before any generation."""
    if not isinstance(template, dict):
        raise TestRequestError("template must be an object of marker texts", "template")
    try:
        markers = _markers(template)
    except ValueError as err:
        raise TestRequestError(f"the template cannot be read: {err}", "template") from None
    if rewards:
        test_request({"rewards": rewards, "template": markers, "cases": [{"prompt": "check"}]})
    return rewards


def _checked_sampling(values: dict[str, Any]) -> dict[str, Any]:
    from core.inference.refs import InferenceError as SettingError
    try:
        Sampling.from_request(values)
    except SettingError as err:
        raise TestRequestError(str(err), err.field) from None
    return values


def _count(value: Any, field: str, high: int = MAX_EVAL_ROWS) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise TestRequestError(f"{field} must be a whole number from 1 to {high}", field)
    return value
