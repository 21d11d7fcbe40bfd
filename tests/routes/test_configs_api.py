"""The Configurations API: save (a name is a label), list, load, delete, validate; examples are
read-only; a saved config starts a run that is exactly that config."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import validate_config
from tests.conftest import REPO, tiny_config

CONFIG = tiny_config(Path("/models/tiny"))


@pytest.mark.parametrize("name", [
    "my config",                 # spaces
    "../../etc/passwd",          # looks like a path: stays a label
    "C:\\Windows\\evil.json",    # a Windows path
    "café ☕",                   # not ASCII
])
def test_saved_names_are_labels_stored_inside_the_saved_folder(client, app, name):
    response = client.post("/api/configs/save", json={"name": name, "config": CONFIG})
    assert response.status_code == 201
    saved = list(Path(app.config["SAVED_CONFIGS_DIR"]).iterdir())
    assert len(saved) == 1 and saved[0].parent == Path(app.config["SAVED_CONFIGS_DIR"])
    loaded = client.get("/api/configs/load", query_string={"name": name}).json
    assert loaded["name"] == name and loaded["config"]["model"]["name"] == "/models/tiny"


@pytest.mark.parametrize("body, field", [
    ({"name": "", "config": CONFIG}, "name"),                              # empty name
    ({"name": "x" * 81, "config": CONFIG}, "name"),                        # too long
    ({"name": "examples/quickstart", "config": CONFIG}, "name"),           # examples' names
    ({"name": "ok", "config": {**CONFIG, "training": {"batch_size": 0}}},
     "training.batch_size"),                                               # invalid config
])
def test_save_rejects_bad_input_naming_the_field(client, body, field):
    response = client.post("/api/configs/save", json=body)
    assert response.status_code == 400 and response.json["field"] == field


def test_saving_a_name_again_replaces_it_and_delete_removes_it(client):
    client.post("/api/configs/save", json={"name": "a", "config": CONFIG})
    changed = {**CONFIG, "description": "second"}
    client.post("/api/configs/save", json={"name": "a", "config": changed})
    listing = client.get("/api/configs/list").json
    assert [(c["name"], c["description"]) for c in listing["saved"]] == [("a", "second")]
    assert client.delete("/api/configs/delete?name=a").status_code == 200
    assert client.get("/api/configs/load?name=a").status_code == 404
    assert client.delete("/api/configs/delete?name=a").status_code == 404


def test_shipped_examples_are_listed_loadable_and_read_only(client):
    examples = client.get("/api/configs/list").json["examples"]
    names = {e["name"] for e in examples}
    shipped = {f"examples/{p.stem}" for p in (REPO / "configs" / "examples").glob("*.json")}
    assert names == shipped and all(e["read_only"] for e in examples)
    loaded = client.get("/api/configs/load?name=examples/quickstart").json
    assert loaded["config"] == json.loads((REPO / "configs/examples/quickstart.json").read_text())
    assert client.delete("/api/configs/delete?name=examples/quickstart").status_code == 403
    assert client.get("/api/configs/load?name=examples/../../flask_app").status_code == 404


def test_load_needs_a_name(client):
    response = client.get("/api/configs/load")
    assert response.status_code == 400 and response.json["field"] == "name"


def test_validate_lists_every_problem_at_its_field(client):
    bad = {**CONFIG, "training": {"learning_rate": 0, "optimizer": "adam"}}
    result = client.post("/api/configs/validate", json={"config": bad}).json
    assert result["valid"] is False
    fields = {p["field"] for p in result["problems"]}
    assert fields == {"training.learning_rate", "training.optimizer"}
    good = client.post("/api/configs/validate", json={"config": CONFIG}).json
    assert good["valid"] and good["config"]["training"]["max_steps"] == 2


def test_starting_from_a_saved_config_reproduces_it_exactly(client, services):
    client.post("/api/configs/save", json={"name": "repro", "config": CONFIG})
    loaded = client.get("/api/configs/load?name=repro").json["config"]
    run_id = client.post("/api/training/start", json={"config": loaded}).json["session_id"]
    run_config = json.loads(services.runs.run(run_id).config_path.read_text())
    assert run_config == loaded == validate_config(CONFIG).model_dump(mode="json")
