"""English and French: the French catalog is complete for every text the app shows, and every
page rendered in French shows no English text that has a translation."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from babel.messages.pofile import read_po

from core.run_dir import create_run
from core.config import RunConfig
from flask_app import create_app
from tests.conftest import REPO
from tools.i18n import all_texts, js_texts, missing

PO = REPO / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
PAGES = ["/wizard/model", "/wizard/dataset", "/wizard/training", "/wizard/rewards",
         "/wizard/review", "/runs", "/configs", "/runs/a-run", "/runs/a-run/config",
         "/login", "/no-such-page", "/rewards/test", "/test", "/export", "/models", "/datasets"]


def french_catalog() -> dict[str, str]:
    with PO.open("rb") as f:
        return {m.id: m.string for m in read_po(f, locale="fr") if m.id}


class VisibleText(HTMLParser):
    """Text nodes and the attributes a person reads (placeholder, aria-label, title)."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "pre"):
            self.skip += 1
        for name, value in attrs:
            if name in ("placeholder", "aria-label", "title") and value:
                self.texts.append(value.strip())

    def handle_endtag(self, tag):
        if tag in ("script", "style", "pre"):
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.texts.append(" ".join(data.split()))


@pytest.fixture(scope="module")
def french_pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("i18n")
    app = create_app({"ROOT": root, "TESTING": True, "START_JOBS": False})
    create_run(RunConfig(), root / "outputs", run_id="a-run")
    client = app.test_client()
    client.set_cookie("lang", "fr")
    yield {url: client.get(url).get_data(as_text=True) for url in PAGES}
    app.extensions["grpo_studio"].jobs.close()


def test_the_french_catalog_translates_every_text():
    assert missing("fr") == [], "run `make i18n-extract`, then translate the new entries"


def test_the_catalog_and_the_javascript_list_are_up_to_date():
    catalog = french_catalog()
    assert set(all_texts()) <= set(catalog), "run `make i18n-extract`"
    listed = json.loads((REPO / "translations" / "js_strings.json").read_text())
    assert listed == js_texts(), "run `make i18n-extract`"


@pytest.mark.parametrize("url", PAGES)
def test_french_pages_show_no_english_text(french_pages, url):
    catalog = french_catalog()
    english = {msgid for msgid, msgstr in catalog.items() if msgstr != msgid}
    parser = VisibleText()
    parser.feed(french_pages[url])
    leftovers = [t for t in parser.texts if t in english or t.rstrip(" :") in english]
    assert leftovers == []
    assert '<html lang="fr">' in french_pages[url]


@pytest.mark.parametrize("url", PAGES)
def test_french_pages_hand_javascript_french_texts(french_pages, url):
    found = re.search(r'<script id="i18n" type="application/json">(.*?)</script>',
                      french_pages[url], re.S)
    handed = json.loads(found.group(1))
    catalog = french_catalog()
    assert set(handed) == set(js_texts())
    assert all(handed[msgid] == catalog[msgid] for msgid in handed)


def test_every_wizard_help_text_is_shown_translated(french_pages):
    catalog = french_catalog()
    training = french_pages["/wizard/training"]
    assert catalog["Peak learning rate."] in training
    assert "Peak learning rate." not in training


@pytest.mark.parametrize("config, field, french", [
    ({"training": {"learning_rate": 0}}, "training.learning_rate", "doit être supérieur à 0"),
    ({"training": {"optimizer": "adam"}}, "training.optimizer", "valeur inconnue 'adam'"),
    ({"training": {"batch_size": 3}}, "algorithm.num_generations", "doit être divisible"),
    ({"modle": {}}, "modle", "champ inconnu"),
])
def test_validation_messages_are_shown_in_french(tmp_path, config, field, french):
    app = create_app({"ROOT": tmp_path, "TESTING": True, "START_JOBS": False})
    client = app.test_client()
    client.set_cookie("lang", "fr")
    problems = client.post("/api/configs/validate", json={"config": config}).json["problems"]
    shown = {p["field"]: p["message"] for p in problems}
    assert french in shown[field]
    client.set_cookie("lang", "en")
    english = client.post("/api/configs/validate", json={"config": config}).json["problems"]
    assert french not in {p["field"]: p["message"] for p in english}[field]
    app.extensions["grpo_studio"].jobs.close()
