"""Small file helpers used everywhere: atomic JSON writes and resolving a user path inside a root.

Guarantees: `atomic_text_file` and `write_json_atomic` leave either the old or the new file, never a
torn one (temp file in the same folder, fsync, rename). `resolve_inside` is the one helper for a
path that comes from a request: it percent-decodes it first (twice-encoded too), refuses NUL and
control characters, backslashes, drive letters, `..` and hidden (dot) parts, resolves symlinks, and
returns the resolved path, which is inside `root`; otherwise it raises `PathRefused` (a ValueError)
naming the path and why. An absolute path is refused too: a request names a file relative to its
root (callers that hand out absolute paths, such as an upload's `path`, turn them back into names
first).

Does not: check that the path exists, or decide which root a request may reach (callers do).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator
from urllib.parse import unquote


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


class PathRefused(ValueError):
    """A request path that may not be used: what was wrong and the folder it must stay in."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def resolve_inside(root: Path, user_path: str | Path) -> Path:
    """`user_path` (relative to `root`) resolved, symlinks included, and checked to stay inside
    `root`; PathRefused otherwise."""
    root = Path(root).resolve()
    text = _decoded(str(user_path))
    reason = _refusal(text)
    if reason:
        raise PathRefused(f"path {str(user_path)!r} is refused ({reason}); give a path inside "
                          f"{root}")
    candidate = (root / text).resolve()
    if candidate != root and root not in candidate.parents:
        raise PathRefused(f"path {str(user_path)!r} is outside {root}")
    hidden = [part for part in candidate.relative_to(root).parts if part.startswith(".")]
    if hidden:
        raise PathRefused(f"path {str(user_path)!r} is refused (hidden name {hidden[0]!r})")
    return candidate


def _decoded(text: str) -> str:
    """Percent-decoded until stable, so `%2e%2e` and `%252e%252e` are both `..`."""
    for _ in range(3):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def _refusal(text: str) -> str | None:
    """Why `text` may not be used as a path, or None."""
    if not text:
        return "empty"
    if _CONTROL.search(text):
        return "control character"
    if "\\" in text:
        return "backslash"
    if _DRIVE.match(text):
        return "drive letter"
    if text.startswith("/"):
        return "an absolute path"
    if ".." in Path(text).parts:
        return "'..' is outside the folder"
    return None
