"""System status: CPU and RAM always, GPUs as a list that is empty (not an error) without one."""
from __future__ import annotations

import sys

from core.hardware import cuda_available
from routes.extensions import socketio
from routes.system import start_system_updates
from tests.conftest import wait_for
from tests.nvml_stand_in import pynvml as nvml_stand_in


def test_status_reports_cpu_ram_and_gpus(client):
    status = client.get("/api/system/status").json
    assert status["ram_total"] > status["ram_used"] > 0
    assert 0 <= status["cpu_percent"] <= 100
    assert isinstance(status["gpus"], list)
    if not cuda_available():
        assert status["gpus"] == []
    for gpu in status["gpus"]:
        assert {"index", "name", "memory_used", "memory_total", "utilization", "temperature",
                "fan", "power"} <= set(gpu)


def test_status_without_nvml_is_cpu_only_not_an_error(client, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py missing
    response = client.get("/api/system/status")
    assert response.status_code == 200
    assert response.json["gpus"] == [] and response.json["ram_total"] > 0


def test_status_lists_each_gpu_with_power_limit(client, monkeypatch):
    # the stand-in NVML answers for a driver with two GPUs, which this machine cannot have
    monkeypatch.setenv("NVML_STAND_IN_GPUS", "2")
    monkeypatch.setitem(sys.modules, "pynvml", nvml_stand_in)
    gpus = client.get("/api/system/status").json["gpus"]
    assert [g["name"] for g in gpus] == ["Stand-in GPU 0", "Stand-in GPU 1"]
    assert gpus[1]["power"] == 150.0 and gpus[1]["power_limit"] == 300.0
    assert gpus[1]["fan"] is None


def test_system_update_is_pushed_to_every_client_until_stopped(app, client):
    listener = socketio.test_client(app, flask_test_client=client)
    stop = start_system_updates(app, 0.05)
    try:
        pushed = wait_for(lambda: [m for m in listener.get_received()
                                   if m["name"] == "system_update"], 10, "a system_update")
        status = pushed[0]["args"][0]
        assert {"gpus", "cpu_percent", "ram_used", "ram_total"} <= set(status)
    finally:
        stop.set()
        listener.disconnect()


def test_models_rewards_and_datasets_catalogs_answer(client):
    models = client.get("/api/models/list").json
    assert set(models["families"]) == {"Qwen3", "Llama", "Mistral", "Phi", "Gemma", "SmolLM"}
    default = [m for m in models["catalog"] if m["id"] == "default"][0]
    assert default["offline"] and default["memory_gb"]["lora"] < default["memory_gb"]["full"]
    rewards = client.get("/api/rewards/list").json["rewards"]
    assert {"answer_correct", "format_markers", "length_band"} <= {r["id"] for r in rewards}
    datasets = client.get("/api/datasets/list").json["datasets"]
    builtin = {d["id"]: d for d in datasets if d["source"] == "builtin"}
    assert builtin["arithmetic"]["rows"] == 1000
    gsm8k = [d for d in datasets if d["id"] == "openai/gsm8k"][0]
    assert gsm8k["config_name"] == "main" and gsm8k["mapping"]["instruction"] == "question"
