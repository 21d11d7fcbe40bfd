"""Runs: the runs list and monitor pages, and the Training API (API.md)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, request

from core.config import validate_config
from routes.common import BadRequest, error_response, int_arg, json_body, services
from routes.i18n import localized_problems
from services.estimates import CalibrationBusy, CalibrationFailed

BUSY_STATUSES = ("queued", "running", "stopping", "pausing")

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
    svc = services()
    estimate_now = svc.estimates.at_launch(config)
    run = svc.jobs.submit(config, session_id, queue=body.get("queue", True) is not False)
    svc.estimates.record(run.path, estimate_now)
    return jsonify({"session_id": run.run_id}), 202


@bp.post("/api/training/estimate")
def estimate() -> Any:
    """Peak memory by part, and time once this machine is calibrated for the model."""
    return jsonify(services().estimates.estimate(_config_of(json_body())))


@bp.post("/api/training/calibrate")
def calibrate() -> Any:
    """Measure the config's model on this machine (seconds to a minute), then estimate."""
    svc = services()
    config = _config_of(json_body())
    try:
        if any(s.get("status") in BUSY_STATUSES for s in (svc.runs.listing(r)
                                                          for r in svc.runs.runs())):
            raise CalibrationBusy("a run is training or waiting to; measure when it has ended, "
                                  "so that neither disturbs the other")
        return jsonify(svc.estimates.calibrate(config))
    except CalibrationFailed as err:
        status = 409 if isinstance(err, CalibrationBusy) else 500
        return error_response(status, str(err), err.field)


def _config_of(body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body.get("config"), dict):
        raise BadRequest("the body needs a 'config' object", field="config")
    return body["config"]


def _session_id(body: dict[str, Any]) -> str:
    session_id = body.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise BadRequest("the body needs the run's 'session_id'", field="session_id")
    return session_id


def _optional_text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{name} must be text (a name from the run's checkpoint list)",
                         field=name)
    return value


def _control(action: str) -> Any:
    session_id = _session_id(json_body())
    status = getattr(services().jobs, action)(session_id)
    return jsonify({"session_id": session_id, "status": status}), 200


@bp.post("/api/training/stop")
def stop() -> Any:
    return _control("stop")


@bp.post("/api/training/pause")
def pause() -> Any:
    return _control("pause")


@bp.post("/api/training/resume")
def resume() -> Any:
    """From the newest complete checkpoint, or from `checkpoint` (a name from the run's
    checkpoint list, `phase` when two phases use the name): its phase's later ones are deleted."""
    body = json_body()
    session_id = _session_id(body)
    status = services().jobs.resume(session_id, _optional_text(body, "checkpoint"),
                                    _optional_text(body, "phase"))
    return jsonify({"session_id": session_id, "status": status}), 202


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


@bp.delete("/api/training/<run_id>/checkpoints/<name>")
def delete_checkpoint(run_id: str, name: str) -> Any:
    """Delete one complete checkpoint (`?phase=` when two phases use the name); refused (409)
    while the run is running or queued."""
    entry = services().jobs.delete_checkpoint(run_id, name, request.args.get("phase") or None)
    return jsonify({"deleted": entry["name"], "phase": entry["phase"]})
