"""The registries: one declaration per head and per encoder, and what the loop builds from them.

A method package exports one declaration (xcs.core.protocols.HeadMethod or EncoderMethod); adding
a head or an encoder is its package plus one line here. Nothing else in xcs is keyed by a
method's name: the loop, validation and prediction read these two dicts.
"""

from __future__ import annotations

import ml_collections

from xcs.auxiliary import method as auxiliary
from xcs.core.protocols import EncoderMethod, HeadMethod, HeadUpdate, PeriodicAction
from xcs.data.split import Dataset
from xcs.dense.method import METHOD as DENSE_HEAD
from xcs.encoders.method import BAG, DENSE, DENSE_BAG
from xcs.factored.method import METHOD as FACTORED_HEAD
from xcs.kronecker.method import METHOD as KRONECKER
from xcs.lsh.method import METHOD as LSH_HEAD
from xcs.minilm.method import METHOD as MINILM
from xcs.nn.model import XMCModel
from xcs.nn.wrappers import Intermediate
from xcs.sparsity.method import METHOD as SPARSE_HEAD

HEADS: dict[str, HeadMethod] = {m.name: m for m in (DENSE_HEAD, SPARSE_HEAD, LSH_HEAD, FACTORED_HEAD)}
ENCODERS: dict[str, EncoderMethod] = {m.name: m for m in (BAG, DENSE, DENSE_BAG, KRONECKER, MINILM)}


def head_method(config: ml_collections.ConfigDict) -> HeadMethod:
    return HEADS[config.model.head.name]


def encoder_method(config: ml_collections.ConfigDict) -> EncoderMethod:
    return ENCODERS[config.model.encoder.name]


def build_model(config: ml_collections.ConfigDict, num_features: int, num_labels: int,
                data: Dataset | None = None, workdir: str | None = None) -> XMCModel:
    """The model of `config.model` for a data set of this many features and labels.

    `data` is needed by parts built from the training data (the label clusters of the auxiliary
    objective, config.aux), which are cached in `workdir`. `config` is assumed validated
    (xcs.validate), so the combinations here are the allowed ones.
    """
    encoder = encoder_method(config).build(config, num_features)
    head_config, make_head = config.model.head, head_method(config).build
    if head_config.intermediate > 0:
        head = Intermediate(head_config.intermediate, head_config.intermediate_activation,
                            make_head(config, head_config.intermediate, num_labels))
    else:
        head = make_head(config, config.model.encoder.width, num_labels)
    if auxiliary.enabled(config):
        head = auxiliary.wrap(config, head, num_labels, data, workdir)
    return XMCModel(encoder=encoder, head=head)


def periodic_actions(config: ml_collections.ConfigDict, model: XMCModel, total_steps: int) -> list[PeriodicAction]:
    """The actions of the encoder, the head and the auxiliary objective, in that order."""
    factories = [encoder_method(config).actions, head_method(config).actions]
    if auxiliary.enabled(config):
        factories.append(auxiliary.actions)
    return [action for make in factories if make is not None for action in make(config, model, total_steps)]


def head_update(config: ml_collections.ConfigDict, model: XMCModel, total_steps: int) -> HeadUpdate | None:
    """The head's own update rule, or None when the optimizer trains it."""
    make = head_method(config).update
    return None if make is None else make(config, model, total_steps)


def head_test_metrics(config: ml_collections.ConfigDict, model: XMCModel, variables: dict, batcher) -> dict:
    """The head's extra test metrics (e.g. the LSH head's candidate recall), or none."""
    fn = head_method(config).test_metrics
    return {} if fn is None else fn(config, model, variables, batcher)
