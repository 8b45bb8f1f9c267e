"""Orbax checkpoints of the train state in <workdir>/checkpoints, one directory per step.

Beside them, `train_seconds.json` records the training time up to each saved step, so that a run
resumed any number of times still reports its whole training time (the state's pytree, and so
every checkpoint already written, stays as it was).
"""

from __future__ import annotations

import contextlib
import json
import os

import orbax.checkpoint as ocp
from absl import logging

from xcs.train.state import TrainState


@contextlib.contextmanager
def _quiet():
    """Orbax logs dozens of INFO lines per save; keep the run's own log readable."""
    level = logging.get_verbosity()
    logging.set_verbosity(min(level, logging.WARNING))  # absl: larger verbosity = chattier
    try:
        yield
    finally:
        logging.set_verbosity(level)


class Checkpointer:
    def __init__(self, directory: str, keep: int):
        # Synchronous saves: the train step donates the state's buffers, and a checkpoint that is
        # on disk when save() returns is what "keeps the last good checkpoint" relies on.
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True, enable_async_checkpointing=False)
        with _quiet():
            self.manager = ocp.CheckpointManager(os.path.abspath(directory), options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: TrainState) -> None:
        with _quiet():
            self.manager.save(step, args=ocp.args.StandardSave(state), force=True)

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
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, path)


def train_seconds_at(directory: str, step: int) -> float | None:
    """The training time up to checkpoint `step`, or None for checkpoints written before it was recorded."""
    return _read_record(os.path.join(directory, TRAIN_SECONDS_FILE)).get(str(step))


def _read_record(path: str) -> dict[str, float]:
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)
