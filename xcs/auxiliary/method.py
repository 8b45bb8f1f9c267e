"""The auxiliary objective's part of the registry: its check, how it wraps a head, its actions."""

from __future__ import annotations

import flax.linen as nn
import ml_collections

from xcs.auxiliary.actions import aux_actions
from xcs.auxiliary.clusters import cached_label_clusters
from xcs.auxiliary.objective import AuxObjective
from xcs.core.checks import require
from xcs.data.split import Dataset

actions = aux_actions


def enabled(config: ml_collections.ConfigDict) -> bool:
    return config.aux.clusters > 0


def check(config: ml_collections.ConfigDict) -> None:
    aux = config.aux
    require(aux.clusters >= 0, config, "aux.clusters", "must be >= 0 (0 = off)")
    require(0.0 <= aux.alpha <= 1.0, config, "aux.alpha", "must be in [0, 1]")
    # at 0 the decay would never run and alpha would stay at its start value
    require(0.0 < aux.cutoff <= 1.0, config, "aux.cutoff", "must be in (0, 1] (aux.clusters=0 turns it off)")
    require(aux.projection >= 1, config, "aux.projection", "must be >= 1")
    require(aux.kmeans_iterations >= 1, config, "aux.kmeans_iterations", "must be >= 1")


def wrap(config: ml_collections.ConfigDict, head: nn.Module, num_labels: int, data: Dataset | None,
         workdir: str | None) -> AuxObjective:
    """`head` with the auxiliary objective beside it; the label clusters come from `data`'s training split."""
    aux = config.aux
    if data is None:
        raise ValueError("config.aux.clusters > 0: the auxiliary objective clusters labels by their training "
                         "points; build_model needs data=")
    clusters = cached_label_clusters(data.train, num_labels, aux.clusters, aux.projection, aux.kmeans_iterations,
                                     config.seed, workdir)
    return AuxObjective(head, aux.clusters, clusters, aux.alpha)
