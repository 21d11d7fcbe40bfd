"""A tiny renderer for the subset of Go's text/template that our Ollama Modelfiles use, so an
export can check that its TEMPLATE renders the same prompt as the tokenizer's chat template.

Supported: text; `{{ .Field }}`, `{{ $.Field }}`, `{{ . }}`, string literals; `if` / `else if` /
`else` / `end`; `range` over a list (the dot becomes the element); the functions `eq`, `ne`, `not`,
`and`, `or` with parenthesised arguments; the `{{-` / `-}}` whitespace trims; `{{/* comments */}}`.
Guarantees: within that subset it renders as Go does; anything else raises TemplateError (never a
silent guess). Does not: variables other than `$`, pipelines with `|`, other functions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ACTION = re.compile(r"\{\{(-\s+|\s*)(.*?)(\s+-|\s*)\}\}", re.DOTALL)
TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\(|\)|\$?\.?[A-Za-z_][A-Za-z0-9_]*|\$|\.)')


class TemplateError(ValueError):
    pass


@dataclass
class Block:
    kind: str                       # "root" | "if" | "range"
    branches: list[tuple[str | None, list[Any]]] = field(default_factory=list)


def parse(source: str) -> Block:
    root = Block("root", [(None, [])])
    stack = [root]
    pos, trim_next = 0, False
    for m in ACTION.finditer(source):
        text = source[pos:m.start()]
        text = text.lstrip() if trim_next else text
        text = text.rstrip() if m.group(1).startswith("-") else text
        if text:
            stack[-1].branches[-1][1].append(text)
        pos, trim_next = m.end(), m.group(3).endswith("-")
        _action(m.group(2).strip(), stack)
    tail = source[pos:].lstrip() if trim_next else source[pos:]
    if tail:
        stack[-1].branches[-1][1].append(tail)
    if len(stack) != 1:
        raise TemplateError(f"unclosed {{{{ {stack[-1].kind} }}}}")
    return root


def _action(action: str, stack: list[Block]) -> None:
    word, _, rest = action.partition(" ")
    if action.startswith("/*"):
        return
    if word in ("if", "range"):
        block = Block(word, [(rest.strip(), [])])
        stack[-1].branches[-1][1].append(block)
        stack.append(block)
    elif word == "else":
        if stack[-1].kind != "if":
            raise TemplateError("{{ else }} outside {{ if }}")
        cond = rest.strip()
        if cond and not cond.startswith("if "):
            raise TemplateError(f"unsupported {{{{ {action} }}}}")
        stack[-1].branches.append((cond[3:].strip() if cond else None, []))
    elif word == "end":
        if len(stack) == 1:
            raise TemplateError("{{ end }} without a block")
        stack.pop()
    else:
        stack[-1].branches[-1][1].append(("print", action))


def render(source: str, values: dict[str, Any]) -> str:
    out: list[str] = []
    _render(parse(source).branches[0][1], values, values, out)
    return "".join(out)


def _render(nodes: list[Any], dot: Any, root: dict[str, Any], out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, tuple):
            out.append(_text(evaluate(node[1], dot, root)))
        elif node.kind == "range":
            for item in evaluate(node.branches[0][0], dot, root) or []:
                _render(node.branches[0][1], item, root, out)
        else:
            for cond, body in node.branches:
                if cond is None or truthy(evaluate(cond, dot, root)):
                    _render(body, dot, root, out)
                    break


def truthy(value: Any) -> bool:
    return bool(value) if value is not None else False


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def evaluate(expr: str, dot: Any, root: dict[str, Any]) -> Any:
    tokens = TOKEN.findall(expr)
    if "".join(tokens).replace(" ", "") != expr.replace(" ", ""):
        raise TemplateError(f"unsupported expression {expr!r}")
    value, rest = _call(tokens, dot, root)
    if rest:
        raise TemplateError(f"unexpected {rest[0]!r} in {expr!r}")
    return value


FUNCTIONS = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "not": lambda a: not truthy(a),
             "and": lambda *a: next((x for x in a if not truthy(x)), a[-1]),
             "or": lambda *a: next((x for x in a if truthy(x)), a[-1])}


def _call(tokens: list[str], dot: Any, root: dict[str, Any]) -> tuple[Any, list[str]]:
    if tokens and tokens[0] in FUNCTIONS:
        args, rest = [], tokens[1:]
        while rest and rest[0] != ")":
            arg, rest = _term(rest, dot, root)
            args.append(arg)
        return FUNCTIONS[tokens[0]](*args), rest
    return _term(tokens, dot, root)


def _term(tokens: list[str], dot: Any, root: dict[str, Any]) -> tuple[Any, list[str]]:
    if not tokens:
        raise TemplateError("missing value")
    head, rest = tokens[0], tokens[1:]
    if head == "(":
        value, rest = _call(rest, dot, root)
        if not rest or rest[0] != ")":
            raise TemplateError("missing )")
        return value, rest[1:]
    if head.startswith('"'):
        return bytes(head[1:-1], "utf-8").decode("unicode_escape"), rest
    if head in (".", "$"):
        return (dot if head == "." else root), rest
    if head.startswith(("$.", ".")):
        scope, key = (root, head[2:]) if head.startswith("$.") else (dot, head[1:])
        if not isinstance(scope, dict) or key not in scope:
            raise TemplateError(f"no field {head}")
        return scope[key], rest
    raise TemplateError(f"unsupported {head!r}")
