"""Configurations: the configs page and the Configurations API (save, load, list, delete,
validate)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, request

from core.config import ConfigError, validate_config
from routes.common import BadRequest, json_body, services
from routes.i18n import localized_problems

bp = Blueprint("configs", __name__)


@bp.get("/configs")
def configs_page() -> str:
    return render_template("configs.html")


@bp.post("/api/configs/save")
def save() -> Any:
    body = json_body()
    entry = services().configs.save(body.get("name"), body.get("config"))
    return jsonify(entry), 201


@bp.get("/api/configs/load")
def load() -> Any:
    return jsonify(services().configs.load(_name_arg()))


@bp.delete("/api/configs/delete")
def delete() -> Any:
    services().configs.delete(_name_arg())
    return jsonify({"deleted": True})


@bp.get("/api/configs/list")
def listing() -> Any:
    return jsonify(services().configs.list())


@bp.post("/api/configs/validate")
def validate() -> Any:
    """Always 200: `valid` and every problem with its field, for the wizard to show at fields."""
    try:
        cfg = validate_config(json_body().get("config"))
    except ConfigError as err:
        return jsonify({"valid": False, "problems": localized_problems(err.problems)})
    return jsonify({"valid": True, "problems": [], "config": cfg.model_dump(mode="json")})


def _name_arg() -> str:
    name = request.args.get("name", "")
    if not name:
        raise BadRequest("give ?name= of the config", field="name")
    return name
