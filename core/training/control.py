"""Stop and pause requests reaching a training loop from signals (or from code, in tests).

SIGTERM and SIGINT ask to stop (save a checkpoint, end `cancelled`); SIGUSR1 asks to pause (save,
exit, `paused`). A second SIGINT while a stop is pending raises KeyboardInterrupt at once, for a
person at a terminal who does not want to wait for the checkpoint. The request is honoured at the
end of the current optimizer step (a step is never cut in half).
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

STOP, PAUSE = "stop", "pause"


class RunControl:
    def __init__(self) -> None:
        self.request: str | None = None

    def ask(self, request: str) -> None:
        if request not in (STOP, PAUSE):
            raise ValueError(f"unknown request {request!r}")
        if self.request != STOP:  # a stop is never downgraded to a pause
            self.request = request

    @contextmanager
    def signal_handlers(self) -> Iterator["RunControl"]:
        """Route the signals to this control while inside; the previous handlers come back after.
        Outside the main thread signals cannot be caught, and nothing is installed."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        handlers = {signal.SIGTERM: lambda *_: self.ask(STOP),
                    signal.SIGUSR1: lambda *_: self.ask(PAUSE), signal.SIGINT: self._on_interrupt}
        previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_interrupt(self, *_: Any) -> None:
        if self.request == STOP:
            raise KeyboardInterrupt
        self.ask(STOP)
