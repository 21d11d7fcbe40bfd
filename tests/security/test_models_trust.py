"""Model files and model code: only safetensors weights are loaded from a folder (pickled weights,
which run code when loaded, are refused before anything reads them), and code shipped with a
model runs only when the server (or the CLI) was started with --trust-remote-code, never because a
request asked. The pickled weights used here would create a file if they were ever unpickled."""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core.config import ModelSection, TrainingSection
from core.models import REMOTE_CODE_ENV, ModelError, allowed_remote_code, require_safetensors
from tests.conftest import tiny_config
from tests.security.conftest import served


class Planted:
    """Unpickling this creates `path`: proof that pickled weights were loaded."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self) -> tuple:
        return open, (str(self.path), "w")


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    return tmp_path / "unpickled"


@pytest.fixture
def pickled_model(tiny_model: Path, tmp_path: Path, planted: Path) -> Path:
    """The tiny model's config and tokenizer with pickled weights instead of safetensors."""
    folder = tmp_path / "pickled-model"
    shutil.copytree(tiny_model, folder, ignore=shutil.ignore_patterns("*.safetensors*"))
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Planted(planted)))
    return folder


@pytest.fixture
def pickled_adapter(tmp_path: Path, planted: Path) -> Path:
    folder = tmp_path / "pickled-adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    (folder / "adapter_model.bin").write_bytes(pickle.dumps(Planted(planted)))
    return folder


@pytest.fixture
def no_permission(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REMOTE_CODE_ENV, raising=False)


# ---- safetensors only ----------------------------------------------------------------------------
def test_a_safetensors_model_folder_is_accepted(tiny_model):
    require_safetensors(tiny_model)


def test_training_refuses_a_model_folder_with_only_pickled_weights(pickled_model, planted):
    from core.models import load_model
    with pytest.raises(ModelError, match="pickled weights"):
        load_model(ModelSection(name=str(pickled_model)), TrainingSection(precision="fp32"))
    assert not planted.exists()


def test_training_refuses_to_continue_from_a_pickled_adapter(tiny_model, pickled_adapter,
                                                             planted):
    from core.models import load_model
    with pytest.raises(ModelError, match="pickled weights"):
        load_model(ModelSection(name=str(tiny_model)), TrainingSection(precision="fp32"),
                   init_from=pickled_adapter)
    assert not planted.exists()


def test_inference_refuses_a_model_folder_with_only_pickled_weights(pickled_model, planted):
    from core.inference.hf import load_hf
    from core.inference.refs import InferenceError, Resolved
    with pytest.raises(InferenceError, match="pickled weights") as refused:
        load_hf(Resolved("hf", str(pickled_model)), precision="fp32")
    assert refused.value.field == "model.path" and not planted.exists()


def test_inference_refuses_an_adapter_with_only_pickled_weights(pickled_adapter, planted):
    from core.inference.hf import _apply_adapter
    from core.inference.refs import InferenceError, Resolved
    with pytest.raises(InferenceError, match="pickled weights") as refused:
        _apply_adapter(None, Resolved("hf", "default", str(pickled_adapter)))
    assert refused.value.field == "model.adapter" and not planted.exists()


def test_export_refuses_a_model_folder_with_only_pickled_weights(pickled_model, planted):
    from core.export.hf import load_model
    with pytest.raises(ModelError, match="pickled weights"):
        load_model(pickled_model, SimpleNamespace(trust_remote_code=False))
    assert not planted.exists()


@pytest.mark.parametrize("loader", ["training", "inference"])
def test_loaders_ask_transformers_for_safetensors_only(monkeypatch, loader):
    import transformers
    asked: dict[str, Any] = {}
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained",
                        lambda source, **kwargs: asked.update(kwargs))
    if loader == "training":
        from core.models import _load_transformers
        _load_transformers(ModelSection(name="acme/tiny"), "acme/tiny", "fp32")
    else:
        import torch

        from core.inference.hf import _load_model
        from core.inference.refs import Resolved
        _load_model(Resolved("hf", "acme/tiny"), "acme/tiny", torch.float32)
    assert asked["use_safetensors"] is True and asked["trust_remote_code"] is False


@pytest.mark.slow
def test_the_chat_api_refuses_a_model_path_with_only_pickled_weights(app, client, pickled_model,
                                                                     planted):
    response = client.post("/api/models/test", json={"model_path": str(pickled_model),
                                                     "prompt": "hi", "max_tokens": 2})
    assert response.status_code == 400 and "pickled weights" in response.json["error"]
    assert response.json["field"] == "model.path" and not planted.exists()


# ---- trust_remote_code: the loaders' gate --------------------------------------------------------
def test_a_loader_refuses_remote_code_without_this_processs_permission(no_permission):
    with pytest.raises(ModelError, match="--trust-remote-code"):
        allowed_remote_code(True)


def test_a_loader_allows_remote_code_with_this_processs_permission(monkeypatch):
    monkeypatch.setenv(REMOTE_CODE_ENV, "1")
    assert allowed_remote_code(True) is True


def test_permission_alone_never_turns_remote_code_on(monkeypatch):
    monkeypatch.setenv(REMOTE_CODE_ENV, "1")
    assert allowed_remote_code(False) is False


def test_training_a_config_that_asks_for_remote_code_fails_saying_so(tiny_model, no_permission):
    from core.models import load_model
    with pytest.raises(ModelError, match="--trust-remote-code"):
        load_model(ModelSection(name=str(tiny_model), trust_remote_code=True),
                   TrainingSection(precision="fp32"))


# ---- trust_remote_code: the server ---------------------------------------------------------------
def remote_code_config() -> dict[str, Any]:
    return tiny_config(Path("/nonexistent"), model={"trust_remote_code": True})


def test_starting_a_run_that_asks_for_remote_code_is_refused(app, client):
    response = client.post("/api/training/start", json={"config": remote_code_config()})
    assert response.status_code == 400
    assert response.json["field"] == "config.model.trust_remote_code"
    assert "--trust-remote-code" in response.json["error"]
    assert client.get("/api/training/sessions").json["sessions"] == []


def test_saving_a_config_that_asks_for_remote_code_is_refused(app, client):
    response = client.post("/api/configs/save", json={"name": "remote",
                                                      "config": remote_code_config()})
    assert response.status_code == 400 and client.get("/api/configs/list").json["saved"] == []


@pytest.mark.parametrize("url, body, field", [
    ("/api/models/test", {"model_path": "x", "trust_remote_code": True}, "trust_remote_code"),
    ("/api/test/batch", {"model": {"trust_remote_code": 1}}, "model.trust_remote_code"),
    ("/api/configs/validate", {"configs": [{"model": {"trust_remote_code": "yes"}}]},
     "configs.0.model.trust_remote_code"),
])
def test_no_request_turns_remote_code_on_anywhere_in_its_body(client, url, body, field):
    response = client.post(url, json=body)
    assert response.status_code == 400 and response.json["field"] == field


def test_a_request_that_leaves_remote_code_off_is_served(client):
    config = tiny_config(Path("/nonexistent"), model={"trust_remote_code": False})
    assert client.post("/api/training/start", json={"config": config}).status_code == 202


def test_a_server_started_with_the_flag_accepts_remote_code(tmp_path):
    from flask_app import create_app
    app = create_app({"ROOT": tmp_path, "TESTING": True, "START_JOBS": False,
                      "TRUST_REMOTE_CODE": True})
    try:
        response = app.test_client().post("/api/training/start",
                                          json={"config": remote_code_config()})
        assert response.status_code == 202
    finally:
        app.extensions["grpo_studio"].close()


def test_the_server_runs_no_model_code_by_default(monkeypatch, tmp_path, no_permission):
    import os
    app = served(monkeypatch, ["--root", str(tmp_path)])["app"]
    assert app.config["TRUST_REMOTE_CODE"] is False and REMOTE_CODE_ENV not in os.environ


def test_the_server_flag_reaches_the_workers_environment(monkeypatch, tmp_path, no_permission):
    import os
    app = served(monkeypatch, ["--root", str(tmp_path), "--trust-remote-code"])["app"]
    assert app.config["TRUST_REMOTE_CODE"] is True and os.environ[REMOTE_CODE_ENV] == "1"


def test_the_cli_flag_gives_this_process_permission(monkeypatch, tmp_path, no_permission):
    import os

    from core.cli import main
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_config(Path("/nonexistent"))))
    assert main(["--trust-remote-code", "validate", str(config)]) == 0
    assert os.environ[REMOTE_CODE_ENV] == "1"
