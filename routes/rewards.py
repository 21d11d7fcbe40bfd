"""Rewards: the registry's catalog, the reward testing page and its API, and the library of saved
custom rewards. Reward code never runs here: tests go to a child process (services/rewards.py)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request

from routes.common import BadRequest, json_body, services
from services.catalog import reward_catalog
from services.rewards import RewardRequestError, checked_source, dataset_cases, run_reward_test

bp = Blueprint("rewards", __name__)


@bp.get("/rewards/test")
def test_page() -> Any:
    return render_template("rewards_test.html")


@bp.get("/api/rewards/list")
def listing() -> Any:
    return jsonify({"rewards": reward_catalog()})


@bp.post("/api/rewards/test")
def test() -> Any:
    return jsonify(run_reward_test(json_body(), protected=[current_app.config["ROOT"]]))


@bp.post("/api/rewards/cases")
def cases() -> Any:
    """Rows of a dataset as test cases: the question, the reference and the dataset's answer."""
    body = json_body()
    samples = body.get("samples", 5)
    if not isinstance(samples, int) or not 1 <= samples <= 100:
        raise BadRequest("samples must be a whole number from 1 to 100", field="samples")
    library = services().datasets
    section = library.section_for(body)
    return jsonify({"cases": dataset_cases(section, library.preview(section, samples)["rows"])})


@bp.get("/api/rewards/custom")
def custom_list() -> Any:
    return jsonify({"rewards": services().custom_rewards.list()})


@bp.get("/api/rewards/custom/<name>")
def custom_get(name: str) -> Any:
    return jsonify(services().custom_rewards.get(name))


@bp.post("/api/rewards/custom")
def custom_save() -> Any:
    body = json_body()
    saved = services().custom_rewards.save(body.get("name"), body.get("source"))
    return jsonify({"id": saved["id"], "name": saved["name"]}), 201


@bp.post("/api/rewards/custom/upload")
def custom_upload() -> Any:
    file = request.files.get("file")
    if file is None or not file.filename:
        raise BadRequest("send the .py file as multipart form field 'file'", field="file")
    name = (request.form.get("name") or "").strip() or None
    return jsonify(services().custom_rewards.save_upload(file.stream, file.filename, name)), 201


@bp.delete("/api/rewards/custom/<name>")
def custom_delete(name: str) -> Any:
    services().custom_rewards.delete(name)
    return jsonify({"deleted": name})


@bp.post("/api/rewards/custom/check")
def custom_check() -> Any:
    """Parses (never runs) a custom reward: {"ok": true} or {"ok": false, "error", "line"}."""
    try:
        checked_source(json_body().get("source"))
    except RewardRequestError as err:
        return jsonify({"ok": False, "error": str(err), **err.extra})
    return jsonify({"ok": True})
