"""The real server in its own process: a python-socketio client in a run's room receives GRPO
updates; a server killed mid-run finds the run again on restart, with its history, and resumes it."""
from __future__ import annotations

import json
import threading

import pytest
import socketio

from tests.conftest import LiveServer, tiny_config, wait_for

pytestmark = pytest.mark.slow
GRPO_KEYS = ("reward", "reward_std", "kl", "clip_ratio/region_mean", "loss", "learning_rate")


def start_run(server: LiveServer, model_dir, **sections) -> str:
    response = server.api("POST", "/api/training/start",
                          json={"config": tiny_config(model_dir, **sections)})
    assert response.status_code == 202, response.text
    return response.json()["session_id"]


def state(server: LiveServer, run_id: str) -> dict:
    return server.api("GET", f"/api/training/{run_id}").json()


def test_a_socketio_client_in_the_room_receives_grpo_updates(live_server, tiny_model):
    updates: list[dict] = []
    arrived = threading.Event()
    client = socketio.Client()

    @client.on("training_update")
    def on_update(update: dict) -> None:
        updates.append(update)
        arrived.set()

    client.connect(live_server.url)
    try:
        run_id = start_run(live_server, tiny_model, training={"max_steps": 3})
        assert client.call("join_session", {"session_id": run_id}) == {"ok": True}
        wait_for(lambda: state(live_server, run_id)["status"] in ("completed", "failed"), 240,
                 "the run to end")
        wait_for(arrived.is_set, 10, "an update")
    finally:
        client.disconnect()
    assert state(live_server, run_id)["status"] == "completed"
    grpo = [u for u in updates if u["phase"] == "grpo"]
    assert grpo and all(u["session_id"] == run_id for u in updates)
    for key in GRPO_KEYS:
        assert key in grpo[-1]["metrics"], key
    assert grpo[-1]["total_steps"] == 3


def test_a_killed_server_finds_the_run_again_and_resumes_it(live_server, tiny_model):
    run_id = start_run(live_server, tiny_model, training={"max_steps": 300},
                       output={"save_steps": 1000})
    wait_for(lambda: len(live_server.api("GET", f"/api/training/{run_id}/metrics")
                         .json()["events"]) >= 2, 240, "two logged steps")
    live_server.kill(9)
    # the orphaned worker notices and pauses with a checkpoint
    run_dir = live_server.root / "outputs" / run_id
    wait_for(lambda: json.loads((run_dir / "state.json").read_text())["status"] != "running",
             120, "the worker to pause")
    restarted = LiveServer(live_server.root).start()
    try:
        found = state(restarted, run_id)
        assert found["status"] == "paused" and found["best_reward"] is not None
        history = restarted.api("GET", f"/api/training/{run_id}/metrics").json()["events"]
        assert len(history) >= 2
        paused_at = found["step"]
        assert restarted.api("POST", "/api/training/resume",
                             json={"session_id": run_id}).status_code == 202
        wait_for(lambda: state(restarted, run_id)["step"] > paused_at, 240, "training to go on")
        assert state(restarted, run_id)["resumed_from"].startswith("checkpoints/checkpoint-")
        assert restarted.api("POST", "/api/training/stop",
                             json={"session_id": run_id}).json()["status"] == "stopping"
        wait_for(lambda: state(restarted, run_id)["status"] == "cancelled", 120, "the stop")
    finally:
        restarted.kill(15)
