"""The model cache: hub ids checked, offline failures at once, real downloads (child process,
progress, atomic folder) against a local stand-in for the hub, listing, resolving and deleting.

The Hugging Face hub cannot be reached from here, so the download tests mock only the remote hub:
tests/hub_stand_in.py answers the requests huggingface_hub's snapshot_download makes, reached
through HF_ENDPOINT; everything on our side runs for real.
"""
from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from core.models import resolve_model_source
from services.catalog import local_model_dir
from services.model_cache import (CachedModelNotFound, DownloadNotFound, ModelAlreadyCached,
                                  ModelCache, ModelIdError, check_model_id)
from tests.conftest import closed_port_url, wait_for

DOWNLOAD_S = 90


@pytest.fixture
def events() -> list[tuple[str, dict[str, Any], Any]]:
    return []


@pytest.fixture
def cache(events: list, model_cache_dir: Path) -> Any:
    models = ModelCache(lambda event, payload, room: events.append((event, payload, room)))
    yield models
    models.close()


def finished(cache: ModelCache, download_id: str, timeout: float = DOWNLOAD_S) -> dict[str, Any]:
    return wait_for(lambda: (s := cache.get(download_id))["status"] != "running" and s,
                    timeout, "the download to end")


def leftovers(cache_dir: Path) -> list[str]:
    models = cache_dir / "models"
    return sorted(p.name for p in models.iterdir()) if models.is_dir() else []


@pytest.mark.parametrize("model_id", [
    "",                        # empty
    "   ",                     # blank
    None,                      # not a string
    "gpt2",                    # no owner
    "../etc",                  # a relative path
    "owner/../secret",         # climbs out
    "owner/..",                # the parent folder
    "/etc/passwd",             # an absolute path
    "~/models/x",              # a home path
    "owner/name/extra",        # three parts
    "owner/na me",             # a space
    ".hidden/model",           # starts with a dot
    "own--er/model",           # "--" is the cache folder's separator
    "owner\\name",             # a Windows path
])
def test_a_model_id_that_is_not_a_hub_id_is_refused(model_id: Any) -> None:
    with pytest.raises(ModelIdError) as caught:
        check_model_id(model_id)
    assert caught.value.field == "model_id"


@pytest.mark.parametrize("model_id, expected", [
    ("Qwen/Qwen3-0.6B", "Qwen/Qwen3-0.6B"),
    (" HuggingFaceTB/SmolLM2-135M-Instruct ", "HuggingFaceTB/SmolLM2-135M-Instruct"),
    ("a_b/c.d-e_1", "a_b/c.d-e_1"),
])
def test_a_hub_id_is_accepted_stripped(model_id: str, expected: str) -> None:
    assert check_model_id(model_id) == expected


def test_a_refused_id_starts_no_download(cache: ModelCache, model_cache_dir: Path) -> None:
    with pytest.raises(ModelIdError):
        cache.download("../../outside")
    assert cache.list_downloads() == [] and leftovers(model_cache_dir) == []


@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE", "refused connection", "the real hub"])
def test_offline_the_download_fails_at_once_saying_the_hub_cannot_be_reached(
        cache: ModelCache, events: list, model_cache_dir: Path,
        monkeypatch: pytest.MonkeyPatch, offline: str) -> None:
    if offline == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    elif offline == "refused connection":
        monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    else:
        monkeypatch.delenv("HF_ENDPOINT", raising=False)
        if _real_hub_answers():
            pytest.skip("this machine reaches huggingface.co; the real offline case needs none")
    started = cache.download("HuggingFaceTB/SmolLM2-360M-Instruct", socket_id="sid-1")
    state = finished(cache, started["download_id"], timeout=20)
    assert state["status"] == "failed"
    assert "the Hugging Face hub cannot be reached" in state["error"]
    assert str(model_cache_dir / "models") in state["error"]  # where to copy a model by hand
    assert leftovers(model_cache_dir) == []
    assert events[-1][1]["status"] == "failed" and events[-1][1]["error"] == state["error"]


def _real_hub_answers() -> bool:
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
        return True
    except OSError:
        return False


def test_a_download_lands_complete_with_progress_rising_to_one(
        cache: ModelCache, events: list, hub_stand_in: Any, hub_repo: Path,
        model_cache_dir: Path) -> None:
    # huggingface_hub counts bytes per 10 MB read: paced so that a count arrives mid-file
    hub_stand_in.slow_bytes_per_s = 20 << 20
    started = cache.download("acme/tiny", socket_id="sid-1")
    assert finished(cache, started["download_id"])["status"] == "done"
    folder = model_cache_dir / "models" / "acme--tiny"
    fetched = sorted(p.name for p in folder.iterdir())
    expected = sorted(p.name for p in hub_repo.iterdir()
                      if p.is_file() and p.name not in ("pytorch_model.bin", "README.md"))
    assert fetched == sorted(expected + ["download.json"])  # no .bin, no onnx/, no README
    for name in expected:
        assert (folder / name).read_bytes() == (hub_repo / name).read_bytes(), name
    progress = [payload["progress"] for event, payload, room in events]
    assert {event for event, _, _ in events} == {"model_download_progress"}
    assert {room for _, _, room in events} == {"sid-1"}
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert any(0 < p < 1 for p in progress)  # a live bar, not just a jump at the end
    assert events[-1][1]["status"] == "done"
    assert events[-1][1]["downloaded_bytes"] == events[-1][1]["total_bytes"] > 0
    assert leftovers(model_cache_dir) == ["acme--tiny"]  # no partial folder left


def test_a_downloaded_model_is_listed_resolved_and_deleted(
        cache: ModelCache, hub_stand_in: Any, model_cache_dir: Path) -> None:
    finished(cache, cache.download("acme/tiny")["download_id"])
    folder = model_cache_dir / "models" / "acme--tiny"
    [listed] = [m for m in cache.cached() if m["model_id"] == "acme/tiny"]
    assert listed["name"] == "acme--tiny" and listed["kind"] == "hub" and listed["complete"]
    assert listed["size"] == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert listed["downloaded_at"]
    assert resolve_model_source("acme/tiny") == str(folder)
    assert local_model_dir("acme/tiny") == folder

    cache.delete("acme--tiny")
    assert not folder.exists() and leftovers(model_cache_dir) == []
    assert resolve_model_source("acme/tiny") == "acme/tiny"  # back to a hub id
    assert local_model_dir("acme/tiny") is None
    with pytest.raises(CachedModelNotFound):
        cache.delete("acme--tiny")


def test_a_downloaded_hub_id_loads_from_the_cache_for_testing(
        cache: ModelCache, hub_stand_in: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.inference.hf import load_hf
    from core.inference.refs import resolve_ref
    finished(cache, cache.download("acme/tiny")["download_id"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing may come from the hub now
    hub_stand_in.close()
    loaded = load_hf(resolve_ref({"kind": "hf", "path": "acme/tiny"}), precision="fp32")
    assert loaded.model.config.num_hidden_layers == 2


def test_a_model_already_in_the_cache_is_not_downloaded_again(
        cache: ModelCache, hub_stand_in: Any) -> None:
    finished(cache, cache.download("acme/tiny")["download_id"])
    with pytest.raises(ModelAlreadyCached):
        cache.download("acme/tiny")


@pytest.mark.parametrize("model_id", ["acme/missing", "acme/no-safetensors"])
def test_a_model_the_hub_cannot_give_fails_naming_it(
        cache: ModelCache, hub_stand_in: Any, model_cache_dir: Path, tmp_path: Path,
        model_id: str) -> None:
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"pickle")
    hub_stand_in.repos["acme/no-safetensors"] = pickled
    state = finished(cache, cache.download(model_id)["download_id"], timeout=30)
    assert state["status"] == "failed" and model_id in state["error"]
    assert leftovers(model_cache_dir) == []


def test_a_cancelled_download_leaves_nothing(
        cache: ModelCache, hub_stand_in: Any, model_cache_dir: Path) -> None:
    hub_stand_in.slow_bytes_per_s = 64 << 10  # the weights take minutes now
    started = cache.download("acme/tiny")
    wait_for(lambda: cache.get(started["download_id"])["total_bytes"] > 0, 30,
             "the download to start fetching")
    pid = cache.downloads[started["download_id"]].process.pid
    state = cache.cancel(started["download_id"])
    assert state["status"] == "cancelled"
    assert leftovers(model_cache_dir) == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_download_whose_process_dies_fails_and_leaves_nothing(
        cache: ModelCache, hub_stand_in: Any, model_cache_dir: Path) -> None:
    hub_stand_in.slow_bytes_per_s = 64 << 10
    started = cache.download("acme/tiny")
    wait_for(lambda: cache.get(started["download_id"])["total_bytes"] > 0, 30,
             "the download to start fetching")
    os.kill(cache.downloads[started["download_id"]].process.pid, signal.SIGKILL)
    state = finished(cache, started["download_id"], timeout=30)
    assert state["status"] == "failed" and "exit status" in state["error"]
    assert leftovers(model_cache_dir) == []


def test_leftovers_of_a_killed_server_are_removed(cache: ModelCache,
                                                  model_cache_dir: Path) -> None:
    models = model_cache_dir / "models"
    (models / ".acme--tiny.partial-999999999").mkdir(parents=True)
    (models / ".acme--old.deleting-999999999").mkdir()
    cache.start()
    assert leftovers(model_cache_dir) == []


def test_the_listing_shows_the_default_model_first_and_copied_in_folders(
        cache: ModelCache, model_cache_dir: Path, tiny_model: Path) -> None:
    import shutil
    models = model_cache_dir / "models"
    shutil.copytree(tiny_model, models / "someone--copied")   # copied by hand, offline
    shutil.copytree(tiny_model, models / "SmolLM2-135M-Instruct")
    (models / "SmolLM2-135M-Instruct" / "converted.json").write_text("{}")
    listed = cache.cached()
    assert [m["name"] for m in listed] == ["SmolLM2-135M-Instruct", "someone--copied"]
    assert listed[0]["kind"] == "default" and listed[0]["model_id"] == "default"
    assert listed[1]["model_id"] == "someone/copied" and listed[1]["complete"]
    assert resolve_model_source("someone/copied") == str(models / "someone--copied")


@pytest.mark.parametrize("name", ["..", "../model-cache", ".", "", "/etc", "nothing-here"])
def test_delete_takes_only_a_listed_name(cache: ModelCache, model_cache_dir: Path,
                                         name: str) -> None:
    (model_cache_dir / "models" / "acme--tiny").mkdir(parents=True)
    with pytest.raises(CachedModelNotFound):
        cache.delete(name)
    assert (model_cache_dir / "models" / "acme--tiny").is_dir()


def test_an_unknown_download_id_is_not_found(cache: ModelCache) -> None:
    for download_id in ("0123456789ab", "../x", ""):
        with pytest.raises(DownloadNotFound):
            cache.get(download_id)
        with pytest.raises(DownloadNotFound):
            cache.cancel(download_id)


def test_progress_goes_to_the_requester_only(cache: ModelCache, events: list,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    finished(cache, cache.download("HuggingFaceTB/SmolLM2-360M-Instruct")["download_id"],
             timeout=20)
    assert events == []  # no socket id: nothing is pushed (the page polls), never broadcast
