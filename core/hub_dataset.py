"""Download one split of a public hub dataset into the uploads folder, for training offline:
`python -m core.hub_dataset OWNER/NAME --config C --split S --out DIR [--max-rows N] [--name L]`.

Guarantees: the split is read from the hub's own Parquet conversion of the dataset (revision
`refs/convert/parquet`, files `<config or "default">/<split>/NNNN.parquet`, or
`partial-<split>/` where the hub converted only the first part of a very large split), the same
rows and columns, nested ones included, that `datasets.load_dataset` gives; no dataset script is
run. Shards are fetched one at a time into a hidden `DIR/.hub-<id>.partial-<pid>/` folder, at most
`--max-rows` rows are kept, and they are written as one `DIR/<id>.parquet` beside a
`DIR/<id>.meta.json` like an upload's (id, name, file, format, size, uploaded_at, plus rows and
the hub id, config, split and commit), the metadata last, so a half-finished download is never
listed; the partial folder is always removed (a killed one is removed by
services/dataset_catalog.py). Offline (HF_HUB_OFFLINE, no network) it fails within seconds,
saying so and how to bring the data in by hand. Progress goes to stdout as JSON lines, as in
core/hub_download.py: `status`, `plan` (files, total_bytes), `progress` (downloaded_bytes,
total_bytes, file), then `done` (id, path, rows, size; exit 0) or `error` (message; exit 1).

Does not: import torch, run dataset loading scripts, resume a broken download, read private or
gated datasets without a token in the environment, or check the rows against a mapping (the
datasets page validates them like any upload).
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

from core.files import write_json_atomic
from core.hub_download import (DownloadError, ProgressReporter, _first_line, _is_connection_error,
                               byte_counter, emit, hub_endpoint, hub_unreachable_reason)
from core.models import is_hub_id
from core.run_dir import now_iso

PARQUET_REVISION = "refs/convert/parquet"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")   # a config or split name, never a path
META_SUFFIX = ".meta.json"                                # as services/datasets.py reads uploads


class _Offset:
    """Adds the bytes of the files already fetched to one file's byte count."""

    def __init__(self, reporter: ProgressReporter, offset: int):
        self.reporter, self.offset = reporter, offset

    def seen(self, count: float) -> None:
        self.reporter.seen(self.offset + count)


def unreachable(reason: str, hub_id: str) -> DownloadError:
    return DownloadError(f"the Hugging Face hub cannot be reached ({reason}); download {hub_id} "
                         f"on a machine with internet (its Parquet files, or a JSONL/CSV export) "
                         f"and upload the file on the datasets page")


def check_names(hub_id: str, config: str | None, split: str, max_rows: int | None) -> None:
    if max_rows is not None and max_rows < 1:
        raise DownloadError(f"--max-rows must be at least 1, got {max_rows}")
    if not is_hub_id(hub_id):
        raise DownloadError(f"{hub_id!r} is not a hub dataset id; write it as owner/name")
    for what, value in (("config", config), ("split", split)):
        if value is not None and not NAME.fullmatch(value):
            raise DownloadError(f"{what} {value!r} is not a {what} name (letters, digits, "
                                f"'.', '_' and '-')")


def plan(hub_id: str, config: str, split: str, endpoint: str,
         folder: Path) -> tuple[str, list[tuple[str, int]]]:
    """The commit of the Parquet conversion and its shards of `config`/`split`, in order."""
    from huggingface_hub import snapshot_download
    found = snapshot_download(hub_id, repo_type="dataset", revision=PARQUET_REVISION,
                              endpoint=endpoint, dry_run=True, max_workers=1,
                              allow_patterns=[f"{config}/{split}/*.parquet",
                                              f"{config}/partial-{split}/*.parquet"],
                              cache_dir=folder / ".cache" / "hub")
    files = sorted((f.filename, int(f.file_size or 0)) for f in found)
    if not files:
        raise DownloadError(f"the hub has no split {split!r} of config {config!r} for {hub_id} "
                            f"in its Parquet conversion; check the config and split names on "
                            f"the dataset's page")
    return found[0].commit_hash, files


def fetch(hub_id: str, commit: str, files: list[tuple[str, int]], endpoint: str, folder: Path,
          max_rows: int | None) -> list[Path]:
    """Downloads shards in order until `max_rows` rows are there; returns their paths."""
    from huggingface_hub import hf_hub_download
    import pyarrow.parquet as pq
    reporter, offset, rows, fetched = ProgressReporter(files), 0, 0, []
    for name, size in files:
        counter = byte_counter(_Offset(reporter, offset))  # type: ignore[arg-type]
        path = hf_hub_download(hub_id, name, repo_type="dataset", revision=commit,
                               endpoint=endpoint, local_dir=folder,
                               cache_dir=folder / ".cache" / "hub", tqdm_class=counter)
        offset += size
        reporter.seen(offset)
        fetched.append(Path(path))
        rows += pq.ParquetFile(path).metadata.num_rows
        if max_rows is not None and rows >= max_rows:
            break
    reporter.seen(reporter.total)  # a capped download ends here, short of the last shards
    return fetched


def merge(shards: list[Path], target: Path, max_rows: int | None) -> int:
    """Writes the shards' rows (at most `max_rows`) into one Parquet file; returns the count."""
    import pyarrow.parquet as pq
    schema, written = pq.read_schema(shards[0]), 0
    with pq.ParquetWriter(target, schema) as writer:
        for shard in shards:
            for batch in pq.ParquetFile(shard).iter_batches(batch_size=10_000):
                if max_rows is not None:
                    batch = batch.slice(0, max_rows - written)
                if batch.num_rows:
                    writer.write_batch(batch.cast(schema) if batch.schema != schema else batch)
                    written += batch.num_rows
                if max_rows is not None and written >= max_rows:
                    return written
    return written


def download(hub_id: str, config: str | None, split: str, out: Path,
             max_rows: int | None = None, name: str | None = None) -> dict[str, Any]:
    """Downloads `split` of `hub_id` into `out`; returns the upload's metadata."""
    check_names(hub_id, config, split, max_rows)
    endpoint = hub_endpoint()
    emit("status", message="checking the hub")
    reason = hub_unreachable_reason(endpoint)
    if reason is not None:
        raise unreachable(reason, hub_id)
    upload_id = secrets.token_hex(8)
    partial = out / f".hub-{upload_id}.partial-{os.getpid()}"
    partial.mkdir(parents=True)
    try:
        commit, files = plan(hub_id, config or "default", split, endpoint, partial)
        emit("plan", files=files, total_bytes=sum(size for _, size in files), commit=commit)
        shards = fetch(hub_id, commit, files, endpoint, partial, max_rows)
        emit("status", message="writing the Parquet file")
        return publish(shards, out, upload_id, max_rows, {
            "name": name or f"{hub_id} ({split})",
            "hub": {"id": hub_id, "config": config, "split": split, "commit": commit,
                    "endpoint": endpoint}})
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def publish(shards: list[Path], out: Path, upload_id: str, max_rows: int | None,
            label: dict[str, Any]) -> dict[str, Any]:
    """Merges into `<id>.parquet` (renamed into place), then writes `<id>.meta.json`."""
    target, temporary = out / f"{upload_id}.parquet", shards[0].parent / f"{upload_id}.parquet"
    rows = merge(shards, temporary, max_rows)
    os.replace(temporary, target)
    meta = {"id": upload_id, "name": label["name"], "file": target.name, "format": "parquet",
            "size": target.stat().st_size, "uploaded_at": now_iso(), "rows": rows,
            "hub": label["hub"]}
    try:
        write_json_atomic(out / f"{upload_id}{META_SUFFIX}", meta)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return meta


def explain(err: Exception, hub_id: str) -> str:
    """A message a person can act on for what huggingface_hub or pyarrow raised."""
    from huggingface_hub import errors
    if isinstance(err, errors.DryRunError) and err.__cause__ is not None:
        err = err.__cause__  # the plan could not be made: say why
    if _is_connection_error(err) or isinstance(err, (errors.LocalEntryNotFoundError,
                                                     errors.OfflineModeIsEnabled)):
        return str(unreachable(_first_line(err), hub_id))
    if isinstance(err, errors.GatedRepoError):
        return (f"{hub_id} is gated: accept its conditions on the hub, then log in (`hf auth "
                f"login`) or set HF_TOKEN before starting GRPO Studio")
    if isinstance(err, (errors.RepositoryNotFoundError, errors.RevisionNotFoundError)):
        return (f"the hub has no dataset {hub_id} with a Parquet conversion (or it is private); "
                f"check the spelling, owner/name")
    if isinstance(err, errors.HfHubHTTPError):
        return f"the hub refused the download of {hub_id}: {_first_line(err)}"
    if isinstance(err, OSError):
        return f"could not write the dataset into the uploads folder: {err}"
    return f"the download of {hub_id} failed: {type(err).__name__}: {_first_line(err)}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m core.hub_dataset",
                                     description="Download one split of a hub dataset.")
    parser.add_argument("hub_id")
    parser.add_argument("--config", default=None)
    parser.add_argument("--split", default="train")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--name", default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # stdout is for JSON lines
    try:
        meta = download(args.hub_id, args.config, args.split, args.out, args.max_rows, args.name)
    except DownloadError as err:
        emit("error", message=str(err))
        return 1
    except Exception as err:  # noqa: BLE001 - the parent shows the message; the log has the rest
        import traceback
        traceback.print_exc()
        emit("error", message=explain(err, args.hub_id))
        return 1
    emit("done", id=meta["id"], path=str(args.out / meta["file"]), rows=meta["rows"],
         size=meta["size"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
