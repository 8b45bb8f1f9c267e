"""experiments.label_names: the label-name vectors against a hand computation, and the script end to end."""

import json
import math
import os
import re
import subprocess
import sys

import numpy as np

from experiments.label_name_match import name_vectors
from tests.conftest import ROOT
from tests.test_predict import write_xc
from xcs.data import synthetic
from xcs.data.sparse import CSR


def test_csr_to_scipy_is_the_same_matrix():
    rows = [[3, 0], [], [1, 2, 4]]
    values = [[0.5, 1.5], [], [2.0, -1.0, 3.0]]
    want = np.zeros((3, 5), np.float32)
    for i, (ids, vals) in enumerate(zip(rows, values)):
        want[i, ids] = vals
    np.testing.assert_array_equal(CSR.from_lists(rows, 5, values).to_scipy().toarray(), want)


def test_name_vectors_are_the_unit_idf_of_the_name_tokens_in_the_vocabulary():
    rng = np.random.default_rng(0)
    vocabulary = ["linux", "module", "slab", "of", "genus", "dicot"]
    dense = rng.random((7, 6)) < 0.5
    train = CSR.from_lists([np.flatnonzero(r).tolist() for r in dense], 6)
    names = ["linux/module.h", "dicot_genus.n.08108972", "x/unknown.h", "Slab-Module module"]
    got = name_vectors(names, vocabulary, train).toarray()
    n = len(dense)
    for label, tokens in enumerate([("linux", "module"), ("dicot", "genus"), (), ("slab", "module")]):
        want = np.zeros(len(vocabulary))
        for t in tokens:  # a repeated token counts once; 'h', 'n' and the digits are not features
            j = vocabulary.index(t)
            df = sum(1 for i in range(n) if dense[i, j])
            want[j] = math.log((1 + n) / (1 + df)) + 1
        norm = math.sqrt(sum(w * w for w in want))
        np.testing.assert_allclose(got[label], want / norm if norm else want, rtol=1e-6)


def test_label_names_script_mix_zero_is_the_run(tmp_path):
    """On a finished smoke run over XC files with named labels: mix 0 scores as the run did, a mix moves it; without
    labels.txt the run is refused."""
    spec = synthetic.SyntheticSpec(num_train=1000, num_test=200, num_features=2000, num_labels=300, num_clusters=20)
    data = tmp_path / "data" / "named"
    data.mkdir(parents=True)
    train_x, train_y = synthetic.generate_split(spec, "train")
    for split, (x, y) in (("train", (train_x, train_y)), ("test", synthetic.generate_split(spec, "test"))):
        write_xc(data / f"{split}.txt", x, y)
    (data / "vocab.txt").write_text("".join(f"w{j}\n" for j in range(spec.num_features)))
    # Each label is named after the feature its training points carry most, as a header is after its contents
    # (and its id, as a wordnet synset's name ends in its offset, since names must differ).
    top = np.asarray((train_y.to_scipy().T @ train_x.to_scipy()).argmax(axis=1)).ravel()
    (data / "labels.txt").write_text("".join(f"w{f}.n.{label}\n" for label, f in enumerate(top)))
    env = dict(os.environ, XCS_DATA_DIR=str(tmp_path / "data"))
    workdir = tmp_path / "run"
    trained = subprocess.run([sys.executable, "launch.py", "--config=configs/xmc.py:data=named,smoke",
                              f"--workdir={workdir}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    out = tmp_path / "names.json"
    run = subprocess.run([sys.executable, "-m", "experiments.label_names", f"--workdir={workdir}", "--mix=0,0.5",
                          f"--out={out}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    results = json.loads((workdir / "results.json").read_text())["test"]
    assert [r["mix"] for r in rows] == [0.0, 0.5] and rows[0]["labels_named"] == 1.0
    for key in ("P@1", "P@5", "PSP@5"):  # numpy's float32 sums may break a near-tie the other way: one point of 200
        assert abs(rows[0][key] - results[key]) <= 100 / spec.num_test + 0.01, key
    assert rows[1]["P@1"] != rows[0]["P@1"] or rows[1]["PSP@5"] != rows[0]["PSP@5"]
    # Without labels.txt the same run is refused in one line, exit 2.
    (data / "labels.txt").unlink()
    run = subprocess.run([sys.executable, "-m", "experiments.label_names", f"--workdir={workdir}"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    lines = [line for line in run.stderr.splitlines() if not re.match(r"[IWE]\d{4} ", line)]  # not absl's log lines
    assert run.returncode == 2 and len(lines) == 1 and "needs labels.txt" in lines[0], run.stderr[-2000:]
