"""Statistics and duplicate searches of a dataset: jobs run in background threads of the web
process, and the cleaned copy a finished search can write.

Guarantees: at most `MAX_RUNNING` jobs run at once (`TooManyTests` beyond, a 429); a request is
checked (dataset, mapping, model, numbers, each error naming its body key) before its job starts.
Progress is published as `dataset_progress` `{"job_id", "kind", "status", "done", "message"}` to
the requesting socket only (never broadcast; without a socket, pages poll `get`): when the job
starts, at most every `PROGRESS_SECONDS` while it reads, and when it ends. Jobs live in memory
only: the running ones and the newest `MAX_FINISHED` finished ones. `close()` forgets every job
and makes running ones stop at their next progress call. A dedup job keeps its `DedupPlan`, so
`write_dedup` stores the cleaned copy as a new upload (`DatasetLibrary.store_derived`), refused
when the file changed since the search.

Does not: survive a restart, stop a job between two progress calls (every 1,000 rows), or import
torch (the engine uses `tokenizers` and `datasketch`).
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.datasets import DatasetError, detect_mapping
from core.formats.dedup import DEFAULT_THRESHOLD, DedupPlan, find_duplicates, output_format, \
    write_deduplicated
from core.formats.stats import dataset_statistics
from core.run_dir import now_iso
from services.catalog import local_model_dir
from services.dataset_tools import (columns_of, derived_label, mapping_of, named_for_body,
                                    number_of, sample_rows, txt_mode_of)
from services.datasets import DatasetLibrary, checked_label
from services.rewards import TooManyTests

MAX_RUNNING = 2
MAX_FINISHED = 10            # a dedup plan holds every cluster's row numbers: keep few
PROGRESS_SECONDS = 0.5
MAX_SEQ_LENGTH = 1_000_000
CLUSTERS_SHOWN = 50
Publish = Callable[[str, dict[str, Any], Any], None]
log = logging.getLogger("grpo_studio.datasets")


class DatasetJobNotFound(LookupError):
    field = "job_id"


class Stopped(Exception):
    """Raised from a progress call when the app is closing."""


@dataclass
class DatasetJob:
    job_id: str
    kind: str                       # "stats" | "dedup"
    source_id: str
    socket_id: str | None = None
    status: str = "running"         # running | done | failed
    done: int = 0                   # rows read so far
    message: str = "reading"
    error: str | None = None
    result: dict[str, Any] | None = None
    created_at: str = field(default_factory=now_iso)
    plan: DedupPlan | None = field(default=None, repr=False)
    sent_at: float = field(default=0.0, repr=False)

    def to_dict(self) -> dict[str, Any]:
        found = {"job_id": self.job_id, "kind": self.kind, "status": self.status,
                 "done": self.done, "message": self.message, "dataset_id": self.source_id,
                 "created_at": self.created_at}
        return {**found, **({"error": self.error} if self.error else {}),
                **({"result": self.result} if self.result is not None else {})}


class DatasetJobs:
    def __init__(self, library: DatasetLibrary, publish: Publish):
        self.library, self.publish = library, publish
        self.jobs: dict[str, DatasetJob] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()

    # starting --------------------------------------------------------------------------------
    def start_stats(self, body: dict[str, Any]) -> str:
        """Statistics of `body["id"]` (`core.formats.stats.dataset_statistics`)."""
        path = self.library.source_path(body.get("id"))
        mapping, txt_mode = mapping_of(body), txt_mode_of(body)
        tokenizer = tokenizer_dir(body.get("model"))
        max_seq_length = number_of(body, "max_seq_length", None, 1, MAX_SEQ_LENGTH, whole=True)
        if mapping is not None:   # named columns must exist before the job starts
            with named_for_body():
                detect_mapping(columns_of(sample_rows(path, txt_mode=txt_mode)), mapping)

        def work(job: DatasetJob) -> dict[str, Any]:
            with named_for_body():
                result = dataset_statistics(path, mapping, tokenizer, max_seq_length,
                                            on_progress=self._reporter(job), txt_mode=txt_mode)
            self.library.remember_rows(job.source_id, result["rows"] + result["broken_rows"])
            return result
        return self._start("stats", body, work)

    def start_dedup(self, body: dict[str, Any]) -> str:
        """Exact and near-duplicate clusters of `body["id"]` (`core.formats.dedup`)."""
        path = self.library.source_path(body.get("id"))
        threshold = number_of(body, "threshold", DEFAULT_THRESHOLD, 0, 1, above_low=True)
        txt_mode = txt_mode_of(body)
        fields = fields_of(body, path, txt_mode)

        def work(job: DatasetJob) -> dict[str, Any]:
            with named_for_body():
                job.plan = find_duplicates(path, fields, threshold, txt_mode=txt_mode,
                                           on_progress=self._reporter(job))
            return job.plan.to_dict(CLUSTERS_SHOWN)
        return self._start("dedup", body, work)

    def _start(self, kind: str, body: dict[str, Any],
               work: Callable[[DatasetJob], dict[str, Any]]) -> str:
        socket_id = body.get("socket_id")
        job = DatasetJob(f"{kind}-{secrets.token_hex(6)}", kind, body["id"],
                         socket_id if isinstance(socket_id, str) else None)
        with self._lock:
            if sum(j.status == "running" for j in self.jobs.values()) >= MAX_RUNNING:
                raise TooManyTests(f"{MAX_RUNNING} dataset jobs are already running; wait for "
                                   "one to finish")
            self.jobs[job.job_id] = job
            self._forget_old()
        self._send(job)
        threading.Thread(target=self._run, args=(job, work), daemon=True,
                         name=f"dataset-{job.job_id}").start()
        return job.job_id

    def _forget_old(self) -> None:
        finished = [j for j in self.jobs.values() if j.status != "running"]
        for job in finished[:max(0, len(finished) - MAX_FINISHED)]:
            del self.jobs[job.job_id]

    # running ---------------------------------------------------------------------------------
    def _run(self, job: DatasetJob, work: Callable[[DatasetJob], dict[str, Any]]) -> None:
        try:
            job.result = work(job)
            job.status, job.message = "done", f"done: {job.result['rows']:,} rows"
        except Stopped:
            job.status, job.error = "failed", "stopped: the server is closing"
        except DatasetError as err:
            job.status, job.error = "failed", self.library.with_labels(str(err))
        except Exception as err:  # noqa: BLE001 - a job must always end, and say why
            log.exception("dataset job %s", job.job_id)
            job.status, job.error = "failed", f"{type(err).__name__}: {err} (details in the " \
                                              "server log)"
        if job.status == "failed":
            job.message = job.error or "failed"
        if not self._closed.is_set():
            self._send(job)

    def _reporter(self, job: DatasetJob) -> Callable[[int], None]:
        def report(rows: int) -> None:
            if self._closed.is_set():
                raise Stopped()
            job.done, job.message = rows, f"{rows:,} rows read"
            if time.monotonic() - job.sent_at >= PROGRESS_SECONDS:
                self._send(job)
        return report

    def _send(self, job: DatasetJob) -> None:
        job.sent_at = time.monotonic()
        if job.socket_id is None:   # nobody to tell: progress is never broadcast
            return
        self.publish("dataset_progress", {"job_id": job.job_id, "kind": job.kind,
                                          "status": job.status, "done": job.done,
                                          "message": job.message}, job.socket_id)

    # reading, writing, closing ---------------------------------------------------------------
    def get(self, job_id: str) -> dict[str, Any]:
        return self._job(job_id).to_dict()

    def _job(self, job_id: str) -> DatasetJob:
        with self._lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise DatasetJobNotFound(f"no dataset job {job_id!r} (jobs are kept while the "
                                     "server runs; start it again)")
        return job

    def write_dedup(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """The finished search's source without its duplicates, stored as a new upload."""
        job = self._job(job_id)
        if job.kind != "dedup" or job.status != "done" or job.plan is None:
            raise DatasetError(f"job {job_id!r} is not a finished duplicate search "
                               f"({job.kind}, {job.status})", field="job_id")
        plan, fmt = job.plan, output_format(job.plan.source)
        name = body.get("name")
        label = checked_label(name) if name is not None else \
            derived_label(self._label(job), "deduplicated", f".{fmt}")
        with self.library.scratch() as folder:
            try:
                written = write_deduplicated(plan.source, folder / f"deduplicated.{fmt}", plan)
            except DatasetError as err:
                raise DatasetError(str(err), field="job_id") from None
            [entry] = self.library.store_derived(
                [(Path(written["path"]), label, written["rows"])], job.source_id)
        return {"entry": entry, "rows": written["rows"], "removed": written["removed"]}

    def _label(self, job: DatasetJob) -> str:
        try:
            return self.library.label_of(job.source_id)
        except LookupError:
            return job.source_id

    def close(self) -> None:
        """Running jobs stop at their next progress call; every job is forgotten."""
        self._closed.set()
        with self._lock:
            self.jobs.clear()


def tokenizer_dir(model: Any) -> Path | None:
    """The folder of a model's tokenizer.json; None (count characters) when no model is named."""
    if model is None or model == "":
        return None
    if not isinstance(model, str):
        raise DatasetError("model must be a model name such as 'default' or a hub id",
                           field="model")
    folder = local_model_dir(model)
    if folder is None:
        raise DatasetError(f"model {model!r} is not on this machine; download it on the models "
                           "page, or leave model empty to count characters", field="model")
    if not (folder / "tokenizer.json").is_file():
        raise DatasetError(f"model {model!r} has no tokenizer.json (a fast tokenizer); choose "
                           "another model or leave model empty to count characters",
                           field="model")
    return folder


def fields_of(body: dict[str, Any], path: Path, txt_mode: str) -> list[str] | None:
    """The columns to compare rows on (None: the mapped prompt and response), each checked to be
    a column of the file's first rows."""
    fields = body.get("fields")
    if fields is None or fields == []:
        return None
    if not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields):
        raise DatasetError("fields must be a list of column names", field="fields")
    with named_for_body():
        columns = columns_of(sample_rows(path, txt_mode=txt_mode))
    unknown = [f for f in fields if f not in columns]
    if unknown:
        raise DatasetError(f"column {unknown[0]!r} is not in the dataset; columns: "
                           f"{', '.join(columns)}", field="fields")
    return fields
