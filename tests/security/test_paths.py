"""Paths from requests: one helper (core.files.resolve_inside) resolves each inside its root, and a
table of traversal vectors is run against it and against every route that takes a path, a file
name, an id or a name from the request. Each route must answer 4xx with a JSON error, and nothing
outside its root may be read (the outside files' marker never appears in an answer) or written
(every file under the test's folders is unchanged).

The world: the app's root holds a real run, a real export and symlinks named like valid ids that
lead outside it (a run, an export, a checkpoint, an upload's data file, a saved config, a custom
reward, a test job, a cached model, a static file); `SYMLINK` stands for "the id naming that
symlink" of each route. Files are addressed by id wherever the API allows it, so most vectors are
refused as unknown ids; the dotfile vectors check that hidden files are never served."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import pytest

from core.config import validate_config
from core.datasets import DatasetError
from core.files import PathRefused, resolve_inside, write_json_atomic
from core.run_dir import CHECKPOINT_MARKER, create_run
from flask_app import create_app
from services.configs import file_id
from tests.conftest import tiny_config

MARKER = "OUTSIDE-THE-ROOT-MARKER"
UPLOAD_ID = "0123456789abcdef"
SYMLINK = "<a symlink leading outside>"
VECTORS = [
    "../x",               # a parent
    "..%2fx",             # an encoded separator
    "%2e%2e/x",           # encoded dots
    "%252e%252e%252fx",   # encoded twice
    "a/../../x",          # a parent after a folder
    "/etc/passwd",        # an absolute path
    "C:\\x",              # a drive letter
    "a\\..\\b",           # backslashes
    "x\x00y",             # NUL
    ".env",               # a dotfile
    ".hidden",
    SYMLINK,
]
GOOD_SOURCE = "def reward(completions, **kwargs):\n    return [1.0 for _ in completions]\n"


# ---- the helper ----------------------------------------------------------------------------------
@pytest.mark.parametrize("vector", [v for v in VECTORS if v != SYMLINK])
def test_the_helper_refuses_each_vector(tmp_path, vector):
    with pytest.raises(PathRefused):
        resolve_inside(tmp_path, vector)


def test_the_helper_refuses_a_symlink_leading_outside(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(PathRefused, match="outside"):
        resolve_inside(tmp_path / "root", "link/x")


def test_the_helper_returns_the_resolved_path_of_a_symlink_inside(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert resolve_inside(tmp_path, "link/file") == (tmp_path / "real" / "file").resolve()


def test_the_helper_refuses_a_symlink_to_a_hidden_file_inside(tmp_path):
    (tmp_path / ".secret").write_text("x")
    (tmp_path / "plain").symlink_to(tmp_path / ".secret")
    with pytest.raises(PathRefused, match="hidden"):
        resolve_inside(tmp_path, "plain")


@pytest.mark.parametrize("encoded, plain", [("a%2fb", "a/b"), ("a%252fb", "a/b"),
                                            ("%41.json", "A.json")])
def test_the_helper_decodes_before_it_checks(tmp_path, encoded, plain):
    assert resolve_inside(tmp_path, encoded) == (tmp_path / plain).resolve()


def test_an_absolute_path_is_refused_even_inside_the_root(tmp_path):
    inside = tmp_path / "uploads" / "a.jsonl"
    with pytest.raises(PathRefused, match="an absolute path"):
        resolve_inside(tmp_path / "uploads", str(inside))


def test_an_uploads_absolute_path_from_the_list_previews_as_its_name(tmp_path):
    """The wizard sends back the absolute `path` the list gave; it is turned into a name first."""
    from services.datasets import DatasetLibrary
    library = DatasetLibrary(tmp_path / "uploads", 1 << 20)
    entry = library.save_upload(__import__("io").BytesIO(b'{"question": "q", "answer": "a"}\n'),
                                "rows.jsonl")
    section = library.section_for({"source": "file", "path": entry["path"]})
    assert library.preview(section)["rows"] == [{"question": "q", "answer": "a"}]
    outside = library.section_for({"source": "file", "path": str(tmp_path / "x.jsonl")})
    with pytest.raises(DatasetError, match="only uploaded files"):
        library.preview(outside)


# ---- the world -----------------------------------------------------------------------------------
@dataclass
class World:
    app: Any
    base: Path      # holds the root and the outside folder
    root: Path
    outside: Path
    run_id: str
    export_id: str


def outside_folder(folder: Path) -> Path:
    """What the symlinks lead to: things that would be served if a symlink were followed."""
    folder.mkdir()
    (folder / "secret.txt").write_text(MARKER)
    (folder / "secret.jsonl").write_text(json.dumps({"question": MARKER, "answer": "1"}) + "\n")
    run = folder / "run"
    run.mkdir()
    write_json_atomic(run / "state.json", {"run_id": "evil", "status": "paused", "name": MARKER})
    write_json_atomic(run / "config.json", tiny_config(Path("/nonexistent"),
                                                      output={"name": MARKER}))
    (run / "worker.log").write_text(MARKER + "\n")
    (run / "events.jsonl").write_text(json.dumps({"type": "sample", "time": 1, "step": 1,
                                                  "prompt": MARKER}) + "\n")
    write_json_atomic(folder / "checkpoint" / CHECKPOINT_MARKER, {"step": 9, "phase": "grpo"})
    write_json_atomic(folder / "export" / "export.json", {
        "status": "done", "format": "adapter", "files": [{"name": "secret.txt", "size": 1}]})
    (folder / "export" / "secret.txt").write_text(MARKER)
    write_json_atomic(folder / "reward.json", {"name": "evil", "source": f"# {MARKER}"})
    write_json_atomic(folder / "config.json", {"name": "evil", "config": {"description": MARKER}})
    write_json_atomic(folder / "job.json", {"job_id": "evil", "kind": "batch", "note": MARKER,
                                            "result": {"rows": [{"prompt": MARKER}]}})
    write_json_atomic(folder / "model" / "config.json", {"model_type": MARKER})
    return folder


def plant_symlinks(world: World, cache: Path) -> None:
    """Symlinks named like valid ids in each root, leading outside."""
    root, outside = world.root, world.outside
    links = {root / "outputs" / "evil": outside / "run",
             root / "outputs" / world.run_id / "checkpoints" / "checkpoint-9":
                 outside / "checkpoint",
             root / "exports" / "evil": outside / "export",
             root / "exports" / world.export_id / "link.txt": outside / "secret.txt",
             root / "configs" / "rewards" / "evil.json": outside / "reward.json",
             root / "configs" / "saved" / f"{file_id('evil')}.json": outside / "config.json",
             root / "test_results" / "evil.json": outside / "job.json",
             root / "uploads" / f"{UPLOAD_ID}.jsonl": outside / "secret.jsonl",
             root / "static" / "evil.css": outside / "secret.txt",
             cache / "models" / "evil": outside / "model"}
    for link, target in links.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
    write_json_atomic(root / "uploads" / f"{UPLOAD_ID}.meta.json", {
        "id": UPLOAD_ID, "name": "evil.jsonl", "file": f"{UPLOAD_ID}.jsonl", "format": "jsonl",
        "uploaded_at": "2020-01-01T00:00:00+00:00"})
    (root / "static" / "app.css").write_text("body {}")
    (root / "static" / ".env").write_text(MARKER)


@pytest.fixture(scope="module")
def paths_app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One app over one base folder; each test rebuilds the files under it (`world`)."""
    base = tmp_path_factory.mktemp("paths")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRPO_STUDIO_CACHE", str(base / "cache"))
        (base / "root").mkdir()
        app = create_app({"ROOT": base / "root", "TESTING": True, "START_JOBS": False,
                          "SYSTEM_UPDATE_SECONDS": 0})
        app.static_folder = str(base / "root" / "static")
        app.config["BASE"] = base
        yield app
        app.extensions["grpo_studio"].close()


@pytest.fixture
def world(paths_app: Any) -> World:
    """Fresh files per test: a refused request must not depend on what an earlier one did."""
    app = paths_app
    base = app.config["BASE"]
    for child in base.iterdir():
        shutil.rmtree(child)
    root, outside = base / "root", outside_folder(base / "outside")
    root.mkdir()
    (root / ".secret_key").write_text(app.config["SECRET_KEY"])
    run = create_run(validate_config(tiny_config(Path("/nonexistent"))), root / "outputs",
                     run_id="real-run")
    write_json_atomic(run.checkpoints_dir("grpo") / "checkpoint-1" / CHECKPOINT_MARKER,
                      {"step": 1, "phase": "grpo"})
    write_json_atomic(root / "exports" / "real-export" / "export.json", {
        "status": "done", "format": "adapter",
        "files": [{"name": name, "size": 1} for name in [*VECTORS, "link.txt"]]})
    made = World(app, base, root, outside, run.run_id, "real-export")
    plant_symlinks(made, base / "cache")
    return made


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` (symlinks not followed): size and modification time."""
    found = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = Path(dirpath, name)
            stat = path.lstat()
            found[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns)
    return found


# ---- the routes ----------------------------------------------------------------------------------
Request = Callable[[World, str], dict[str, Any]]


def get(url: str) -> Request:
    return lambda w, v: {"method": "GET", "path": url.format(v=quote(v, safe=""), w=w)}


def delete(url: str) -> Request:
    return lambda w, v: {"method": "DELETE", "path": url.format(v=quote(v, safe=""), w=w)}


def post(url: str, body: Callable[[World, str], dict[str, Any]]) -> Request:
    return lambda w, v: {"method": "POST", "path": url.format(v=quote(v, safe=""), w=w),
                         "json": body(w, v)}


def upload(url: str, content: bytes, extra: dict[str, Any] | None = None) -> Request:
    from io import BytesIO
    return lambda w, v: {"method": "POST", "path": url, "content_type": "multipart/form-data",
                         "data": {"file": (BytesIO(content), v), **(extra or {})}}


def config_with_dataset(v: str) -> dict[str, Any]:
    return {"dataset": {"source": "file", "path": v}, "model": {"name": "default"}}


# route -> (request builder, the id its SYMLINK vector uses)
ROUTES: dict[str, tuple[Request, str]] = {
    "run": (get("/api/training/{v}"), "evil"),
    "run metrics": (get("/api/training/{v}/metrics"), "evil"),
    "run samples": (get("/api/training/{v}/samples"), "evil"),
    "run alerts": (get("/api/training/{v}/alerts"), "evil"),
    "run logs": (get("/api/training/{v}/logs"), "evil"),
    "run checkpoints": (get("/api/training/{v}/checkpoints"), "evil"),
    "monitor page": (get("/runs/{v}"), "evil"),
    "run config page": (get("/runs/{v}/config"), "evil"),
    "delete checkpoint of run": (delete("/api/training/{v}/checkpoints/checkpoint-1"), "evil"),
    "delete checkpoint": (delete("/api/training/{w.run_id}/checkpoints/{v}"), "checkpoint-9"),
    "stop": (post("/api/training/stop", lambda w, v: {"session_id": v}), "evil"),
    "pause": (post("/api/training/pause", lambda w, v: {"session_id": v}), "evil"),
    "resume": (post("/api/training/resume", lambda w, v: {"session_id": v}), "evil"),
    "resume from checkpoint": (post("/api/training/resume", lambda w, v: {
        "session_id": w.run_id, "checkpoint": v}), "checkpoint-9"),
    "start with session id": (post("/api/training/start", lambda w, v: {
        "session_id": v, "config": tiny_config(Path("/nonexistent"))}), "evil"),
    "load config": (get("/api/configs/load?name={v}"), "evil"),
    "delete config": (delete("/api/configs/delete?name={v}"), "evil"),
    "rename dataset": (lambda w, v: {"method": "PATCH", "path": f"/api/datasets/{quote(v, '')}",
                                     "json": {"name": "renamed"}}, UPLOAD_ID),
    "delete dataset": (delete("/api/datasets/{v}"), UPLOAD_ID),
    "download dataset": (get("/api/datasets/{v}/download"), UPLOAD_ID),
    "preview by path": (post("/api/datasets/preview", lambda w, v: {"source": "file",
                                                                    "path": v}),
                        f"{UPLOAD_ID}.jsonl"),
    "preview by id": (post("/api/datasets/preview", lambda w, v: {"id": v}), UPLOAD_ID),
    "validate dataset": (post("/api/datasets/validate", lambda w, v: {"id": v}), UPLOAD_ID),
    "dataset stats": (post("/api/datasets/stats", lambda w, v: {"id": v}), UPLOAD_ID),
    "dataset dedup": (post("/api/datasets/dedup", lambda w, v: {"id": v}), UPLOAD_ID),
    "split dataset": (post("/api/datasets/split", lambda w, v: {"id": v}), UPLOAD_ID),
    "convert dataset": (post("/api/datasets/convert", lambda w, v: {"id": v,
                                                                    "target": "alpaca"}),
                        UPLOAD_ID),
    "dataset job": (get("/api/datasets/jobs/{v}"), "evil"),
    "write dedup": (post("/api/datasets/dedup/{v}/write", lambda w, v: {}), "evil"),
    "format example": (post("/api/datasets/format",
                            lambda w, v: {"config": config_with_dataset(v)}),
                       f"{UPLOAD_ID}.jsonl"),
    "reward cases": (post("/api/rewards/cases", lambda w, v: {"source": "file", "path": v}),
                     f"{UPLOAD_ID}.jsonl"),
    "catalog download state": (get("/api/datasets/catalog/downloads/{v}"), "evil"),
    "cancel catalog download": (delete("/api/datasets/catalog/downloads/{v}"), "evil"),
    "start catalog download": (post("/api/datasets/catalog/download", lambda w, v: {"id": v}),
                               "evil"),
    "export": (get("/api/exports/{v}"), "evil"),
    "delete export": (delete("/api/exports/{v}"), "evil"),
    "export file of export": (get("/api/exports/{v}/files/secret.txt"), "evil"),
    "export file": (get("/api/exports/{w.export_id}/files/{v}"), "link.txt"),
    "create export": (post("/api/exports/create", lambda w, v: {"session_id": v,
                                                                "format": "adapter"}), "evil"),
    "create export of checkpoint": (post("/api/exports/create", lambda w, v: {
        "session_id": w.run_id, "checkpoint": v, "format": "adapter"}), "checkpoint-9"),
    "delete cached model": (delete("/api/models/cache/{v}"), "evil"),
    "model download state": (get("/api/models/downloads/{v}"), "evil"),
    "cancel model download": (delete("/api/models/downloads/{v}"), "evil"),
    "download model": (post("/api/models/download", lambda w, v: {"model_id": v}), "evil"),
    "chat with run": (post("/api/models/test", lambda w, v: {"session_id": v, "prompt": "hi"}),
                      "evil"),
    "chat with checkpoint": (post("/api/models/test", lambda w, v: {
        "session_id": w.run_id, "checkpoint": v, "prompt": "hi"}), "checkpoint-9"),
    "chat with export": (post("/api/models/test", lambda w, v: {"export_id": v, "prompt": "hi"}),
                         "evil"),
    "custom reward": (get("/api/rewards/custom/{v}"), "evil"),
    "delete custom reward": (delete("/api/rewards/custom/{v}"), "evil"),
    "save custom reward": (post("/api/rewards/custom", lambda w, v: {"name": v,
                                                                     "source": GOOD_SOURCE}),
                           "evil"),
    "upload custom reward": (upload("/api/rewards/custom/upload", GOOD_SOURCE.encode()),
                             "evil.py"),
    "test job": (get("/api/test/jobs/{v}"), "evil"),
    "delete test job": (delete("/api/test/jobs/{v}"), "evil"),
    "download test job": (get("/api/test/jobs/{v}/download"), "evil"),
    "batch test of run": (post("/api/test/batch", lambda w, v: {"session_id": v,
                                                                "prompts": ["hi"]}), "evil"),
    "batch test of checkpoint": (post("/api/test/batch", lambda w, v: {
        "session_id": w.run_id, "checkpoint": v, "prompts": ["hi"]}), "checkpoint-9"),
    "evaluate run": (post("/api/test/eval", lambda w, v: {"session_id": v}), "evil"),
    "static file": (get("/static/{v}"), "evil.css"),
    "wizard step": (get("/wizard/{v}"), "evil"),
}

def cases() -> list[Any]:
    found = []
    for route in ROUTES:
        for vector in VECTORS:
            found.append(pytest.param(route, vector, id=f"{route}-{vector!r}"))
    return found


def request_for(world: World, route: str, vector: str) -> dict[str, Any]:
    build, symlink_id = ROUTES[route]
    return build(world, symlink_id if vector == SYMLINK else vector)


@pytest.mark.parametrize("route, vector", cases())
def test_every_route_refuses_each_vector_and_touches_nothing_outside(world, route, vector):
    before = snapshot(world.base)
    with world.app.test_client().open(headers={"Accept": "application/json"},
                                      **request_for(world, route, vector)) as response:
        body = response.get_data(as_text=True)
    assert 400 <= response.status_code < 500, body[:300]
    assert isinstance(response.get_json(silent=True), dict) and response.json.get("error")
    assert MARKER not in body
    assert "root:x:0:0" not in body           # /etc/passwd's first line
    assert snapshot(world.base) == before


def test_the_table_covers_every_route_that_takes_an_id_or_a_name(world):
    """A new route with a variable part must join ROUTES (or this list of ones that touch no
    file: the language menu only sets a cookie from its own list)."""
    touch_nothing = {"i18n.choose_language"}
    variable = {rule.endpoint for rule in world.app.url_map.iter_rules() if rule.arguments}
    covered = set()
    with world.app.test_request_context():
        adapter = world.app.url_map.bind("localhost")
        for route in ROUTES:
            request = request_for(world, route, "x")
            path = request["path"].split("?")[0]
            covered.add(adapter.match(path, method=request["method"])[0])
    assert variable - touch_nothing <= covered


@pytest.mark.parametrize("url", ["/static/vendor/.gitkeep", "/static/vendor/%2egitkeep"])
def test_the_apps_own_dotfiles_are_never_served(client, url):
    response = client.get(url)
    assert response.status_code == 404 and response.json["error"] == "no such file"
