"""The Training API (API.md): good and bad inputs, through the Flask test client, plus the
Socket.IO room a run's events are published to."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.files import write_json_atomic
from routes.extensions import socketio
from tests.conftest import tiny_config, wait_for
from tests.services.test_jobs import occupy


def start(client, model_dir=Path("/nonexistent"), **body):
    return client.post("/api/training/start", json={"config": tiny_config(model_dir), **body})


def test_start_queues_a_run_and_lists_it(client):
    response = start(client, session_id="first-run")
    assert response.status_code == 202 and response.json == {"session_id": "first-run"}
    sessions = client.get("/api/training/sessions").json["sessions"]
    assert [(s["run_id"], s["status"], s["queue_position"]) for s in sessions] == \
        [("first-run", "queued", 1)]
    details = client.get("/api/training/first-run").json
    assert details["config"]["training"]["max_steps"] == 2 and details["best_reward"] is None
    assert details["estimate"]["available"] is False  # its model is not on this machine


@pytest.mark.parametrize("body, status, field", [
    ({"config": {"training": {"learning_rate": -1}}}, 400, "training.learning_rate"),
    ({"config": {"training": {"batch_size": 3}, "algorithm": {"num_generations": 2}}}, 400,
     "algorithm.num_generations"),          # 3 completions cannot form groups of 2
    ({"config": {"modle": {}}}, 400, "modle"),                    # a misspelt section
    ({"config": "grpo"}, 400, "config"),                          # not an object
    ({}, 400, "config"),                                          # no config at all
    ({"config": {}, "session_id": "../x"}, 400, "session_id"),    # an id that is a path
])
def test_start_rejects_bad_input_naming_the_field(client, body, status, field):
    if isinstance(body.get("config"), dict):
        body["config"] = {**tiny_config(Path("/nonexistent")), **body["config"]}
    response = client.post("/api/training/start", json=body)
    assert response.status_code == status
    assert response.json["error"]
    if field:
        assert response.json["field"] == field


def test_start_refuses_non_json(client):
    response = client.post("/api/training/start", data="config=1")
    assert response.status_code == 400 and "JSON object" in response.json["error"]


def test_start_is_refused_when_busy_and_queueing_is_off(client, services):
    start(client, session_id="busy")
    process = occupy(services.jobs, services.runs.run("busy"))
    try:
        response = start(client, queue=False)
        assert response.status_code == 409 and "busy" in response.json["error"]
    finally:
        process.kill()
        process.wait()


def test_a_duplicate_session_id_is_a_conflict(client):
    start(client, session_id="same")
    assert start(client, session_id="same").status_code == 409


@pytest.mark.parametrize("action", ["stop", "pause", "resume"])
def test_controls_name_the_missing_or_unknown_session(client, action):
    missing = client.post(f"/api/training/{action}", json={})
    assert missing.status_code == 400 and missing.json["field"] == "session_id"
    unknown = client.post(f"/api/training/{action}", json={"session_id": "nope"})
    assert unknown.status_code == 404


def test_controls_follow_the_run_status(client):
    start(client, session_id="r")
    assert client.post("/api/training/resume", json={"session_id": "r"}).status_code == 409
    paused = client.post("/api/training/pause", json={"session_id": "r"})
    assert paused.status_code == 200 and paused.json["status"] == "paused"
    resumed = client.post("/api/training/resume", json={"session_id": "r"})
    assert resumed.status_code == 202 and resumed.json["status"] == "queued"
    stopped = client.post("/api/training/stop", json={"session_id": "r"})
    assert stopped.status_code == 200 and stopped.json["status"] == "cancelled"
    again = client.post("/api/training/stop", json={"session_id": "r"})
    assert again.status_code == 409 and "nothing to stop" in again.json["error"]


def test_history_samples_logs_and_checkpoints_of_a_run(client, services):
    start(client, session_id="h")
    run = services.runs.run("h")
    for step in (1, 2):
        run.append_event("metric", phase="grpo", step=step, reward=step / 4)
    run.append_event("sample", phase="grpo", step=2, prompt="2+2?", completions=["4"],
                     scores={"answer_correct": [1.0]}, total=[1.0], reference="4")
    run.log_path.write_text("a\nb\nc\n")
    ckpt = run.checkpoints_dir("grpo") / "checkpoint-2"
    ckpt.mkdir(parents=True)
    write_json_atomic(ckpt / "checkpoint.json", {"step": 2, "phase": "grpo",
                                                 "metrics": {"reward": 0.5}})
    metrics = client.get("/api/training/h/metrics?since=0").json
    assert [e["step"] for e in metrics["events"]] == [1, 2] and metrics["next"] == 3
    assert client.get("/api/training/h/metrics?since=1").json["events"][0]["step"] == 2
    assert client.get("/api/training/h/samples?limit=5").json["samples"][0]["completions"] == ["4"]
    assert client.get("/api/training/h/logs?tail=2").json == {"lines": ["b", "c"]}
    assert client.get("/api/training/h/checkpoints").json["checkpoints"][0]["step"] == 2


def test_samples_filter_by_step_and_text_and_alerts_are_listed(client, services):
    start(client, session_id="f")
    run = services.runs.run("f")
    for step, prompt, completion in ((1, "2+2?", "four"), (2, "3+3?", "six"), (2, "5+5?", "ten")):
        run.append_event("sample", phase="grpo", step=step, prompt=prompt,
                         completions=[completion], scores={"a": [1.0]}, total=[1.0],
                         reference=None)
    run.append_event("alert", phase="grpo", step=2, kind="no_signal", reward=None, value=1.0,
                     message="no learning signal", advice="give partial credit", level="warning")
    every = client.get("/api/training/f/samples").json
    assert (every["total"], every["steps"]) == (3, [1, 2])
    assert [s["prompt"] for s in every["samples"]] == ["5+5?", "3+3?", "2+2?"]  # newest first
    step2 = client.get("/api/training/f/samples?step=2&limit=1&offset=1").json
    assert step2["total"] == 2 and [s["prompt"] for s in step2["samples"]] == ["3+3?"]
    found = client.get("/api/training/f/samples?q=SIX").json  # case-insensitive, in completions
    assert [s["prompt"] for s in found["samples"]] == ["3+3?"] and found["total"] == 1
    assert client.get("/api/training/f/samples?step=x").json["field"] == "step"
    alerts = client.get("/api/training/f/alerts").json["alerts"]
    assert [(a["kind"], a["step"]) for a in alerts] == [("no_signal", 2)]


@pytest.mark.parametrize("url, field", [
    ("/api/training/h/metrics?since=abc", "since"),   # not a number
    ("/api/training/h/samples?limit=0", "limit"),     # below the range
    ("/api/training/h/logs?tail=999999", "tail"),     # above the range
])
def test_bad_query_values_are_named(client, url, field):
    start(client, session_id="h")
    response = client.get(url)
    assert response.status_code == 400 and response.json["field"] == field


def test_unknown_run_pages_and_api_answer_404(client):
    assert client.get("/api/training/nope/metrics").status_code == 404
    page = client.get("/runs/nope")
    assert page.status_code == 404 and b"<html" in page.data       # a page for browsers
    assert client.get("/api/training/..%2F..%2Fetc").status_code == 404


def test_joining_a_room_delivers_that_runs_events_only(app, client, services):
    start(client, session_id="watched")
    start(client, session_id="other")
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.emit("join_session", {"session_id": "watched"}, callback=True) == {"ok": True}
    assert sio.emit("join_session", {"session_id": "missing"}, callback=True)["ok"] is False
    processes = []
    for run_id in ("watched", "other"):
        run = services.runs.run(run_id)
        processes.append(occupy(services.jobs, run))
        run.append_event("metric", phase="grpo", step=1, reward=0.5, reward_std=0.1, kl=0.0,
                         loss=0.0, learning_rate=1e-3, **{"clip_ratio/region_mean": 0.0})
    try:
        services.jobs.tick()
        received = [m for m in sio.get_received() if m["name"] == "training_update"]
        assert [m["args"][0]["session_id"] for m in received] == ["watched"]
        for key in ("reward", "reward_std", "kl", "clip_ratio/region_mean", "loss",
                    "learning_rate"):
            assert key in received[0]["args"][0]["metrics"]
    finally:
        for process in processes:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_a_started_run_trains_in_a_worker_process(app, client, services, tiny_model):
    start(client, tiny_model, session_id="real")
    run = services.runs.run("real")
    wait_for(lambda: services.jobs.tick() or run.read_state()["status"] in
             ("completed", "failed"), 240, "the run to end")
    assert run.read_state()["status"] == "completed", run.log_path.read_text()[-2000:]
    assert run.read_state()["pid"] not in (None, os.getpid())
    assert client.get("/api/training/real/metrics").json["events"]
    # the record keeps the estimate made at launch beside what the worker measured
    details = client.get("/api/training/real").json
    assert details["estimate"]["available"] and details["estimate"]["memory"]["peak"] > 0
    assert details["measured"]["peak_ram_bytes"] > 2**20 and details["measured"]["seconds"] > 0
