"""Translation catalogs: `python tools/i18n.py extract` collects every text the pages show.

Sources: Jinja templates (`_()`), Python in routes/ and services/ (`_`, `_l`, `N_`), JavaScript in
static/js (`t("...")`, `tf("...", values)`), and the texts that live in data: the config schema's help texts and the
reward registry's names, categories, descriptions and parameter help, the training alerts'
messages. Writes translations/messages.pot, merges it into each
translations/<lang>/LC_MESSAGES/messages.po (new texts arrive untranslated, existing translations
are kept), and writes translations/js_strings.json:
the texts JavaScript may ask `t()` for, which the server translates for each page.

`python tools/i18n.py check` fails listing any untranslated or fuzzy entry.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from babel.messages.catalog import Catalog  # noqa: E402
from babel.messages.extract import extract_from_dir  # noqa: E402
from babel.messages.pofile import read_po, write_po  # noqa: E402

TRANSLATIONS = REPO / "translations"
LANGUAGES = ("fr",)
PY_KEYWORDS = {"_": None, "_l": None, "N_": None, "gettext": None, "lazy_gettext": None}


def _extract(folder: str, method: str, pattern: str, keywords: dict[str, Any]) -> Iterator[str]:
    options = {pattern: {"parse_template_string": True}} if method == "javascript" else {}
    for _file, _line, message, _comments, _context in extract_from_dir(
            REPO / folder, method_map=[(pattern, method)], options_map=options,
            keywords=keywords):
        if isinstance(message, str) and message:
            yield message


def schema_texts() -> Iterator[str]:
    from pydantic import BaseModel

    from core.config import RunConfig

    def walk(model: type[BaseModel]) -> Iterator[str]:
        for field in model.model_fields.values():
            if field.description:
                yield field.description
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                yield from walk(field.annotation)
    yield from walk(RunConfig)


def config_messages() -> Iterator[str]:
    from core.config import MESSAGES
    yield from MESSAGES.values()


def registry_texts() -> Iterator[str]:
    from rewards import list_rewards
    for spec in list_rewards():
        yield from (spec["name"], spec["category"], spec["description"])
        yield from (p["help"] for p in spec["parameters"])


def alert_texts() -> Iterator[str]:
    from core.training.alerts import TEXTS
    for message, advice in TEXTS.values():
        yield from (message, advice)


def js_texts() -> list[str]:
    found = list(_extract("static/js", "javascript", "**.js", {"t": None, "tf": None}))
    found += list(_extract("services", "python", "**.py", {"N_": None}))
    found += list(registry_texts()) + list(alert_texts())
    return sorted(set(found))


def all_texts() -> list[str]:
    found = list(_extract("templates", "jinja2", "**.html", {"_": None, "gettext": None}))
    for folder in ("routes", "services"):
        found += list(_extract(folder, "python", "**.py", PY_KEYWORDS))
    found += list(schema_texts()) + list(config_messages()) + js_texts()
    return sorted(set(found))


def extract() -> None:
    template = Catalog(project="GRPO Studio", charset="utf-8")
    for text in all_texts():
        template.add(text)
    with (TRANSLATIONS / "messages.pot").open("wb") as f:
        write_po(f, template, omit_header=False, sort_output=True, width=100)
    for lang in LANGUAGES:
        po_path = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"
        po_path.parent.mkdir(parents=True, exist_ok=True)
        if po_path.exists():
            with po_path.open("rb") as f:
                catalog = read_po(f, locale=lang)
        else:
            catalog = Catalog(locale=lang, project="GRPO Studio", charset="utf-8")
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with po_path.open("wb") as f:
            write_po(f, catalog, sort_output=True, width=100)
    (TRANSLATIONS / "js_strings.json").write_text(
        json.dumps(js_texts(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def missing(lang: str) -> list[str]:
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=lang)
    expected = set(all_texts())
    have = {m.id: m for m in catalog if m.id}
    return sorted(t for t in expected
                  if t not in have or not have[t].string or have[t].fuzzy)


def main(argv: list[str]) -> int:
    if argv == ["extract"]:
        extract()
        return 0
    if argv == ["check"]:
        problems = {lang: missing(lang) for lang in LANGUAGES}
        for lang, texts in problems.items():
            for text in texts:
                print(f"{lang}: untranslated: {text!r}")
        return 1 if any(problems.values()) else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
