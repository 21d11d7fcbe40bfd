"""The new-run wizard: one page per step (model, dataset, training, rewards, review) with
Back/Next. The draft config lives in the browser (localStorage) so it survives steps and reloads;
every change is validated by /api/configs/validate and problems are shown at their field."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l

from core.config import validate_config
from routes.forms import field_info
from services.catalog import DEFAULT_MODEL

bp = Blueprint("wizard", __name__)
STEPS = (("model", _l("Model")), ("dataset", _l("Dataset")), ("training", _l("Training")),
         ("rewards", _l("Rewards")), ("review", _l("Review & start")))
CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIGS / "examples" / "quickstart.json"
PRESETS = CONFIGS / "presets.json"


def default_config() -> dict[str, Any]:
    """What the wizard starts from: the quick-start example, fully defaulted."""
    data = json.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    data["model"]["name"] = DEFAULT_MODEL
    return validate_config(data).model_dump(mode="json")


@bp.record_once
def _template_globals(state: Any) -> None:
    # a global, not a context variable, so that imported macros (macros.html) see it too
    state.app.jinja_env.globals["field"] = field_info


@bp.get("/")
def home() -> Any:
    return redirect(url_for("wizard.step", name="model"))


@bp.get("/wizard/<name>")
def step(name: str) -> Any:
    names = [s for s, _ in STEPS]
    if name not in names:
        abort(404, f"no wizard step {name!r}")
    index = names.index(name)
    return render_template(
        f"wizard/{name}.html", steps=STEPS, step=name, index=index,
        previous=names[index - 1] if index else None,
        next=names[index + 1] if index + 1 < len(names) else None,
        default_config=default_config(),
        presets=json.loads(PRESETS.read_text(encoding="utf-8")))
