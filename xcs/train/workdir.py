"""A workdir belongs to one config and one process (issue 27).

- `config.json` is the run's resolved config and `fingerprint.json` the SHA-256 of its canonical JSON
  (sorted keys, no spaces), both written at the first start, after the config was validated and the
  data loaded, before training. `check` compares a new config with them: the same config resumes (or,
  when `results.json` is there, is reported finished); another config is refused naming the keys that
  differ. Keys that cannot change results (RESULT_NEUTRAL_KEYS) may differ and do not enter the
  fingerprint. A key only the earlier config.json has (removed from configs/default.py since) is not a
  difference; a key only the new config has is one when it is set away from its default.
- `start_over` moves an earlier run aside (`<workdir>.old-<n>`) or deletes it, as the user chose
  (`--overwrite=move|delete`).
- `WorkdirLock` is `<workdir>/lock`, held with flock(2) and naming its holder (pid, host, start time):
  a second process is refused naming the holder; a lock left by a dead process (the kernel drops its
  flock) is taken over with a warning. Only process 0 of a multi-process run takes it: the processes of
  one run share the workdir by design.
- `write_status` records in `status.json` whether the run is running, interrupted (a signal), failed
  (a non-finite loss) or finished.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import time
from typing import Any

from absl import logging

from xcs.config import CONSOLE_ONLY_KEYS, flatten
from xcs.core.errors import UserError
from xcs.train.jsonio import write_json

# Keys that cannot change a run's results (its parameters, metrics and predictions): the console, how
# often metrics.jsonl / TensorBoard get a line or an evaluation, and which steps are checkpointed (a
# resumed run ends exactly where an uninterrupted one does). A run may be resumed with other values of
# these; every other key belongs to the run.
RESULT_NEUTRAL_KEYS = (*CONSOLE_ONLY_KEYS, "train.log_every", "train.eval_every", "train.checkpoint_every",
                       "train.keep_checkpoints")

CONFIG_FILE = "config.json"
FINGERPRINT_FILE = "fingerprint.json"
RESULTS_FILE = "results.json"
STATUS_FILE = "status.json"
LOCK_FILE = "lock"
OVERWRITE_CHOICES = ("move", "delete")


class WorkdirError(UserError):
    """The workdir holds another config's run, is in use, or cannot be read."""


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    """The config as config.json holds it (tuples as lists)."""
    return json.loads(json.dumps(config))


def fingerprint(config: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the config without RESULT_NEUTRAL_KEYS."""
    flat = {k: v for k, v in flatten(_plain(config)).items() if k not in RESULT_NEUTRAL_KEYS}
    return hashlib.sha256(json.dumps(flat, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _defaults() -> dict[str, Any] | None:
    try:
        from configs import default
    except ImportError:  # xcs used without its configs package: a key new since is judged a difference
        return None
    return flatten(_plain(default.get_config().to_dict()))


def differences(before: dict[str, Any], now: dict[str, Any], defaults: dict[str, Any] | None = None) -> list[str]:
    """`key (old -> new)` for each key whose value differs between two configs (nested dicts)."""
    a, b = flatten(_plain(before)), flatten(_plain(now))
    out = [f"{k} ({a[k]!r} -> {b[k]!r})" for k in sorted(a.keys() & b.keys())
           if k not in RESULT_NEUTRAL_KEYS and a[k] != b[k]]
    for k in sorted(b.keys() - a.keys()):
        if k in RESULT_NEUTRAL_KEYS:
            continue
        if defaults is None or k not in defaults or defaults[k] != b[k]:
            out.append(f"{k} (not in the earlier config, now {b[k]!r})")
    return out


def _read_json(path: str, what: str) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise WorkdirError(f"{path}: {what} is not readable JSON ({e}); move the workdir aside "
                           "(--overwrite=move) or choose another --workdir") from e


def next_old_name(workdir: str) -> str:
    """`<workdir>.old-<n>` for the first n not taken."""
    base = os.path.normpath(workdir)
    n = 1
    while os.path.lexists(f"{base}.old-{n}"):
        n += 1
    return f"{base}.old-{n}"


def has_run(workdir: str) -> bool:
    """Whether the workdir holds anything of a run (its config, checkpoints, metrics or results)."""
    return any(os.path.lexists(os.path.join(workdir, name))
               for name in (CONFIG_FILE, "checkpoints", "metrics.jsonl", RESULTS_FILE))


def check(workdir: str, config: dict[str, Any]) -> str:
    """What the workdir is for `config`: "new", "resume" (same config, unfinished) or "finished".

    Raises WorkdirError naming the keys that differ when it holds another config's run; reads only.
    """
    path = os.path.join(workdir, CONFIG_FILE)
    how = (f"rerun with --overwrite=move (the earlier run is kept as {next_old_name(workdir)}) or "
           f"--overwrite=delete to start over, or choose another --workdir")
    if not os.path.exists(path):
        if os.path.lexists(os.path.join(workdir, "checkpoints")):
            raise WorkdirError(f"workdir {workdir} holds checkpoints but no {CONFIG_FILE}, so which config they "
                               f"belong to is unknown; {how}")
        return "new"
    before = _read_json(path, "the run's config")
    if not isinstance(before, dict):
        raise WorkdirError(f"{path}: the run's config is not a JSON object; {how}")
    recorded = os.path.join(workdir, FINGERPRINT_FILE)
    same = False
    if os.path.exists(recorded):
        same = _read_json(recorded, "the config's fingerprint").get("sha256") == fingerprint(config)
    if not same:
        changed = differences(before, config, _defaults())
        if changed:
            shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
            raise WorkdirError(f"workdir {workdir} holds a run of another config ({CONFIG_FILE}): {shown}; {how}")
    return "finished" if os.path.exists(os.path.join(workdir, RESULTS_FILE)) else "resume"


def record_config(workdir: str, config: dict[str, Any]) -> None:
    """Writes config.json and fingerprint.json at a run's first start (a resumed run keeps its own)."""
    if os.path.exists(os.path.join(workdir, CONFIG_FILE)):
        if not os.path.exists(os.path.join(workdir, FINGERPRINT_FILE)):  # a run of an earlier version
            write_json(os.path.join(workdir, FINGERPRINT_FILE), _fingerprint_record(
                _read_json(os.path.join(workdir, CONFIG_FILE), "the run's config")))
        return
    write_json(os.path.join(workdir, CONFIG_FILE), _plain(config))
    write_json(os.path.join(workdir, FINGERPRINT_FILE), _fingerprint_record(config))


def _fingerprint_record(config: dict[str, Any]) -> dict[str, Any]:
    return {"sha256": fingerprint(config), "of": "canonical JSON of config.json (sorted keys, separators , and :) "
            "without the keys that cannot change results", "keys_allowed_to_differ": list(RESULT_NEUTRAL_KEYS)}


def read_results(workdir: str) -> dict[str, Any]:
    return _read_json(os.path.join(workdir, RESULTS_FILE), "the run's results")


def start_over(workdir: str, how: str) -> str | None:
    """Moves the workdir aside (`how="move"`, to `<workdir>.old-<n>`) or deletes it; where it went (move)."""
    if how not in OVERWRITE_CHOICES:
        raise WorkdirError(f"--overwrite={how!r}: one of {', '.join(OVERWRITE_CHOICES)}")
    if not os.path.isdir(workdir):
        return None
    if how == "move":
        target = next_old_name(workdir)
        os.rename(workdir, target)
        logging.warning("the earlier run in %s was moved to %s", workdir, target)
        return target
    shutil.rmtree(workdir)
    logging.warning("the earlier run in %s was deleted (--overwrite=delete)", workdir)
    return None


def write_status(workdir: str, status: str, **extra: Any) -> None:
    """status.json: running | interrupted | failed | finished, with the step and what else is known."""
    write_json(os.path.join(workdir, STATUS_FILE), {"status": status, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                                    "pid": os.getpid(), "host": socket.gethostname(), **extra})


class WorkdirLock:
    """`<workdir>/lock`: one process per workdir (flock(2); the file names the holder)."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.path = os.path.join(workdir, LOCK_FILE)
        self.fd: int | None = None

    def _holder(self, fd: int) -> dict[str, Any]:
        try:
            text = os.pread(fd, 4096, 0).decode(errors="replace")
            holder = json.loads(text) if text.strip() else {}
            return holder if isinstance(holder, dict) else {}
        except (OSError, ValueError):
            return {}

    def _refuse(self, holder: dict[str, Any]) -> WorkdirError:
        return WorkdirError(
            f"workdir {self.workdir} is in use by process {holder.get('pid', '?')} on host {holder.get('host', '?')} "
            f"(since {holder.get('started', '?')}; {self.path}); wait for it to end, stop it, or choose another "
            "--workdir")

    def check_free(self) -> None:
        """Raises WorkdirError naming the holder if a live process holds the lock; writes nothing."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise self._refuse(self._holder(fd)) from None
        finally:
            os.close(fd)

    def acquire(self) -> WorkdirLock:
        os.makedirs(self.workdir, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):  # no flock on this filesystem
                    logging.warning("workdir %s: its filesystem has no flock(2), so the workdir is not locked "
                                    "against a second process (%s)", self.workdir, e)
                else:
                    holder = self._holder(fd)
                    os.close(fd)
                    if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                    raise self._refuse(holder) from None
            try:
                same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same_file = False
            if not same_file:  # the previous holder removed the file between our open and flock: retry
                os.close(fd)
                continue
            stale = self._holder(fd)
            if stale:
                logging.warning("workdir %s: took over the lock left by process %s on host %s (that process is "
                                "gone)", self.workdir, stale.get("pid", "?"), stale.get("host", "?"))
            os.ftruncate(fd, 0)
            me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
            os.pwrite(fd, json.dumps(me).encode(), 0)
            self.fd = fd
            return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> WorkdirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
