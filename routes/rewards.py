"""Rewards API: the registry's catalog (the testing page comes with the rewards issue)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from services.catalog import reward_catalog

bp = Blueprint("rewards", __name__)


@bp.get("/api/rewards/list")
def listing() -> Any:
    return jsonify({"rewards": reward_catalog()})
