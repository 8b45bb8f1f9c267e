"""xcs.predict and xcs.load: a finished run's test file gives its own predictions.txt exactly, from the
command line, the Python API and an export; every head and the kNN mix; inputs that do not fit are
refused in one line; texts in, label names out."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import xcs
from configs import xmc
from tests.conftest import ROOT
from xcs.data import synthetic
from xcs.data.dataset import load_dataset
from xcs.data.sparse import CSR
from xcs.predict import __main__ as cli
from xcs.train import loop


def write_xc(path, features, labels):
    """The XC single-file format with the float32 values written exactly (repr of their float64)."""
    with open(path, "w") as f:
        f.write(f"{features.num_rows} {features.num_cols} {labels.num_cols}\n")
        for i in range(features.num_rows):
            ids, vals = features.row(i)
            f.write(",".join(map(str, labels.row(i)[0])) + "".join(f" {j}:{float(v)!r}" for j, v in zip(ids, vals))
                    + "\n")


def smoke_config(**changes):
    config = xmc.get_config("smoke")
    config.train.progress = "none"
    for key, value in changes.items():
        node = config
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return config


@pytest.fixture(scope="module")
def xc_run(tmp_path_factory):
    """A finished smoke run on XC files (the synthetic smoke data written out): (workdir, data dir)."""
    root = tmp_path_factory.mktemp("predict")
    data_dir = root / "data" / "synth"
    data_dir.mkdir(parents=True)
    spec = synthetic.SyntheticSpec(**smoke_config().data.synthetic.to_dict())
    for split in ("train", "test"):
        write_xc(data_dir / f"{split}.txt", *synthetic.generate_split(spec, split))
    (data_dir / "labels.txt").write_text("".join(f"label {j}\n" for j in range(spec.num_labels)))
    config = smoke_config(**{"data.source": "xmc_repo", "data.name": "synth", "data.dir": str(data_dir)})
    workdir = root / "run"
    loop.train_and_evaluate(config, str(workdir))
    return workdir, data_dir


def xc_lines(ids, scores, num_labels):
    """predictions.txt's lines for these top-k arrays (as xcs.train.evaluate writes them)."""
    return [f"{len(ids)} {num_labels}"] + [" ".join(f"{i}:{s:.6g}" for i, s in zip(r, q) if i >= 0)
                                           for r, q in zip(ids, scores)]


def run_main(argv, capsys):
    """xcs-predict in this process: (exit status, stdout, stderr)."""
    try:
        cli.main([str(a) for a in argv])
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_command_line_reproduces_predictions_txt(xc_run, tmp_path):
    """The bar: xcs-predict on the test file's features writes the run's predictions.txt, byte for byte."""
    workdir, data_dir = xc_run
    out = tmp_path / "predictions.txt"
    run = subprocess.run([sys.executable, "-m", "xcs.predict", f"--workdir={workdir}",
                          f"--input={data_dir / 'test.txt'}", f"--out={out}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert out.read_bytes() == (workdir / "predictions.txt").read_bytes()
    assert not os.path.exists(str(out) + ".tmp")


def test_feature_file_formats_and_output_formats(xc_run, tmp_path, capsys):
    workdir, data_dir = xc_run
    expected = (workdir / "predictions.txt").read_text()
    # The split format's features file (`N F`, no labels) gives the same predictions.
    lines = (data_dir / "test.txt").read_text().splitlines()
    n, f, _ = lines[0].split()
    features = tmp_path / "tst_X_Xf.txt"
    features.write_text(f"{n} {f}\n" + "".join(" ".join(t for t in line.split() if ":" in t) + "\n"
                                                 for line in lines[1:]))
    code, _, err = run_main(["--workdir", workdir, "--input", features, "--out", tmp_path / "a.txt"], capsys)
    assert code == 0, err
    assert (tmp_path / "a.txt").read_text() == expected
    # TSV and JSONL carry the label names of labels.txt; k=3 is the first three of the run's ten.
    top = [[(int(i), float(s)) for i, s in (p.split(":") for p in line.split())] for line in expected.splitlines()[1:]]
    code, _, err = run_main(["--workdir", workdir, "--input", data_dir / "test.txt", "--out", tmp_path / "b.tsv",
                             "--format=tsv", "--k=3"], capsys)
    assert code == 0, err
    rows = [r.split("\t") for r in (tmp_path / "b.tsv").read_text().splitlines()]
    assert rows[0] == ["point", "rank", "label", "name", "score"]
    assert rows[1][:4] == ["0", "1", str(top[0][0][0]), f"label {top[0][0][0]}"]
    assert len(rows) == 1 + 3 * len(top)
    code, _, err = run_main(["--workdir", workdir, "--input", data_dir / "test.txt", "--out", tmp_path / "c.jsonl",
                             "--format=jsonl"], capsys)
    assert code == 0, err
    records = [json.loads(r) for r in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert [r["labels"] for r in records] == [[i for i, _ in row] for row in top]
    assert records[0]["names"][0] == f"label {top[0][0][0]}"


def test_python_api_and_export_reproduce_predictions_txt(xc_run, tmp_path):
    workdir, data_dir = xc_run
    expected = (workdir / "predictions.txt").read_text().splitlines()
    predictor = xcs.load(workdir)
    test = load_dataset(predictor.config.data, predictor.config.seed).test
    ids, scores = predictor.predict(test.features)
    assert ids.shape == (test.num_points, 10) and ids.dtype == np.int32 and scores.dtype == np.float32
    assert xc_lines(ids, scores, predictor.num_labels) == expected
    assert predictor.label_names[:2] == ("label 0", "label 1")
    rows = [test.features.row(i) for i in range(test.num_points)]
    ids2, scores2 = predictor.predict([(j.tolist(), v.tolist()) for j, v in rows], k=10)
    np.testing.assert_array_equal(ids2, ids)
    np.testing.assert_array_equal(scores2, scores)
    scipy_sparse = pytest.importorskip("scipy.sparse")
    matrix = scipy_sparse.csr_matrix((test.features.values, test.features.indices, test.features.indptr),
                                     shape=(test.num_points, test.features.num_cols))
    np.testing.assert_array_equal(predictor.predict(matrix[::-1])[0], ids[::-1])  # any batch split, same result
    # The export is read without the data or the checkpoints.
    export = tmp_path / "model"
    code = subprocess.run([sys.executable, "-m", "xcs.predict", "export", f"--workdir={workdir}", f"--out={export}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert code.returncode == 0, code.stderr[-3000:]
    moved = tmp_path / "elsewhere"
    shutil.copytree(workdir, moved / "run")
    shutil.copytree(data_dir, moved / "data")
    shutil.rmtree(workdir / "checkpoints")
    shutil.rmtree(data_dir)
    try:
        exported = xcs.load(str(export))
        ids3, scores3 = exported.predict(test.features)
        np.testing.assert_array_equal(ids3, ids)
        np.testing.assert_array_equal(scores3, scores)
        assert exported.label_names == predictor.label_names
    finally:
        shutil.copytree(moved / "run" / "checkpoints", workdir / "checkpoints")
        shutil.copytree(moved / "data", data_dir)


@pytest.mark.parametrize("name,changes", [
    ("sparse head, auxiliary objective, kNN mix", {"model.head.name": "sparse", "aux.clusters": 4,
                                                    "eval.knn.neighbors": 5}),
    ("ova loss, kNN mix", {"loss.name": "ova", "eval.knn.neighbors": 5}),
    ("factored head", {"model.head.name": "factored", "loss.name": "squared_error"}),
    ("lsh head", {"model.head.name": "lsh", "lsh.num_tables": 2, "lsh.bits": 6, "lsh.candidates": 32,
                  "lsh.batch_candidates": 60}),
])
def test_every_head_reproduces_its_predictions(name, changes, tmp_path):
    small = {"data.synthetic.num_train": 300, "data.synthetic.num_test": 50, "data.synthetic.num_labels": 60,
             "data.synthetic.num_features": 400, "data.synthetic.num_clusters": 6, "model.encoder.width": 32,
             "train.batch_size": 32, "eval.batch_size": 32, "train.steps": 4, "train.checkpoint_every": 2}
    config = smoke_config(**{**small, **changes})
    loop.train_and_evaluate(config, str(tmp_path))
    predictor = xcs.load(str(tmp_path))
    test = load_dataset(config.data, config.seed).test
    ids, scores = predictor.predict(test.features)
    assert xc_lines(ids, scores, predictor.num_labels) == (tmp_path / "predictions.txt").read_text().splitlines()
    if predictor.knn:  # the export keeps the kNN memory
        exported = xcs.load(predictor.export(str(tmp_path / "model")))
        np.testing.assert_array_equal(exported.predict(test.features)[0], ids)


def test_inputs_that_do_not_fit_are_refused_in_one_line(xc_run, tmp_path, capsys):
    workdir, _ = xc_run

    def refused(content, name="input.txt"):
        path = tmp_path / name
        if isinstance(content, np.ndarray):
            np.save(path, content)
        else:
            path.write_text(content)
        code, out, err = run_main(["--workdir", workdir, "--input", path, "--out", tmp_path / "p.txt"], capsys)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert not (tmp_path / "p.txt").exists() and not (tmp_path / "p.txt.tmp").exists()
        return err

    assert re.search(r"input.txt:3: feature id 2000 is not below the model's 2000 features \(token '2000:0.5'\)",
                     refused("2 2500 300\n1 3:1\n 7:0.25 2000:0.5\n"))
    assert "input.txt:1: empty file" in refused("")
    assert "declares 0 points" in refused("0 2000 300\n")
    assert "input.txt:1: a text file" in refused("a text\nanother\n") and "no text path" in refused("words\n")
    assert "input.txt:2: feature id is not a non-negative integer" in refused("1 2000\nx:1\n")
    assert "x.npy: 2001 columns, but this model reads sparse features" in refused(np.ones((2, 2001), np.float32),
                                                                                  "x.npy")
    assert "no such file" in run_main(["--workdir", workdir, "--input", tmp_path / "missing", "--out",
                                       tmp_path / "p.txt"], capsys)[2]
    code, _, err = run_main(["--workdir", tmp_path / "nowhere", "--input", tmp_path / "p", "--out", tmp_path / "p"],
                            capsys)
    assert code == 2 and "no such directory" in err
    with pytest.raises(xcs.predict.predictor.UserError, match=r"row 1: feature id 2000"):
        xcs.load(workdir).predict(CSR.from_lists([[1], [2000]], 2001, [[1.0], [1.0]]))


def test_texts_in_label_names_out(tmp_path, capsys):
    """A texts + label-names directory: train, then xcs-predict on the held-out texts writes label names, and
    P@1 computed from the written file equals the run's own evaluation."""
    rng = np.random.default_rng(0)
    topics = {f"topic{k}": [f"w{k}x{j}" for j in range(6)] for k in range(8)}

    def rows(n):
        out = []
        for _ in range(n):
            labels = list(rng.choice(list(topics), size=rng.integers(1, 3), replace=False))
            words = [w for lab in labels for w in rng.choice(topics[lab], size=2)] + ["common"]
            out.append((" ".join(rng.permutation(words)), " ".join(labels)))
        return out

    data = tmp_path / "texts"
    data.mkdir()
    for split, points in (("train", rows(300)), ("test", rows(60))):
        (data / f"{split}_texts.txt").write_text("".join(t + "\n" for t, _ in points))
        (data / f"{split}_labels.txt").write_text("".join(n + "\n" for _, n in points))
    config = smoke_config(**{"data.source": "xmc_repo", "data.name": "texts", "data.dir": str(data),
                             "train.steps": 30, "data.text.tfidf_min_df": 1})
    workdir = tmp_path / "run"
    results = loop.train_and_evaluate(config, str(workdir))
    names = (workdir / "label_names.txt").read_text().split()  # kept at train time, with the vectorizer
    assert sorted(names) == sorted(topics) and (workdir / "tfidf.json").is_file()
    assert json.loads((workdir / "data.json").read_text())["inputs"] == {"sparse": 49}  # 48 topic words + "common"
    code, _, err = run_main(["--workdir", workdir, "--input", data / "test_texts.txt", "--out", tmp_path / "p.tsv",
                             "--format=tsv", "--k=1"], capsys)
    assert code == 0, err
    rows_out = [r.split("\t") for r in (tmp_path / "p.tsv").read_text().splitlines()[1:]]
    truth = [set(line.split()) for line in (data / "test_labels.txt").read_text().splitlines()]
    assert len(rows_out) == len(truth) and all(r[3].startswith("topic") for r in rows_out)
    p_at_1 = 100.0 * np.mean([r[3] in truth[int(r[0])] for r in rows_out])
    assert p_at_1 == pytest.approx(results["test"]["P@1"], abs=1e-9)


def test_docs_predict_example_runs(xc_run, tmp_path, monkeypatch):
    """docs/predict.md's Python example, as written, on a smoke run at runs/smoke."""
    workdir, _ = xc_run
    with open(os.path.join(ROOT, "docs", "predict.md")) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    assert blocks
    (tmp_path / "runs").mkdir()
    os.symlink(workdir, tmp_path / "runs" / "smoke")
    monkeypatch.chdir(tmp_path)
    exec(compile("\n".join(blocks), "docs/predict.md", "exec"), {"__name__": "docs_predict"})
    assert (tmp_path / "models" / "smoke" / "xcs-export.json").is_file()
