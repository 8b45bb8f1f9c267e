"""Orbax checkpoints of the train state in <workdir>/checkpoints, one directory per step, verified.

Beside them, `train_seconds.json` records the training time up to each saved step, so that a run
resumed any number of times still reports its whole training time (the state's pytree, and so
every checkpoint already written, stays as it was). An unreadable record is reported and ignored
(the resumed run then reports its time from the resume on).

`digests.json` records the SHA-256 of every file of each checkpoint, written after the save (and
the save only after the step's loss, gradient norm and parameters were found finite). On resume
(`restore_latest`) the newest checkpoint whose files match is restored; a damaged or partial one
(a file changed or missing, or no digest because the run stopped between save and record) is
reported in one line and moved to <workdir>/damaged_checkpoints/, and the next older one is tried.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging as pylogging
import os
import shutil

import jax
import orbax.checkpoint as ocp
from absl import logging

from xcs.train.jsonio import read_json_dict, write_json
from xcs.train.state import TrainState


@contextlib.contextmanager
def _quiet():
    """Orbax logs dozens of INFO lines per save; keep the run's own log readable. Its threads also log each
    failure with a traceback (a full disk: ~110 lines) before the same error reaches the caller, which
    reports it (the command line: one line); those show with XCS_DEBUG=1."""
    level = logging.get_verbosity()
    debugging = os.environ.get("XCS_DEBUG", "") not in ("", "0")
    logging.set_verbosity(min(level, logging.WARNING if debugging else logging.FATAL))  # larger = chattier
    try:
        yield
    finally:
        logging.set_verbosity(level)


DIGESTS_FILE = "digests.json"


def file_digests(directory: str) -> dict[str, str]:
    """{path relative to `directory`: SHA-256 hex} of every file under it."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            out[os.path.relpath(path, directory)] = h.hexdigest()
    return dict(sorted(out.items()))


def _damage(directory: str, recorded: dict[str, str]) -> str | None:
    """What is wrong with a checkpoint directory against its recorded digests (None: intact)."""
    for rel, digest in recorded.items():
        path = os.path.join(directory, rel)
        if not os.path.isfile(path):
            return f"{rel} is missing"
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != digest:
            return f"{rel} differs from what was saved"
    return None


class Checkpointer:
    def __init__(self, directory: str, keep: int):
        # Synchronous saves: the train step donates the state's buffers, and a checkpoint that is
        # on disk when save() returns is what "keeps the last good checkpoint" relies on.
        self.directory = os.path.abspath(directory)
        if os.environ.get("XCS_DEBUG", "") in ("", "0"):  # orbax's failed write tasks, logged again when collected
            pylogging.getLogger("asyncio").setLevel(pylogging.CRITICAL)
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
        with _quiet():
            self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: TrainState) -> None:
        """Saves `state` as checkpoint `step` and records its files' digests (process 0)."""
        with _quiet():
            self.manager.save(step, args=ocp.args.StandardSave(state), force=True)
        if jax.process_index() == 0:
            record = self._digests()
            record = {k: v for k, v in record.items() if k.isdigit() and int(k) in set(self.manager.all_steps())}
            record[str(step)] = file_digests(os.path.join(self.directory, str(step)))
            write_json(os.path.join(self.directory, DIGESTS_FILE), record)

    def _digests(self) -> dict[str, dict[str, str]]:
        return read_json_dict(os.path.join(self.directory, DIGESTS_FILE), "the checkpoints are restored unverified")

    def verify(self, step: int) -> str | None:
        """Why checkpoint `step` cannot be trusted, or None when its files match their recorded digests.

        A run whose record is empty (written before digests were recorded) has every checkpoint trusted.
        """
        record = self._digests()
        if not record:
            return None
        if str(step) not in record:
            return "no digest was recorded for it (the run stopped while it was saved)"
        return _damage(os.path.join(self.directory, str(step)), record[str(step)])

    def restore_latest(self, like: TrainState) -> tuple[int, TrainState]:
        """(step, state) of the newest intact checkpoint, or (0, like) when there is none.

        A damaged or partial newer one is reported (one line each) and moved aside to
        <workdir>/damaged_checkpoints/ (nothing is deleted), and the next older one is tried.
        """
        for step in sorted(self.manager.all_steps(), reverse=True):
            problem = self.verify(step)
            if problem is None:
                try:
                    return step, self.restore(step, like)
                except Exception as e:  # noqa: BLE001 - unverifiable (older) checkpoint that cannot be read
                    if self._digests():
                        raise  # its files are as saved: a restore failure is a bug, not damage
                    problem = f"it cannot be restored ({type(e).__name__}: {' '.join(str(e).split())[:200]})"
            aside = self._set_aside(step)
            logging.warning("checkpoint %s is damaged or partial: %s; moved to %s, falling back to an older one",
                            os.path.join(self.directory, str(step)), problem, aside)
        return 0, like

    def _set_aside(self, step: int) -> str:
        base = os.path.join(os.path.dirname(self.directory), "damaged_checkpoints", str(step))
        target, n = base, 1
        while os.path.lexists(target):
            n += 1
            target = f"{base}-{n}"
        if jax.process_index() == 0:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.move(os.path.join(self.directory, str(step)), target)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"xcs checkpoint {step} set aside")
        self.manager.reload()
        return target

    def restore(self, step: int, like: TrainState) -> TrainState:
        """The state saved at `step`, with the structure, shapes and shardings of `like`."""
        with _quiet():
            return self.manager.restore(step, args=ocp.args.StandardRestore(like))

    def close(self) -> None:
        with _quiet():
            self.manager.wait_until_finished()
            self.manager.close()


TRAIN_SECONDS_FILE = "train_seconds.json"


def record_train_seconds(directory: str, step: int, seconds: float) -> None:
    """Notes that training up to `step` took `seconds` in all (written atomically beside the checkpoints)."""
    path = os.path.join(directory, TRAIN_SECONDS_FILE)
    record = _read_record(path)
    record[str(step)] = seconds
    write_json(path, record)


def train_seconds_at(directory: str, step: int) -> float | None:
    """The training time up to checkpoint `step`, or None for checkpoints written before it was recorded."""
    return _read_record(os.path.join(directory, TRAIN_SECONDS_FILE)).get(str(step))


def _read_record(path: str) -> dict[str, float]:
    return read_json_dict(path, "it is started afresh")  # the training time is then counted from the resume on
