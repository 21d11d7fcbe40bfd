"""The hub stand-in (tests/hub_stand_in.py) answering dataset requests too, with helpers that
build a dataset repository's Parquet conversion (`<config>/<split>/NNNN.parquet`) from a local
JSONL file: what `core.hub_dataset` downloads, served offline.

huggingface_hub asks for datasets at `/api/datasets/<id>/...` and `/datasets/<id>/resolve/...`;
the stand-in serves models at `/api/models/...` and `/<id>/resolve/...`, with the same answers
(repository info at a revision, the file tree, file bodies), so requests are rewritten to those.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.hub_stand_in import HubStandIn


def dataset_stand_in(repos: dict[str, Path], slow_bytes_per_s: int | None = None) -> HubStandIn:
    hub = HubStandIn(repos, slow_bytes_per_s)
    served = hub.server.RequestHandlerClass

    class DatasetHandler(served):  # type: ignore[misc, valid-type]
        def answer(self, head: bool) -> None:
            if self.path.startswith("/api/datasets/"):
                self.path = "/api/models/" + self.path[len("/api/datasets/"):]
            elif self.path.startswith("/datasets/"):
                self.path = self.path[len("/datasets"):]
            super().answer(head)

    hub.server.RequestHandlerClass = DatasetHandler
    return hub


def parquet_repo(folder: Path, rows_file: Path, config: str, split: str,
                 shard_rows: list[int]) -> Path:
    """`folder` holding `rows_file`'s rows as `<config>/<split>/0000.parquet`, ... with
    `shard_rows` rows in each shard, written by `datasets` as the hub's converter does."""
    import datasets
    rows: Any = datasets.Dataset.from_json(str(rows_file))
    target, start = folder / config / split, 0
    target.mkdir(parents=True, exist_ok=True)
    for number, count in enumerate(shard_rows):
        rows.select(range(start, start + count)).to_parquet(str(target / f"{number:04d}.parquet"))
        start += count
    return folder
