"""Testing page and API: chat with a model (tokens streamed as `generation_token`), batch tests
scored by rewards, and held-out evaluation of base vs fine-tuned."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

bp = Blueprint("testing", __name__)


@bp.get("/test")
def test_page() -> Any:
    return render_template("test.html")
