"""/api/training/estimate and /api/training/calibrate: memory by part before launch, time once a
real calibration of the model ran on this machine (a child process), cached per model."""
from __future__ import annotations

import json

from tests.conftest import tiny_config


def estimate(client, cfg):
    return client.post("/api/training/estimate", json={"config": cfg})


def test_a_local_model_is_estimated_by_part_without_time_until_calibrated(
        client, tiny_model, model_cache_dir):
    answer = estimate(client, tiny_config(tiny_model))
    assert answer.status_code == 200, answer.json
    found = answer.json
    assert found["available"] and not found["calibrated"] and found["time"] is None
    parts = found["memory"]["parts"]
    assert {"runtime", "weights", "adapter_optimizer"} <= set(parts)
    assert found["memory"]["peak"] == sum(parts.values())
    assert found["lengths"]["rows"] == 32 and found["lengths"]["prompt"] > 0  # max_samples


def test_a_model_not_on_this_machine_is_named(client, model_cache_dir):
    found = estimate(client, {"model": {"name": "acme/not-here"},
                              "rewards": [{"name": "answer_correct"}]}).json
    assert found == {"available": False, "reason": "model 'acme/not-here' is not on this "
                     "machine; download it on the models page to estimate its memory"}


def test_an_invalid_config_names_its_field(client, tiny_model):
    answer = estimate(client, tiny_config(tiny_model, training={"batch_size": 0}))
    assert answer.status_code == 400
    assert "training.batch_size" in {p["field"] for p in answer.json["problems"]}


def test_a_peak_above_free_memory_warns(client, tiny_model, model_cache_dir, monkeypatch):
    import services.estimates
    monkeypatch.setattr(services.estimates, "free_memory", lambda cfg, device: (1000, 2000))
    found = estimate(client, tiny_config(tiny_model)).json
    assert found["memory"]["warning"].startswith("the estimated peak")
    assert "lower the batch size" in found["memory"]["warning"]


def test_calibration_measures_the_model_and_gives_time(client, tiny_model, model_cache_dir):
    cfg = tiny_config(tiny_model, training={"max_steps": 5})
    answer = client.post("/api/training/calibrate", json={"config": cfg})
    assert answer.status_code == 200, answer.json
    found = answer.json
    assert found["calibrated"] and "activations_logits" in found["memory"]["parts"]
    grpo = found["time"]["phases"]["grpo"]
    assert grpo["steps"] == 5 and grpo["generation_seconds"] > 0 and grpo["update_seconds"] > 0
    cached = json.loads((model_cache_dir / "calibration.json").read_text())
    [entry] = cached.values()
    assert entry["train_seconds_per_token"] > 0 and entry["measured_at"]
    assert estimate(client, cfg).json["calibrated"]          # kept for the next estimate


def test_a_damaged_calibration_cache_is_ignored(client, tiny_model, model_cache_dir):
    model_cache_dir.mkdir(parents=True, exist_ok=True)
    (model_cache_dir / "calibration.json").write_text("{not json")
    found = estimate(client, tiny_config(tiny_model)).json
    assert found["available"] and not found["calibrated"]


def test_calibration_waits_for_runs_to_end(client, tiny_model, model_cache_dir):
    client.post("/api/training/start", json={"config": tiny_config(tiny_model)})  # queued
    answer = client.post("/api/training/calibrate", json={"config": tiny_config(tiny_model)})
    assert answer.status_code == 409 and "a run is training" in answer.json["error"]


def test_a_child_that_dies_is_named_by_its_signal_or_its_last_error():
    import subprocess

    from services.estimates import child_failure
    killed = subprocess.CompletedProcess([], -9, "", "  warnings.warn(\n")
    assert child_failure(killed) == "it was ended by SIGKILL (out of memory?)"
    raised = subprocess.CompletedProcess([], 1, "", "Traceback ...\n  File x\n"
                                         "OSError: no safetensors weights in /m\n  warnings\n")
    assert child_failure(raised) == "OSError: no safetensors weights in /m"
