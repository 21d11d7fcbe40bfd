"""System status: CPU and RAM always, GPUs as a list that is empty (not an error) without one."""
from __future__ import annotations

from core.hardware import cuda_available


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
