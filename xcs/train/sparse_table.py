"""Row-sparse training of the bag encoder's embedding table (config.train.sparse_embedding).

A batch of B points with at most F features each reads at most B·F of the table's V rows
(wordnet_hypernyms at batch 256: ~3k distinct of 42k). The dense step still forms the table's whole
gradient (a scatter-add into zeros [V, d]), and Adam reads and writes all V·d weights and both
moments every step. With sparse_embedding the step
  1. takes the batch's distinct feature ids `rows` (padded to a static bound, `max_rows`) and the
     place `pos` of every feat_idx entry among them;
  2. gathers table[rows] [R, d] and gives the model feat_rows = gathered[pos] (BagEncoder reads
     those), so the loss is differentiated with respect to the gathered rows and the other
     parameters only: the gathered rows' gradient is the dense gradient's rows, exactly;
  3. steps the other parameters with the optax optimizer and the table's rows with
     xcs.nn.row_optim (config.train.optimizer.encoder's name and settings, its schedule).
The first step equals the dense one. After it, a row's moments rest while the row is absent from
the batches (lazy Adam: TensorFlow's LazyAdam, torch's SparseAdam), where dense Adam keeps moving
the row on its decaying momentum.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from xcs.nn.row_optim import RowOptState, init_row_opt, row_update

ENCODER, TABLE = "encoder", "embedding"  # params[ENCODER][TABLE]: the table (EncoderMethod.sparse_embedding)


@flax.struct.dataclass
class SparseTableOptState:
    dense: Any  # the optax optimizer's state of every parameter but the table
    table: RowOptState  # the table's row-sparse moments


@dataclasses.dataclass(frozen=True)
class SparseTable:
    """The static settings of the table's row-sparse step."""

    num_rows: int  # V: rows of the table (features)
    max_rows: int  # R: distinct rows a batch can touch (max_batch_rows)
    optimizer: ml_collections.ConfigDict  # config.train.optimizer.encoder
    learning_rate: optax.Schedule  # its schedule

    def batch_rows(self, feat_idx: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(rows [R] ascending, valid [R], pos: feat_idx's places in rows) of a batch's feature ids."""
        rows = jnp.unique(feat_idx, size=self.max_rows, fill_value=self.num_rows)
        pos = jnp.searchsorted(rows, feat_idx).astype(jnp.int32)
        return rows, rows < self.num_rows, pos

    def step(self, table: jax.Array, opt: RowOptState, rows: jax.Array, valid: jax.Array, grads: jax.Array,
             step: jax.Array) -> tuple[jax.Array, RowOptState]:
        return row_update(table, opt, rows, valid, grads, self.learning_rate(step), self.optimizer)


def max_batch_rows(lengths: np.ndarray, batches: Iterable[np.ndarray], num_rows: int) -> int:
    """The most feature entries of any of the run's `batches` (each a list of points; `lengths`: each point's
    feature count in a batch), plus the padding id 0, at most `num_rows`: a bound on the distinct rows of every
    step, exact and static (the batches of a run are fixed by the seed), ~1.8x the typical distinct count on
    wordnet_hypernyms where the longest rows' bound would be ~5x."""
    most = max((int(lengths[rows].sum()) for rows in batches), default=0)
    return int(min(most + 1, num_rows))


def split_params(params: dict) -> tuple[dict, jax.Array]:
    """(every parameter but the table, the table)."""
    encoder = dict(params[ENCODER])
    table = encoder.pop(TABLE)
    return {**params, ENCODER: encoder}, table


def join_params(rest: dict, table: jax.Array) -> dict:
    return {**rest, ENCODER: {**rest[ENCODER], TABLE: table}}


def optimizer_init(config: ml_collections.ConfigDict, tx: optax.GradientTransformation) -> Callable[[Any], Any]:
    """`params -> optimizer state` of the run: optax's, or with sparse_embedding optax's for every parameter
    but the table and row-sparse moments for the table."""
    if not config.train.sparse_embedding:
        return tx.init
    name = config.train.optimizer.encoder.name

    def init(params):
        rest, table = split_params(params)
        return SparseTableOptState(tx.init(rest), init_row_opt(table, name, "config.train.optimizer.encoder"))

    return init
