"""Stop signals (Ctrl-C, SIGTERM, SIGHUP) as one clean KeyboardInterrupt for the runner.

Workers run in a process group of their own, so a terminal's SIGINT reaches only the runner. Its
first stop signal raises KeyboardInterrupt (deferred while a figure is being installed, so no
figure is half-recorded); later ones, such as the copy make forwards, are ignored so the clean-up
finishes. Interrupted carries what was running, waiting and made, for the one closing line.

    with stop_signals_handled():
        with INTERRUPTS.deferred():   # outputs and manifest entry go in together
            ...
"""
from __future__ import annotations

import contextlib
import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupts:
    """Stop signals as one KeyboardInterrupt: the first raises it, unless inside `deferred()`,
    where it waits for the block's end; later ones are ignored, so the clean-up they would cut
    short (a terminal's Ctrl-C and the copy make forwards both arrive) always finishes."""

    def __init__(self):
        self.received: int | None = None
        self.raised = False
        self.depth = 0

    def handle(self, signum, frame) -> None:
        self.received = self.received or signum
        if self.depth == 0:
            self._raise()

    def _raise(self) -> None:
        if not self.raised:
            self.raised = True
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if self.depth == 0 and self.received:
            self._raise()


INTERRUPTS = Interrupts()


@contextlib.contextmanager
def stop_signals_handled():
    """Route SIGINT, SIGTERM and SIGHUP through INTERRUPTS (re-entrant). After an interrupt the
    handler stays, so a late forwarded signal cannot print a traceback on the way out."""
    if signal.getsignal(signal.SIGINT) == INTERRUPTS.handle:
        yield
        return
    previous = {number: signal.signal(number, INTERRUPTS.handle) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        if not INTERRUPTS.received:
            for number, handler in previous.items():
                signal.signal(number, handler)


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal: which figures were running, waiting, and already made."""

    def __init__(self, unfinished: list[str], not_started: int, made: int):
        super().__init__()
        self.unfinished, self.not_started, self.made = unfinished, not_started, made

    def line(self) -> str:
        if len(self.unfinished) == 1:
            text = f"figure {self.unfinished[0]} was not finished; its previous outputs are kept"
        elif self.unfinished:
            text = f"figures {', '.join(self.unfinished)} were not finished; their previous outputs are kept"
        else:
            text = "no figure was running; nothing was changed"
        if self.not_started:
            text += f"; {self.not_started} not started"
        if self.made:
            text += f"; {self.made} made before the interrupt {'is' if self.made == 1 else 'are'} saved"
        return f"interrupted: {text}"
