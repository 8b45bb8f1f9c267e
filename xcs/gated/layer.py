"""Tree-gated conditional computation (Cho & Bengio 2014, arXiv 1406.7362).

The signs of k designated input units (gating units) give each example a bit string g1..gk.
The **tree** parametrisation stores one block per prefix of that string (a complete binary tree
of 2^{k+1} - 1 nodes in heap order: root 0, children of n are 2n+1 and 2n+2) and uses

    W(g) = sum_{j=0..k} W[node_j(g)],   node_0 = 0,  node_{j+1} = 2 node_j + 1 + g_{j+1},

so an example touches k + 1 blocks while the layer stores 2^{k+1} - 1: parameters grow
exponentially in k, computation linearly. The naive **table** parametrisation stores one block
per bit pattern (2^k) and uses only that one; every pattern is trained on its own share of the
data, which is why it overfits.

The output may be split into blocks of `block_size` units, each with its own k gating units and
its own tree. Computation gathers, for every example and output block, the blocks on its path
(static shapes: [B, out_blocks, k + 1] node ids), sums them and multiplies once; the
2^{k+1} - 1 products are never formed. Each example reads its own weights, so at large batches
the layer reads about as many weight bytes as a dense layer of equal parameters: its win is the
per-example computation and the latency at small batches.

Except at the top of the tree: a level of 2^j blocks shared by a batch of B >= 4 * 2^j examples
is cheaper as one matrix product of the whole batch with all its blocks (2^j times the FLOPs,
but at matrix-product speed, and one read of each block) than as B gathered per-example
matrices. So the top levels with at most `dense_level_blocks` blocks each (the whole table when
it is that small) are computed that way, every example keeping only the outputs of the nodes on
its path (an exact zero elsewhere, for the gradient too); the levels below are gathered. The
gathered sum's gradient is a chain of scatter-adds into one buffer (`_gather_sum`), not one
kernel-sized array per level.

Gradients of the bits (`gate_gradient`):
  none (default)     the bits are constants; the gating units still learn through their ordinary
                     role as inputs. This is the exact gradient of the computed (piecewise
                     linear) function, costs nothing extra, and is the setting of the paper,
                     where gating units are ordinary hidden units whose signs select blocks.
  straight_through   d out / d bit_j is taken as the difference between the two children of
                     level j (x W[child1] - x W[child0] plus biases), and d bit / d unit = 1
                     (Bengio et al. 2013). For the levels of the top product both children's
                     outputs are already computed; below, training's backward pass reads the two
                     children per example one level at a time (`_gate_slopes`). The forward
                     value is unchanged and no gradient reaches the sibling blocks through it.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from xcs.core.errors import UserError

KINDS = ("tree", "table", "dense_flops", "dense_params")
POSITIONS = ("residual", "input")
GATE_UNITS = ("distinct", "shared")
GATE_GRADIENTS = ("none", "straight_through")


@dataclasses.dataclass(frozen=True)
class GatedSpec:
    """The gated layer of an encoder (config.model.encoder.gated); hashable, so a Flax attribute."""

    kind: str = "tree"  # tree | table | dense_flops | dense_params
    position: str = "residual"  # residual | input
    depth: int = 4  # k: gating bits per output block
    block_size: int = 0  # output units per gated block (each with its own gates); 0 = whole width
    gate_units: str = "distinct"  # distinct: block o reads units o*k..o*k+k-1 (mod d_in) | shared: 0..k-1
    gate_gradient: str = "none"  # none | straight_through
    dense_level_blocks: int = 16  # top levels of at most this many blocks as one product (see above); 0 = never

    def __post_init__(self) -> None:
        key = "config.model.encoder.gated"
        for name, allowed in (("kind", KINDS), ("position", POSITIONS), ("gate_units", GATE_UNITS),
                              ("gate_gradient", GATE_GRADIENTS)):
            if getattr(self, name) not in allowed:
                raise UserError(f"{key}.{name}={getattr(self, name)!r}: expected one of {allowed}")
        if not 0 <= self.depth <= 24:
            raise UserError(f"{key}.depth={self.depth}: expected 0..24 (the layer stores 2^(depth+1) - 1 blocks)")
        if self.block_size < 0:
            raise UserError(f"{key}.block_size={self.block_size}: expected >= 0 (0 = the whole width)")
        if self.dense_level_blocks < 0:
            raise UserError(f"{key}.dense_level_blocks={self.dense_level_blocks}: expected >= 0 (0 = always gather)")

    def out_blocks(self, d_out: int) -> tuple[int, int]:
        """(number of output blocks, units per block) for an output of width d_out."""
        size = self.block_size or d_out
        if d_out % size:
            raise UserError(f"config.model.encoder.gated.block_size={self.block_size} does not divide the "
                             f"layer's output width {d_out}")
        return d_out // size, size


def num_blocks(kind: str, depth: int) -> int:
    """Blocks stored per output block: 2^{k+1} - 1 for the tree, 2^k for the table."""
    return 2 ** (depth + 1) - 1 if kind == "tree" else 2**depth


def blocks_used(kind: str, depth: int) -> int:
    """Blocks each example uses per output block: the k + 1 prefixes (tree) or its one pattern (table)."""
    return depth + 1 if kind == "tree" else 1


def matched_hidden(kind: str, depth: int, d_in: int, d_out: int) -> int:
    """Hidden width m of a dense MLP d_in -> m -> d_out with the tree layer's FLOPs or parameters.

    The MLP costs 2 m (d_in + d_out) FLOPs and stores m (d_in + d_out) weights; the tree layer
    costs 2 (k + 1) d_in d_out and stores (2^{k+1} - 1) d_in d_out.
    """
    blocks = {"dense_flops": depth + 1, "dense_params": 2 ** (depth + 1) - 1}[kind]
    return max(1, round(blocks * d_in * d_out / (d_in + d_out)))


def layer_cost(spec: GatedSpec, d_in: int, d_out: int) -> dict[str, int]:
    """Weights stored and multiply-add FLOPs per example of the layer `spec` (biases left out)."""
    if spec.kind in ("dense_flops", "dense_params"):
        m = matched_hidden(spec.kind, spec.depth, d_in, d_out)
        return {"params": m * (d_in + d_out), "flops_per_example": 2 * m * (d_in + d_out)}
    return {"params": num_blocks(spec.kind, spec.depth) * d_in * d_out,
            "flops_per_example": 2 * blocks_used(spec.kind, spec.depth) * d_in * d_out}


def gate_unit_ids(spec: GatedSpec, d_in: int, out_blocks: int) -> np.ndarray:
    """[out_blocks, k] input units whose signs are the gating bits of each output block."""
    k = spec.depth
    if k > d_in:
        raise UserError(f"config.model.encoder.gated.depth={k} needs {k} distinct gating units but the "
                         f"gated layer's input has only {d_in}")
    if spec.gate_units == "shared":
        return np.tile(np.arange(k), (out_blocks, 1))
    # Consecutive runs of k units, wrapping around the input: distinct within a block.
    return (np.arange(out_blocks)[:, None] * k + np.arange(k)[None, :]) % d_in


def path_nodes(bits: jax.Array) -> jax.Array:
    """Tree node ids [..., k + 1] of the prefixes of bit strings [..., k] (heap order)."""
    nodes = [jnp.zeros(bits.shape[:-1], jnp.int32)]
    for j in range(bits.shape[-1]):
        nodes.append(2 * nodes[-1] + 1 + bits[..., j])
    return jnp.stack(nodes, axis=-1)


def pattern_ids(bits: jax.Array) -> jax.Array:
    """Table row [...] of bit strings [..., k]: the bits read as a binary number, first bit highest."""
    k = bits.shape[-1]
    weights = (2 ** np.arange(k - 1, -1, -1)).astype(np.int32)
    return jnp.sum(bits * weights, axis=-1).astype(jnp.int32)


# A top level of 2^j blocks is computed for the whole batch only with at least this many examples
# per block: below it the product reads blocks that no example uses. Chosen from scratch timings
# on 2 CPU cores at B = 16, 64, 256; experiments/benchmarks/gated_forms.py shows the result.
EXAMPLES_PER_DENSE_BLOCK = 4


def dense_top(spec: GatedSpec, batch: int) -> tuple[int, int]:
    """(blocks, id columns) that the layer multiplies with the whole batch: blocks 0..n - 1 in heap order.

    Tree level j (2^j blocks, nodes 2^j - 1 .. 2^{j+1} - 2) qualifies when
    2^j <= min(spec.dense_level_blocks, batch / EXAMPLES_PER_DENSE_BLOCK); the qualifying levels are
    0..m, whose nodes are 0 .. 2^{m+1} - 2, read from id columns 0..m. The table qualifies as a
    whole (its one id column) or not at all.
    """
    limit = min(spec.dense_level_blocks, batch // EXAMPLES_PER_DENSE_BLOCK)
    if spec.kind == "table":
        return (2**spec.depth, 1) if 2**spec.depth <= limit else (0, 0)
    levels = sum(1 for j in range(spec.depth + 1) if 2**j <= limit)
    return 2**levels - 1, levels


def _top_outputs(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """x W[n, o] + b[n, o] -> [B, n, O, size]: every example times all n top blocks, as one product."""
    return jnp.einsum("bi,nois->bnos", x, kernel) + bias


def _path_sum(z: jax.Array, ids: jax.Array) -> jax.Array:
    """sum_j z[b, ids[b, o, j], o] -> [B, O, size]: each example keeps the outputs of the nodes on its path.

    The rest is selected away (exactly zero, and so is its gradient).
    """
    on_path = jnp.any(ids[:, None] == jnp.arange(z.shape[1])[None, :, None, None], axis=-1)  # [B, n, O]
    return jnp.sum(jnp.where(on_path[..., None], z, 0.0), axis=1)


@jax.custom_vjp
def _gather_sum(table: jax.Array, ids: jax.Array) -> jax.Array:
    """sum_j table[ids[b, o, j], o] -> [B, O, ...], one level at a time.

    A sum of per-level gathers fuses into one pass that writes only [B, O, ...]; gathering all
    levels first would hold k + 1 blocks per example in memory.
    """
    out_block = jnp.arange(table.shape[1])[None, :]
    total = table[ids[..., 0], out_block]
    for j in range(1, ids.shape[-1]):
        total = total + table[ids[..., j], out_block]
    return total


def _gather_sum_fwd(table: jax.Array, ids: jax.Array):
    return _gather_sum(table, ids), (table, ids)  # the table is a reference to the parameter, not a copy


def _gather_sum_bwd(residuals, cotangent: jax.Array):
    """Scatter-add the cotangent into one table-sized buffer, level after level (in place).

    Autodiff would scatter each level into its own zero table and add the k + 1 tables up, which
    for a deep tree is most of the step (experiments/benchmarks/gated_forms.py, before vs gather:
    1.6x slower at k = 10, B = 256).
    """
    table, ids = residuals
    out_block = jnp.arange(table.shape[1])[None, :]
    grad = jnp.zeros_like(table)
    for j in range(ids.shape[-1]):
        grad = grad.at[ids[..., j], out_block].add(cotangent)
    return grad, None  # the ids are integers: no cotangent


_gather_sum.defvjp(_gather_sum_fwd, _gather_sum_bwd)


class GatedDense(nn.Module):
    """y = x W(g(x)) + b(g(x)) with the tree or table parametrisation; x [B, d_in] -> y [B, d_out]."""

    features: int
    spec: GatedSpec

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        spec, k = self.spec, self.spec.depth
        if spec.kind not in ("tree", "table"):
            raise ValueError(f"GatedDense: kind={spec.kind!r} is a dense baseline; use make_gated_layer")
        d_in = x.shape[-1]
        n_out, size = spec.out_blocks(self.features)
        n = num_blocks(spec.kind, k)
        # Each block is scaled so that the sum of the k + 1 blocks an example uses has the variance
        # of one LeCun-initialised dense layer.
        std = 1.0 / np.sqrt(d_in * blocks_used(spec.kind, k))
        kernel = self.param("kernel", nn.initializers.normal(stddev=std), (n, n_out, d_in, size), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (n, n_out, size), jnp.float32)

        units = jnp.asarray(gate_unit_ids(spec, d_in, n_out))  # [O, k]
        pre = x[:, units]  # [B, O, k]: the gating units' values
        bits = (pre > 0).astype(jnp.int32)
        if spec.kind == "tree":
            ids = path_nodes(bits)  # [B, O, k + 1]
        else:
            ids = pattern_ids(bits)[..., None]  # [B, O, 1]
        n_top, top = dense_top(spec, x.shape[0])  # blocks 0..n_top - 1, from id columns 0..top - 1
        parts = []  # [B, O, size] each
        if top:
            z = _top_outputs(x, kernel[:n_top], bias[:n_top])  # [B, n_top, O, size]
            parts.append(_path_sum(z, ids[..., :top]))
        if top < ids.shape[-1]:
            deep = ids[..., top:]
            w = _gather_sum(kernel, deep)  # [B, O, d_in, size]: the example's own sum of deep blocks
            parts.append(jnp.einsum("bi,bois->bos", x, w) + _gather_sum(bias, deep))
        if train and spec.gate_gradient == "straight_through" and k:
            one, zero = _flip_targets(spec.kind, bits, ids)  # [B, O, k] each
            m = (k if top else 0) if spec.kind == "table" else max(top - 1, 0)  # bits whose two choices are in z
            if m:
                # Both choices' outputs are already in the top product: t_j (z[one_j] - z[zero_j]) with
                # t_j = pre_j - stop_grad(pre_j) is zero forward and has d / d pre_j = z[one_j] - z[zero_j].
                t = pre[..., :m] - jax.lax.stop_gradient(pre[..., :m])  # [B, O, m]
                outputs = jnp.moveaxis(z, 1, 2)  # [B, O, n_top, size]
                pick = lambda nodes: jnp.take_along_axis(outputs, nodes[..., :m, None], axis=2)  # [B, O, m, size]
                parts.append(jnp.einsum("boj,bojs->bos", t, pick(one) - pick(zero)))
            if m < k:
                frozen = [jax.lax.stop_gradient(a) for a in (x, kernel, bias)]
                # zero, with the straight-through d y / d pre for the bits choosing between gathered blocks
                parts.append(_gate_slopes(pre[..., m:], *frozen, one[..., m:], zero[..., m:]))
        y = sum(parts[1:], parts[0])
        return y.reshape(x.shape[0], self.features)


@jax.custom_vjp
def _gate_slopes(pre: jax.Array, x: jax.Array, kernel: jax.Array, bias: jax.Array, one: jax.Array,
                 zero: jax.Array) -> jax.Array:
    """Exactly zero [B, O, size], whose gradient with respect to the gating units pre [B, O, k] is the
    straight-through one: d y / d pre_j = x (W[one_j] - W[zero_j]) + b[one_j] - b[zero_j] (the children
    that bit j chooses between, the rest of the path kept); nothing flows to x, W or b from this term.

    The backward reads the 2k sibling blocks one level at a time ([B, O, d_in, size] at once), where
    a zero-valued product t_j (W[one_j] - W[zero_j]) with autodiff would gather all of them
    ([B, O, k, d_in, size], twice) and scatter their zero cotangents into two kernel-sized arrays.
    """
    return jnp.zeros((*pre.shape[:2], kernel.shape[-1]), kernel.dtype)


def _gate_slopes_fwd(pre, x, kernel, bias, one, zero):
    return _gate_slopes(pre, x, kernel, bias, one, zero), (x, kernel, bias, one, zero)


def _gate_slopes_bwd(residuals, cotangent: jax.Array):
    x, kernel, bias, one, zero = residuals
    out_block = jnp.arange(kernel.shape[1])[None, :]
    slopes = []  # [B, O] per bit
    for j in range(one.shape[-1]):
        a, b = one[..., j], zero[..., j]
        # (x (W[a] - W[b])) . cotangent for one level: its sibling difference [B, O, d_in, size]
        # contracted with the cotangent, then with x.
        towards = jnp.einsum("bois,bos->boi", kernel[a, out_block] - kernel[b, out_block], cotangent)
        slopes.append(jnp.einsum("bi,boi->bo", x, towards)
                      + jnp.sum((bias[a, out_block] - bias[b, out_block]) * cotangent, axis=-1))
    # x, the kernel and the bias enter stop-gradiented (their cotangents here are exactly zero).
    return jnp.stack(slopes, axis=-1), None, None, None, None, None


_gate_slopes.defvjp(_gate_slopes_fwd, _gate_slopes_bwd)


def _flip_targets(kind: str, bits: jax.Array, ids: jax.Array) -> tuple[jax.Array, jax.Array]:
    """For every bit j, the block chosen with bit j set to 1 and to 0 (the rest of the path kept)."""
    k = bits.shape[-1]
    if kind == "tree":
        parent = ids[..., :k]  # node at level j decides bit j
        return 2 * parent + 2, 2 * parent + 1
    place = (2 ** np.arange(k - 1, -1, -1)).astype(np.int32)
    leaf = ids  # [B, O, 1]
    return leaf | place, leaf & ~place


class DenseBaseline(nn.Module):
    """A dense MLP d_in -> m -> d_out with the FLOPs (dense_flops) or parameters (dense_params) of the tree."""

    features: int
    spec: GatedSpec

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        m = matched_hidden(self.spec.kind, self.spec.depth, x.shape[-1], self.features)
        return nn.Dense(self.features, name="out")(nn.gelu(nn.Dense(m, name="hidden")(x)))


def make_gated_layer(spec: GatedSpec, features: int, name: str) -> nn.Module:
    """The layer of `spec.kind`: GatedDense (tree, table) or its dense baseline."""
    if spec.kind in ("tree", "table"):
        return GatedDense(features, spec, name=name)
    return DenseBaseline(features, spec, name=name)


def gated_spec(config) -> GatedSpec | None:
    """config.model.encoder.gated as a GatedSpec, or None when it is disabled."""
    g = config.model.encoder.gated
    if not g.enabled:
        return None
    if g.position == "input" and g.gate_gradient == "straight_through":
        # The input layer's gates are signs of raw features: a gradient for them has nothing to train.
        raise UserError("config.model.encoder.gated.gate_gradient='straight_through' with position='input': the "
                         "gates are signs of the raw input features, which no parameter produces; use "
                         "gate_gradient=none (or position=residual, whose gates are hidden units)")
    return GatedSpec(kind=g.kind, position=g.position, depth=g.depth, block_size=g.block_size,
                     gate_units=g.gate_units, gate_gradient=g.gate_gradient, dense_level_blocks=g.dense_level_blocks)
