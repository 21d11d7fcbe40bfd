"""`python -m core.hub_dataset`: one split of a hub dataset downloaded into an uploads folder.

The Hugging Face hub cannot be reached from here, so only the remote side is a stand-in
(tests/hub_dataset_stand_in.py, reached through HF_ENDPOINT); the child process, its progress lines
and the files it writes are real, and the result is read back with the training code.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from core.config import DatasetSection, validate_section
from core.datasets import training_examples
from tests.conftest import closed_port_url
from tests.hub_dataset_stand_in import dataset_stand_in, parquet_repo

REPO = Path(__file__).resolve().parent.parent.parent
SQUAD = REPO / "tests" / "data" / "datasets" / "catalog" / "squad_v2.jsonl"


def run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, list[dict[str, Any]]]:
    done = subprocess.run([sys.executable, "-m", "core.hub_dataset", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, lines


@pytest.fixture
def squad_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    repo = parquet_repo(tmp_path / "repo", SQUAD, "squad_v2", "train", [2, 1])
    hub = dataset_stand_in({"rajpurkar/squad_v2": repo})
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield hub
    hub.close()


@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE", "refused connection", "the real hub"])
def test_offline_it_fails_at_once_saying_the_hub_cannot_be_reached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: str) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    env = {"HF_HUB_OFFLINE": "1"} if offline == "HF_HUB_OFFLINE" else \
        {"HF_ENDPOINT": closed_port_url()} if offline == "refused connection" else {}
    if offline == "the real hub":
        try:
            socket.create_connection(("huggingface.co", 443), timeout=3).close()
            pytest.skip("this machine reaches huggingface.co; the real offline case needs none")
        except OSError:
            pass
    started = time.monotonic()
    code, lines = run(["openai/gsm8k", "--config", "main", "--split", "train",
                       "--out", str(tmp_path / "uploads")], env)
    assert code == 1 and time.monotonic() - started < 15
    assert lines[-1]["event"] == "error"
    assert lines[-1]["message"].startswith("the Hugging Face hub cannot be reached")
    assert "upload the file on the datasets page" in lines[-1]["message"]
    assert not (tmp_path / "uploads").exists() or not list((tmp_path / "uploads").iterdir())


@pytest.mark.parametrize("args, words", [
    (["../etc", "--split", "train"], "is not a hub dataset id"),
    (["openai/gsm8k", "--split", "../../x"], "split '../../x' is not a split name"),
    (["openai/gsm8k", "--config", "a/b", "--split", "train"], "config 'a/b' is not a config"),
])
def test_names_that_are_not_hub_names_are_refused(tmp_path: Path, args: list[str],
                                                  words: str) -> None:
    code, lines = run([*args, "--out", str(tmp_path)])
    assert code == 1 and words in lines[-1]["message"]


def test_a_split_lands_as_one_parquet_upload_that_training_reads(squad_hub: Any,
                                                                 tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    code, lines = run(["rajpurkar/squad_v2", "--config", "squad_v2", "--split", "train",
                       "--out", str(uploads), "--name", "SQuAD v2 (train)"])
    assert code == 0, lines
    assert [e["event"] for e in lines][:2] == ["status", "plan"]
    assert lines[1]["files"][0][0] == "squad_v2/train/0000.parquet"  # the Parquet conversion
    progress = [e["downloaded_bytes"] for e in lines if e["event"] == "progress"]
    assert progress == sorted(progress) and progress[-1] == lines[1]["total_bytes"]
    done = lines[-1]
    assert done["event"] == "done" and done["rows"] == 3
    meta = json.loads((uploads / f"{done['id']}.meta.json").read_text())
    assert meta["name"] == "SQuAD v2 (train)" and meta["file"] == f"{done['id']}.parquet"
    assert meta["hub"]["id"] == "rajpurkar/squad_v2" and meta["hub"]["split"] == "train"
    assert sorted(p.name for p in uploads.iterdir()) == sorted([meta["file"],
                                                                f"{done['id']}.meta.json"])
    section = validate_section(DatasetSection, {
        "source": "file", "path": done["path"], "mapping": {
            "instruction": "question", "input": "context", "reference": "answers.text"}},
        "dataset")
    assert [e.reference for e in training_examples(section, "grpo")] == [
        "France", "10th and 11th centuries", None]  # the nested answers survived


@pytest.mark.parametrize("max_rows, shards_fetched", [(1, 1), (2, 1), (3, 2)])
def test_a_row_cap_stops_fetching_shards_once_it_has_enough(
        squad_hub: Any, tmp_path: Path, max_rows: int, shards_fetched: int) -> None:
    code, lines = run(["rajpurkar/squad_v2", "--config", "squad_v2", "--split", "train",
                       "--out", str(tmp_path / "uploads"), "--max-rows", str(max_rows)])
    assert code == 0 and lines[-1]["rows"] == max_rows
    fetched = {r for r in squad_hub.requests if r.startswith("GET") and r.endswith(".parquet")}
    assert len(fetched) == shards_fetched


def test_a_split_the_hub_does_not_have_is_named(squad_hub: Any, tmp_path: Path) -> None:
    code, lines = run(["rajpurkar/squad_v2", "--config", "squad_v2", "--split", "test",
                       "--out", str(tmp_path / "uploads")])
    assert code == 1
    assert "no split 'test' of config 'squad_v2'" in lines[-1]["message"]
    assert list((tmp_path / "uploads").iterdir()) == []  # the partial folder is gone
