"""config.mesh -> a device Mesh with axes (`data`, `model`) and the NamedShardings of a train state.

The label axis of a head is the one that shards (`model`); the batch is split on `data`; every
other parameter (the encoder) is replicated, i.e. data-parallel. Which parameter shards how is
decided by `config.mesh.rules`: (regex, spec) pairs matched against the parameter's path
("head/kernel", and inside the optimizer state e.g. "inner_states/head/inner_state/0/mu/head/kernel",
so one rule covers a parameter and its moments). A spec names one mesh axis or `_` (unsharded) per
trailing dimension, so a stacked copy (the async trainer's [τ+1, ...] history) shards like the
parameter itself. The first matching rule wins; a leaf no rule matches is replicated.

The default shape (1, 1) means one device and no mesh at all: nothing changes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from xcs.core.errors import UserError

DATA, MODEL = "data", "model"
AXES = (DATA, MODEL)


def mesh_shape(mesh_config: ml_collections.ConfigDict, num_devices: int) -> tuple[int, int]:
    """(data, model) device counts of config.mesh.shape, with one -1 standing for the remaining devices."""
    shape = tuple(int(s) for s in mesh_config.shape)
    if len(shape) != 2 or any(s == 0 or s < -1 for s in shape) or shape.count(-1) > 1:
        raise UserError(f"config.mesh.shape={mesh_config.shape!r}: expected (data, model) device counts, "
                         "positive or one -1 (all remaining devices)")
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1]))
        if num_devices % known:
            raise UserError(f"config.mesh.shape={mesh_config.shape!r}: {num_devices} devices are not a multiple "
                             f"of {known}")
        shape = tuple(num_devices // known if s == -1 else s for s in shape)
    if shape != (1, 1) and shape[0] * shape[1] != num_devices:
        raise UserError(f"config.mesh.shape={mesh_config.shape!r} needs {shape[0] * shape[1]} devices; "
                         f"jax sees {num_devices} ({jax.devices()[0].platform})")
    return shape  # type: ignore[return-value]


def make_mesh(mesh_config: ml_collections.ConfigDict) -> Mesh | None:
    """The (data, model) Mesh of config.mesh, or None for the default single-device shape (1, 1)."""
    shape = mesh_shape(mesh_config, jax.device_count())
    if shape == (1, 1):
        return None
    # Auto axes: XLA propagates shardings through the encoder (JAX 0.10's make_mesh defaults to Explicit).
    return jax.make_mesh(shape, AXES, axis_types=(AxisType.Auto,) * 2)


def check_config(config: ml_collections.ConfigDict, num_labels: int, mesh: Mesh | None) -> None:
    """Refuses what depends on the data: the labels must split evenly over the `model` devices.

    The rest of config.mesh (shape, heads, batch sizes) is checked by xcs.validate before any work.
    """
    if mesh is None:
        return
    model = mesh.shape[MODEL]
    if num_labels % model:
        raise UserError(f"config.mesh.shape={tuple(config.mesh.shape)}: {num_labels} labels do not split evenly over "
                        f"{model} devices of the `model` axis; pick a model axis size that divides the label count")


def parse_spec(spec: str, key: str) -> tuple[str | None, ...]:
    """'_,model' -> (None, 'model')."""
    parts = tuple(p.strip() for p in spec.split(",")) if spec.strip() else ()
    for p in parts:
        if p not in (*AXES, "_"):
            raise UserError(f"{key}: spec {spec!r} names {p!r}; expected {DATA}, {MODEL} or _ per dimension")
    return tuple(None if p == "_" else p for p in parts)


def path_string(path: Sequence[Any]) -> str:
    """A pytree key path as 'a/b/0/c'."""
    out = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                out.append(str(getattr(k, attr)))
                break
        else:
            out.append(str(k))
    return "/".join(out)


def leaf_spec(path: str, ndim: int, rules: Sequence[tuple[str, tuple[str | None, ...]]]) -> PartitionSpec:
    """The PartitionSpec of the first rule whose regex matches `path`, aligned to the trailing dims."""
    for pattern, spec in rules:
        if re.search(pattern, path):
            if len(spec) > ndim:
                raise UserError(f"config.mesh.rules: {pattern!r} gives {len(spec)} dims to {path} of rank {ndim}")
            return PartitionSpec(*((None,) * (ndim - len(spec)) + spec))
    return PartitionSpec()


def compiled_rules(mesh_config: ml_collections.ConfigDict) -> list[tuple[str, tuple[str | None, ...]]]:
    rules = []
    for i, rule in enumerate(mesh_config.rules):
        if len(rule) != 2:
            raise UserError(f"config.mesh.rules[{i}]={rule!r}: expected (regex, spec)")
        re.compile(rule[0])
        rules.append((rule[0], parse_spec(rule[1], f"config.mesh.rules[{i}]")))
    return rules


def tree_shardings(tree: Any, mesh: Mesh, mesh_config: ml_collections.ConfigDict) -> Any:
    """A NamedSharding per leaf of `tree` (arrays or ShapeDtypeStructs) by config.mesh.rules."""
    rules = compiled_rules(mesh_config)
    return jax.tree_util.tree_map_with_path(
        lambda path, x: NamedSharding(mesh, leaf_spec(path_string(path), np.ndim(x), rules)), tree)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Batch arrays [B, ...]: split on `data`, replicated over `model`."""
    return NamedSharding(mesh, PartitionSpec(DATA))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def place_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """A host batch as global arrays split on `data`. Every process holds the same global batch (the
    iterator is deterministic in the seed), so each fills only the slices its devices own; this is
    also what runs on several hosts."""
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_callback(v.shape, sharding, lambda idx, v=v: v[idx]) for k, v in batch.items()}


def shard_bytes(tree: Any) -> dict[str, int]:
    """Bytes of `tree`'s arrays: 'total' (logical) and 'per_device' (the largest one device holds)."""
    per_device: dict[Any, int] = {}
    total = 0
    for x in jax.tree.leaves(tree):
        total += x.size * x.dtype.itemsize
        for shard in x.addressable_shards:
            per_device[shard.device] = per_device.get(shard.device, 0) + shard.data.size * shard.data.dtype.itemsize
    return {"total": total, "per_device": max(per_device.values(), default=0)}
