"""A non-editable install finds its configs and recipes from any directory."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "dist",
                    ROOT], check=True, capture_output=True, timeout=300)
    wheel = next((tmp / "dist").glob("guardrail_dl-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    tmp / "site", wheel], check=True, capture_output=True, timeout=300)
    return wheel, tmp


def test_wheel_ships_configs_and_recipes(installed):
    names = zipfile.ZipFile(installed[0]).namelist()
    assert "guardrail/configs/train.yaml" in names
    assert "guardrail/configs/recipe/wea.yaml" in names
    assert "guardrail/recipes/wea/data.py" in names
    assert "guardrail/templates/data.py.tmpl" in names  # `guardrail new`
    assert not any(n.startswith(("configs/", "recipes/", "tests/")) for n in names)


def test_installed_app_trains_from_another_directory(installed):
    _, tmp = installed
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp / "site")}
    probe = subprocess.run([sys.executable, "-c", "import guardrail; print(guardrail.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.startswith(str(tmp / "site"))
    proc = subprocess.run(
        [sys.executable, "-m", "guardrail.train", "recipe=wea", "trainer.fast_dev_run=true",
         "trainer.enable_progress_bar=false"], cwd=elsewhere, env=env, capture_output=True,
        text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (report,) = elsewhere.glob("outputs/wea/*/report.json")
    assert json.loads(report.read_text())["status"] == "completed"
