"""Small file helpers used everywhere: atomic JSON writes and resolving a user path inside a root.

Guarantees: `atomic_text_file` and `write_json_atomic` leave either the old or the new file, never a
torn one (temp file in the same folder, fsync, rename). `resolve_inside` returns a path that is inside `root` after
resolving symlinks and `..`, or raises ValueError naming the path.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator


@contextmanager
def atomic_text_file(path: Path) -> Iterator[IO[str]]:
    """A UTF-8 text file that appears at `path` only when the block ends without error (temp file
    in the same folder, fsync, rename); on error the temp file is removed and `path` is untouched.
    Newlines are written as given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` as indented JSON to `path` atomically."""
    with atomic_text_file(path) as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")


def read_json(path: Path, default: Any = None) -> Any:
    """Read a JSON file; `default` when it does not exist."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


def resolve_inside(root: Path, user_path: str | Path) -> Path:
    """Resolve `user_path` (relative to `root`) and refuse anything outside `root`."""
    root = Path(root).resolve()
    candidate = (root / user_path).resolve()
    if candidate != root and root not in candidate.parents:
        raise ValueError(f"path {str(user_path)!r} is outside {root}")
    return candidate
