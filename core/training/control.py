"""Stop and pause requests reaching a training loop from signals (or from code, in tests).

SIGTERM and SIGINT ask to stop (save a checkpoint, end `cancelled`); SIGUSR1 asks to pause (save,
exit, `paused`). A second SIGINT while a stop is pending raises KeyboardInterrupt at once, for a
person at a terminal who does not want to wait for the checkpoint. The request is honoured at the
end of the current optimizer step (a step is never cut in half).
"""
from __future__ import annotations

import signal
from typing import Any

STOP, PAUSE = "stop", "pause"


class RunControl:
    def __init__(self) -> None:
        self.request: str | None = None

    def ask(self, request: str) -> None:
        if request not in (STOP, PAUSE):
            raise ValueError(f"unknown request {request!r}")
        if self.request != STOP:  # a stop is never downgraded to a pause
            self.request = request

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.ask(STOP))
        signal.signal(signal.SIGUSR1, lambda *_: self.ask(PAUSE))
        signal.signal(signal.SIGINT, self._on_interrupt)

    def _on_interrupt(self, *_: Any) -> None:
        if self.request == STOP:
            raise KeyboardInterrupt
        self.ask(STOP)
