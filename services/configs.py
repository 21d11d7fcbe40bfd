"""Saved configurations and the shipped examples.

Guarantees: a saved config's name is a label, never a path: the file is `configs/saved/<id>.json`
with a server-chosen id derived from the name, resolved inside the folder (a symlink leading out
is refused, core.files.resolve_inside), written atomically, holding `{"name", "saved_at",
"config"}`; saving the same name again replaces it; a config is validated before it is saved and
saved exactly as validated, so starting from it reproduces it. Shipped examples
(`configs/examples/*.json`) are listed as `examples/<stem>` and are read-only.

Does not: import Flask; check that the model or dataset a config names exists.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from core.config import ConfigError, RunConfig, validate_config
from core.files import read_json, resolve_inside, write_json_atomic
from core.run_dir import now_iso

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "configs" / "examples"
EXAMPLE_PREFIX = "examples/"
MAX_NAME = 80


class ConfigNotFound(LookupError):
    pass


class ConfigReadOnly(PermissionError):
    pass


def check_name(name: Any) -> str:
    """A usable label: 1-80 printable characters, not in the examples' namespace."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError([{"field": "name", "message": "give the config a name"}])
    name = name.strip()
    if len(name) > MAX_NAME or any(not ch.isprintable() for ch in name):
        raise ConfigError([{"field": "name", "message":
                            f"use at most {MAX_NAME} printable characters"}])
    if name.startswith(EXAMPLE_PREFIX):
        raise ConfigError([{"field": "name", "message":
                            f"names starting with {EXAMPLE_PREFIX!r} are the shipped examples'"}])
    return name


def file_id(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "config"
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"


class ConfigLibrary:
    """Saved configs under `saved_dir`, plus the shipped examples."""

    def __init__(self, saved_dir: str | Path, examples_dir: Path = EXAMPLES_DIR):
        self.saved_dir = Path(saved_dir)
        self.examples_dir = examples_dir

    def save(self, name: Any, config: Any) -> dict[str, Any]:
        """Validate and store; the stored entry."""
        name = check_name(name)
        cfg: RunConfig = validate_config(config)
        entry = {"name": name, "saved_at": now_iso(), "config": cfg.model_dump(mode="json")}
        write_json_atomic(self._saved_path(name), entry)
        return entry

    def load(self, name: str) -> dict[str, Any]:
        if name.startswith(EXAMPLE_PREFIX):
            path = self._example_path(name)
            config = json.loads(path.read_text(encoding="utf-8"))
            return {"name": name, "config": config, "read_only": True}
        entry = read_json(self._saved_path(name))
        if not entry or entry.get("name") != name:
            raise ConfigNotFound(f"no saved config named {name!r}")
        return {**entry, "read_only": False}

    def delete(self, name: str) -> None:
        if name.startswith(EXAMPLE_PREFIX):
            raise ConfigReadOnly(f"{name!r} is a shipped example and cannot be deleted")
        path = self._saved_path(name)
        entry = read_json(path)
        if not entry or entry.get("name") != name:
            raise ConfigNotFound(f"no saved config named {name!r}")
        path.unlink()

    def list(self) -> dict[str, list[dict[str, Any]]]:
        saved = []
        for path in sorted(self.saved_dir.glob("*.json")):
            entry = read_json(path, default={}) or {}
            if isinstance(entry.get("name"), str) and isinstance(entry.get("config"), dict):
                saved.append(_listing(entry["name"], entry["config"], entry.get("saved_at"),
                                      read_only=False))
        saved.sort(key=lambda e: e["saved_at"] or "", reverse=True)
        examples = [_listing(EXAMPLE_PREFIX + p.stem,
                             json.loads(p.read_text(encoding="utf-8")), None, read_only=True)
                    for p in sorted(self.examples_dir.glob("*.json"))]
        return {"saved": saved, "examples": examples}

    def _saved_path(self, name: str) -> Path:
        """The file of a saved config: a server-chosen id, resolved inside the folder (a symlink
        leading out of it is refused as ValueError)."""
        return resolve_inside(self.saved_dir, f"{file_id(name)}.json")

    def _example_path(self, name: str) -> Path:
        stem = name[len(EXAMPLE_PREFIX):]
        if not re.fullmatch(r"[A-Za-z0-9_-]+", stem):
            raise ConfigNotFound(f"no shipped example named {name!r}")
        path = resolve_inside(self.examples_dir, f"{stem}.json")
        if not path.is_file():
            raise ConfigNotFound(f"no shipped example named {name!r}")
        return path


def _listing(name: str, config: dict[str, Any], saved_at: str | None,
             read_only: bool) -> dict[str, Any]:
    algorithm = config.get("algorithm") or {}
    return {"name": name, "description": config.get("description", ""), "saved_at": saved_at,
            "read_only": read_only, "model": (config.get("model") or {}).get("name", "default"),
            "algorithm": algorithm.get("name", "grpo"), "variant": algorithm.get("variant")}
