"""Command line: predict the top-k labels of new inputs with a trained model, or export the model.

  xcs-predict --workdir=W --input=FILE --out=FILE [--k=K] [--format=xc|tsv|jsonl] [--input_format=auto|xc|npy|texts]
  xcs-predict export --workdir=W --out=DIR

(also `python -m xcs.predict ...`). --workdir is a run's workdir (its latest checkpoint, finished or
interrupted) or an exported model folder. --input: an XC file (single file `N F L`, labels optional,
or features file `N F`), a `.npy` dense array [N, d], or a texts file (one text per line) for a model
with a text path (see xcs/predict/inputs.py). --k defaults to the run's config.eval.predict_k.

Output formats:
  xc     the XC sparse format of the run's predictions.txt: header `N L`, then per point `label:score ...`
  tsv    a header, then one line per (point, rank): point, rank, label id, [label name,] score
  jsonl  one object per point: {"point", "labels", "scores"[, "names"]}
Label names come from the workdir (kept at train time: texts + label names, or labels.txt beside the
data). The output is written to FILE.tmp and renamed when complete.

A user error (a missing or unreadable input, an input that does not fit the model, a bad flag) is one
line on stderr and exit status 2 (XCS_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import NoReturn

from xcs.core.errors import EXIT_USER_ERROR, UserError

OUTPUT_FORMATS = ("xc", "tsv", "jsonl")
PROG = "xcs-predict"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        fail(message)


def parse(argv: list[str]) -> argparse.Namespace:
    if argv[:1] == ["export"]:
        parser = _Parser(prog=f"{PROG} export", description="Export a run's model as a self-contained folder.")
        parser.add_argument("--workdir", required=True, help="the run's workdir (or an export)")
        parser.add_argument("--out", required=True, help="the folder to write (new, empty, or an earlier export)")
        args = parser.parse_args(argv[1:])
        args.command = "export"
        return args
    from xcs.predict.inputs import FORMATS

    parser = _Parser(prog=PROG, description="Top-k labels of new inputs from a trained xcs model.",
                     epilog=f"`{PROG} export --workdir=W --out=DIR` writes a self-contained model folder.")
    parser.add_argument("--workdir", required=True, help="a run's workdir or an exported model folder")
    parser.add_argument("--input", required=True, help="XC features file, .npy dense array, or texts file")
    parser.add_argument("--out", required=True, help="where to write the predictions")
    parser.add_argument("--k", type=int, default=None, help="labels per point (default: config.eval.predict_k)")
    parser.add_argument("--format", choices=OUTPUT_FORMATS, default="xc", help="output format (default xc)")
    parser.add_argument("--input_format", choices=FORMATS, default="auto",
                        help="how to read --input (default: .npy by name, XC by its header, else texts)")
    parser.add_argument("--progress", choices=("auto", "bar", "none"), default="auto",
                        help="progress bar on stderr (auto: when stderr is a terminal)")
    args = parser.parse_args(argv)
    args.command = "predict"
    if args.k is not None and args.k < 1:
        fail(f"--k={args.k}: must be >= 1")
    return args


class ProgressBar:
    """Points done, points/s and ETA on one stderr line."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.t0, self.width = total, enabled, time.perf_counter(), 0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f"{(self.total - done) / rate:.0f}s" if rate > 0 else "?"
        filled = int(30 * done / max(self.total, 1))
        line = f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} points {rate:.0f}/s ETA {eta}"
        sys.stderr.write("\r" + line.ljust(self.width))
        sys.stderr.flush()
        self.width = len(line)

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def write_predictions(predictor, split, out, k: int | None, fmt: str, progress: bool = False) -> int:
    """Streams the predictions of `split` into the open text file `out`; returns the number of points."""
    names = predictor.label_names
    n = split.num_points
    if fmt == "xc":
        out.write(f"{n} {predictor.num_labels}\n")
    elif fmt == "tsv":
        out.write("point\trank\tlabel\t" + ("name\t" if names is not None else "") + "score\n")
    bar = ProgressBar(n, progress)
    try:
        for start, ids, scores in predictor.predict_batches(split, k):
            for offset, (i_row, s_row) in enumerate(zip(ids, scores)):
                point = start + offset
                pairs = [(int(i), float(s)) for i, s in zip(i_row, s_row) if i >= 0]
                if fmt == "xc":  # as xcs.train.evaluate writes predictions.txt
                    out.write(" ".join(f"{i}:{s:.6g}" for i, s in pairs) + "\n")
                elif fmt == "tsv":
                    for rank, (i, s) in enumerate(pairs, start=1):
                        name = names[i].replace("\t", " ") + "\t" if names is not None else ""
                        out.write(f"{point}\t{rank}\t{i}\t{name}{s:.6g}\n")
                else:
                    record = {"point": point, "labels": [i for i, _ in pairs],
                              "scores": [float(f"{s:.6g}") for _, s in pairs]}
                    if names is not None:
                        record["names"] = [names[i] for i, _ in pairs]
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
            bar.update(start + len(ids))
    finally:
        bar.close()
    return n


def predict_command(args: argparse.Namespace) -> None:
    from xcs.predict.inputs import read_file
    from xcs.predict.predictor import load

    predictor = load(args.workdir)
    split = read_file(predictor, args.input, args.input_format)
    tmp = args.out + ".tmp"
    try:
        out = open(tmp, "w", encoding="utf-8", newline="\n")
    except OSError as e:
        raise UserError(f"--out={args.out}: cannot write ({e.strerror})") from None
    try:
        with out:
            progress = args.progress == "bar" or (args.progress == "auto" and sys.stderr.isatty())
            n = write_predictions(predictor, split, out, args.k, args.format, progress)
        os.replace(tmp, args.out)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    k = predictor.default_k if args.k is None else args.k
    named = ", with label names" if predictor.label_names is not None and args.format != "xc" else ""
    print(f"{n} points, top {k} labels ({args.format}{named}): {args.out}")


def export_command(args: argparse.Namespace) -> None:
    from xcs.predict.predictor import load

    predictor = load(args.workdir)
    path = predictor.export(args.out)
    print(f"exported {args.workdir} (step {predictor.step}) to {path}: load it with xcs.load({path!r})")


def debugging() -> bool:
    """XCS_DEBUG=1 shows the traceback of a user error too."""
    return os.environ.get("XCS_DEBUG", "") not in ("", "0")


def fail(message: str) -> NoReturn:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def main(argv: list[str] | None = None) -> None:
    """Entry point of `xcs-predict` and `python -m xcs.predict`."""
    args = parse(list(sys.argv[1:] if argv is None else argv))
    try:
        (export_command if args.command == "export" else predict_command)(args)
    except UserError as e:
        if debugging():
            raise
        fail(str(e))


if __name__ == "__main__":
    main()
