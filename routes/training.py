"""Runs: the runs list and monitor pages, and the Training API (API.md)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, request

from core.config import validate_config
from routes.common import BadRequest, int_arg, json_body, services
from routes.i18n import localized_problems

bp = Blueprint("training", __name__)


@bp.get("/runs")
def runs_page() -> str:
    return render_template("runs.html")


@bp.get("/runs/<run_id>")
def monitor_page(run_id: str) -> str:
    run = services().runs.run(run_id)
    return render_template("monitor.html", run_id=run.run_id)


@bp.get("/runs/<run_id>/config")
def config_page(run_id: str) -> str:
    svc = services()
    run = svc.runs.run(run_id)
    return render_template("run_config.html", run_id=run.run_id, config=svc.runs.config(run),
                           problems=localized_problems(svc.runs.config_problems(run)))


@bp.post("/api/training/start")
def start() -> Any:
    body = json_body()
    if "config" not in body:
        raise BadRequest("the body needs a 'config' object", field="config")
    config = validate_config(body["config"])
    session_id = body.get("session_id")
    if session_id is not None and not isinstance(session_id, str):
        raise BadRequest("session_id must be a string", field="session_id")
    run = services().jobs.submit(config, session_id, queue=body.get("queue", True) is not False)
    return jsonify({"session_id": run.run_id}), 202


def _control(action: str) -> Any:
    session_id = json_body().get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise BadRequest("the body needs the run's 'session_id'", field="session_id")
    status = getattr(services().jobs, action)(session_id)
    return jsonify({"session_id": session_id, "status": status}), \
        202 if action == "resume" else 200


@bp.post("/api/training/stop")
def stop() -> Any:
    return _control("stop")


@bp.post("/api/training/pause")
def pause() -> Any:
    return _control("pause")


@bp.post("/api/training/resume")
def resume() -> Any:
    return _control("resume")


@bp.get("/api/training/sessions")
def sessions() -> Any:
    svc = services()
    listed = [svc.jobs.live_status(r.run_id, svc.runs.listing(r)) for r in svc.runs.runs()]
    return jsonify({"sessions": listed})


@bp.get("/api/training/<run_id>")
def session(run_id: str) -> Any:
    svc = services()
    run = svc.runs.run(run_id)
    return jsonify(svc.jobs.live_status(run_id, svc.runs.details(run)))


@bp.get("/api/training/<run_id>/metrics")
def metrics(run_id: str) -> Any:
    svc = services()
    return jsonify(svc.runs.metrics_since(svc.runs.run(run_id), int_arg("since", 0, 0, 10**9)))


@bp.get("/api/training/<run_id>/samples")
def samples(run_id: str) -> Any:
    svc = services()
    step = request.args.get("step")
    return jsonify(svc.runs.samples(
        svc.runs.run(run_id), int_arg("limit", 20, 1, 500), int_arg("offset", 0, 0, 10**9),
        step=None if step in (None, "") else int_arg("step", 0, 0, 10**9),
        query=request.args.get("q", "")[:200]))


@bp.get("/api/training/<run_id>/alerts")
def alerts(run_id: str) -> Any:
    svc = services()
    return jsonify({"alerts": svc.runs.alerts(svc.runs.run(run_id))})


@bp.get("/api/training/<run_id>/logs")
def logs(run_id: str) -> Any:
    svc = services()
    return jsonify({"lines": svc.runs.log_tail(svc.runs.run(run_id), int_arg("tail", 200, 0,
                                                                               10_000))})


@bp.get("/api/training/<run_id>/checkpoints")
def checkpoints(run_id: str) -> Any:
    svc = services()
    return jsonify({"checkpoints": svc.runs.checkpoints(svc.runs.run(run_id))})
