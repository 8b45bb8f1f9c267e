"""Table: the panel of data shapes on which defaults are chosen (validation splits only), the peers beside xcs.

    bash scripts/panel.sh       # builds the data sets it lacks, runs the sweep and the peers, writes the table

which is, for the shapes of the `shapes` variant:

    python -m xcs.data.build wordnet_hypernyms --out data/wn_d2_seen --depth 2 --split seen          # each wn_* shape
    python -m xcs.data.build linux_includes --out data/linux_seen --split seen                      # linux_seen
    python launch.py --config=configs/tables/panel.py --sweep --workdir=runs/tables/panel
    python -m experiments.peers --config=configs/tables/panel.py:shape=wn_d2_seen \
        --workdir=runs/tables/panel/peers_wn_d2_seen                                              # each shape
    python -m xcs.report runs/tables/panel --table configs/tables/panel.py --out experiments/results/panel/with_peers \
        --no_plots

The committed run summaries: experiments/results/panel/runs (the sweep's, from which table.md regenerates with
`python -m xcs.report experiments/results/panel/runs --table configs/tables/panel.py --out experiments/results/panel
--no_plots`) and experiments/results/panel/peers; with_peers/table.md is the report of both (`python -m xcs.report
experiments/results/panel --table configs/tables/panel.py --out experiments/results/panel/with_peers --no_plots`).

Every run holds out 10 % of the training split and is scored on it (config.data.validation_fraction=0.1):
the panel chooses settings, the test splits stay unread.

Shapes (`shape=NAME` gives that shape's config; the sweep runs every shape of `shapes`):
  wn_d{1,2,4}_{seen,random}, wn_full_{seen,random}
                wordnet_hypernyms with the hypernyms up to 1, 2, 4 steps up or all of them (the full closure,
                --depth 0), 'seen' split (every test label has a training point) or 'random'; 20,472 labels,
                ~78k train points, 1.03 / 2.05 / 4.1 / 8.2 labels per point. wn_d2_seen is wordnet_hypernyms.
  linux_seen    linux_includes (xcs/data/builders/linux_includes.py): a kernel C file's text -> the headers it
                includes; 26k train points, 23k labels, 9.7 labels per point, linux/module.h on 42 % of the
                points, 80 % of the labels with <= 5 training points; wide rows (a median of 233 features, up to 4,440)
  syn_tail      synthetic, 80k train points, 30k labels, 1.2 labels per point, 91 % of the labels with <= 5 training
                points (like the unseen set A of issue 29)
  syn_dominant  synthetic (xcs.data.synthetic), 40k train points, 20k labels, 5.6 labels per point, with a
                dominant label on ~50 % of the points, added to a point with probability rising with its label
                count and bringing no features of its own (dominant_share=0.3): a common dependency, as on the
                unseen set B of issue 29.

Variants (`:key=value,...`):
  shape=NAME    the config of one shape (default wn_d2_seen; the peers read this shape's data)
  shapes=A+B    the sweep's shapes, joined by '+' (default: the ones run for the committed table)
  losses=A+B    the sweep's losses (default softmax+softmax_pal+ova)
  loss=NAME     config.loss.name of the `shape` config (default: configs/default.py's); the sweep's runs set it here,
                in the variant, so that a run's command has no --config.* override
  bce=0         without the plain-BCE run on wn_d2_seen that the sweep adds (default on)
  epochs=E      training epochs of every run (default 0: configs/xmc.py's for XC-format data, 8)
  fast          the `shape` config with configs/xmc.py's `fast` settings (apply_fast)
  dense         the dense head and embedding table trained in full for 8 epochs at width 256 (configs/xmc.py's
                default until 2026-12-07; the loss columns ran with it)
  fast_runs=0   without the sweep's runs of configs/xmc.py's default (loss auto), its `fast` variant and `dense`
                on each shape
  seed=N        config.seed: the model's initialisation, the batches and the held-out 10 % (default 0)
  seeds=N       the sweep runs the default on each shape with seeds 0..N-1 (default 3), as scripts/panel.sh runs
                the peers; the report gives their mean ± std
  smoke         seconds-long runs on small synthetic data with a dominant label (the tests run it)
"""

from __future__ import annotations

from typing import Any

import ml_collections

from configs import xmc
from configs.tables import baselines
from xcs.config import parse_arg

WORDNET = tuple(f"wn_{d}_{s}" for d in ("d1", "d2", "d4", "full") for s in ("seen", "random"))
DEPTH = {"d1": 1, "d2": 2, "d4": 4, "full": 0}  # xcs.data.build wordnet_hypernyms --depth (0: the whole closure)
SYNTHETIC = {
    "syn_dominant": dict(num_train=40000, num_test=10000, num_features=50000, num_labels=20000, labels_per_point=6.0,
                         num_clusters=200, difficulty=0.5, dominant_share=0.3),
    # A larger, tail-heavy output space, about one label a point (like the unseen set A of issue 29: 57k labels,
    # 1.2 labels a point, 89 % of the labels with <= 5 points; here 30k labels, 1.2, 91 %, 21 % never in train):
    # the sampled head's block is a fifth of the labels, not 4096.
    "syn_tail": dict(num_train=80000, num_test=8000, num_features=60000, num_labels=30000, labels_per_point=1.2,
                     num_clusters=300, zipf_exponent=0.7, difficulty=0.5),
    "smoke_dominant": dict(num_train=1000, num_test=200, num_features=2000, num_labels=300, labels_per_point=4.0,
                           num_clusters=20, dominant_share=0.3),
}
LINUX = ("linux_seen",)  # xcs.data.build linux_includes --split seen
SHAPES = (*WORDNET, *LINUX, "syn_dominant", "syn_tail")
# What the committed table ran (wn_d1_random and wn_d4_random not run: time)
RUN = ("wn_d2_seen", "syn_dominant", "wn_full_seen", "wn_d1_seen", "wn_d2_random", "wn_d4_seen", "wn_full_random",
       "syn_tail", "linux_seen")
LOSSES = ("softmax", "softmax_pal", "ova")
VARIANTS = {"shape": "wn_d2_seen", "shapes": "+".join(RUN), "losses": "+".join(LOSSES), "loss": "", "epochs": 0.0,
            "bce": True, "fast": False, "fast_runs": True, "dense": False, "seed": 0, "seeds": 3,
            "smoke": False}


def _variant(arg: str | None) -> ml_collections.ConfigDict:
    v = parse_arg(arg, VARIANTS)
    if v.smoke:
        v.shape, v.shapes = "smoke_dominant", "smoke_dominant"
    for shape in (v.shape, *v.shapes.split("+")):
        if shape not in SHAPES and shape != "smoke_dominant":
            raise ValueError(f"configs/tables/panel.py: shape {shape!r}: expected one of {', '.join(SHAPES)}")
    return v


def build_command(shape: str) -> str:
    """The command that builds a real shape's data directory (data/NAME)."""
    if shape in LINUX:
        return f"python -m xcs.data.build linux_includes --out data/{shape} --split {shape.split('_')[1]}"
    _, depth, split = shape.split("_")
    return f"python -m xcs.data.build wordnet_hypernyms --out data/{shape} --depth {DEPTH[depth]} --split {split}"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    v = _variant(arg)
    if v.shape in SYNTHETIC:
        config = xmc.build(data="synthetic", smoke=v.smoke)
        config.data.name = v.shape
        config.data.synthetic.update(SYNTHETIC[v.shape])  # dominant_share: a field of SyntheticSpec only
        config.loss.name = "auto"  # as configs/xmc.py gives any XC-format data set
        config.eval.knn.neighbors = 10  # likewise (on the sigmoids where auto picks ova)
        if not v.smoke:
            xmc.sampled_default(config)  # likewise (synthetic's own default: dense, 5 epochs)
        else:
            xmc.sampled_training(config)
    else:
        config = xmc.build(data=v.shape)
    if v.dense:
        if v.fast:
            raise ValueError("configs/tables/panel.py: `dense` and `fast` do not combine (fast trains sampled)")
        config.model.head.name = "dense"  # configs/xmc.py's default head and table until 2026-12-07
        config.train.sparse_embedding = False
        config.train.epochs = 8.0
        config.model.encoder.width, config.loss.auto_ova_width = 256, 0
    config.data.validation_fraction = 0.1
    config.seed = v.seed
    if v.loss:
        config.loss.name = v.loss
    if v.epochs and not v.smoke:
        config.train.epochs = v.epochs
    if v.fast:
        xmc.apply_fast(config)
    return config


def sweep(add, arg: str | None = None) -> None:
    """Every shape of `shapes` with every loss of `losses`, and the default (`seeds` seeds), `fast` and `dense` of
    each (`fast_runs`), seed 0 but where said; and plain BCE on wn_d2_seen (`bce`)."""
    v = _variant(arg)
    smoke = ",smoke" if v.smoke else ""
    for shape in v.shapes.split("+"):
        for loss in filter(None, v.losses.split("+")):  # losses= (empty): only the default and fast runs
            add(arg=f"shape={shape},loss={loss},dense{smoke}")  # the losses were compared with the dense head
        if v.fast_runs:  # configs/xmc.py's default (loss auto), its `fast` variant and the dense head, side by side
            add(arg=f"shape={shape}{smoke}")
            for seed in range(1, v.seeds):  # run-to-run noise is ~0.3-0.5 P@1, as large as some gaps to the peers
                add(arg=f"shape={shape},seed={seed}{smoke}")
            add(arg=f"shape={shape},fast{smoke}")
            add(arg=f"shape={shape},dense{smoke}")
    if v.bce and "wn_d2_seen" in v.shapes.split("+") and "bce" not in v.losses.split("+"):
        add(arg="shape=wn_d2_seen,loss=bce,dense")  # ova without its logit offset: why BCE scored 19.1 P@1 in tuning


peers = baselines.peers  # napkinXC PLT and omikuji on the shape's data (one `shape` per call)


def _row(config: dict[str, Any]) -> str:
    shape = config["data"]["name"]
    if "peer" in config:
        return f"{shape} · " + {"napkinxc_plt": "napkinXC PLT", "omikuji": "omikuji"}[config["peer"]["method"]]
    head = "sampled" if config["model"]["head"]["name"] == "lsh" else config["model"]["head"]["name"]
    width, ova_width = config["model"]["encoder"]["width"], config["loss"].get("auto_ova_width", 0)
    if config["loss"]["name"] == "auto" and ova_width and ova_width != width:
        width = f"{width} (ova {ova_width})"
    return f"{shape} · xcs {config['loss']['name']} · {head} {config['train']['epochs']:g} ep, d {width}"


def table(arg: str | None = None) -> dict[str, Any]:
    return dict(
        title=("Panel: validation splits (10 % of train held out); the default and the peers with seeds 0-2 (each "
               "seed its own held-out split), the other runs seed 0"),
        row_header="shape · method",
        rows=_row,
        columns=["P@1", "P@5", "PSP@5", "train_seconds"],
        at_k=[],  # the report runs with --no_plots: the shapes differ by data set, not by a swept number
        curves=[],
    )
