"""Where a run reports: metrics.jsonl, TensorBoard events (tensorboardX, no TensorFlow), the console."""

from __future__ import annotations

import json
import os
import sys
import time

from absl import logging

from xcs.core.errors import UserError


def truncate_metrics(path: str, last_step: int) -> int:
    """Keeps the lines of metrics.jsonl up to `last_step` (the step resumed from); returns how many were dropped.

    A run killed after its last checkpoint logged steps it will train again; without this they would
    be in the file twice. A partial last line (killed while writing) is dropped too.
    """
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        lines = f.readlines()
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= last_step:
            kept.append(line if line.endswith("\n") else line + "\n")
    if len(kept) != len(lines):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(kept)
        os.replace(tmp, path)
    return len(lines) - len(kept)


class MetricWriter:
    """One JSON line per logged step in metrics.jsonl, and the same scalars as TensorBoard events.

    `resume_step`: the step a run resumes from; the lines and events of later steps, logged before the
    run stopped, are dropped (TensorBoard hides them: purge_step), so each step is logged once.
    """

    def __init__(self, workdir: str, resume_step: int = 0):
        from tensorboardX import SummaryWriter

        path = os.path.join(workdir, "metrics.jsonl")
        dropped = truncate_metrics(path, resume_step)
        if dropped:
            logging.info("metrics.jsonl: %d lines after step %d dropped (they are logged again)", dropped, resume_step)
        self.jsonl = open(path, "a")
        tb_dir = os.path.join(workdir, "tensorboard")
        purge = resume_step + 1 if os.path.isdir(tb_dir) else None
        self.tb = SummaryWriter(logdir=tb_dir, purge_step=purge)

    def write(self, step: int, scalars: dict[str, float]) -> None:
        self.jsonl.write(json.dumps({"step": step, **scalars}) + "\n")
        self.jsonl.flush()
        for name, value in scalars.items():
            self.tb.add_scalar(name, value, step)

    def close(self) -> None:
        self.jsonl.close()
        self.tb.close()


class Progress:
    """A one-line progress bar with steps/s and ETA on a terminal; plain log lines otherwise."""

    def __init__(self, total: int, start: int, mode: str, every: int):
        if mode not in ("auto", "bar", "lines", "none"):
            raise UserError(f"config.train.progress={mode!r}: expected auto, bar, lines or none")
        self.mode = ("bar" if sys.stderr.isatty() else "lines") if mode == "auto" else mode
        self.total, self.start, self.every = total, start, max(every, 1)
        self.t0 = time.perf_counter()
        self.last_len = 0

    def update(self, step: int, loss: float | None) -> None:
        if self.mode == "none" or (self.mode == "lines" and step % self.every and step != self.total):
            return
        done = step - self.start
        elapsed = time.perf_counter() - self.t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        loss_text = "" if loss is None else f" loss {loss:.4f}"
        text = f"step {step}/{self.total}{loss_text} {rate:.1f} steps/s ETA {eta:.0f}s"
        if self.mode == "lines":
            logging.info("%s", text)
            return
        width = 30
        filled = int(width * step / max(self.total, 1))
        line = f"[{'#' * filled}{'.' * (width - filled)}] {text}"
        sys.stderr.write("\r" + line.ljust(self.last_len))
        sys.stderr.flush()
        self.last_len = len(line)

    def close(self) -> None:
        if self.mode == "bar":
            sys.stderr.write("\n")
