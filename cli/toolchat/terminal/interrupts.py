"""Ctrl-C held off while bounded terminal work is done: delivered right after it, never in the middle."""

from __future__ import annotations

import signal
import threading


class NoInterrupt:
    """Hold SIGINT while one bounded piece of drawing is done (a stream's delta: Ctrl-C between
    printing rows and noting them would print them again or erase them; a call's result panel); it
    is delivered right after. A class rather than a generator: it is entered for every delta."""

    def __enter__(self) -> None:
        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    def __exit__(self, *_: object) -> None:
        if self.old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.old)
