"""Download a model from the Hugging Face hub into GRPO Studio's model cache:
`python -m core.hub_download OWNER/NAME`.

Guarantees: only what a transformers model needs is fetched (safetensors weights, config,
generation config, tokenizer and chat template files at the top of the repository; never
pickle `.bin` weights); the files land in `<cache>/models/.<owner>--<name>.partial-<pid>/`,
renamed to `<cache>/models/<owner>--<name>/` only once every file is there, so a half-finished
download never looks cached and a failed one leaves nothing behind (a killed one leaves a hidden
partial folder that services/model_cache.py removes). When the hub cannot be reached
(HF_HUB_OFFLINE, no network) it fails within seconds with a message saying how to copy a model in
by hand. Progress goes to stdout as JSON lines, one object each, for the web app (and is
readable by a person):
`{"event": "status", "message"}`, `{"event": "plan", "files": [[name, bytes]], "total_bytes"}`,
`{"event": "progress", "downloaded_bytes", "total_bytes", "file"}`, then
`{"event": "done", "path", "size"}` (exit 0) or `{"event": "error", "message"}` (exit 1).

Does not: import torch, check that the weights load (training and testing do), resume a broken
download, or replace a model already in the cache (delete it first).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.files import write_json_atomic
from core.models import hub_cache_dir, is_hub_id

DEFAULT_ENDPOINT = "https://huggingface.co"
REACHABILITY_TIMEOUT_S = 5.0
PROGRESS_EVERY_S = 0.2
DOWNLOAD_MARKER = "download.json"
ALLOW_PATTERNS = ["*.safetensors", "*.safetensors.index.json", "config.json",
                  "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                  "special_tokens_map.json", "added_tokens.json", "tokenizer.model", "vocab.json",
                  "merges.txt", "chat_template.jinja", "chat_template.json"]
# subfolders hold other formats (onnx/, original/ …), never needed here
IGNORE_PATTERNS = ["*/*"]
OFFLINE_VALUES = ("1", "on", "yes", "true")


class DownloadError(RuntimeError):
    """A download that cannot be done; the message says why and what to do."""


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def unreachable(reason: str, target: Path) -> DownloadError:
    return DownloadError(f"the Hugging Face hub cannot be reached ({reason}); download the model "
                         f"on a machine with internet and copy its folder to {target}")


def check_hub_reachable(endpoint: str, target: Path) -> None:
    """Fails at once when offline, instead of after huggingface_hub's retries."""
    reason = hub_unreachable_reason(endpoint)
    if reason is not None:
        raise unreachable(reason, target)


def hub_unreachable_reason(endpoint: str) -> str | None:
    """Why the hub at `endpoint` cannot be reached (HF_HUB_OFFLINE is set, or nothing answers
    within REACHABILITY_TIMEOUT_S), or None when it answers."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in OFFLINE_VALUES:
        return "HF_HUB_OFFLINE is set"
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"),
                               timeout=REACHABILITY_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        return None  # it answered: reachable, whatever the status
    except (urllib.error.URLError, OSError) as err:
        return f"{endpoint}: {getattr(err, 'reason', err)}"
    return None


class ProgressReporter:
    """Turns byte counts into `progress` lines, at most every PROGRESS_EVERY_S seconds. Files are
    fetched one at a time in plan order, so the byte count tells which file is being fetched."""

    def __init__(self, files: list[tuple[str, int]]):
        self.files, self.total = files, sum(size for _, size in files)
        self.done, self.last_emit = 0, 0.0
        self.lock = threading.Lock()

    def seen(self, count: float) -> None:
        with self.lock:
            done = max(self.done, min(int(count), self.total))
            if done == self.done:
                return
            self.done, now = done, time.monotonic()
            if now - self.last_emit >= PROGRESS_EVERY_S or done == self.total:
                self.last_emit = now
                self.emit()

    def emit(self) -> None:
        emit("progress", downloaded_bytes=self.done, total_bytes=self.total,
             file=self.current_file())

    def current_file(self) -> str | None:
        start = 0
        for name, size in self.files:
            if self.done < start + size:
                return name
            start += size
        return self.files[-1][0] if self.files else None


def byte_counter(reporter: ProgressReporter) -> type:
    """A tqdm class for snapshot_download that reports its byte bars and prints nothing."""
    from tqdm.std import tqdm

    class ByteCounter(tqdm):
        def __init__(self, *args: Any, **kwargs: Any):
            kwargs.pop("name", None)
            super().__init__(*args, **{**kwargs, "file": open(os.devnull, "w"), "disable": False})

        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            if self.unit == "B":
                reporter.seen(self.n)
            return shown

    return ByteCounter


def plan(model_id: str, endpoint: str, folder: Path) -> tuple[str, list[tuple[str, int]]]:
    """The commit to fetch and the files to download from it, with their sizes."""
    from huggingface_hub import snapshot_download
    # one worker: the files come back in the order the real download fetches them
    found = snapshot_download(model_id, endpoint=endpoint, allow_patterns=ALLOW_PATTERNS,
                              ignore_patterns=IGNORE_PATTERNS, dry_run=True, max_workers=1,
                              cache_dir=_bookkeeping(folder))
    files = [(f.filename, int(f.file_size or 0)) for f in found]
    if not any(name.endswith(".safetensors") for name, _ in files):
        raise DownloadError(f"{model_id} has no safetensors weights (GRPO Studio does not load "
                            f"pickled .bin weights); choose another model or a safetensors "
                            f"conversion of it")
    return found[0].commit_hash, files


def fetch(model_id: str, endpoint: str, folder: Path) -> list[tuple[str, int]]:
    """Downloads the planned files into `folder`; returns them."""
    from huggingface_hub import snapshot_download
    commit, files = plan(model_id, endpoint, folder)
    emit("plan", files=files, total_bytes=sum(size for _, size in files), commit=commit)
    reporter = ProgressReporter(files)
    snapshot_download(model_id, revision=commit, endpoint=endpoint, local_dir=folder,
                      allow_patterns=ALLOW_PATTERNS, ignore_patterns=IGNORE_PATTERNS,
                      max_workers=1, tqdm_class=byte_counter(reporter),
                      cache_dir=_bookkeeping(folder))
    reporter.seen(reporter.total)
    missing = [name for name, _ in files if not (folder / name).is_file()]
    if missing:
        raise DownloadError(f"the download of {model_id} ended without {', '.join(missing)}; "
                            f"try again")
    return files


def _bookkeeping(folder: Path) -> Path:
    """huggingface_hub's own cache (refs, tree listings) for this download: inside the partial
    folder, so nothing is left in the user's Hugging Face cache and all of it goes at the end."""
    return folder / ".cache" / "hub"


def finish(folder: Path, target: Path, model_id: str, endpoint: str,
           files: list[tuple[str, int]]) -> None:
    """Drops huggingface_hub's bookkeeping, records what was fetched, then renames into place."""
    shutil.rmtree(folder / ".cache", ignore_errors=True)
    record = {"model_id": model_id, "endpoint": endpoint, "files": [name for name, _ in files],
              "downloaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_json_atomic(folder / DOWNLOAD_MARKER, record)
    os.replace(folder, target)


def download(model_id: str) -> Path:
    """Downloads hub id `model_id` into the model cache; returns its folder."""
    if not isinstance(model_id, str) or not is_hub_id(model_id):
        raise DownloadError(f"{model_id!r} is not a hub id; write it as owner/name "
                            f"(letters, digits, '.', '_' and '-')")
    target, endpoint = hub_cache_dir(model_id), hub_endpoint()
    if target.exists():
        raise DownloadError(f"{model_id} is already in the model cache ({target}); delete it "
                            f"first to download it again")
    emit("status", message="checking the hub")
    check_hub_reachable(endpoint, target)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.mkdir(parents=True)
    try:
        files = fetch(model_id, endpoint, partial)
        finish(partial, target, model_id, endpoint, files)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def explain(err: Exception, model_id: str) -> str:
    """A message a person can act on for what huggingface_hub raised."""
    from huggingface_hub import errors
    if isinstance(err, errors.DryRunError) and err.__cause__ is not None:
        err = err.__cause__  # the plan could not be made: say why
    if _is_connection_error(err):
        return str(unreachable(_first_line(err), hub_cache_dir(model_id)))
    if isinstance(err, errors.GatedRepoError):
        return (f"{model_id} is gated: accept its licence on the hub, then log in "
                f"(`hf auth login`) or set HF_TOKEN before starting GRPO Studio")
    if isinstance(err, errors.RepositoryNotFoundError):
        return (f"the hub has no model {model_id} (or it is private: log in with `hf auth "
                f"login` or set HF_TOKEN); check the spelling, owner/name")
    if isinstance(err, (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled)):
        return str(unreachable(_first_line(err), hub_cache_dir(model_id)))
    if isinstance(err, errors.HfHubHTTPError):
        return f"the hub refused the download of {model_id}: {_first_line(err)}"
    if isinstance(err, OSError):
        return f"could not write the model into {hub_cache_dir(model_id).parent}: {err}"
    return f"the download of {model_id} failed: {type(err).__name__}: {_first_line(err)}"


def _is_connection_error(err: BaseException) -> bool:
    """httpx's connect errors and timeouts (huggingface_hub's HTTP client), by their names so that
    this does not depend on which httpx package huggingface_hub ships with."""
    name = type(err).__name__
    return type(err).__module__.startswith("httpx") and ("Connect" in name or "Timeout" in name)


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else type(err).__name__


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # stdout is for JSON lines
    if len(args) != 1:
        print("usage: python -m core.hub_download OWNER/NAME", file=sys.stderr)
        return 2
    try:
        target = download(args[0])
    except DownloadError as err:
        emit("error", message=str(err))
        return 1
    except Exception as err:  # noqa: BLE001 - the parent shows the message; the log has the rest
        import traceback
        traceback.print_exc()
        emit("error", message=explain(err, args[0]))
        return 1
    emit("done", path=str(target), size=folder_size(target))
    return 0


def folder_size(folder: Path) -> int:
    """Bytes of the files under `folder` (apparent sizes, links not followed)."""
    total = 0
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return total


if __name__ == "__main__":
    sys.exit(main())
