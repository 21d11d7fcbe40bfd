"""Languages: English and French through flask-babel, chosen from a menu and remembered in a
cookie (else the browser's preference). Strings set by JavaScript are translated on the server
and handed to the page as one JSON object (`t("...")` in static/js/common.js reads it); their
msgids are listed in translations/js_strings.json by `tools/i18n.py extract`.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, redirect, request
from flask_babel import get_locale, gettext

from routes.extensions import babel
from services.catalog import N_

LANGUAGES = {"en": "English", "fr": "Français"}
COOKIE = "lang"
JS_STRINGS = Path(__file__).resolve().parent.parent / "translations" / "js_strings.json"

bp = Blueprint("i18n", __name__)


def select_locale() -> str:
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES)) or "en"


@lru_cache(maxsize=1)
def js_msgids() -> tuple[str, ...]:
    try:
        return tuple(json.loads(JS_STRINGS.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return ()


def js_translations() -> dict[str, str]:
    return {msgid: gettext(msgid) for msgid in js_msgids()}


@bp.get("/language/<code>")
def choose_language(code: str) -> Any:
    from routes.common import safe_next  # here: routes.common imports this module
    response = redirect(safe_next(request.args.get("next")))
    if code in LANGUAGES:
        response.set_cookie(COOKIE, code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
    return response


def init_i18n(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories=str(Path(app.root_path) / "translations"))
    app.register_blueprint(bp)

    @app.context_processor
    def language_context() -> dict[str, Any]:
        return {"languages": LANGUAGES, "current_language": str(get_locale() or "en"),
                "js_translations": js_translations()}


# pydantic's own error types, in words the wizard shows at a field (ours are core.config.MESSAGES)
PYDANTIC_MESSAGES = {
    "greater_than": N_("must be greater than %(gt)s"),
    "greater_than_equal": N_("must be at least %(ge)s"),
    "less_than": N_("must be less than %(lt)s"),
    "less_than_equal": N_("must be at most %(le)s"),
    "int_parsing": N_("must be a whole number"),
    "int_type": N_("must be a whole number"),
    "int_from_float": N_("must be a whole number"),
    "float_parsing": N_("must be a number"),
    "float_type": N_("must be a number"),
    "bool_parsing": N_("must be true or false"),
    "bool_type": N_("must be true or false"),
    "string_type": N_("must be text"),
    "string_too_short": N_("must have at least %(min_length)s characters"),
    "string_too_long": N_("must have at most %(max_length)s characters"),
    "too_long": N_("must have at most %(max_length)s items"),
    "list_type": N_("must be a list"),
    "model_type": N_("must be an object"),
    "dict_type": N_("must be an object"),
    "literal_error": N_("choose one of: %(expected)s"),
    "extra_forbidden": N_("unknown field (check the spelling)"),
    "missing": N_("this field is required"),
}


def localized_problems(problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each config problem in the reader's language where its form is known."""
    from core.config import MESSAGES
    shown = []
    for problem in problems:
        template = MESSAGES.get(problem.get("code", "")) or \
            PYDANTIC_MESSAGES.get(problem.get("code", ""))
        if template:
            try:
                problem = {**problem, "message": gettext(template, **problem.get("params", {}))}
            except (KeyError, ValueError, TypeError):
                pass  # a template whose params did not come: keep the English message
        shown.append(problem)
    return shown
