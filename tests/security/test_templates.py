"""Templates and markup: a user's chat template renders in Jinja's sandboxed environment wherever
it is rendered (the format preview, training's tokenizer, llama.cpp for GGUF models); every page is
autoescaped and no template marks data safe; the pages' scripts insert data as text only (the
browser checks are in test_templates_in_browser.py)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.config import TemplateSection, validate_config
from core.run_dir import create_run
from tests.conftest import REPO, tiny_config

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",           # from a string to every class
    "{{ messages.__class__.__init__.__globals__ }}",             # a function's globals
    "{% for m in messages %}{{ m.items.__self__.__class__.__base__.__subclasses__() }}"
    "{% endfor %}",
]
HARMLESS = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
HOSTILE = '<img src=x onerror="document.body.dataset.pwned=1"><script>alert(1)</script>'
MESSAGES = [{"role": "user", "content": "What is 1 + 1?"}]
SCRIPTS = REPO / "static" / "js"
HTML_SINKS = re.compile(r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|"
                        r"\beval\(|new Function\(|\.html\(")


def format_request(chat_template: str) -> dict:
    return {"config": {"model": {"name": "default"},
                       "dataset": {"source": "builtin", "path": "arithmetic"},
                       "template": {"system_prompt": "", "chat_template": chat_template}}}


# ---- the sandbox ---------------------------------------------------------------------------------
@pytest.mark.parametrize("chat_template", ESCAPES)
def test_the_format_preview_renders_a_chat_template_sandboxed(client, chat_template):
    response = client.post("/api/datasets/format", json=format_request(chat_template))
    assert response.status_code == 400 and response.json["field"] == "template.chat_template"
    assert "unsafe" in response.json["error"]


def test_the_format_preview_renders_a_harmless_chat_template(client):
    response = client.post("/api/datasets/format", json=format_request(HARMLESS))
    assert response.status_code == 200 and response.json["prompt"].startswith("<user>")


@pytest.mark.parametrize("chat_template", ESCAPES)
def test_training_renders_a_chat_template_sandboxed(tiny_model, chat_template):
    from jinja2.exceptions import SecurityError
    from transformers import AutoTokenizer

    from core.datasets import format_prompt
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    with pytest.raises(SecurityError):
        format_prompt(tokenizer, TemplateSection(chat_template=chat_template), MESSAGES)


@pytest.mark.parametrize("chat_template", ESCAPES)
def test_a_gguf_models_chat_template_renders_sandboxed(chat_template):
    from jinja2.exceptions import SecurityError
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    formatter = Jinja2ChatFormatter(chat_template, eos_token="</s>", bos_token="<s>")
    with pytest.raises(SecurityError):
        formatter(messages=MESSAGES)


# ---- autoescaping --------------------------------------------------------------------------------
def test_every_page_template_is_autoescaped(app):
    names = [p.name for p in (REPO / "templates").rglob("*.html")]
    assert names and all(app.jinja_env.autoescape(name) for name in names)


def test_no_template_turns_escaping_off_or_marks_data_safe():
    found = [f"{p.relative_to(REPO)}: {m.group(0)}"
             for p in (REPO / "templates").rglob("*.html")
             for m in re.finditer(r"\|\s*safe\b|autoescape\s+false|Markup\(",
                                  p.read_text(encoding="utf-8"))]
    assert found == []


@pytest.mark.parametrize("url", ["/runs/{run_id}", "/runs/{run_id}/config", "/export",
                                 "/runs"])
def test_pages_show_a_runs_data_as_text(app, client, url):
    config = tiny_config(Path("/nonexistent"), output={"name": HOSTILE},
                         template={"system_prompt": HOSTILE})
    run = create_run(validate_config(config), app.config["OUTPUTS_DIR"], run_id="hostile")
    (run.path / "adapter").mkdir()   # so the export page lists it
    page = client.get(url.format(run_id=run.run_id)).get_data(as_text=True)
    assert "<script>alert(1)" not in page and "<img src=x" not in page


def test_page_scripts_insert_data_as_text_only():
    found = [f"{p.relative_to(REPO)}:{n}: {line.strip()}"
             for p in sorted(SCRIPTS.glob("*.js"))
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if HTML_SINKS.search(line)]
    assert found == []
