"""A label-sharded dense head on simulated devices: per-device head + optimizer bytes and step time.

  python -m experiments.benchmarks.sharded --labels 3000000 --dim 256 --batch 256 --meshes 1x8,2x4,8x1 \
      --out experiments/results/sharded.json

Runs on `--devices` simulated CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count, set
here before jax is imported). One train step = the dense head's softmax loss over 4 random
positives per point on fixed features h [B, d], its gradient and Adam, jitted with the state's
shardings (config.mesh.rules: kernel and bias split on `model`) and donated, as in training.
The state is created shard by shard (jax.jit(init, out_shardings=...)), never whole.
Rows: mesh, labels, dim, batch, single_device_mb (head parameters + Adam moments of one device
holding everything, from the shapes), per_device_mb (the most any device holds, from the shards),
ratio (single_device_mb / per_device_mb; 8 on 8 `model` devices), temp_mb_per_device (XLA's
per-device scratch of the compiled step: logits and gradients of the local labels), step_ms,
peak_rss_mb (the whole process: all simulated devices share the host's memory).
"""

from __future__ import annotations

import argparse
import os
import sys

if "jax" in sys.modules:
    raise RuntimeError("experiments.benchmarks.sharded must set XLA_FLAGS before jax is imported; run it as a module")
_devices = next((int(a.split("=")[1]) for a in sys.argv if a.startswith("--devices=")), 8)
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={_devices}"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import gc  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from configs import default  # noqa: E402
from experiments.benchmarks.common import median_ms, peak_rss_mb, reset_peak_rss, write_report  # noqa: E402
from xcs.losses import get_loss  # noqa: E402
from xcs.parallel import mesh as mesh_lib  # noqa: E402
from xcs.registry import HEADS  # noqa: E402

MB = 2**20


def measure(shape: tuple[int, int], labels: int, dim: int, batch: int, repeats: int, positives: int = 4) -> dict:
    config = default.get_config()
    config.mesh.shape = shape
    mesh = mesh_lib.make_mesh(config.mesh)
    if mesh is None:
        raise ValueError("--meshes: use a shape of more than one device (e.g. 1x8)")
    head = HEADS["dense"].build(config, dim, labels)
    loss_fn = get_loss("softmax")
    rng = np.random.default_rng(0)
    batch_sh, repl = mesh_lib.batch_sharding(mesh), mesh_lib.replicated(mesh)
    h = jax.device_put(jnp.asarray(rng.normal(size=(batch, dim)), jnp.float32), batch_sh)
    label_idx = jax.device_put(jnp.asarray(rng.integers(0, labels, (batch, positives)), jnp.int32), batch_sh)
    label_mask = jax.device_put(jnp.ones((batch, positives), bool), batch_sh)
    tx = optax.adam(1e-3)

    def init(key):
        params = {"head": head.init(key, h, label_idx, label_mask, loss_fn, method="loss")["params"]}
        return {"params": params, "opt": tx.init(params)}

    def step(state, h, label_idx, label_mask):
        def objective(params):
            return head.apply({"params": params["head"]}, h, label_idx, label_mask, loss_fn, method="loss").mean()

        loss, grads = jax.value_and_grad(objective)(state["params"])
        updates, opt = tx.update(grads, state["opt"], state["params"])
        return {"params": optax.apply_updates(state["params"], updates), "opt": opt}, loss

    reset_peak_rss()
    abstract = jax.eval_shape(init, jax.random.PRNGKey(0))
    single_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(abstract))
    shardings = mesh_lib.tree_shardings(abstract, mesh, config.mesh)
    state = jax.jit(init, out_shardings=shardings)(jax.random.PRNGKey(0))
    held = mesh_lib.shard_bytes(state)
    jitted = jax.jit(step, in_shardings=(shardings, batch_sh, batch_sh, batch_sh), out_shardings=(shardings, repl),
                     donate_argnums=0)
    compiled = jitted.lower(state, h, label_idx, label_mask).compile()
    analysis = compiled.memory_analysis()
    temp_mb = analysis.temp_size_in_bytes / MB if analysis is not None else float("nan")

    def run():
        nonlocal state
        state, loss = compiled(state, h, label_idx, label_mask)
        jax.block_until_ready(loss)

    ms = median_ms(run, repeats, warmup=1)
    row = dict(mesh=f"{shape[0]}x{shape[1]}", labels=labels, dim=dim, batch=batch,
               single_device_mb=single_bytes / MB, per_device_mb=held["per_device"] / MB,
               ratio=single_bytes / held["per_device"], temp_mb_per_device=temp_mb, step_ms=ms,
               peak_rss_mb=peak_rss_mb())
    gc.collect()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=3_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--meshes", default="1x8", help="comma-separated (data)x(model) shapes")
    parser.add_argument("--devices", type=int, default=8, help="simulated CPU devices (read before jax starts)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="L=8192, d=64, B=64, meshes 1x8,2x4 (for tests)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.labels, args.dim, args.batch, args.meshes, args.repeats = 8192, 64, 64, "1x8,2x4", 2
    rows = []
    for spec in args.meshes.split(","):
        data, model = (int(x) for x in spec.split("x"))
        rows.append(measure((data, model), args.labels, args.dim, args.batch, args.repeats))
    write_report(rows, args.out)


if __name__ == "__main__":
    main()
