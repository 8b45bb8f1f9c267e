"""SIGTERM (a scheduler's notice before preemption) and SIGINT (Ctrl-C): stop at the next step, saved.

While training, `Preemption` replaces the handlers of both signals by one that only notes the
signal; the loop asks `requested(step)` after every step, and when it is true saves a checkpoint of
that step, writes status.json `interrupted` and raises `Interrupted`, which the command line turns
into exit status 128 + the signal's number (143 for SIGTERM, 130 for SIGINT), as a shell reports a
process ended by that signal. The same command resumes. The command line notes the signals from its
first line on (`install`): one that comes before training stops the run before anything is written
(`stop_if_pending`). A second signal ends the process at once (as the signal's default would).

With several processes (jax.distributed), JAX's own preemption service notes SIGTERM and
`CheckpointManager.reached_preemption(step)` (a sync point of all processes) says when every
process stops at the same step; this module then leaves SIGTERM to it.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any


class Interrupted(Exception):
    """Stopped on a signal: after saving a checkpoint of `step`, or (step None) before training started."""

    def __init__(self, signum: int, step: int | None):
        self.signum, self.step = signum, step
        self.exit_status = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(
            f"interrupted by {name} at step {step}: a checkpoint of step {step} was saved; run the same command to "
            "resume" if step is not None else f"interrupted by {name} before training started; nothing of the run "
            "was written")


_pending: list[int] = []  # the signals noted, first first


def _note(signum: int, frame: Any) -> None:
    if _pending:  # a second signal: end now, as its default would
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _pending.append(signum)


def _signals() -> list[int]:
    import jax

    return [signal.SIGINT] + ([signal.SIGTERM] if jax.process_count() == 1 else [])


def install() -> None:
    """From the command line's first line on, SIGTERM/SIGINT are noted, never raised: a KeyboardInterrupt
    raised while modules load is swallowed by a garbage-collector callback or turned into an ImportError.
    A signal noted before training stops the run there (`stop_if_pending`), one during training after a
    checkpoint; one after training lets the run finish writing its results. Signals that are ignored (a
    background job's SIGINT, nohup) stay ignored."""
    if threading.current_thread() is not threading.main_thread():
        return
    for s in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(s) != signal.SIG_IGN:
            signal.signal(s, _note)


def pending() -> int | None:
    """The first signal noted and not handled yet, or None."""
    return _pending[0] if _pending else None


def stop_if_pending() -> None:
    """Raises Interrupted (step None) if a signal came before training started."""
    if _pending:
        signum = _pending[0]
        _pending.clear()
        raise Interrupted(signum, None)


class Preemption:
    """A context that notes SIGTERM/SIGINT instead of dying (main thread only; elsewhere it does nothing)."""

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}

    @property
    def signum(self) -> int | None:
        return _pending[0] if _pending else None

    def __enter__(self) -> Preemption:
        if threading.current_thread() is not threading.main_thread():
            return self
        for s in _signals():  # with several processes SIGTERM is JAX's preemption service's
            if signal.getsignal(s) == signal.SIG_IGN:  # e.g. SIGINT of a background job or nohup: stays ignored
                continue
            self.previous[s] = signal.signal(s, _note)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}
        _pending.clear()  # handled (Interrupted), or it came after training: the run finished

    def requested(self, step: int, manager: Any = None) -> bool:
        """Whether to stop after `step` (every process agrees with several: JAX's preemption sync point)."""
        if _pending:
            return True
        import jax

        if manager is not None and jax.process_count() > 1 and manager.reached_preemption(step):
            _pending.append(signal.SIGTERM)
            return True
        return False
