"""How a run ranks the most frequent training label (issue 29: set B's common dependency), from its predictions.

    python -m experiments.head_label runs/tables/panel/syn_dominant-softmax-*/ [...] [--json OUT]

For each run directory (config.json + predictions.txt of the split it was evaluated on) prints, for the label
most frequent in the run's training split: the share of evaluated points that carry it, the share where it is
ranked first, and where it is true, the share of those where it comes first. A loss that learns
E[y_l / |Y| | x] (the normalised softmax) ranks such a label low when it comes with many other labels.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import ml_collections
import numpy as np

from xcs.data.dataset import load_dataset


def read_top1(path: str) -> np.ndarray:
    """The first-ranked label of each point of a predictions.txt (XC format; -1 for an empty line)."""
    with open(path) as f:
        next(f)
        return np.array([int(line.split()[0].split(":")[0]) if line.strip() else -1 for line in f])


def head_label_stats(workdir: str) -> dict:
    with open(os.path.join(workdir, "config.json")) as f:
        config = ml_collections.ConfigDict(json.load(f))
    data = load_dataset(config.data, config.seed)
    counts = data.train.labels.column_counts()
    head = int(np.argmax(counts))
    labels = data.test.labels  # the evaluated split: validation when config.data.validation_fraction > 0
    has = np.zeros(labels.num_rows, bool)
    rows = np.repeat(np.arange(labels.num_rows), labels.row_lengths())
    has[rows[labels.indices == head]] = True
    first = read_top1(os.path.join(workdir, "predictions.txt")) == head
    return {
        "run": os.path.basename(os.path.normpath(workdir)),
        "head_label": head,
        "train_share": float(counts[head] / data.train.labels.num_rows),
        "true_share": float(has.mean()),
        "ranked_first_share": float(first.mean()),
        "first_where_true": float(first[has].mean()) if has.any() else float("nan"),
        "labels_per_point_where_true": float(labels.row_lengths()[has].mean()) if has.any() else float("nan"),
        "labels_per_point_elsewhere": float(labels.row_lengths()[~has].mean()) if (~has).any() else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdirs", nargs="+")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    rows = [head_label_stats(w) for w in args.workdirs]
    print("| run | head label on (%) | ranked first (%) | first where true (%) | labels/point where true / else |")
    print("|---|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['run']} | {100 * r['true_share']:.1f} | {100 * r['ranked_first_share']:.1f} | "
              f"{100 * r['first_where_true']:.1f} | {r['labels_per_point_where_true']:.2f} / "
              f"{r['labels_per_point_elsewhere']:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
