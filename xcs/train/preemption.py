"""SIGTERM (a scheduler's notice before preemption) and SIGINT (Ctrl-C): stop at the next step, saved.

While training, `Preemption` replaces the handlers of both signals by one that only notes the
signal; the loop asks `requested(step)` after every step, and when it is true saves a checkpoint of
that step, writes status.json `interrupted` and raises `Interrupted`, which the command line turns
into exit status 128 + the signal's number (143 for SIGTERM, 130 for SIGINT), as a shell reports a
process ended by that signal. The same command resumes. A second signal while the first is being
handled ends the process at once (as the signal's default would).

With several processes (jax.distributed), JAX's own preemption service notes SIGTERM and
`CheckpointManager.reached_preemption(step)` (a sync point of all processes) says when every
process stops at the same step; this module then leaves SIGTERM to it.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import jax


class Interrupted(Exception):
    """Training stopped on a signal after saving a checkpoint; `exit_status` is 128 + its number."""

    def __init__(self, signum: int, step: int):
        self.signum, self.step = signum, step
        self.exit_status = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name} at step {step}: a checkpoint of step {step} "
                         "was saved; run the same command to resume")


class Preemption:
    """A context that notes SIGTERM/SIGINT instead of dying (main thread only; elsewhere it does nothing)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # a second signal: end now, as its default would
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.signum = signum

    def __enter__(self) -> Preemption:
        if threading.current_thread() is not threading.main_thread():
            return self
        signals = [signal.SIGINT] + ([signal.SIGTERM] if jax.process_count() == 1 else [])
        for s in signals:
            self.previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}

    def requested(self, step: int, manager: Any = None) -> bool:
        """Whether to stop after `step` (every process agrees with several: JAX's preemption sync point)."""
        if self.signum is not None:
            return True
        if manager is not None and jax.process_count() > 1 and manager.reached_preemption(step):
            self.signum = signal.SIGTERM
            return True
        return False
