"""The command line from outside the checkout: bundled config names, and one-line errors for a missing config."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from xcs import config_files


def cli(args, cwd, timeout=300):
    env = dict(os.environ, PYTHONPATH=ROOT)  # as an installed xcs would be importable
    return subprocess.run([sys.executable, "-m", "xcs.cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_config_names_and_paths_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    xmc = os.path.join(config_files.configs_dir(), "xmc.py")
    assert config_files.resolve("xmc:smoke") == xmc + ":smoke"
    assert config_files.resolve("configs/xmc.py:data=wordnet_hypernyms") == xmc + ":data=wordnet_hypernyms"
    assert config_files.resolve("tables/dst") == config_files.resolve("tables.dst") == \
        os.path.join(config_files.configs_dir(), "tables", "dst.py")
    own = tmp_path / "mine.py"
    own.write_text("")
    assert config_files.resolve("mine.py:a=1") == "mine.py:a=1"  # a file here wins
    assert config_files.resolve(f"{own}") == str(own)
    assert "xmc" in config_files.bundled_names() and "tables/dst" in config_files.bundled_names()
    for bad in ("nope", "configs/nope.py", "nope.py:smoke", "/no/such/file.py", ""):
        with pytest.raises(config_files.ConfigFileError, match="not found"):
            config_files.resolve(bad)


def test_named_config_trains_outside_the_checkout(tmp_path):
    run = cli(["--config=xmc:smoke", f"--workdir={tmp_path / 'w'}", "--config.train.progress=none"], cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "w" / "results.json").read_text())
    assert results["test"]["P@1"] > 0
    config = json.loads((tmp_path / "w" / "config.json").read_text())
    assert config["train"]["progress"] == "none"


@pytest.mark.parametrize("config", ["nonexistent.py", "configs/nonexistent.py:smoke", "nosuchname:smoke"])
def test_missing_config_is_one_line_and_exit_2(tmp_path, config):
    for args in ([f"--config={config}"], ["--config", config]):
        run = cli([*args, f"--workdir={tmp_path / 'w'}"], cwd=tmp_path, timeout=60)
        assert run.returncode == 2, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and config.partition(":")[0] in lines[0] and "Traceback" not in run.stderr
        assert not (tmp_path / "w").exists()
