"""Locality-sensitive hash families over dense vectors, vectorised and jittable.

A family maps a vector x [D] to one bucket key in [0, 2^bits) per table, for T tables:

  wta      Winner-take-all (Yagnik et al. 2011; Vijayanarasimhan et al. 2014): each code is the
           argmax position among `window` coordinates drawn at random (the first `window` entries
           of a random permutation), log2(window) bits per code, bits / log2(window) codes per key.
  dwta     Densified WTA (Chen & Shrivastava 2018; SLIDE): the coordinates of a few random
           permutations are cut into bins of `window`; a code is the argmax among the bin's
           non-zero entries. A bin with no non-zero entry (sparse vectors) takes the code of the
           first non-empty bin that a 2-universal hash of (bin, attempt) probes, as in SLIDE. The
           key has log2(window) bits per code (SLIDE's own code packs codes with ln, which loses
           most of the 2^bits buckets).
  simhash  Signed random projections (Charikar 2002): one bit per Gaussian hyperplane.

Multi-probe (`probe_keys`): a query also looks into the buckets one code away from its own, the
least certain codes first, so few tables with short keys find what many tables would.

The key of table t packs its codes as sum_c code[t, c] << (c * bits_per_code), so it uses exactly
`bits` bits. Biases are folded in by the caller: label rows are [w, b], queries [h, 1].
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from xcs.core.errors import UserError

FAMILIES = ("wta", "dwta", "simhash")
HashParams = dict[str, jax.Array]  # a pytree, stored in the head's state and replaced on rebuild


@dataclasses.dataclass(frozen=True)
class HashSpec:
    """The static shape of a hash family (hashable, so jitted functions can close over it)."""

    family: str  # wta | dwta | simhash
    dim: int  # D: length of the hashed vectors (bias folded in)
    num_tables: int  # T
    bits: int  # bits per key: 2^bits buckets per table
    window: int = 8  # wta/dwta: coordinates compared per code (a power of two)
    probes: int = 16  # dwta: 2-universal probes tried for an empty bin

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise UserError(f"config.lsh.family={self.family!r}: expected one of {list(FAMILIES)} (or uniform)")
        if not 1 <= self.bits <= 30:
            raise UserError(f"config.lsh.bits={self.bits}: must be in [1, 30]")
        if self.family != "simhash":
            if self.window < 2 or self.window & (self.window - 1):
                raise UserError(f"config.lsh.window={self.window}: must be a power of two >= 2")
            if self.bits % self.bits_per_code:
                raise UserError(f"config.lsh.bits={self.bits} must be a multiple of log2(config.lsh.window)="
                                 f"{self.bits_per_code} for family {self.family!r}")

    @property
    def bits_per_code(self) -> int:
        return 1 if self.family == "simhash" else int(math.log2(self.window))

    @property
    def codes_per_table(self) -> int:
        return self.bits // self.bits_per_code

    @property
    def num_buckets(self) -> int:
        return 2**self.bits


def init_hash(key: jax.Array, spec: HashSpec) -> HashParams:
    """Fresh random hash functions of `spec` (a new draw of `key` = a rebuild)."""
    T, C = spec.num_tables, spec.codes_per_table
    if spec.family == "simhash":
        return {"planes": jax.random.normal(key, (spec.dim, T * C), jnp.float32)}
    if spec.family == "wta":
        keys = jax.random.split(key, T * C)
        coords = jax.vmap(lambda k: jax.random.permutation(k, spec.dim)[: spec.window])(keys)
        return {"coords": coords.reshape(T, C, spec.window).astype(jnp.int32)}
    # dwta: bins of consecutive coordinates of concatenated random permutations.
    perm_key, probe_key = jax.random.split(key)
    need = T * C * spec.window
    num_perms = -(-need // spec.dim)
    perms = jax.vmap(lambda k: jax.random.permutation(k, spec.dim))(jax.random.split(perm_key, num_perms))
    coords = perms.reshape(-1)[:need].reshape(T, C, spec.window).astype(jnp.int32)
    # 2-universal multiply-add-shift hash of (bin, attempt) -> bin (Dietzfelbinger et al.), as SLIDE probes.
    a, b = jax.random.randint(probe_key, (2,), 1, 2**31 - 1, jnp.uint32)
    a = a | jnp.uint32(1)  # odd multiplier
    num_bins = T * C
    x = ((jnp.arange(num_bins, dtype=jnp.uint32)[None, :] + 1) << 6) + jnp.arange(1, spec.probes + 1,
                                                                                   dtype=jnp.uint32)[:, None]
    probe = (((a * x + b) >> 16) % jnp.uint32(num_bins)).astype(jnp.int32)  # [probes, bins]
    return {"coords": coords, "probe": probe}


def _pack(codes: jax.Array, bits_per_code: int) -> jax.Array:
    """codes [N, T, C] in [0, 2^bits_per_code) -> keys [N, T] = sum_c code_c << (c * bits_per_code)."""
    shifts = (jnp.arange(codes.shape[-1], dtype=jnp.int32) * bits_per_code)
    return (codes.astype(jnp.int32) << shifts).sum(-1).astype(jnp.int32)


def _codes(spec: HashSpec, params: HashParams, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(codes, runner-up codes, margins), each [N, T, C], of the rows of x [N, D].

    The runner-up of a code is the code it would take if its deciding comparison went the other
    way (simhash: the other sign; wta/dwta: the second-largest coordinate of the window), and the
    margin says how close that was (|projection|; largest minus second-largest value). Multi-probe
    (`probe_keys`) flips the codes with the smallest margins.
    """
    T, C = spec.num_tables, spec.codes_per_table
    if spec.family == "simhash":
        proj = (x @ params["planes"]).reshape(x.shape[0], T, C)
        codes = (proj > 0).astype(jnp.int32)
        return codes, 1 - codes, jnp.abs(proj)
    vals = x[:, params["coords"]]  # [N, T, C, window]
    if spec.family == "dwta":  # only non-zero entries compete
        vals = jnp.where(vals != 0, vals, -jnp.inf)
    # Two argmaxes rather than lax.top_k, which XLA-CPU lowers to a (much slower) sort.
    codes = jnp.argmax(vals, -1)
    best = jnp.take_along_axis(vals, codes[..., None], -1)[..., 0]
    # Runner-up: the largest other entry (a zero of a dwta bin, -inf here, still beats the code itself).
    lowest = jnp.finfo(vals.dtype).min
    rest = jnp.where(jnp.arange(spec.window) == codes[..., None], -jnp.inf, jnp.maximum(vals, lowest))
    runner = jnp.argmax(rest, -1)
    margin = best - jnp.take_along_axis(vals, runner[..., None], -1)[..., 0]
    if spec.family == "wta":
        return codes, runner, margin
    # dwta: an empty bin (all entries zero) borrows code, runner-up and margin of the first non-empty
    # bin that the 2-universal probe sequence hits.
    n, bins = x.shape[0], T * C
    codes, runner, margin = (a.reshape(n, bins) for a in (codes, runner, margin))
    empty = best.reshape(n, bins) == -jnp.inf
    probe = params["probe"]  # [P, bins]
    ok = ~empty[:, probe]  # [N, P, bins]
    first = jnp.argmax(ok, axis=1)  # the first probe that hits a non-empty bin
    source = jnp.take_along_axis(jnp.broadcast_to(probe, ok.shape), first[:, None, :], axis=1)[:, 0]
    found = ok.any(1)

    def borrow(a, default):
        return jnp.where(empty, jnp.where(found, jnp.take_along_axis(a, source, axis=1), default), a)

    # A bin with no non-empty bin to borrow from (an all-zero vector) has code 0 and never flips.
    codes, runner = borrow(codes, 0), borrow(runner, 0)
    margin = jnp.where(jnp.isfinite(margin), margin, jnp.inf)  # a bin with one non-zero: a sure code
    margin = borrow(margin, jnp.inf)
    return tuple(a.reshape(n, T, C) for a in (codes, runner, margin))


def hash_keys(spec: HashSpec, params: HashParams, x: jax.Array) -> jax.Array:
    """Bucket keys [N, T] int32 in [0, 2^bits) of the rows of x [N, D]."""
    codes, _, _ = _codes(spec, params, x)
    return _pack(codes, spec.bits_per_code)


def probe_keys(spec: HashSpec, params: HashParams, x: jax.Array, extra: int) -> jax.Array:
    """Multi-probe (Lv et al. 2007): keys [N, T, 1 + extra] of the rows of x [N, D]: each table's own
    bucket, then the `extra` buckets whose key differs from it in one code, the least certain codes
    first (smallest margin), that code replaced by its runner-up. `extra` <= codes per table."""
    if not 0 <= extra <= spec.codes_per_table:
        raise UserError(f"config.lsh.multiprobe={extra}: must be in [0, {spec.codes_per_table}] (codes per table "
                         f"= bits / log2(window) for {spec.family!r})")
    codes, runner, margin = _codes(spec, params, x)
    key = _pack(codes, spec.bits_per_code)[..., None]  # [N, T, 1]
    if extra == 0:
        return key
    shifts = jnp.arange(spec.codes_per_table, dtype=jnp.int32) * spec.bits_per_code
    delta = (runner - codes) << shifts  # [N, T, C]: what flipping code c adds to the key
    order = jnp.argsort(margin, axis=-1)[..., :extra]  # the least certain codes
    return jnp.concatenate([key, key + jnp.take_along_axis(delta, order, axis=-1)], axis=-1)


def hash_rows_chunked(row_keys: Callable[[jax.Array], jax.Array], rows: jax.Array, chunk: int) -> jax.Array:
    """row_keys (e.g. hash_keys with its spec and params bound) of all rows [L, D], `chunk` rows at a
    time (the [chunk, T, C, window] gather, or a transformed chunk, is the only temporary), so hashing
    every label row never holds an [L, T, C, window] array."""
    n = rows.shape[0]
    chunk = max(1, min(chunk, n))
    num = -(-n // chunk)
    padded = jnp.pad(rows, ((0, num * chunk - n), (0, 0)))
    keys = jax.lax.map(row_keys, padded.reshape(num, chunk, -1))
    return keys.reshape(num * chunk, -1)[:n]
