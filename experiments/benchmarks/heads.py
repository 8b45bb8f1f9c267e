"""One train step (forward + backward + optimizer) of an output head on fixed features.

  python -m experiments.benchmarks.heads --heads dense --labels 10000,100000,670000 \
      --dim 256 --batch 256 --out heads.json

Each head comes from the model registry (xcs.registry.HEADS) with the default config, the softmax
loss over 4 random positives per point, and Adam; the step is jitted with the state donated, as
in training. `fanin32`, `fanin64`, ... name the fixed fan-in head (`sparse`) with that fan-in;
`fanin32_mb0.5` also sets its block kernel's chunk temporary (config.sparsity.block_mb) to 0.5 MiB,
`fanin32_recompute` has the softmax backward recompute the logits (config.sparsity.save_logits_mb=0).
A head that owns its update (HeadMethod.update, e.g. `lsh`: candidate lookup, loss over the
candidates and the row-sparse Adam on their rows) is timed through that update, as the train step
calls it, with its state donated; its optax parameters are empty.
Rows: head, labels, dim, batch, step_ms, peak_rss_mb, state_mb (head parameters + optimizer
state; for a head that owns its update, its whole non-trainable state: weights, optimizer moments,
tables), index_mb (non-trainable head state, e.g. the sparse head's int32 indices).
`--memory_only_from N` reports label counts >= N from shapes only (step_ms and peak_rss_mb empty), e.g.
the issue-5 rows: --heads dense,fanin32,fanin64 --labels 100000,670000,3000000 --memory_only_from 3000000
"""

from __future__ import annotations

import argparse
import gc
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax

from configs import default
from experiments.benchmarks.common import median_ms, peak_rss_mb, reset_peak_rss, tree_mb, write_report
from xcs.losses import get_loss
from xcs.registry import HEADS, XMCModel


def measure(head_name: str, labels: int, dim: int, batch: int, repeats: int, positives: int = 4,
            memory_only: bool = False) -> dict:
    config = default.get_config()
    config.model.head.name = head_name
    fanin = re.fullmatch(r"fanin(\d+)(?:_mb([\d.]+))?(_recompute)?", head_name)
    if fanin:
        config.model.head.name, config.sparsity.fan_in = "sparse", int(fanin.group(1))
        if fanin.group(2):  # e.g. fanin32_mb0.5: the block kernel's per-chunk temporary in MiB
            config.sparsity.block_mb = float(fanin.group(2))
        if fanin.group(3):  # e.g. fanin32_recompute: the softmax backward recomputes the logits
            config.sparsity.save_logits_mb = 0.0
    config.model.encoder.width = dim
    head = HEADS[config.model.head.name].build(config, dim, labels)
    loss_fn = get_loss("softmax")
    rng = np.random.default_rng(0)
    h = jnp.asarray(rng.normal(size=(batch, dim)), jnp.float32)
    label_idx = jnp.asarray(rng.integers(0, labels, (batch, positives)), jnp.int32)
    label_mask = jnp.ones((batch, positives), bool)
    tx = optax.adam(1e-3)
    if memory_only:
        return _memory_only_row(head, tx, head_name, labels, dim, batch, h, label_idx, label_mask, loss_fn)
    reset_peak_rss()
    variables = jax.jit(lambda k: head.init(k, h, label_idx, label_mask, loss_fn, method="loss"))(
        jax.random.PRNGKey(0))
    params = variables.pop("params", {})  # a head that owns its update has none
    model_state = dict(variables)  # non-trainable collections (a sparse head's indices), read by the step
    if HEADS[config.model.head.name].update is not None:
        del params, variables
        state_mb = tree_mb(model_state)
        ms = _time_head_update(config, head, model_state, h, label_idx, label_mask, repeats)
        row = dict(head=head_name, labels=labels, dim=dim, batch=batch, step_ms=ms, peak_rss_mb=peak_rss_mb(),
                   state_mb=state_mb, index_mb=0.0)
        model_state = None
        gc.collect()
        return row
    state = (params, tx.init(params))
    state_mb = tree_mb(state)
    index_mb = tree_mb(model_state)

    def step(state, model_state, h, label_idx, label_mask):  # index arrays as arguments, not constants
        params, opt_state = state

        def objective(p):
            return head.apply({"params": p, **model_state}, h, label_idx, label_mask, loss_fn,
                              method="loss").mean()

        loss, grads = jax.value_and_grad(objective)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    step = jax.jit(step, donate_argnums=0)
    del params, variables

    def run():
        nonlocal state
        state, loss = step(state, model_state, h, label_idx, label_mask)
        jax.block_until_ready(loss)

    ms = median_ms(run, repeats)
    row = dict(head=head_name, labels=labels, dim=dim, batch=batch, step_ms=ms, peak_rss_mb=peak_rss_mb(),
               state_mb=state_mb, index_mb=index_mb)
    state = None
    gc.collect()
    return row


def _time_head_update(config, head, model_state, h, label_idx, label_mask, repeats: int) -> float:
    """Median ms of the head's own update (its declaration's update), jitted with its state donated."""
    update = HEADS[config.model.head.name].update(config, XMCModel(encoder=None, head=head), 1000).update
    batch = {"label_idx": label_idx, "label_mask": label_mask}
    # Laid out as in XMCModel's variables, where the head is the submodule `head`.
    model_state = {collection: {"head": v} for collection, v in model_state.items()}
    step = jax.jit(lambda ms, h, batch, key: update(ms, h, batch, jnp.float32(1e-3), key)[:2], donate_argnums=0)
    key = jax.random.PRNGKey(1)

    def run():
        nonlocal model_state, key
        key, sub = jax.random.split(key)
        model_state, loss = step(model_state, h, batch, sub)
        jax.block_until_ready(loss)

    return median_ms(run, repeats)


def _memory_only_row(head, tx, head_name, labels, dim, batch, h, label_idx, label_mask, loss_fn) -> dict:
    """state_mb and index_mb from shapes alone (jax.eval_shape): for sizes too big to run here."""
    shapes = jax.eval_shape(lambda k: head.init(k, h, label_idx, label_mask, loss_fn, method="loss"),
                            jax.random.PRNGKey(0))
    params = shapes.pop("params", {})
    # A head without optax parameters owns its update: its whole state counts, as in measure().
    state_mb = tree_mb((params, jax.eval_shape(tx.init, params))) if params else tree_mb(shapes)
    index_mb = tree_mb(shapes) if params else 0.0
    return dict(head=head_name, labels=labels, dim=dim, batch=batch, step_ms=None, peak_rss_mb=None,
                state_mb=state_mb, index_mb=index_mb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heads", default="dense",
                        help="comma-separated names from xcs.registry.HEADS, or fanin<k>[_mb<MiB>] (sparse head, "
                             "fan-in k, optional config.sparsity.block_mb)")
    parser.add_argument("--labels", default="10000,100000,670000")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory_only_from", type=int, default=0,
                        help="label counts >= this get state_mb/index_mb from shapes only, no step (0 = none)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for tests (under a minute)")
    parser.add_argument("--out", default=None, help="JSON output file")
    args = parser.parse_args()
    labels = [1000, 5000] if args.quick else [int(x) for x in args.labels.split(",")]
    dim, batch, repeats = (32, 32, 2) if args.quick else (args.dim, args.batch, args.repeats)
    memory_only = lambda n: 0 < args.memory_only_from <= n  # noqa: E731
    rows = [measure(name, n, dim, batch, repeats, memory_only=memory_only(n))
            for n in labels for name in args.heads.split(",")]
    write_report(rows, args.out)


if __name__ == "__main__":
    main()
