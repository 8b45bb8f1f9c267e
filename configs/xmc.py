"""Extreme multi-label classification with a tf-idf bag-of-features encoder.

    .venv/bin/python launch.py --config=xmc:smoke --workdir=runs/smoke     # seconds: P@1 ~70 on small synthetic data
    .venv/bin/python launch.py --config=xmc --workdir=runs/default         # ~1 min on 2 cores: P@1 79.16
    .venv/bin/python launch.py --config=xmc:data=wordnet_hypernyms --workdir=runs/wn
                                            # ~2.5 min on 2 cores: P@1 57.93, PSP@5 61.69 (docs/methods/names.md)

Variants (`--config=configs/xmc.py:data=NAME,smoke`):
  data=synthetic        the built-in generator (default)
  data=NAME             XC-format files in $XCS_DATA_DIR/NAME (train.txt/test.txt or the split
                        files); any directory name works, no new config needed. With the tf-idf encoder it trains
                        sampled (sampled_default: a block of labels and the batch's embedding rows per step)
  encoder=tfidf         tfidf (bag of the sparse features, default) | minilm (frozen all-MiniLM-L6-v2
                        mean pools of all 7 layers of the texts, cached beside them, as dense features) |
                        minilm+tfidf (both: the projected embedding plus the tf-idf bag; sum, or
                        --config.model.encoder.combine=concat) | minilm_e2e (MiniLM trained end to end
                        on the tokens, own optimizer: config.train.optimizer.encoder). The text encoders
                        read $XCS_DATA_DIR/NAME/{train,test}_texts.txt (or trn_X.txt/tst_X.txt), one text
                        per point; synthetic data makes its texts from the words of its features.
                        minilm, minilm+tfidf and minilm_e2e predict with the kNN mix
                        (config.eval.knn.neighbors=10; =0 for the head alone). tfidf and minilm+tfidf
                        mix in the label names' match with the sparse features where the data has labels.txt
                        and vocab.txt (config.eval.names, docs/methods/names.md; --config.eval.names.weights=0
                        turns it off).
  fast                  a quicker run at some accuracy: sampled training (sampled_training) for half the epochs at
                        width 256; on the panel's validation splits (configs/tables/panel.py) 0.20-0.68 of the
                        default's train time, P@1 from 2.5 lower to 1.1 higher (experiments/README.md, "panel")
  smoke                 a run that takes seconds (tests run it end to end)
"""

from __future__ import annotations

import ml_collections

from configs import default
from xcs.config import config_from_arg


def build(*, data: str = "synthetic", encoder: str = "tfidf", fast: bool = False,
          smoke: bool = False) -> ml_collections.ConfigDict:
    """The config of `data` (synthetic, or an XC data directory's name) with `encoder`; `fast`: the quicker
    settings (apply_fast); `smoke`: seconds-long."""
    config = default.get_config()
    if data == "synthetic":
        config.data.source = "synthetic"
        config.data.name = "synthetic"
    else:
        config.data.source = "xmc_repo"
        config.data.name = data
        _tfidf_model(config)
        if encoder == "tfidf":
            sampled_default(config)
    if encoder not in TEXT_ENCODERS and encoder != "tfidf":
        raise ValueError(f"config variant encoder={encoder!r}: expected tfidf, {', '.join(TEXT_ENCODERS)}")
    if encoder != "tfidf":
        TEXT_ENCODERS[encoder](config)
    if fast:
        if encoder == "minilm_e2e":
            raise ValueError("config variant fast: not with encoder=minilm_e2e (its batch of 64 is sized for memory)")
        apply_fast(config)
    if smoke:
        apply_smoke(config)
        if encoder != "tfidf":
            _text_smoke(config)
    return config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    return config_from_arg(build, arg)


NAME_WEIGHTS = "0,0.05,0.1,0.2,0.35,0.5,0.65"  # the label-name mix's weights to choose from (config.eval.names)
EPOCHS = 6.0  # real (XC) data with the tf-idf encoder: epochs of the default (sampled_default)
WIDTH = 512  # its encoder width where auto picks softmax
OVA_WIDTH = 256  # and where auto picks ova (loss.auto_ova_width)
# A batch is as wide as the widest row it may hold, so one long document sets the cost of every step: rows keep
# their ROW_FEATURES strongest tf-idf entries (data.max_features). No panel shape has a row of more than 64; on
# linux_seen (a median of 233, the longest 4440) 256 kept P@1 (docs/methods/sampled.md) at a fifth of the time.
ROW_FEATURES = 256


def _tfidf_model(config: ml_collections.ConfigDict) -> None:
    """Settings for real tf-idf data, chosen on a held-out 10 % of wordnet_hypernyms' train split
    (the runs: experiments/tuning.md)."""
    config.model.encoder.width = 256
    config.train.epochs = 8.0
    # ova where one label is on >= 12 % of the training points (for half the epochs), softmax elsewhere, both with
    # the kNN mix at prediction (K 10, weight 0.5): chosen on the panel's validation splits (configs/tables/panel.py;
    # xcs.train.auto; the kNN mix on every real shape of the panel, docs/methods/knn.md)
    config.loss.name = "auto"
    config.eval.knn.neighbors = 10
    # Where the data names its labels (labels.txt and vocab.txt), the match of a point with each label's name is
    # mixed in at the weight that does best on 5 % of the training points held out (xcs.train.names): on the
    # panel's validation splits the best weight runs from 0.5 (one hypernym a point) to 0 (the full closure).
    config.eval.names.weights = NAME_WEIGHTS


def sampled_training(config: ml_collections.ConfigDict) -> None:
    """Each step trains the head on a block of labels (the batch's true labels and uniform random ones, at least
    4096 or a fifth of the labels) and the tf-idf embedding table at the batch's feature rows only, both with
    row-sparse Adam: the lsh head with family=uniform (no hash tables; prediction scores every label exactly) and
    train.sparse_embedding. On the panel's validation splits (configs/tables/panel.py) at the same epochs as the
    dense head (8): P@1 -1.35..+0.98 (+0.28 on average), 0.34-0.50 of the time (docs/methods/sampled.md). Rows keep
    their ROW_FEATURES strongest entries."""
    config.model.head.name = "lsh"
    config.lsh.family = "uniform"
    config.lsh.predict = "exact"
    config.lsh.batch_candidates = 4096
    config.lsh.candidate_share = 0.2
    config.train.sparse_embedding = config.model.encoder.name == "bag"
    config.data.max_features = ROW_FEATURES


def sampled_default(config: ml_collections.ConfigDict) -> None:
    """The default for tf-idf data: sampled training (sampled_training) for EPOCHS epochs, at WIDTH (OVA_WIDTH where
    auto picks ova). Chosen on the panel's validation splits (configs/tables/panel.py, docs/methods/sampled.md): of 2,
    4, 6, 8 epochs (ova half of them) at width 256, 6 had the best mean P@1 against 8 epochs of the dense head and
    PSP@5 near its; width 512 then raised P@1 on the five softmax shapes (+0.43 on average, -0.04..+0.82) and lowered
    it on the three ova shapes (-0.12..-0.64); 4 epochs at 512 lost on three of five."""
    sampled_training(config)
    config.train.epochs = EPOCHS
    config.model.encoder.width = WIDTH
    config.loss.auto_ova_width = OVA_WIDTH


FAST_EPOCHS = EPOCHS / 2
FAST_WIDTH = 256


def apply_fast(config: ml_collections.ConfigDict) -> None:
    """Sampled training (sampled_training) for FAST_EPOCHS epochs (auto's ova: loss.auto_ova_epochs of those) at
    FAST_WIDTH: the `fast` variant."""
    sampled_training(config)
    config.train.epochs = FAST_EPOCHS
    config.model.encoder.width = FAST_WIDTH
    config.loss.auto_ova_width = 0


def apply_smoke(config: ml_collections.ConfigDict) -> None:
    """A run of seconds on small synthetic data (the tests run it); configs/gated.py starts from it too."""
    s = config.data.synthetic
    s.num_train, s.num_test, s.num_features, s.num_labels, s.num_clusters = 1000, 200, 2000, 300, 20
    config.model.encoder.width = 32
    config.train.steps = 40
    config.train.warmup_steps = 5
    config.train.batch_size = 64
    config.train.log_every = 10
    config.train.checkpoint_every = 20
    config.eval.batch_size = 128
    config.model.head.label_chunk = 128


def _minilm_frozen(config: ml_collections.ConfigDict) -> None:
    """Frozen MiniLM sentence embeddings as dense features x, a projection + residual MLP, dense head."""
    config.data.text.inputs = "embedding"
    config.model.encoder.name = "dense"
    # Chosen on wordnet_hypernyms' held-out split (experiments/tuning.md): frozen features overfit without dropout;
    # every layer's mean pool keeps the words themselves.
    config.model.encoder.dropout = 0.5
    config.data.text.layers = "0,1,2,3,4,5,6"
    config.train.epochs = 12.0
    # Prediction mixes the head with the labels of the 10 nearest training points (xcs.train.knn; settings and
    # why not for tf-idf: experiments/tuning.md).
    config.eval.knn.neighbors = 10
    config.loss.name = "softmax"  # the kNN mix reads the softmax's probabilities


def _minilm_tfidf(config: ml_collections.ConfigDict) -> None:
    """The frozen embedding projected and summed with the tf-idf embedding bag (xcs.encoders.dense_bag)."""
    config.data.text.inputs = "embedding+sparse"
    config.model.encoder.name = "dense_bag"
    # kNN mix at prediction, as for minilm (experiments/tuning.md).
    config.eval.knn.neighbors = 10
    config.loss.name = "softmax"


def _minilm_e2e(config: ml_collections.ConfigDict) -> None:
    """MiniLM on the token ids, fine-tuned with its own (smaller) learning rate; the head keeps its own."""
    config.data.text.inputs = "tokens"
    config.model.encoder.name = "minilm"
    config.model.encoder.width = 384  # the encoder's output is MiniLM's hidden size
    config.train.optimizer.encoder.learning_rate = 5e-5
    # Sized for CPU memory: batch 256 at 128 tokens held ~16 GB of activations (killed on a 23 GB machine);
    # 64 x 64 tokens is 1/8 of the tokens per step. 64 tokens truncate 0.5 % of the wordnet_hypernyms texts.
    config.train.batch_size = 64
    config.data.text.max_len = 64
    # Batches of texts of similar length (groups of 50 batches sorted by length; widths 64/32/16/8): a random
    # batch of wordnet glosses almost always holds one text over 32 tokens, so every batch was 64 wide.
    config.data.text.group_by_length = 50
    config.data.text.length_buckets = 4
    # Two passes, not the tf-idf model's 8: an epoch of wordnet_hypernyms is 1215 steps, 1580 s on 2 CPU cores
    # (the full run, README), so 8 epochs (3.5 h + evaluation) outlast a working session. Override with
    # --config.train.epochs where the machine allows.
    config.train.epochs = 2.0
    # Prediction with the kNN mix, as for the frozen encoders (not tuned for this one; experiments/tuning.md).
    config.eval.knn.neighbors = 10
    config.loss.name = "softmax"


TEXT_ENCODERS = {"minilm": _minilm_frozen, "minilm+tfidf": _minilm_tfidf, "minilm_e2e": _minilm_e2e}


def _text_smoke(config: ml_collections.ConfigDict) -> None:
    """Short texts and few steps: the frozen embeddings of 500 synthetic texts take seconds."""
    config.data.text.max_len = 16
    config.data.synthetic.num_train, config.data.synthetic.num_test = 400, 100
    if config.data.text.inputs == "tokens":
        config.aux.clusters = 8  # the DST paper's auxiliary objective on top of the fine-tuned encoder
        config.model.encoder.width = 384  # MiniLM's hidden size (the smoke width does not apply)
        config.data.text.length_buckets = 1  # one token width: one compilation
        config.train.steps = 6
        config.train.batch_size = 16
        config.train.log_every = 3
        config.train.checkpoint_every = 6
        config.eval.batch_size = 64
