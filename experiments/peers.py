"""Peer methods (napkinXC's PLT, omikuji) trained and evaluated on the data of an xcs config.

    python -m experiments.peers --config=configs/tables/baselines.py[:ARG] --workdir=runs/tables/baselines
    python experiments/peers.py --config=configs/xmc.py:data=NAME --method=omikuji --workdir=runs/omikuji

With no `--method`, every peer the config module lists in `peers(add, arg=None)` runs, each in
its own subprocess (so its peak memory is its own) and sub-workdir `peers/METHOD[,k=v...]`;
finished ones are skipped, a failing one does not stop the others (the executor of xcs/sweep.py).
With `--method`, one peer runs in this process; `--params` is a JSON object of the method's own
settings (napkinXC `PLT(**params)`, omikuji `HyperParam` fields).

The data are the config's own (`load_dataset(config.data, config.seed)`: same files, same
validation hold-out) and the metrics are xcs.metrics' (same top-k, same propensities A/B), so
`results.json` has the same schema and numbers as an xcs run and the report tables them together.
Needs the optional packages of requirements-peers.txt. PECOS is not supported here: its wheels
need numpy<2 and scipy<1.14, which the core's JAX cannot share an environment with.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from xcs.data.dataset import Dataset, load_dataset  # noqa: E402
from xcs.data.sparse import CSR  # noqa: E402
from xcs.metrics import evaluate_predictions, inverse_propensity  # noqa: E402
from xcs.sweep import Run, collect, load_module, run_all, run_name, split_config_string  # noqa: E402
from xcs.system import machine_info, peak_rss_mb  # noqa: E402

INSTALL = "pip install -r requirements-peers.txt"


def _require(package: str):
    try:
        return __import__(package)
    except ImportError as e:
        raise ImportError(f"peer methods need the optional package {package!r}: {INSTALL}") from e


def _check_params(method: str, params: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(params) - known)
    if unknown:
        raise KeyError(f"peer {method}: unknown setting(s) {unknown}; known: {sorted(known)}")


def _dir_mb(path: str) -> float:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files) / 2**20


def _pad(rows: list[list[int]], k: int) -> np.ndarray:
    out = np.full((len(rows), k), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : min(k, len(r))] = r[:k]
    return out


def known_params(method: str) -> set[str]:
    """The settings a peer method accepts (napkinXC's PLT would silently ignore unknown ones)."""
    if method == "napkinxc_plt":
        plt = _require("napkinxc.models").models.PLT
        return set(inspect.signature(plt.__init__).parameters) - {"self", "output", "kwargs"}
    if method == "omikuji":
        hp = _require("omikuji").Model.default_hyper_param()
        return {a for a in dir(hp) if not a.startswith("_")}
    raise KeyError(f"unknown peer method {method!r}; known: {sorted(PEERS)}")


def napkinxc_plt(data: Dataset, params: dict[str, Any], k: int, seed: int, model_dir: str) -> dict[str, Any]:
    """napkinXC's probabilistic label tree; returns top-k predictions, fit seconds and model size."""
    models = _require("napkinxc.models").models
    _check_params("napkinxc_plt", params, known_params("napkinxc_plt"))
    model = models.PLT(model_dir, **{"seed": seed, **params})
    x_train, x_test = data.train.features.to_scipy(), data.test.features.to_scipy()
    t0 = time.perf_counter()
    model.fit(x_train, data.train.labels.to_lists())
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = _pad(model.predict(x_test, top_k=k), k)
    return {"pred": pred, "train_seconds": fit_s, "eval_seconds": time.perf_counter() - t0,
            "model_mb": _dir_mb(model_dir)}


def _write_xc_file(path: str, features: CSR, labels: CSR, num_labels: int) -> None:
    """The XC repository's single-file format, which is the only input omikuji trains from.

    Points without labels are left out: they are positives of no tree node and so train nothing in
    a label tree, and omikuji's parser refuses some of their lines. A point without features is
    written as its labels alone (omikuji refuses a trailing space).
    """
    keep = np.flatnonzero(labels.row_lengths() > 0)
    with open(path, "w") as f:
        f.write(f"{len(keep)} {features.num_cols} {num_labels}\n")
        for i in keep.tolist():
            ids, vals = features.row(i)
            fields = [",".join(map(str, labels.row(i)[0].tolist()))]
            fields += [f"{j}:{v:.6g}" for j, v in zip(ids.tolist(), vals.tolist())]
            f.write(" ".join(fields) + "\n")


def omikuji(data: Dataset, params: dict[str, Any], k: int, seed: int, model_dir: str) -> dict[str, Any]:
    """omikuji's partitioned label trees (Parabel-like by default); `seed` is unused (it has none)."""
    om = _require("omikuji")
    hp = om.Model.default_hyper_param()
    _check_params("omikuji", params, known_params("omikuji"))
    for name, value in params.items():
        setattr(hp, name, value)
    with tempfile.TemporaryDirectory() as tmp:
        train_path = os.path.join(tmp, "train.txt")
        _write_xc_file(train_path, data.train.features, data.train.labels, data.num_labels)
        t0 = time.perf_counter()
        model = om.Model.train_on_data(train_path, hp)
        fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    x = data.test.features
    rows = []
    for i in range(x.num_rows):
        ids, vals = x.row(i)
        rows.append([label for label, _ in model.predict(list(zip(ids.tolist(), vals.tolist())), top_k=k)])
    eval_s = time.perf_counter() - t0
    model.save(model_dir)
    return {"pred": _pad(rows, k), "train_seconds": fit_s, "eval_seconds": eval_s, "model_mb": _dir_mb(model_dir)}


PEERS: dict[str, Callable[..., dict[str, Any]]] = {"napkinxc_plt": napkinxc_plt, "omikuji": omikuji}


def _write_json(path: str, obj: Any) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)


def run_peer(config_string: str, method: str, params: dict[str, Any], workdir: str) -> dict[str, Any]:
    """Trains and evaluates one peer on the config's data; writes config.json and results.json."""
    if method not in PEERS:
        raise KeyError(f"unknown peer method {method!r}; known: {sorted(PEERS)}")
    path, arg = split_config_string(config_string)
    config = load_module(path).get_config(arg)
    os.makedirs(workdir, exist_ok=True)
    _write_json(os.path.join(workdir, "config.json"), {
        "peer": {"method": method, "params": params}, "seed": config.seed,
        "data": config.data.to_dict(), "eval": config.eval.to_dict()})
    t_start = time.perf_counter()
    data = load_dataset(config.data, config.seed)
    if data.dense:
        raise ValueError(f"peer {method}: needs sparse features; data set {data.name!r} is dense")
    k = max(config.eval.top_k, 1)
    model_dir = os.path.join(workdir, "model")
    shutil.rmtree(model_dir, ignore_errors=True)
    os.makedirs(model_dir)
    out = PEERS[method](data, params, k, config.seed, model_dir)
    inv_ps = inverse_propensity(data.train.labels, config.eval.propensity_a, config.eval.propensity_b)
    results = {
        "method": method,
        "params": params,
        "test": evaluate_predictions(out["pred"], data.test.labels, inv_ps, config.eval.top_k),
        "evaluated_on": "validation" if config.data.validation_fraction > 0 else "test",
        "train_seconds": out["train_seconds"],
        "seconds_per_epoch": None,  # tree methods train in one pass of their own; no epochs
        "eval_seconds": out["eval_seconds"],
        "total_seconds": time.perf_counter() - t_start,
        "peak_rss_mb": peak_rss_mb(),
        "model_mb": out["model_mb"],
        "data": {"name": data.name, "location": data.location, **data.stats()},
        "machine": machine_info(),
        "workdir": os.path.abspath(workdir),
    }
    _write_json(os.path.join(workdir, "results.json"), results)
    return results


def plan(config_string: str, workdir: str) -> list[Run]:
    """One subprocess run of this module per `add(method=..., **params)` of the config's `peers`."""
    path, arg = split_config_string(config_string)
    runs = []
    for entry in collect(load_module(path), arg, "peers"):
        method = entry.pop("method", None)
        if method not in PEERS:
            raise KeyError(f"{path}: peers: method {method!r} is not one of {sorted(PEERS)}")
        _check_params(method, entry, known_params(method))
        sub = os.path.join(workdir, "peers", run_name({"method": method, **entry}))
        command = [sys.executable, os.path.abspath(__file__), f"--config={config_string}", f"--method={method}",
                   f"--params={json.dumps(entry, sort_keys=True)}", f"--workdir={sub}"]
        runs.append(Run(os.path.relpath(sub, workdir), sub, command, {"method": method, **entry}))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="xcs config file[:arg] whose data (and peers) to use")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--method", choices=sorted(PEERS), help="run this one peer here (else all of `peers`)")
    parser.add_argument("--params", default="{}", help="JSON object of the method's settings (with --method)")
    parser.add_argument("--jobs", type=int, default=1, help="peers at a time (without --method)")
    parser.add_argument("--dry_run", action="store_true", help="list the peer runs, run nothing")
    args = parser.parse_args(argv)
    if args.method:
        results = run_peer(args.config, args.method, json.loads(args.params), args.workdir)
        t = results["test"]
        print(f"{args.method}: P@1 {t['P@1']:.2f}  P@5 {t['P@5']:.2f}  PSP@5 {t['PSP@5']:.2f}  "
              f"train {results['train_seconds']:.1f}s  peak {results['peak_rss_mb']:.0f} MB  ({args.workdir})")
        return 0
    module = load_module(split_config_string(args.config)[0])
    if not callable(getattr(module, "peers", None)):
        print(f"{args.config}: lists no peers (no `peers(add, arg=None)`); nothing to run")
        return 0
    runs = plan(args.config, args.workdir)
    return run_all(runs, args.config, args.workdir, args.jobs, args.dry_run, record="peers.json")


if __name__ == "__main__":
    sys.exit(main())
