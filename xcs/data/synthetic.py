"""Deterministic synthetic extreme multi-label data: the framework's built-in default data.

The generative story, per point:

1. **Labels.** Label *ranks* follow a power law (Zipf, `p(r) ∝ (r + 1)^-zipf_exponent`); a fixed
   affine permutation maps ranks to label ids so that frequent labels are scattered over the id
   space. Ranks are grouped into `num_clusters` topics by `rank mod num_clusters`, so that every
   topic has its own head and tail. A point draws its number of labels `1 + Poisson(mean - 1)`
   (capped), an *anchor* label from the global prior, and each further label with probability
   `cluster_affinity` from the anchor's topic (its own power law) and otherwise from the global
   prior. Repeated draws collapse, so labels of a point are correlated through their topic.
2. **Features.** Every label has `features_per_label` signature features and every topic
   `features_per_cluster` shared features, fixed ids computed by an integer hash of
   `(seed, id, j) mod num_features`: no `[L, F]` table exists. A point gets, for each label, each
   of its signature features with probability `1 - difficulty`, about half of its topic's
   features, with probability `difficulty` a *confuser* (a label of the same topic that the point
   does not carry, whose signature features come in with probability 1/2), and
   `Poisson(noise_features)` noise features from a power law over the feature space.
   With `dominant_share` > 0, a point with n labels also carries the most frequent label (rank 0)
   with probability `min(1, dominant_share * n / labels_per_point)`: a label that comes with many
   others, like a common dependency, and that brings no features of its own (its presence shows
   only through the other labels' features). The label count is drawn before it is added.
3. **Values.** tf-idf-like positive weights: a random weight per occurrence (lower for topic
   features, idf-like for noise features: frequent noise features weigh less), summed over
   repeated features (the "tf"), rows capped at `features_per_point` entries (a random subset),
   then L2-normalised.

Train and test come from the same distribution through different random streams: the output is a
pure function of `(spec, split)`, bit-identical across runs. Points are made in fixed-size chunks
of vectorised numpy, so memory is O(chunk + L + F) and L in the millions costs seconds.
"""

from __future__ import annotations

import dataclasses
import math
import zlib

import numpy as np

from xcs.core.errors import UserError
from xcs.data.sparse import CSR

_CHUNK = 16384  # points per vectorised chunk; fixed, because each chunk has its own random stream
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_TAG_SIGNATURE = 0x5157_A70E
_TAG_CLUSTER = 0xC1A5_7E55
_TAG_PERM = 0x9E12_17A7
_CLUSTER_FEATURE_WEIGHT = 0.6  # topic features are common, so their idf is lower


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    """Shape and difficulty of a synthetic XMC data set; every field has a usable default."""

    num_train: int = 50000  # training points
    num_test: int = 10000  # test points
    num_features: int = 20000  # F: size of the sparse input space
    num_labels: int = 10000  # L: size of the output space
    labels_per_point: float = 3.0  # mean labels per point: 1 + Poisson(mean - 1), capped
    max_labels_per_point: int = 16  # cap on labels drawn per point
    features_per_label: int = 4  # signature features per label
    features_per_cluster: int = 8  # shared features per topic (cluster of labels)
    features_per_point: int = 64  # cap on the non-zeros of a feature row
    num_clusters: int = 100  # topics; label rank r belongs to topic r mod num_clusters
    cluster_affinity: float = 0.7  # chance that a non-anchor label comes from the anchor's topic
    zipf_exponent: float = 1.0  # label prior p(rank r) ∝ (r + 1)^-zipf_exponent
    noise_features: float = 8.0  # mean number of noise features per point (Poisson)
    difficulty: float = 0.6  # in [0, 1]: drop rate of signature features and confuser rate
    seed: int = 0  # everything derives from it
    # > 0: the rank-0 label is added to a point with n labels with probability min(1, share * n / labels_per_point),
    # without features of its own (0: off, and the data are bit-identical to before the option existed)
    dominant_share: float = 0.0

    def __post_init__(self) -> None:
        for name in ("num_features", "num_labels", "max_labels_per_point", "num_clusters",
                     "features_per_point"):
            if getattr(self, name) < 1:
                raise UserError(f"config.data.synthetic.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_train", "num_test", "features_per_label", "features_per_cluster", "seed"):
            if getattr(self, name) < 0:
                raise UserError(f"config.data.synthetic.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("num_features", "num_labels"):
            if getattr(self, name) >= 2**31:
                raise UserError(f"config.data.synthetic.{name} must be < 2**31 (int32 ids), got {getattr(self, name)}")
        if self.labels_per_point < 1:
            raise UserError(f"config.data.synthetic.labels_per_point must be >= 1, got {self.labels_per_point}")
        if self.num_clusters > self.num_labels:
            raise UserError(f"config.data.synthetic.num_clusters ({self.num_clusters}) must be <= num_labels "
                             f"({self.num_labels})")
        for name in ("difficulty", "cluster_affinity", "dominant_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"config.data.synthetic.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.zipf_exponent < 0 or self.noise_features < 0:
            raise ValueError("SyntheticSpec.zipf_exponent and noise_features must be >= 0")


# Named specs: "smoke" trains in seconds; "quickstart" (the defaults) is the default run, where a
# bag-of-features model with a dense softmax head reaches P@1 ~0.65-0.7 (most-frequent: 0.16).
PRESETS: dict[str, SyntheticSpec] = {
    "smoke": SyntheticSpec(num_train=2000, num_test=500, num_features=4096, num_labels=500,
                           num_clusters=25, difficulty=0.3),
    "quickstart": SyntheticSpec(),
}


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic): a good vectorised hash."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _hash_ids(seed: int, tag: int, ids: np.ndarray, width: int, modulus: int) -> np.ndarray:
    """[len(ids), width] int64 array: hash(seed, tag, id, j) mod modulus for j < width."""
    base = _mix(np.array([(seed * 0x100000001B3 + tag) % 2**64], dtype=np.uint64))
    slots = ids.astype(np.uint64)[:, None] * np.uint64(width) + np.arange(width, dtype=np.uint64)
    return (_mix(base + slots * _GOLDEN) % np.uint64(modulus)).astype(np.int64)


def signature_features(spec: SyntheticSpec, labels: np.ndarray) -> np.ndarray:
    """[len(labels), features_per_label] signature feature ids of the given label ids."""
    return _hash_ids(spec.seed, _TAG_SIGNATURE, np.asarray(labels), spec.features_per_label,
                     spec.num_features)


def _cluster_features(spec: SyntheticSpec, clusters: np.ndarray) -> np.ndarray:
    return _hash_ids(spec.seed, _TAG_CLUSTER, clusters, spec.features_per_cluster, spec.num_features)


def _coprime_multiplier(seed: int, tag: int, n: int) -> tuple[int, int]:
    """(a, b) with gcd(a, n) == 1: rank r maps to id (a * r + b) mod n, a permutation of range(n)."""
    h = int(_mix(np.array([(seed * 0x2545F4914F6CDD1D + tag) % 2**64], dtype=np.uint64))[0])
    a = 1 + (h >> 33) % max(n - 1, 1)
    while math.gcd(a, n) != 1:
        a += 1
    return a, (h & 0xFFFFFFFF) % n


def _permute(ranks: np.ndarray, ab: tuple[int, int], n: int) -> np.ndarray:
    a, b = ab
    # a < n < 2**31 and ranks < 2**31, so the product fits in int64.
    return (ranks * a + b) % n


class _Priors:
    """Cumulative power-law tables shared by all chunks of a split: O(L + F) float64."""

    def __init__(self, spec: SyntheticSpec):
        L, C = spec.num_labels, spec.num_clusters
        weights = np.arange(1, L + 1, dtype=np.float64) ** -spec.zipf_exponent
        self.label_cdf = np.cumsum(weights)
        self.label_cdf /= self.label_cdf[-1]
        # Topic c holds ranks c, c + C, c + 2C, ...; inside a topic the m-th of them has weight
        # (m + 1)^-zipf_exponent, the same law for every topic (truncated to the topic's size).
        self.cluster_sizes = (L - np.arange(C) + C - 1) // C
        self.topic_cdf = np.cumsum(np.arange(1, -(-L // C) + 1, dtype=np.float64) ** -spec.zipf_exponent)
        self.topic_cdf /= self.topic_cdf[-1]
        noise = np.arange(1, spec.num_features + 1, dtype=np.float64) ** -1.0
        self.noise_cdf = np.cumsum(noise)
        self.noise_cdf /= self.noise_cdf[-1]
        self.label_perm = _coprime_multiplier(spec.seed, _TAG_PERM, L)
        self.feature_perm = _coprime_multiplier(spec.seed, _TAG_PERM + 1, spec.num_features)

    def global_ranks(self, u: np.ndarray) -> np.ndarray:
        return np.minimum(np.searchsorted(self.label_cdf, u, side="right"), len(self.label_cdf) - 1)

    def cluster_ranks(self, clusters: np.ndarray, u: np.ndarray, num_clusters: int) -> np.ndarray:
        sizes = self.cluster_sizes[clusters]
        m = np.searchsorted(self.topic_cdf, u * self.topic_cdf[sizes - 1], side="right")
        return clusters + num_clusters * np.minimum(m, sizes - 1)


def _rank_of(ids: np.ndarray, ab: tuple[int, int], n: int) -> np.ndarray:
    """Inverse of `_permute`: r = a^-1 (id - b) mod n."""
    a, b = ab
    inv = pow(a, -1, n) if n > 1 else 0
    return ((ids - b) % n) * inv % n


def _sorted_unique_rows(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray | None, num_cols: int):
    """Sort (row, col) pairs and merge duplicates, summing their values: (rows, cols, vals)."""
    key = rows * np.int64(num_cols) + cols
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])) if len(key) else order[:0]
    uniq = key[first]
    merged = None if vals is None else np.add.reduceat(vals[order], first) if len(first) else vals[:0]
    return uniq // num_cols, uniq % num_cols, merged


def _make_chunk(spec: SyntheticSpec, priors: _Priors, n: int, rng: np.random.Generator):
    """n points: (label rows, label ids, feature rows, feature ids, values), sorted and unique."""
    L, F, C = spec.num_labels, spec.num_features, spec.num_clusters
    d = spec.difficulty
    # --- labels ---------------------------------------------------------------------------------
    counts = np.minimum(1 + rng.poisson(spec.labels_per_point - 1.0, size=n), spec.max_labels_per_point)
    slot_row = np.repeat(np.arange(n, dtype=np.int64), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    is_anchor = np.zeros(len(slot_row), dtype=bool)
    is_anchor[starts] = True
    ranks = priors.global_ranks(rng.random(len(slot_row)))
    point_cluster = ranks[starts] % C
    slot_cluster = point_cluster[slot_row]
    in_topic = ~is_anchor & (rng.random(len(slot_row)) < spec.cluster_affinity)
    ranks[in_topic] = priors.cluster_ranks(slot_cluster[in_topic], rng.random(int(in_topic.sum())), C)
    label_ids = _permute(ranks, priors.label_perm, L)
    lab_rows, lab_ids, _ = _sorted_unique_rows(slot_row, label_ids, None, L)
    # Ranks (and so topics) of the unique labels: invert the permutation through a rank lookup.
    lab_ranks = _rank_of(lab_ids, priors.label_perm, L)
    lab_clusters = lab_ranks % C

    pieces_rows, pieces_cols, pieces_vals = [], [], []

    def add(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> None:
        pieces_rows.append(rows)
        pieces_cols.append(cols)
        pieces_vals.append(weights)

    # --- signature features of the true labels ----------------------------------------------------
    P = spec.features_per_label
    if P:
        sig = signature_features(spec, lab_ids)
        keep = rng.random(sig.shape) >= d
        add(np.repeat(lab_rows, P).reshape(sig.shape)[keep], sig[keep], rng.uniform(0.5, 1.5, int(keep.sum())))
        # Confusers: a label of the same topic whose signature leaks in.
        has_conf = rng.random(len(lab_ids)) < d
        conf_ranks = priors.cluster_ranks(lab_clusters[has_conf], rng.random(int(has_conf.sum())), C)
        conf_sig = signature_features(spec, _permute(conf_ranks, priors.label_perm, L))
        keep = rng.random(conf_sig.shape) < 0.5
        conf_rows = np.repeat(lab_rows[has_conf], P).reshape(conf_sig.shape)
        add(conf_rows[keep], conf_sig[keep], rng.uniform(0.5, 1.5, int(keep.sum())))
    # --- topic features: one draw per (point, topic) pair ---------------------------------------------
    Q = spec.features_per_cluster
    if Q:
        pc_rows, pc_clusters, _ = _sorted_unique_rows(lab_rows, lab_clusters, None, C)
        cf = _cluster_features(spec, pc_clusters)
        keep = rng.random(cf.shape) < 0.5
        rows = np.repeat(pc_rows, Q).reshape(cf.shape)
        add(rows[keep], cf[keep], _CLUSTER_FEATURE_WEIGHT * rng.uniform(0.5, 1.5, int(keep.sum())))
    # --- noise features: power law over the feature space, idf-like weights --------------------------
    num_noise = rng.poisson(spec.noise_features, size=n)
    noise_rows = np.repeat(np.arange(n, dtype=np.int64), num_noise)
    noise_rank = np.minimum(np.searchsorted(priors.noise_cdf, rng.random(len(noise_rows)), side="right"), F - 1)
    idf = 0.2 + 0.8 * np.log1p(noise_rank) / math.log1p(F)
    add(noise_rows, _permute(noise_rank, priors.feature_perm, F), idf * rng.uniform(0.5, 1.5, len(noise_rows)))

    feat_rows, feat_ids, feat_vals = _sorted_unique_rows(
        np.concatenate(pieces_rows), np.concatenate(pieces_cols), np.concatenate(pieces_vals), F)
    # --- cap each row at features_per_point entries, a random subset ---------------------------------
    lengths = np.bincount(feat_rows, minlength=n)
    if lengths.max(initial=0) > spec.features_per_point:
        order = np.lexsort((rng.random(len(feat_rows)), feat_rows))
        row_start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        pos_in_row = np.empty(len(order), dtype=np.int64)
        pos_in_row[order] = np.arange(len(order)) - row_start[feat_rows[order]]
        kept = pos_in_row < spec.features_per_point  # boolean mask keeps the (row, id) order
        feat_rows, feat_ids, feat_vals = feat_rows[kept], feat_ids[kept], feat_vals[kept]
    norms = np.sqrt(np.bincount(feat_rows, weights=feat_vals * feat_vals, minlength=n))
    feat_vals = feat_vals / norms[feat_rows]
    if spec.dominant_share > 0:  # drawn last, so that nothing above changes
        lab_rows, lab_ids = _add_dominant(spec, priors, counts, lab_rows, lab_ids, rng)
    return lab_rows, lab_ids, feat_rows, feat_ids, feat_vals


def _add_dominant(spec: SyntheticSpec, priors: _Priors, counts: np.ndarray, lab_rows: np.ndarray,
                  lab_ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The rank-0 label added to each point with probability min(1, dominant_share * count / labels_per_point)."""
    n = len(counts)
    chance = np.minimum(1.0, spec.dominant_share * counts / spec.labels_per_point)
    rows = np.flatnonzero(rng.random(n) < chance).astype(np.int64)
    dominant = _permute(np.zeros(len(rows), dtype=np.int64), priors.label_perm, spec.num_labels)
    rows, ids, _ = _sorted_unique_rows(np.concatenate([lab_rows, rows]), np.concatenate([lab_ids, dominant]),
                                       None, spec.num_labels)
    return rows, ids


def _csr(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, num_rows: int, num_cols: int) -> CSR:
    indptr = np.zeros(num_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=num_rows), out=indptr[1:])
    return CSR(indptr, cols.astype(np.int32), vals.astype(np.float32), num_cols)


def generate_split(spec: SyntheticSpec, split: str) -> tuple[CSR, CSR]:
    """(features [N, F], labels [N, L]) of split 'train' or 'test'; a pure function of its inputs.

    Feature rows hold sorted unique ids with positive values and unit L2 norm (empty rows are
    possible only with no labels' features kept and no noise); label rows hold sorted unique ids
    with values 1.0 and at least one label each.
    """
    sizes = {"train": spec.num_train, "test": spec.num_test}
    if split not in sizes:
        raise ValueError(f"split must be one of {sorted(sizes)}, got {split!r}")
    num_points = sizes[split]
    priors = _Priors(spec)
    stream = zlib.crc32(split.encode())
    lr, li, fr, fi, fv = [], [], [], [], []
    for chunk, lo in enumerate(range(0, num_points, _CHUNK)):
        n = min(_CHUNK, num_points - lo)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([spec.seed, stream, chunk])))
        a, b, c, d, e = _make_chunk(spec, priors, n, rng)
        lr.append(a + lo)
        li.append(b)
        fr.append(c + lo)
        fi.append(d)
        fv.append(e)
    if not lr:
        empty = np.zeros(0, dtype=np.int64)
        lr = li = fr = fi = [empty]
        fv = [np.zeros(0, dtype=np.float64)]
    lab_rows, lab_ids = np.concatenate(lr), np.concatenate(li)
    features = _csr(np.concatenate(fr), np.concatenate(fi), np.concatenate(fv), num_points, spec.num_features)
    labels = _csr(lab_rows, lab_ids, np.ones(len(lab_ids)), num_points, spec.num_labels)
    return features, labels


def describe(features: CSR, labels: CSR) -> dict:
    """Summary statistics of one split, the way XMC papers tabulate their data sets."""
    n = labels.num_rows
    label_counts = labels.column_counts()
    label_lengths = labels.row_lengths()
    feat_lengths = features.row_lengths()
    present = label_counts > 0
    return {
        "num_points": n,
        "num_features": features.num_cols,
        "num_labels": labels.num_cols,
        "avg_labels_per_point": float(label_lengths.mean()) if n else 0.0,
        "avg_features_per_point": float(feat_lengths.mean()) if n else 0.0,
        "avg_points_per_label": float(label_counts[present].mean()) if present.any() else 0.0,
        "labels_present": int(present.sum()),
        "share_labels_le5_points": float((label_counts <= 5).mean()),  # over all L, absent ones too
        "share_present_labels_le5_points": float((label_counts[present] <= 5).mean()) if present.any() else 0.0,
        "max_label_count": int(label_counts.max(initial=0)),
        "median_present_label_count": float(np.median(label_counts[present])) if present.any() else 0.0,
        "points_without_labels": int((label_lengths == 0).sum()),
        "points_without_features": int((feat_lengths == 0).sum()),
    }


_CONSONANTS, _VOWELS = "bdfgklmnprstvz", "aeiou"
_SYLLABLES = np.array([c + v for c in _CONSONANTS for v in _VOWELS])
WORDS_PER_TEXT = 16  # a text holds the words of a point's strongest features


def feature_words(spec: SyntheticSpec) -> np.ndarray:
    """[num_features] pseudo-words (2+ syllables, e.g. "boke"), one per feature id, all distinct.

    Ids go through a fixed permutation first so that neighbouring ids do not share syllables.
    """
    n = spec.num_features
    syllables = max(2, math.ceil(math.log(n) / math.log(len(_SYLLABLES))))
    code = _permute(np.arange(n, dtype=np.int64), _coprime_multiplier(spec.seed, _TAG_PERM + 2, n), n)
    words = np.full(n, "", dtype=object)
    for _ in range(syllables):
        words = words + _SYLLABLES[code % len(_SYLLABLES)].astype(object)
        code //= len(_SYLLABLES)
    return words


def generate_texts(spec: SyntheticSpec, features: CSR) -> np.ndarray:
    """[N] object array of str: the text of each point, its strongest features' words (by value).

    The text carries the features' signal (a point's labels select its signature words), for the
    text encoders (config.data.text); it is a pure function of the features.
    """
    words = feature_words(spec)
    out = np.empty(features.num_rows, dtype=object)
    for i in range(features.num_rows):
        idx, val = features.row(i)
        top = idx[np.argsort(-val, kind="stable")[:WORDS_PER_TEXT]]
        out[i] = " ".join(words[top])
    return out
