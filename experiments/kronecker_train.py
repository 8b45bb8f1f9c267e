"""The paper's network (Song & Ye 2023) trained by its own trainer: dense / primal / structured, sync or async.

  python -m experiments.kronecker_train --config=configs/kronecker.py:paper [--reprs=structured,primal,dense]
      [--taus=0,2,8,32 --workers=1,4,16] [--eval_every=N] [--out=FILE.json] [--config.a.b=value ...]

f(W, x) = m^{-1/2} Σ_r a_r σ_b(w_rᵀx) on x = f_0 ⊗ f_1 ⊗ ... (xcs.kronecker.layer), a fixed, W trained by
plain SGD on ½(f − y)² with batches drawn from the training points (epoch permutations from
config.seed). Settings come from the config: data (config.data.kronecker, task=regression: the
network has one output), m = config.model.encoder.width, b = config.kronecker.shift, W(0) entries
N(0, config.kronecker.init_std²), batch = config.train.batch_size, steps = config.train.steps,
learning rate = config.train.optimizer.encoder.learning_rate (the config must select plain SGD at a
constant rate: optimizer.encoder.name=sgd, momentum=0, weight_decay=0, schedule=constant,
warmup_steps=0, clip_grad_norm=0; anything else is refused, naming the key), sync or async from
config.train.mode / config.async_ (delay kind and seed; --taus/--workers sweep τ and W).

Each representation runs the same batches from the same W(0):
  dense       W [m, d] on the formed batch x [B, d] (the baseline; forms x on purpose);
  primal      W [m, d_0, d_1, ...] by factor contractions (xcs.kronecker.layer.project);
  structured  pre-activations P [m, n] and coefficients C [m, n], updated from factor Gram rows;
              its full training loss is read from P at no extra cost.
Async (bounded staleness, as xcs.train.async_step: same delays from async_.seed): the gradient of
step t is computed at the state of step t − δ_t (W for dense/primal, P for structured; a ring
buffer of τ + 1 snapshots) and applied to the current one. τ = 0 is synchronous SGD exactly.

Prints one row per run (final training and test loss, the loss relative to the synchronous run of
the same representation, seconds per step), then the full training loss vs step of every run, and
writes JSON: machine, config, rows, curves (full training / test loss every --eval_every steps).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from ml_collections import config_flags  # noqa: E402

from experiments.benchmarks.common import markdown_table  # noqa: E402
from xcs.data import kronecker as kdata  # noqa: E402
from xcs.kronecker import layer as km  # noqa: E402
from xcs.system import machine_info  # noqa: E402
from xcs.train import async_step  # noqa: E402
from xcs.validate import validate  # noqa: E402

REPRS = ("structured", "primal", "dense")



def _define_flags() -> dict[str, Any]:
    """The command line's flags (defined only when run as a program, so importing this module defines none)."""
    return dict(
        config=config_flags.DEFINE_config_file("config", "configs/kronecker.py:paper",
                                               "Config file, optionally `:variant`.", lock_config=True),
        reprs=flags.DEFINE_list("reprs", ["structured"], f"representations to train, of {REPRS}"),
        taus=flags.DEFINE_list("taus", [], "max staleness values τ to sweep (train.mode=async); empty: the config's"),
        workers=flags.DEFINE_list("workers", [], "simulated worker counts W to sweep; empty: the config's"),
        eval_every=flags.DEFINE_integer("eval_every", 0, "steps between full-loss evaluations (0: about 20 points)"),
        out=flags.DEFINE_string("out", None, "JSON output file"))


def check_config(config: ml_collections.ConfigDict) -> None:
    """Refuses settings this trainer does not implement, naming the key (its own rules first, then validate's)."""
    if config.data.source != "kronecker":
        raise ValueError(f"config.data.source={config.data.source!r}: the paper's network needs 'kronecker'")
    if config.data.kronecker.task != "regression" and not config.data.kronecker.from_files:
        raise ValueError(f"config.data.kronecker.task={config.data.kronecker.task!r}: the paper's network has one "
                         "output and trains on regression targets (task=regression); classification trains through "
                         "launch.py (configs/kronecker.py)")
    if config.data.validation_fraction > 0:
        raise ValueError(f"config.data.validation_fraction={config.data.validation_fraction}: the paper's trainer "
                         "reports the full training loss and the test loss; it has no validation hold-out")
    opt, train = config.train.optimizer.encoder, config.train
    required = {"train.optimizer.encoder.name": (opt.name, "sgd"),
                "train.optimizer.encoder.momentum": (opt.momentum, 0),
                "train.optimizer.encoder.weight_decay": (opt.weight_decay, 0),
                "train.schedule": (train.schedule, "constant"),
                "train.warmup_steps": (train.warmup_steps, 0),
                "train.clip_grad_norm": (train.clip_grad_norm, 0)}
    for key, (value, want) in required.items():
        if value != want:
            raise ValueError(f"config.{key}={value!r}: the paper's trainer is plain SGD at a constant rate "
                             f"(needs {want!r}; use configs/kronecker.py:paper)")
    if train.steps <= 0:
        raise ValueError(f"config.train.steps={train.steps}: the paper's trainer needs a step count > 0")
    validate(config)


def load_regression(config: ml_collections.ConfigDict) -> tuple[list[jax.Array], jax.Array, list[jax.Array], jax.Array]:
    """(train factors, y_train, test factors, y_test) as device arrays; refuses class labels."""
    pairs, location = kdata.load_pairs(config.data)
    if any(not isinstance(y, np.ndarray) for _, y in pairs):
        raise ValueError(f"{location}: integer class targets; the paper's network trains on float regression targets "
                         "({split}_y.npy float, or config.data.kronecker.task=regression)")
    (train, y_train), (test, y_test) = pairs
    n, batch = len(y_train), config.train.batch_size
    if batch > n:
        raise ValueError(f"config.train.batch_size={batch} exceeds the {n} training points")
    return [jnp.asarray(f) for f in train], jnp.asarray(y_train), [jnp.asarray(f) for f in test], jnp.asarray(y_test)


def batch_rows(n: int, batch: int, steps: int, seed: int) -> np.ndarray:
    """[steps, batch] int32: consecutive epoch permutations of the n points (the last partial batch of each dropped)."""
    rng = np.random.default_rng([seed, 0xB47C])
    per_epoch = n // batch
    epochs = -(-steps // per_epoch)
    rows = np.concatenate([rng.permutation(n)[:per_epoch * batch] for _ in range(epochs)])
    return rows[:steps * batch].reshape(steps, batch).astype(np.int32)


class Representation:
    """One representation's pure functions: init, the state the gradient reads, one step, full losses."""

    def __init__(self, name: str, a: jax.Array, shift: float, lr: float, w0: jax.Array, chunk: int = 1024):
        if name not in REPRS:
            raise ValueError(f"--reprs: {name!r} is not one of {REPRS}")
        self.name, self.a, self.shift, self.lr, self.w0, self.chunk = name, a, shift, lr, w0, chunk

    def init(self, train: Sequence[jax.Array]) -> Any:
        if self.name == "structured":
            return km.init_structured(self.w0, train, self.chunk)
        return self.w0.reshape(self.w0.shape[0], -1) if self.name == "dense" else self.w0

    def view(self, state: Any) -> jax.Array:
        """What a gradient is computed from (the snapshot an async worker reads)."""
        return state.pre if self.name == "structured" else state

    def step(self, state: Any, read: jax.Array | None, rows: jax.Array, train: Sequence[jax.Array],
             y: jax.Array) -> tuple[Any, jax.Array]:
        if self.name == "structured":
            state, metrics = km.structured_step(state, rows, y[rows], train, self.a, self.shift, self.lr, read=read)
            return state, metrics["loss"]
        factors = [f[rows] for f in train]
        if self.name == "dense":
            return km.dense_step(state, self.a, self.shift, km.formed_x(factors), y[rows], self.lr, read)
        return km.primal_step(state, self.a, self.shift, factors, y[rows], self.lr, read)

    def pre(self, state: Any, factors: Sequence[jax.Array], train: Sequence[jax.Array]) -> jax.Array:
        """Pre-activations [N, m] of the points `factors`, in chunks of points."""
        n = factors[0].shape[0]
        parts = []
        for s in range(0, n, self.chunk):
            part = [f[s:s + self.chunk] for f in factors]
            if self.name == "structured":
                parts.append(km.project(self.w0, part) + km.gram_rows(part, train) @ state.coef.T)
            elif self.name == "dense":
                parts.append(km.formed_x(part) @ state.T)
            else:
                parts.append(km.project(state, part))
        return jnp.concatenate(parts)

    def losses(self, state: Any, train: Sequence[jax.Array], y: jax.Array, test: Sequence[jax.Array],
               y_test: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Full training and test loss; the structured training loss comes from P itself."""
        pre_train = state.pre.T if self.name == "structured" else self.pre(state, train, train)
        out_test = km.output(self.pre(state, test, train), self.a, self.shift)
        return km.squared_loss(km.output(pre_train, self.a, self.shift), y), km.squared_loss(out_test, y_test)


def make_chunk(rep: Representation, config: ml_collections.ConfigDict) -> Callable:
    """A jitted `(state, history, steps [T], rows [T, B], train, y) -> (state, history, batch losses [T])`.

    Sync: history is None. Async: history [τ + 1, ...] holds view(state_s) at slot s mod (τ + 1);
    the gradient of step t reads slot (t − δ_t) mod (τ + 1), δ_t = async_step.delay(config, t).
    """
    asynchronous = config.train.mode == "async"
    slots = config.async_.max_staleness + 1

    def body(carry, inputs):
        state, history, train, y = carry
        t, rows = inputs
        read = None
        if asynchronous:
            read = history[(t - async_step.delay(config, t)) % slots]
        state, loss = rep.step(state, read, rows, train, y)
        if asynchronous:
            history = history.at[(t + 1) % slots].set(rep.view(state))
        return (state, history, train, y), loss

    def chunk(state, history, ts, rows, train, y):
        (state, history, _, _), losses = jax.lax.scan(body, (state, history, train, y), (ts, rows))
        return state, history, losses

    return jax.jit(chunk, donate_argnums=(0, 1))


def train_one(config: ml_collections.ConfigDict, rep_name: str, data: tuple, eval_every: int) -> dict[str, Any]:
    """One run: final losses, seconds per step (excluding compilation), curve of full losses."""
    train, y, test, y_test = data
    dims = tuple(f.shape[1] for f in train)
    w0, a = km.init_network(jax.random.PRNGKey(config.seed), dims, config.model.encoder.width)
    rep = Representation(rep_name, a, config.kronecker.shift, config.train.optimizer.encoder.learning_rate,
                         w0 * config.kronecker.init_std)
    steps = config.train.steps
    rows = jnp.asarray(batch_rows(len(y), config.train.batch_size, steps, config.seed))
    state = rep.init(train)
    history = None
    if config.train.mode == "async":
        history = jnp.repeat(rep.view(state)[None], config.async_.max_staleness + 1, axis=0)
    chunk, losses = make_chunk(rep, config), jax.jit(rep.losses)
    curve = [dict(step=0, **_floats(losses(state, train, y, test, y_test)))]
    seconds, timed_steps, batch_losses = 0.0, 0, []
    for start in range(0, steps, eval_every):
        end = min(start + eval_every, steps)
        t0 = time.perf_counter()
        state, history, part = chunk(state, history, jnp.arange(start, end, dtype=jnp.int32), rows[start:end], train, y)
        part.block_until_ready()
        if start:  # the first chunk compiles
            seconds, timed_steps = seconds + time.perf_counter() - t0, timed_steps + end - start
        batch_losses.append(np.asarray(part))
        curve.append(dict(step=end, **_floats(losses(state, train, y, test, y_test))))
    if not np.isfinite(curve[-1]["train_loss"]):
        raise FloatingPointError(f"{rep_name}: the training loss is {curve[-1]['train_loss']} after {steps} steps; "
                                 "lower config.train.optimizer.encoder.learning_rate")
    return dict(curve=curve, batch_loss=np.concatenate(batch_losses).tolist(),
                step_ms=1e3 * seconds / timed_steps if timed_steps else float("nan"))


def _floats(pair: tuple[jax.Array, jax.Array]) -> dict[str, float]:
    return dict(train_loss=float(pair[0]), test_loss=float(pair[1]))


def run(config: ml_collections.ConfigDict, reprs: Sequence[str], taus: Sequence[int], workers: Sequence[int],
        eval_every: int = 0) -> dict[str, Any]:
    """Every representation × (τ, W) of the grid (the config's own τ, W when a list is empty)."""
    check_config(config)
    for name in reprs:
        if name not in REPRS:
            raise ValueError(f"--reprs: {name!r} is not one of {REPRS}")
    data = load_regression(config)
    eval_every = eval_every or max(1, config.train.steps // 20)
    grid = [(int(t), int(w)) for t in (taus or [config.async_.max_staleness]) for w in (workers or
                                                                                        [config.async_.workers])]
    asynchronous = config.train.mode == "async" or bool(taus or workers)
    rows, curves = [], {}
    for name in reprs:
        runs = [(0, 1)] + [g for g in grid if g != (0, 1)] if asynchronous else [(0, 1)]
        sync_loss = None
        for tau, w in runs:
            c = config.copy_and_resolve_references()
            c.train.mode = "async" if asynchronous and (tau, w) != (0, 1) else "sync"
            c.async_.max_staleness, c.async_.workers = tau, w
            result = train_one(c, name, data, eval_every)
            final = result["curve"][-1]
            sync_loss = final["train_loss"] if sync_loss is None else sync_loss
            label = f"{name} {c.train.mode}" + (f" tau={tau} W={w} {c.async_.delay}" if c.train.mode == "async" else "")
            rows.append(dict(repr=name, mode=c.train.mode, tau=tau, workers=w, delay=c.async_.delay if
                             c.train.mode == "async" else "-", steps=c.train.steps,
                             max_delay=min(tau, w - 1) if c.train.mode == "async" else 0,
                             train_loss=final["train_loss"], test_loss=final["test_loss"],
                             train_loss_vs_sync_pct=100.0 * (final["train_loss"] / sync_loss - 1.0),
                             step_ms=result["step_ms"]))
            curves[label] = result
    return dict(rows=rows, curves=curves, same_model=_same_model(curves))


def curve_table(curves: dict[str, Any], key: str = "train_loss") -> list[dict[str, Any]]:
    """Loss vs step, one column per run (the paper table's curves), as Markdown-ready rows."""
    labels = list(curves)
    steps = [c["step"] for c in curves[labels[0]]["curve"]] if labels else []
    return [{"step": step, **{label: f"{curves[label]['curve'][i][key]:.5g}" for label in labels}}
            for i, step in enumerate(steps)]


def _same_model(curves: dict[str, Any]) -> float | None:
    """Largest relative difference of the synchronous primal and structured loss curves (None if not both run)."""
    p, s = curves.get("primal sync"), curves.get("structured sync")
    if not (p and s):
        return None
    a = np.array([[c["train_loss"], c["test_loss"]] for c in p["curve"]])
    b = np.array([[c["train_loss"], c["test_loss"]] for c in s["curve"]])
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-12)))


def main(argv: list[str], f: dict[str, Any]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config, out = f["config"].value, f["out"].value
    result = run(config, f["reprs"].value, [int(t) for t in f["taus"].value], [int(w) for w in f["workers"].value],
                 f["eval_every"].value)
    k = config.data.kronecker
    print(f"paper network m={config.model.encoder.width} b={config.kronecker.shift} on x = ⊗ of dims {tuple(k.dims)}, "
          f"n={k.num_train}, batch {config.train.batch_size}, lr {config.train.optimizer.encoder.learning_rate}, "
          f"{config.train.steps} steps\n")
    print(markdown_table([{k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()}
                          for r in result["rows"]]))
    print(f"\nfull training loss vs step:\n\n{markdown_table(curve_table(result['curves']))}")
    if result["same_model"] is not None:
        print("\nprimal vs structured (sync): largest relative difference of the loss curves "
              f"{result['same_model']:.2e}")
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as fh:
            json.dump(dict(machine=machine_info(), config=config.to_dict(), **result), fh, indent=1)
            fh.write("\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    _flag_values = _define_flags()
    app.run(lambda argv: main(argv, _flag_values))
