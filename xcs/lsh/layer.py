"""The LSH head (model.head.name=lsh): xcs.lsh.head behind the head interface.

The label weights, their row-sparse optimizer state, the hash functions and the tables are not
trainable parameters: they live in the non-trainable collection `lsh` (TrainState.model_state,
checkpointed with it). They change through the head's own update (its declaration's update, xcs.lsh.method: loss
over the batch's candidates, row-sparse Adam/SGD on the candidate rows) and through the periodic
rehash / rebuild actions (xcs.lsh.actions).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import ml_collections

from xcs.core.errors import UserError
from xcs.losses import LossFn, get_loss, one_vs_all_sampled
from xcs.lsh import head as lsh
from xcs.lsh.hashing import HashSpec
from xcs.lsh.tables import INSERTIONS
from xcs.nn.row_optim import OPTIMIZERS, row_update

COLLECTION = "lsh"
FAMILIES = ("wta", "dwta", "simhash", "uniform")  # uniform: sampled softmax with uniform negatives, no tables
LOSSES = ("softmax", "bce", "ova")
REHASH = ("none", "fixed", "exponential", "drift")
HASH_LABELS = ("all", "trained")
MIPS = ("none", "simple")


def lsh_config(config: ml_collections.ConfigDict, dim: int) -> lsh.LSHConfig:
    """The static head settings of config.lsh for label rows of length `dim` (bias included)."""
    c = config.lsh
    if c.family not in FAMILIES:
        raise UserError(f"config.lsh.family={c.family!r}: expected one of {list(FAMILIES)}")
    if c.insertion not in INSERTIONS:
        raise UserError(f"config.lsh.insertion={c.insertion!r}: expected one of {list(INSERTIONS)}")
    if c.predict not in lsh.PREDICT_MODES:
        raise UserError(f"config.lsh.predict={c.predict!r}: expected one of {list(lsh.PREDICT_MODES)}")
    if c.rehash not in REHASH:
        raise UserError(f"config.lsh.rehash={c.rehash!r}: expected one of {list(REHASH)}")
    if c.hash_labels not in HASH_LABELS:
        raise UserError(f"config.lsh.hash_labels={c.hash_labels!r}: expected one of {list(HASH_LABELS)}")
    for key in ("num_tables", "bucket_size", "candidates", "batch_candidates", "hash_chunk"):
        if c[key] < 1:
            raise UserError(f"config.lsh.{key}={c[key]}: must be >= 1")
    if c.family == "uniform" and c.predict != "exact":
        raise UserError("config.lsh.family='uniform' has no tables to retrieve candidates from at prediction: "
                         "set config.lsh.predict='exact'")
    if c.mips not in MIPS:
        raise UserError(f"config.lsh.mips={c.mips!r}: expected one of {list(MIPS)}")
    if c.mips == "simple" and c.family != "simhash":
        raise UserError(f"config.lsh.mips='simple' needs config.lsh.family='simhash' (sign hashes of the "
                         f"lengthened rows follow the inner product); {c.family!r} ranks coordinates instead")
    mips = c.mips == "simple"
    spec = None if c.family == "uniform" else HashSpec(c.family, dim + mips, c.num_tables, c.bits, c.window, c.probes)
    if spec is not None and not 0 <= c.multiprobe <= spec.codes_per_table:
        raise UserError(f"config.lsh.multiprobe={c.multiprobe}: must be in [0, {spec.codes_per_table}] (codes per "
                         f"key: bits / log2(window), or bits for simhash)")
    return lsh.LSHConfig(spec, c.bucket_size, c.insertion, c.candidates, c.batch_candidates, c.hash_chunk,
                         c.predict, config.model.head.label_chunk, c.multiprobe, c.hash_labels, mips, c.candidate_share)


def candidate_loss(name: str, num_labels: int) -> LossFn:
    """The loss `name` over a training block of candidates: softmax and bce as they are (over the block); ova as
    one_vs_all_sampled (its offset and its negatives' sum standing for all labels)."""
    return one_vs_all_sampled(num_labels) if name == "ova" else get_loss(name)


class LSHHead(nn.Module):
    in_features: int
    num_labels: int
    use_bias: bool
    cfg: lsh.LSHConfig
    optimizer: str  # config.train.optimizer.head.name
    loss_name: str = "softmax"  # config.loss.name (resolved): the head trains its candidate form (candidate_loss)

    def setup(self):
        self.state = self.variable(COLLECTION, "state", lambda: lsh.init_state(
            self.make_rng("params"), self.cfg, self.num_labels, self.in_features, self.use_bias, self.optimizer))

    def _key(self) -> jax.Array:
        return self.make_rng("dropout") if self.has_rng("dropout") else jax.random.PRNGKey(0)

    def loss(self, h: jax.Array, label_idx: jax.Array, label_mask: jax.Array, loss_fn: LossFn) -> jax.Array:
        """Per-point loss [B] over the batch's candidates (no update): the candidate form of config.loss.name
        (`loss_fn`, the loss over all labels, is not used)."""
        per_point, *_ = lsh.loss_and_grads(self.cfg, self.state.value, h, label_idx, label_mask,
                                           candidate_loss(self.loss_name, self.num_labels), self.use_bias, self._key())
        return per_point

    def topk(self, h: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
        return lsh.topk(self.cfg, self.state.value, h, k, self.use_bias, jax.random.PRNGKey(0))

    # The kNN mix at prediction (xcs.train.knn) reads the softmax over all labels: predict=exact only (checked).
    def topk_log_partition(self, h: jax.Array, k: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        return lsh.exact_topk(self.cfg, self.state.value, h, k, self.use_bias, with_logsumexp=True)

    def chunk_logits(self, h: jax.Array, start: jax.Array, size: int) -> jax.Array:
        return lsh.chunk_logits(self.state.value, h, start, size, self.use_bias)

    def label_logits(self, h: jax.Array, ids: jax.Array) -> jax.Array:
        return lsh.label_logits(self.state.value, h, ids, self.use_bias)


def make_lsh_head(config: ml_collections.ConfigDict, in_features: int, num_labels: int) -> LSHHead:
    if config.loss.name not in LOSSES:
        raise UserError(f"config.loss.name={config.loss.name!r}: the lsh head (config.model.head.name='lsh') "
                         f"trains over candidates with one of {list(LOSSES)}")
    if config.train.optimizer.head.name not in OPTIMIZERS:
        raise UserError(f"config.train.optimizer.head.name={config.train.optimizer.head.name!r}: the lsh head's "
                         f"row-sparse optimizer is one of {list(OPTIMIZERS)}")
    head = config.model.head
    return LSHHead(in_features, num_labels, head.use_bias, lsh_config(config, in_features + int(head.use_bias)),
                   config.train.optimizer.head.name, config.loss.name)


def head_state(model_state: dict) -> lsh.LSHState:
    """The LSH state inside TrainState.model_state (the head is XMCModel's `head` submodule)."""
    return model_state[COLLECTION]["head"]["state"]


def replace_head_state(model_state: dict, state: lsh.LSHState) -> dict:
    return {**model_state, COLLECTION: {**model_state[COLLECTION], "head": {"state": state}}}


def update_fn(head: LSHHead, config: ml_collections.ConfigDict):
    """The pure `(model_state, h, batch, lr, key) -> (model_state, per-point loss, ∂mean loss/∂h)`:
    loss over the batch's candidates (candidate_loss of config.loss.name), then one row-sparse optimizer step on
    the candidate rows."""
    opt_cfg = config.train.optimizer.head
    loss_fn = candidate_loss(config.loss.name, head.num_labels)

    def update(model_state, h, batch, lr, key):
        state = head_state(model_state)
        per_point, grad_h, cand, valid, grad_rows = lsh.loss_and_grads(
            head.cfg, state, h, batch["label_idx"], batch["label_mask"], loss_fn, head.use_bias, key)
        weights, opt = row_update(state.weights, state.opt, cand, valid, grad_rows, lr, opt_cfg)
        state = lsh.mark_trained(state.replace(weights=weights, opt=opt), batch["label_idx"], batch["label_mask"])
        return replace_head_state(model_state, state), per_point, grad_h

    return update
