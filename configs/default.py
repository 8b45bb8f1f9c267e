"""Every config key xcs reads, with its default and a one-line meaning.

Experiment configs (configs/xmc.py, configs/tables/*.py) start from `get_config()` here and
change values; they never add keys. Library code reads `config.a.b` directly (no `.get`), so a
key missing here is a bug that shows at once. The config is locked after loading, so a mistyped
`--config.x.y=...` override fails before any work.
"""

from __future__ import annotations

import ml_collections


def _optimizer(learning_rate: float) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        dict(
            name="adam",  # adam | adamw | sgd (sgd uses `momentum`)
            learning_rate=learning_rate,  # peak learning rate, reached after warmup
            weight_decay=0.0,  # decoupled weight decay (adamw) or L2 added to the gradient (adam, sgd)
            momentum=0.9,  # sgd momentum; 0 for plain sgd
            b1=0.9,  # adam/adamw first-moment decay
            b2=0.999,  # adam/adamw second-moment decay
            eps=1e-8,  # adam/adamw epsilon
        )
    )


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0  # one seed for init, shuffling and dropout; runs are reproducible from it

    config.data = ml_collections.ConfigDict()
    config.data.source = "synthetic"  # synthetic | xmc_repo (XC files) | tfds (XC files via TFDS) | region
    config.data.name = "synthetic"  # directory name under $XCS_DATA_DIR for xmc_repo/tfds sources
    config.data.dir = ""  # data directory; empty = $XCS_DATA_DIR/<name> (XCS_DATA_DIR default ./data)
    config.data.cache = True  # cache parsed text files as .npz beside the source
    config.data.validation_fraction = 0.0  # >0: hold out this share of train, evaluate on it (tuning)
    config.data.max_features = 0  # batch width in features; 0 = longest row; longer rows truncated, counted
    config.data.max_labels = 0  # labels kept per point in training batches; 0 = longest row; truncation is counted
    config.data.synthetic = ml_collections.ConfigDict(
        dict(  # fields of xcs.data.synthetic.SyntheticSpec
            num_train=20000,  # training points
            num_test=5000,  # test points
            num_features=16384,  # size of the sparse input space
            num_labels=5000,  # size of the output space
            labels_per_point=3.0,  # mean labels per point: 1 + Poisson(mean - 1), capped
            max_labels_per_point=16,  # cap on labels drawn per point
            features_per_label=4,  # signature features per label
            features_per_cluster=8,  # shared features per topic (cluster of labels)
            features_per_point=64,  # cap on the non-zeros of a feature row
            num_clusters=100,  # topics; labels of one topic share its features
            cluster_affinity=0.7,  # chance that a further label of a point comes from its first label's topic
            zipf_exponent=1.0,  # label prior p(rank r) ~ (r + 1)^-zipf_exponent
            noise_features=8.0,  # mean number of noise features per point
            difficulty=0.5,  # 0..1: drop rate of signature features and rate of confusers
            seed=0,  # the data's own seed (independent of config.seed, so seeds vary the model only)
        )
    )
    config.data.region = ml_collections.ConfigDict(
        dict(  # fields of xcs.data.region.RegionSpec (source=region: class = argmax x A_r, r = signs of x[:bits])
            num_train=20000,  # training points
            num_test=5000,  # test points
            dim=32,  # dimension of the dense features x ~ N(0, I)
            region_bits=6,  # the signs of x[:region_bits] pick one of 2^region_bits regions
            num_classes=10,  # classes (one label per point, so P@1 is the accuracy)
            label_noise=0.0,  # share of points with a uniformly random class
            seed=0,  # the data's own seed
        )
    )

    config.model = ml_collections.ConfigDict()
    config.model.encoder = ml_collections.ConfigDict(
        dict(
            name="bag",  # bag (tf-idf weighted embedding bag over feat_idx) | dense (MLP over x)
            width=256,  # embedding / hidden width d
            mlp_layers=1,  # residual MLP blocks after the embedding (0 = none)
            dropout=0.0,  # dropout on the encoder output and inside MLP blocks (training only)
            input_dropout=0.0,  # share of input features dropped per point (training only)
            normalize="layernorm",  # none | layernorm | l2: normalisation of the embedding before the MLP
            embedding_init_std=0.02,  # std of the bag encoder's feature embeddings at init
        )
    )
    config.model.encoder.gated = ml_collections.ConfigDict(
        dict(  # tree-gated conditional layer (xcs.models.conditional, Cho & Bengio 2014)
            enabled=False,  # add the gated layer to the encoder
            kind="tree",  # tree (2^(k+1)-1 blocks, k+1 used) | table (2^k, 1 used) | dense_flops | dense_params
            position="residual",  # residual (h + G(LN h) after normalising) | input (dense encoder: G(x) as projection)
            depth=4,  # k: gating bits (signs of k designated input units of the layer) per output block
            block_size=0,  # output units per gated block, each with its own k gates and tree; 0 = whole width
            gate_units="distinct",  # distinct (block o reads units o*k..o*k+k-1 mod d_in) | shared (all read 0..k-1)
            gate_gradient="none",  # none (bits are constants; exact, paper) | straight_through (d bit/d unit = 1)
        )
    )
    config.model.head = ml_collections.ConfigDict(
        dict(
            name="dense",  # dense (full [d, L] linear layer)
            use_bias=True,  # per-label bias
            label_chunk=16384,  # labels scored at once at prediction (top-k merged across chunks)
        )
    )

    config.loss = ml_collections.ConfigDict()
    config.loss.name = "softmax"  # softmax (cross-entropy over the positives, per point) | bce | squared_hinge

    config.train = ml_collections.ConfigDict()
    config.train.steps = 0  # total optimizer steps; 0 = train.epochs passes over the training data
    config.train.epochs = 5.0  # used when train.steps == 0
    config.train.batch_size = 256  # points per step
    config.train.schedule = "cosine"  # cosine | constant (after warmup)
    config.train.warmup_steps = 100  # linear warmup from 0 to the peak learning rate
    config.train.final_lr_fraction = 0.0  # cosine ends at this fraction of the peak
    config.train.clip_grad_norm = 0.0  # clip the global gradient norm; 0 = off
    config.train.optimizer = ml_collections.ConfigDict()
    config.train.optimizer.encoder = _optimizer(1e-3)  # optimizer of the encoder parameters
    config.train.optimizer.head = _optimizer(1e-3)  # optimizer of the head (label) parameters
    config.train.log_every = 100  # steps between metrics.jsonl / TensorBoard lines
    config.train.checkpoint_every = 1000  # steps between checkpoints (and one at the end)
    config.train.keep_checkpoints = 2  # checkpoints kept on disk
    config.train.eval_every = 0  # steps between evaluations during training; 0 = only at the end
    config.train.progress = "auto"  # auto (bar on a terminal, log lines otherwise) | bar | lines | none

    config.eval = ml_collections.ConfigDict()
    config.eval.batch_size = 1024  # points per prediction batch
    config.eval.top_k = 5  # metrics are reported at k = 1..top_k
    config.eval.predict_k = 10  # labels per point written to predictions.txt
    config.eval.propensity_a = 0.55  # Jain et al. propensity parameter A (PSP@k)
    config.eval.propensity_b = 1.5  # Jain et al. propensity parameter B (PSP@k)
    config.eval.write_predictions = True  # write predictions.txt in the XC sparse format
    return config
