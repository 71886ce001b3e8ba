"""SIGINT and SIGTERM as an exception, so an interrupted comparison can end its runs KILLED before it exits.

Python turns SIGINT into KeyboardInterrupt, which Lightning answers with ``sys.exit(1)`` (and SIGTERM kills
without any Python code running at all). ``Interrupted`` is neither: Lightning treats it as any other exception
(its loggers are finalised, so buffered metrics are written) and re-raises it, the child run and then the parent
run are ended KILLED, and the process exits with 128 + the signal number, as a shell expects.

A handler's exception can be lost: when the signal arrives while a finalizer or a weakref callback runs (the
garbage collector runs them at any moment), Python prints "Exception ignored in ..." and carries on. So every
handler also records the signal, and the training loop calls ``raise_if_signalled`` after each batch: a lost
exception is raised again there, one batch later.
"""

from __future__ import annotations

import signal

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)

# The first handled signal this process received, or None.
_received_signal: int | None = None


class Interrupted(BaseException):
    """A BaseException, like KeyboardInterrupt: ``except Exception`` blocks must not swallow it."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def record_signal(signum: int) -> None:
    """Remember ``signum`` for ``raise_if_signalled``; every handler calls this before it raises."""
    global _received_signal
    if _received_signal is None:
        _received_signal = signum


def raise_if_signalled() -> None:
    """Raise ``Interrupted`` if a handled signal arrived, in case the handler's own exception was lost."""
    if _received_signal is not None:
        raise Interrupted(_received_signal)


def _raise_interrupted(signum, frame) -> None:
    record_signal(signum)
    # A second signal during the clean-up stops the process at once: the user insisted.
    for handled in HANDLED_SIGNALS:
        signal.signal(handled, signal.SIG_DFL)
    raise Interrupted(signum)


def raise_on_signals() -> None:
    """From now on SIGINT and SIGTERM raise ``Interrupted`` in the main thread."""
    for handled in HANDLED_SIGNALS:
        signal.signal(handled, _raise_interrupted)
