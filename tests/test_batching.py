"""Fixed-shape batches: padding, counted truncation, and a restartable epoch iterator."""

import numpy as np

from xcs.data.batching import Batcher, EpochIterator, eval_batches, pad_rows, truncation
from xcs.data.dataset import Split
from xcs.data.sparse import CSR


def make_split(n=53, seed=0):
    rng = np.random.default_rng(seed)
    feats = [sorted(rng.choice(40, rng.integers(0, 9), replace=False).tolist()) for _ in range(n)]
    vals = [rng.uniform(0.1, 1, len(f)).tolist() for f in feats]
    labels = [sorted(rng.choice(20, rng.integers(0, 4), replace=False).tolist()) for _ in range(n)]
    return Split(labels=CSR.from_lists(labels, 20), features=CSR.from_lists(feats, 40, vals))


def test_pad_rows_round_trips():
    split = make_split()
    idx, val, mask = pad_rows(split.features, np.arange(split.num_points), 8)
    for i in range(split.num_points):
        ids, vs = split.features.row(i)
        assert mask[i].sum() == len(ids)
        np.testing.assert_array_equal(idx[i, : len(ids)], ids)
        np.testing.assert_allclose(val[i, : len(ids)], vs)
        assert (val[i, len(ids):] == 0).all()


def test_truncation_is_counted_and_keeps_largest_values():
    split = make_split()
    lengths = split.features.row_lengths()
    t = truncation(split.features, 3)
    assert t.rows == (lengths > 3).sum() and t.entries == np.maximum(lengths - 3, 0).sum()
    batcher = Batcher(split, max_features=3, max_labels=0)
    assert batcher.feature_truncation.rows == t.rows
    batch = batcher(np.arange(split.num_points))
    for i in range(split.num_points):
        _, vs = split.features.row(i)
        np.testing.assert_allclose(np.sort(batch["feat_val"][i][batch["feat_val"][i] > 0]),
                                   np.sort(vs)[::-1][:3][::-1])


def test_epoch_iterator_restarts_at_any_step():
    batcher = Batcher(make_split(), 0, 0)
    full = [b["label_idx"] for b in EpochIterator(batcher, 8, seed=3).iterate(0, 20)]
    resumed = [b["label_idx"] for b in EpochIterator(batcher, 8, seed=3).iterate(13, 20)]
    for a, b in zip(full[13:], resumed):
        np.testing.assert_array_equal(a, b)
    it = EpochIterator(batcher, 8, seed=3)
    epoch = np.concatenate([it.rows_for_step(s) for s in range(it.steps_per_epoch)])
    assert len(set(epoch.tolist())) == len(epoch)  # no point twice within an epoch


def test_eval_batches_cover_every_point_once():
    split = make_split()
    batcher = Batcher(split, 0, 0)
    seen = sum(valid for _, valid in eval_batches(batcher, 16))
    assert seen == split.num_points


def _token_split(n=203, seed=1):
    from xcs.data.texts import Tokens

    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 65, size=n).astype(np.int32)
    ids = np.where(np.arange(64)[None, :] < lengths[:, None], 7, 0).astype(np.int32)
    split = make_split(n, seed)
    return Split(labels=split.labels, features=split.features, tokens=Tokens(ids, lengths))


def test_grouped_epoch_holds_the_same_points_in_length_sorted_groups():
    split = _token_split()
    batcher = Batcher(split, 0, 0, token_buckets=4)
    plain, grouped = EpochIterator(batcher, 8, seed=5), EpochIterator(batcher, 8, seed=5, group_by_length=5)
    steps = plain.steps_per_epoch  # 25 batches: groups of 5 batches
    for epoch in range(2):
        rows_plain = [plain.rows_for_step(epoch * steps + s) for s in range(steps)]
        rows_grouped = [grouped.rows_for_step(epoch * steps + s) for s in range(steps)]
        for g in range(0, steps, 5):
            group_plain = np.concatenate(rows_plain[g:g + 5])
            group = rows_grouped[g:g + 5]
            # the same points as the plain epoch's group, each once
            assert sorted(np.concatenate(group).tolist()) == sorted(group_plain.tolist())
            # batches are runs of the group sorted by length: their length ranges do not interleave
            spans = sorted((split.tokens.lengths[b].min(), split.tokens.lengths[b].max()) for b in group)
            assert all(hi <= next_lo for (_, hi), (next_lo, _) in zip(spans, spans[1:]))
    width = lambda it: np.mean([it.batcher(it.rows_for_step(s))["token_ids"].shape[1] for s in range(steps)])  # noqa: E731
    assert width(grouped) < width(plain)  # the point of grouping: narrower batches


def test_grouped_iterator_restarts_at_any_step_and_ignores_inputs_without_tokens():
    batcher = Batcher(_token_split(), 0, 0)
    full = [EpochIterator(batcher, 8, seed=3, group_by_length=4).rows_for_step(s) for s in range(60)]
    resumed = EpochIterator(batcher, 8, seed=3, group_by_length=4)
    for s in range(37, 60):
        np.testing.assert_array_equal(resumed.rows_for_step(s), full[s])
    no_tokens = Batcher(make_split(), 0, 0)
    a, b = EpochIterator(no_tokens, 8, seed=3), EpochIterator(no_tokens, 8, seed=3, group_by_length=4)
    for s in range(12):
        np.testing.assert_array_equal(a.rows_for_step(s), b.rows_for_step(s))


def test_a_cap_above_the_longest_row_does_not_widen_the_batch():
    split = make_split()  # rows of at most 8 features and 3 labels
    longest_features = max(len(split.features.row(i)[0]) for i in range(split.num_points))
    longest_labels = max(len(split.labels.row(i)[0]) for i in range(split.num_points))
    wide = Batcher(split, max_features=256, max_labels=100)
    assert (wide.feature_width, wide.label_width) == (longest_features, longest_labels)
    assert wide(np.arange(5))["feat_idx"].shape == (5, longest_features)
    assert Batcher(split, max_features=3, max_labels=2).feature_width == 3  # below it, the cap is the width
    assert Batcher(split, max_features=0, max_labels=0).feature_width == longest_features  # 0: no cap
