"""Peers (napkinXC PLT, omikuji) on an xcs config's data write the xcs results.json schema."""

import json
import os

import numpy as np
import pytest

from tests.conftest import ROOT
from xcs.report import report

pytest.importorskip("napkinxc")
pytest.importorskip("omikuji")
from experiments import peers  # noqa: E402

SMOKE = os.path.join(ROOT, "configs", "xmc.py") + ":smoke"


@pytest.mark.parametrize("method", ["napkinxc_plt", "omikuji"])
def test_peer_writes_the_xcs_results_schema(method, tmp_path):
    results = peers.run_peer(SMOKE, method, {}, str(tmp_path))
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["test"] == results["test"]
    expected = {f"{m}@{k}" for m in ("P", "nDCG", "PSP", "R") for k in range(1, 6)}
    assert set(results["test"]) == expected
    # Smoke data are easy: a working tree model is far above the most-frequent-label baseline (~5 %).
    assert 40.0 < results["test"]["P@1"] <= 100.0
    assert results["train_seconds"] > 0 and results["peak_rss_mb"] > 0 and results["model_mb"] > 0
    assert results["data"]["test_points"] == 200
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["peer"]["method"] == method and config["data"]["name"] == "synthetic"


def test_unknown_peer_setting_is_refused_before_training(tmp_path):
    with pytest.raises(KeyError, match="max_leavs"):
        peers.run_peer(SMOKE, "napkinxc_plt", {"max_leavs": 10}, str(tmp_path))
    (tmp_path / "t.py").write_text("from configs import xmc\nget_config = xmc.get_config\n"
                                   "def peers(add, arg=None):\n    add(method='omikuji', n_tres=2)\n")
    with pytest.raises(KeyError, match="n_tres"):
        peers.plan(str(tmp_path / "t.py") + ":smoke", str(tmp_path / "runs"))


def test_baselines_peers_run_and_join_the_report(tmp_path):
    config = os.path.join(ROOT, "configs", "tables", "baselines.py") + ":smoke"
    runs = peers.plan(config, str(tmp_path))
    assert [r.name[:-9] for r in runs] == ["peers/napkinxc_plt", "peers/omikuji"]  # then a hash of the settings
    assert peers.main([f"--config={config}", f"--workdir={tmp_path}", "--jobs=2"]) == 0
    assert peers.main([f"--config={config}", f"--workdir={tmp_path}"]) == 0  # finished: both skipped
    assert all(r["status"] == "skipped" for r in json.loads((tmp_path / "peers.json").read_text())["runs"])
    out = report(str(tmp_path), str(tmp_path / "report"), plots=False)
    assert [row.label for row in out["table"].rows] == ["napkinXC PLT", "omikuji (Parabel)"]


def test_omikuji_trains_on_points_without_features_or_labels(tmp_path):
    from xcs.data.dataset import Dataset, Split
    from xcs.data.sparse import CSR

    rng = np.random.default_rng(0)
    rows = [sorted(rng.choice(30, 3, replace=False).tolist()) for _ in range(60)] + [[]]
    feats = CSR.from_lists(rows[:-2] + [[], [1, 2]], 30, [[1.0] * len(r) for r in rows[:-2]] + [[], [1.0, 1.0]])
    labels = CSR.from_lists([[r[0] % 5] for r in rows[:-2]] + [[1], []], 5)
    split = Split(labels=labels, features=feats)
    data = Dataset("tiny", split, split, 30, 5, "memory")
    out = peers.omikuji(data, {}, 3, 0, str(tmp_path))
    assert out["pred"].shape == (61, 3) and (out["pred"][:, 0] >= 0).all()
