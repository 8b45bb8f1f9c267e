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
    config.data.text = ml_collections.ConfigDict(
        dict(  # raw texts, one per line beside the data files: {train,test}_texts.txt or trn_X.txt (xcs.data.texts)
            # none | embedding (x = frozen sentence embeddings, cached beside the texts; sparse features dropped)
            # | embedding+sparse (x beside feat_idx/feat_val) | tokens (token_ids/token_mask for an end-to-end encoder)
            inputs="none",
            encoder="minilm",  # pretrained encoder of frozen embeddings and tokenizer: minilm = all-MiniLM-L6-v2
            max_len=128,  # tokens per text with [CLS] and [SEP]; longer texts are truncated
            pooling="mean",  # mean | cls | max | mean+max (both, per layer): pooling of the token states
            normalize=True,  # L2-normalise the frozen sentence embeddings
            # last | comma-separated layers whose pooled states are concatenated (each normalised), e.g. "3,6":
            # 0 = the embedding layer's output, 6 = MiniLM's last layer; lower layers keep more of the words
            layers="last",
            embed_batch_size=256,  # texts per encoder call when computing the frozen embeddings
            length_buckets=3,  # tokens: a batch is max_len, max_len/2, ... wide (this many widths), the least that fits
            group_by_length=0,  # tokens: training batches per group sorted by text length (narrower batches); 0 = off
            label_delimiter="",  # texts + label names directory ({split}_labels.txt): separator; "" = whitespace
            tfidf_min_df=2,  # texts + label names: the tf-idf vocabulary keeps tokens in >= this many training texts
            tfidf_max_features=100000,  # texts + label names: at most this many tokens (highest df); 0 = no limit
        )
    )
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

    config.data.kronecker = ml_collections.ConfigDict(
        dict(  # source=kronecker: points x = f_0 ⊗ f_1 ⊗ ... kept as factors (xcs.data.kronecker), never formed
            from_files=False,  # read {train,test}_factor{k}.npy + {split}_y.npy from data.dir instead of generating
            num_train=4000,  # training points (synthetic)
            num_test=1000,  # test points (synthetic)
            dims=(32, 32),  # d_k of each factor (synthetic); d = product
            task="classification",  # classification | regression (regression: experiments.kronecker_train only)
            num_classes=10,  # classes of the planted target (synthetic)
            teacher_rank=4,  # rank-one terms per class of the planted multilinear teacher
            noise=0.0,  # classification: share of random labels; regression: std of the added noise
            seed=0,  # the data's own seed
        )
    )

    config.model = ml_collections.ConfigDict()
    config.model.encoder = ml_collections.ConfigDict(
        dict(
            name="bag",  # bag (tf-idf weighted embedding bag over feat_idx) | dense (MLP over x) | kronecker (factors)
            width=256,  # embedding / hidden width d
            mlp_layers=1,  # residual MLP blocks after the embedding (0 = none)
            dropout=0.0,  # dropout on the encoder output and inside MLP blocks (training only)
            input_dropout=0.0,  # share of input features dropped per point (training only)
            normalize="layernorm",  # none | layernorm | l2: normalisation of the embedding before the MLP
            embedding_init_std=0.02,  # std of the bag encoder's feature embeddings at init
            combine="sum",  # dense_bag: sum | concat (width/2 each) of the projected x and the tf-idf bag
        )
    )
    config.model.encoder.gated = ml_collections.ConfigDict(
        dict(  # tree-gated conditional layer (xcs.gated.layer, Cho & Bengio 2014)
            enabled=False,  # add the gated layer to the encoder
            kind="tree",  # tree (2^(k+1)-1 blocks, k+1 used) | table (2^k, 1 used) | dense_flops | dense_params
            position="residual",  # residual (h + G(LN h) after normalising) | input (dense encoder: G(x) as projection)
            depth=4,  # k: gating bits (signs of k designated input units of the layer) per output block
            block_size=0,  # output units per gated block, each with its own k gates and tree; 0 = whole width
            gate_units="distinct",  # distinct (block o reads units o*k..o*k+k-1 mod d_in) | shared (all read 0..k-1)
            gate_gradient="none",  # none (bits are constants; exact, paper) | straight_through (d bit/d unit = 1)
            dense_level_blocks=16,  # top tree levels of <= this many blocks: one product for the batch; 0 = gather
        )
    )
    config.model.head = ml_collections.ConfigDict(
        dict(
            name="dense",  # dense (full [d, L] linear layer) | factored (exact sparse-target update, config.factored)
            use_bias=True,  # per-label bias
            label_chunk=16384,  # labels scored at once at prediction (top-k merged across chunks)
            intermediate=0,  # width of a dense layer between encoder and head (wide for sparse heads); 0 = none
            intermediate_activation="relu",  # relu | gelu | none: activation of the intermediate layer
            # float32 | bfloat16 (dense head, one device): inputs of the training loss's product h @ W rounded to
            # bfloat16, accumulated in float32 (xcs.nn.matmul; weights, gradients and prediction stay float32)
            matmul_dtype="float32",
        )
    )
    config.sparsity = ml_collections.ConfigDict(
        dict(  # fixed fan-in sparse head (model.head.name=sparse) and its prune-and-regrow (xcs.sparsity)
            fan_in=32,  # k: inputs per label row; weights and optimizer state are [L, k]
            algorithm="static",  # static (indices fixed at init) | set (random regrowth) | rigl (gradient regrowth)
            drop_fraction=0.3,  # share of each row's k slots rewired at the first rewiring (cosine-decayed to 0)
            rewire_interval=100,  # steps between prune-and-regrow
            rewire_end=0.75,  # fraction of training at which the drop fraction reaches 0 and rewiring stops
            regrow_init="zero",  # zero | uniform (U(±1/sqrt(k))): value of a regrown weight
            kernel="auto",  # block (rows scattered into dense [chunk, d] blocks) | gather | auto (gather if d > 16 k)
            block_mb=2.0,  # MiB of the per-chunk temporary ([chunk, d] block or [chunk, k, B] gather)
            # softmax loss: keep the [B, L] logits for the backward pass while they fit in this many MiB (one matmul
            # per label chunk less: 10-19 % shorter steps at 670k labels, README); larger ones are recomputed;
            # 0 = never keep
            save_logits_mb=1024.0,
        )
    )
    config.aux = ml_collections.ConfigDict(
        dict(  # auxiliary objective: BCE of a dense head over label clusters, on the encoder output
            clusters=0,  # number of balanced label clusters (tree split of label centroids); 0 = off
            alpha=0.5,  # weight at step 0: loss = (1 - alpha) * main + alpha * aux
            cutoff=0.5,  # fraction of training at which alpha has cosine-decayed to 0
            projection=64,  # width of the random projection of the label centroids that are clustered
            kmeans_iterations=8,  # balanced 2-means iterations per split of the cluster tree
        )
    )

    config.kronecker = ml_collections.ConfigDict(
        dict(  # encoder.name=kronecker: h = σ_b(w_rᵀx), W [width, d_0, d_1, ...] on factors (xcs.kronecker.layer)
            shift=0.0,  # b of the shifted ReLU σ_b(z) = max(z - b, 0); larger b = fewer active neurons
            init_std=1.0,  # std of the entries of W(0) (1: w_rᵀx ~ N(0, 1) for unit-norm x)
        )
    )

    config.loss = ml_collections.ConfigDict()
    # softmax (cross-entropy over the positives, per point) | softmax_pal (one softmax term per positive, unnormalised)
    # | ova (BCE, logits offset by -log L) | bce | squared_hinge, or of the spherical family
    # (xcs.spherical_losses; the factored head needs one): squared_error | spherical_softmax | taylor_softmax | zloss
    # | auto (ova if one label is on >= auto_share of the training points, else softmax; xcs.losses.choose_loss)
    config.loss.name = "softmax"
    config.loss.auto_share = 0.12
    # auto: where it chooses ova, train this share of train.epochs (ova overfits sooner: on three panel shapes 4 epochs
    # beat 8 by 0.4-0.9 P@1); 1 = the same epochs
    config.loss.auto_ova_epochs = 0.5
    # auto: where it chooses ova, this model.encoder.width instead (configs/xmc.py: 256 where softmax takes 512; the
    # wider model lost P@1 on the panel's three ova shapes); 0 = model.encoder.width
    config.loss.auto_ova_width = 0
    # auto: where it chooses ova, keep the kNN mix (eval.knn, on its sigmoids); False turns it off there, as auto did
    # before 2026-12-07 (a run's config.json without this key resolves that way)
    config.loss.auto_ova_knn = True

    config.factored = ml_collections.ConfigDict(
        dict(  # factored exact-update head (model.head.name=factored, xcs.factored.layer); needs a spherical loss
            learning_rate=0.01,  # peak SGD learning rate of W = V·U + 1ωᵀ on the mean loss (with train.schedule)
            mode="minibatch",  # minibatch (one exact step, Woodbury) | per_example (B steps of lr/B, Sherman-M.)
            weight_decay=0.0,  # L2 on W, applied exactly through U, U⁻ᵀ, ω and the bookkeeping
            init_scale=1.0,  # V ~ N(0, init_scale² / d) with U = I at init
            stabilize_every=10,  # steps between re-inverting U and resetting out-of-band singular values; 0 = never
            singular_band=2.0,  # singular values of U are kept in [1/band, band] (reset to 1, W unchanged)
            max_corrections=8,  # singular values reset per stabilisation (the farthest out first), O(L·d) each
            refactorize_fraction=0.34,  # more than this share of singular values out of band: V <- W, U <- I instead
        )
    )

    config.lsh = ml_collections.ConfigDict(
        # LSH candidate retrieval for the output layer (model.head.name=lsh, xcs.lsh); loss softmax, bce, ova or auto
        dict(
            family="dwta",  # wta | dwta (densified WTA) | simhash | uniform (no tables: true labels + random negatives)
            bits=12,  # bits of a bucket key: 2^bits buckets per table (wta/dwta: a multiple of log2(window))
            window=8,  # wta/dwta: coordinates compared per code (a power of two): log2(window) bits per code
            num_tables=16,  # T: hash tables, each retrieving one bucket per query
            bucket_size=32,  # S: label ids kept per bucket ([T, 2^bits, S] int32)
            insertion="reservoir",  # fifo (a full bucket keeps the last labels) | reservoir (a uniform sample)
            probes=16,  # dwta: 2-universal probes for the code of an empty bin (sparse vectors)
            multiprobe=0,  # prediction: extra buckets per table a query looks into (one code away, least certain first)
            hash_labels="all",  # all | trained: only labels that were a true label in training go into the tables
            # none | simple (simhash only): simple-LSH (Neyshabur & Srebro 2015), rows [w, b] / max norm lengthened to
            # unit norm, queries [h, 1, 0]: buckets collide by inner product (the logit) instead of by angle. On the
            # synthetic500k bar run (trained row norms 0.66-1.45) it lowered the recall of the trained true labels from
            # 0.86 to 0.69 (P@1 61.63 vs 61.87): dividing by the largest norm shrinks every angle's spread
            mips="none",
            candidates=512,  # labels scored per point at prediction (retrieved, deduplicated, random fill)
            # labels shared by a training batch: its true labels, retrieved ones, random fill (at least the batch's
            # label slots, batch_size x the most labels of a point)
            batch_candidates=8192,
            candidate_share=0.0,  # training block: at least this share of all labels (a block that grows with L)
            predict="candidates",  # candidates (retrieve, re-score exactly, top-k) | exact (score all labels)
            rehash="fixed",  # none | fixed (every rehash_interval) | exponential (growing intervals) | drift (checked)
            rehash_interval=50,  # steps between rehashes (first interval for exponential; checks for drift)
            rehash_growth=2.0,  # exponential: each interval is this many times the previous one
            drift_threshold=0.05,  # drift: rehash when this share of sampled label keys changed (MONGOOSE)
            drift_sample=4096,  # drift: label rows re-hashed per check
            rebuild_interval=0,  # steps between drawing new hash functions (and rehashing); 0 = never
            hash_chunk=8192,  # label rows hashed at once when (re)building the tables
        )
    )

    config.train = ml_collections.ConfigDict()
    config.train.steps = 0  # total optimizer steps; 0 = train.epochs passes over the training data
    config.train.epochs = 5.0  # used when train.steps == 0
    config.train.batch_size = 256  # points per step
    config.train.schedule = "cosine"  # cosine | constant (after warmup)
    config.train.warmup_steps = 100  # linear warmup from 0 to the peak learning rate
    config.train.final_lr_fraction = 0.0  # cosine ends at this fraction of the peak
    config.train.clip_grad_norm = 0.0  # clip the global gradient norm; 0 = off
    # bag encoder: the embedding table's gradient and optimizer step touch only the batch's feature rows (lazy
    # Adam / SGD, as TF's LazyAdam and torch's SparseAdam; a row's moments rest while the row is not in a batch);
    # one device, sync, no clipping (xcs.train.sparse_table)
    config.train.sparse_embedding = False
    config.train.optimizer = ml_collections.ConfigDict()
    # 3e-3: better than 1e-3 on wordnet_hypernyms (validation P@1 50.7 vs 48.3) and on two synthetic
    # shapes (5k labels: 79.2 vs 78.3; 30k labels, flatter prior: 39.9 vs 34.4); 1e-2 is worse.
    config.train.optimizer.encoder = _optimizer(3e-3)  # optimizer of the encoder parameters
    config.train.optimizer.head = _optimizer(3e-3)  # optimizer of the head (label) parameters
    config.train.log_every = 100  # steps between metrics.jsonl / TensorBoard lines
    config.train.checkpoint_every = 1000  # steps between checkpoints (and one at the end)
    config.train.keep_checkpoints = 2  # checkpoints kept on disk
    config.train.eval_every = 0  # steps between evaluations during training; 0 = only at the end
    config.train.progress = "auto"  # auto (bar on a terminal, log lines otherwise) | bar | lines | none
    config.train.mode = "sync"  # sync | async (simulated bounded-staleness SGD, config.async_, xcs.train.async_step)

    config.async_ = ml_collections.ConfigDict(
        dict(  # train.mode=async: gradients computed on parameters up to max_staleness updates old
            workers=4,  # W simulated workers; a gradient is at most W - 1 updates stale (and at most max_staleness)
            max_staleness=2,  # τ: bound on the delay; τ = 0 is synchronous SGD exactly
            delay="fixed",  # fixed (every delay min(τ, W-1): round-robin workers) | random (uniform in 0..min(τ, W-1))
            seed=0,  # seed of the delay draws (independent of config.seed)
        )
    )

    config.mesh = ml_collections.ConfigDict(
        dict(  # devices (xcs.parallel): the head's label axis split on `model`, the batch on `data`
            shape=(1, 1),  # (data, model) device counts; (1, 1) = one device, no mesh; one -1 = all remaining
            # (regex on the parameter path, spec per trailing dim: data | model | _ unsharded); first match wins,
            # unmatched leaves replicated. Paths also match optimizer moments (".../mu/head/kernel").
            rules=((r"(^|/)head/(inner/)*kernel$", "_,model"), (r"(^|/)head/(inner/)*bias$", "model")),
        )
    )

    config.eval = ml_collections.ConfigDict()
    config.eval.batch_size = 1024  # points per prediction batch
    config.eval.top_k = 5  # metrics are reported at k = 1..top_k
    config.eval.predict_k = 10  # labels per point written to predictions.txt
    config.eval.propensity_a = 0.55  # Jain et al. propensity parameter A (PSP@k)
    config.eval.propensity_b = 1.5  # Jain et al. propensity parameter B (PSP@k)
    config.eval.write_predictions = True  # write predictions.txt in the XC sparse format
    # Mix the head's softmax with the labels of the K nearest training points (xcs.train.knn; dense or
    # sparse head, softmax loss): (1 - weight) * p_head + weight * neighbour vote, vote weights softmax(cos / T).
    config.eval.knn = ml_collections.ConfigDict()
    config.eval.knn.neighbors = 0  # K; 0 = off (the head alone)
    config.eval.knn.temperature = 0.05
    config.eval.knn.weight = 0.5
    config.eval.knn.memory_chunk = 16384  # training points scored at a time in the neighbour search
    # Mix in the match of a point's features with each label's name (xcs.train.names; data with labels.txt and
    # vocab.txt): (1 - weight) * prediction + weight * cos(x, name). Weights to choose from, by P@1 on
    # tune_fraction of the training points held out of training; one weight is used as it is; "0" = off.
    config.eval.names = ml_collections.ConfigDict()
    config.eval.names.weights = "0"
    config.eval.names.tune_fraction = 0.05
    return config
