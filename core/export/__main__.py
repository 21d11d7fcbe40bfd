"""The export worker: `python -m core.export EXPORT_DIR` runs the export its export.json describes.

Exit status 0 when it ends done, 1 when it ends failed (export.json's `error` says what to fix;
the traceback is on stderr), 2 when EXPORT_DIR is not an export folder. SIGTERM ends it failed
("stopped"), its child tools with it.
"""
from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from core.export.request import STATE_FILE


def _stop(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m core.export EXPORT_DIR", file=sys.stderr)
        return 2
    folder = Path(args[0])
    if not (folder / STATE_FILE).is_file():
        print(f"{folder} is not an export folder (no {STATE_FILE})", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _stop)
    from core.export.runner import run_export
    try:
        state = run_export(folder)
    except KeyboardInterrupt:
        return 1
    return 0 if state["status"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
