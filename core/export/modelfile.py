"""The Ollama `Modelfile` beside each GGUF: FROM (and ADAPTER), TEMPLATE in Go-template syntax
equivalent to the model's chat template, stop tokens, the system prompt the run trained with, and
PARAMETERs.

The Jinja chat template is not translated; it is recognised. Each known family (ChatML, Llama 3)
renders sample conversations in Python; the family whose renderings equal the tokenizer's is
chosen, along with the default system prompt the template adds when a conversation has none.
Then the emitted TEMPLATE, read back from the written file, is rendered by core/export/gotemplate.py
the way Ollama fills it (system messages kept in .Messages and joined into .System, the
Modelfile's SYSTEM prepended when a conversation has none) and compared with the tokenizer's
rendering for several conversations.

Guarantees: a Modelfile whose TEMPLATE does not render exactly what the tokenizer renders is an
error; for an unknown template family the Modelfile has no TEMPLATE (Ollama then reads the GGUF's
own template) and `template_matches` is None. Does not: run Ollama.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from core.export.gotemplate import render
from core.export.request import ExportError

PROBE = "\x00probe\x00"
SAMPLES = [
    [{"role": "user", "content": "What is 2 + 2?"}],
    [{"role": "system", "content": "Answer briefly."},
     {"role": "user", "content": "Name a colour.\nOnly one."}],
    [{"role": "system", "content": "Be exact."}, {"role": "user", "content": "3 * 4?"},
     {"role": "assistant", "content": "<think>3 fours</think><answer>12</answer>"},
     {"role": "user", "content": "And {5} * 4?"}],
]


@dataclass(frozen=True)
class ChatFamily:
    name: str
    turn: Callable[[str, str], str]      # (role, content) -> one rendered message
    generation_prompt: str
    end_of_turn: str


FAMILIES = (
    ChatFamily("chatml", lambda r, c: f"<|im_start|>{r}\n{c}<|im_end|>\n",
               "<|im_start|>assistant\n", "<|im_end|>"),
    ChatFamily("llama3", lambda r, c: f"<|start_header_id|>{r}<|end_header_id|>\n\n{c}<|eot_id|>",
               "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
)


@dataclass(frozen=True)
class ChatFormat:
    family: ChatFamily
    default_system: str | None     # what the template adds when a conversation has no system

    def render(self, messages: list[dict[str, str]]) -> str:
        if self.default_system is not None and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": self.default_system}, *messages]
        return "".join(self.family.turn(m["role"], m["content"]) for m in messages) + \
            self.family.generation_prompt

    def go_template(self) -> str:
        turn = self.family.turn("{{ .Role }}", "{{ .Content }}")
        default = "" if self.default_system is None else \
            "{{- if not .System }}" + self.family.turn("system", self.default_system) + \
            "{{ end }}\n"
        return f"{default}{{{{- range .Messages }}}}{turn}{{{{ end }}}}" \
               f"{self.family.generation_prompt}"


def hf_render(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The tokenizer's rendering, less the BOS its template writes itself (llama.cpp and Ollama
    add BOS when they tokenize, so their templates leave it out)."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    bos = tokenizer.bos_token
    writes_bos = bos and "bos_token" in (tokenizer.chat_template or "")
    return text[len(bos):] if writes_bos and text.startswith(bos) else text


def detect_format(tokenizer: Any) -> ChatFormat | None:
    with_system = [{"role": "system", "content": PROBE}, {"role": "user", "content": PROBE}]
    user_only = [{"role": "user", "content": PROBE}]
    for family in FAMILIES:
        plain = ChatFormat(family, None)
        try:
            if hf_render(tokenizer, with_system) != plain.render(with_system):
                continue
            rendered = hf_render(tokenizer, user_only)
        except Exception:  # noqa: BLE001 - a template that rejects the probe is not this family
            continue
        if rendered == plain.render(user_only):
            return plain
        pattern = re.escape(family.turn("system", "\x01")).replace("\x01", "(.*?)")
        found = re.match(pattern, rendered, re.DOTALL)
        if found and ChatFormat(family, found.group(1)).render(user_only) == rendered:
            return ChatFormat(family, found.group(1))
    return None


def ollama_values(messages: list[dict[str, str]], system: str | None) -> dict[str, Any]:
    """What Ollama gives the template: the Modelfile's SYSTEM prepended when the conversation has
    no system message; consecutive messages of one role merged; system messages joined."""
    if system and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system}, *messages]
    merged: list[dict[str, str]] = []
    for m in messages:
        if merged and merged[-1]["Role"] == m["role"]:
            merged[-1]["Content"] += "\n\n" + m["content"]
        else:
            merged.append({"Role": m["role"], "Content": m["content"]})
    systems = [m["content"] for m in messages if m["role"] == "system"]
    return {"System": "\n\n".join(systems), "Messages": merged, "Tools": None}


def quoted(text: str, what: str) -> str:
    if '"""' in text:
        raise ExportError(f"the {what} contains '\"\"\"', which an Ollama Modelfile cannot hold")
    return f'"""{text}"""'


def stop_tokens(tokenizer: Any, fmt: ChatFormat | None) -> list[str]:
    found = [fmt.family.end_of_turn] if fmt else []
    if tokenizer.eos_token and tokenizer.eos_token not in found:
        found.append(tokenizer.eos_token)
    return found


def modelfile_text(gguf_name: str, tokenizer: Any, system_prompt: str | None,
                   context_length: int, adapter_name: str | None = None) -> str:
    fmt = detect_format(tokenizer)
    lines = ["# Ollama Modelfile written by GRPO Studio: ollama create NAME -f Modelfile",
             f"FROM ./{gguf_name}"]
    if adapter_name:
        lines.append(f"ADAPTER ./{adapter_name}")
    if fmt:
        lines.append(f"# chat template: {fmt.family.name}, as in the tokenizer's")
        lines.append(f"TEMPLATE {quoted(fmt.go_template(), 'chat template')}")
    else:
        lines.append("# chat template: not a known family; Ollama reads the GGUF's own template")
    if system_prompt:
        lines.append(f"SYSTEM {quoted(system_prompt, 'system prompt')}")
    lines += [f'PARAMETER stop "{s}"' for s in stop_tokens(tokenizer, fmt)]
    lines += ["PARAMETER temperature 0.6", "PARAMETER top_p 0.9",
              f"PARAMETER num_ctx {min(context_length, 4096)}"]
    return "\n".join(lines) + "\n"


def read_block(text: str, keyword: str) -> str | None:
    found = re.search(rf'^{keyword} """(.*?)"""', text, re.MULTILINE | re.DOTALL)
    return found.group(1) if found else None


def verify_modelfile(path: Path, tokenizer: Any) -> dict[str, Any]:
    """Render the written TEMPLATE (+ SYSTEM) for the sample conversations as Ollama would and
    compare with the tokenizer's chat template; ExportError on the first difference."""
    text = path.read_text(encoding="utf-8")
    template, system = read_block(text, "TEMPLATE"), read_block(text, "SYSTEM")
    stops = re.findall(r'^PARAMETER stop "(.*)"$', text, re.MULTILINE)
    if template is None:
        return {"template_matches": None, "template": "from the GGUF", "stop": stops}
    for messages in SAMPLES:
        expected = hf_render(tokenizer, ([{"role": "system", "content": system}] if system and
                                         messages[0]["role"] != "system" else []) + messages)
        got = render(template, ollama_values(messages, system))
        if got != expected:
            raise ExportError(f"the Modelfile's TEMPLATE renders {got!r} where the tokenizer's "
                              f"chat template renders {expected!r}")
    family = re.search(r"^# chat template: (\S+)", text, re.MULTILINE)
    return {"template_matches": True, "template": family.group(1).rstrip(",") if family else None,
            "conversations_compared": len(SAMPLES), "stop": stops,
            "system_prompt": system is not None}
