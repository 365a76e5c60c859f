"""Experiment management end to end on EST: the paper's shuffle-flag incident, made loud.

Runs the real app in subprocesses in a temporary directory with a copy of the configs, so
that a recipe YAML can be edited as a person would edit it.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import guardrail.configs

QUICK = ["trainer.max_epochs=2", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2",
         "trainer.limit_test_batches=2", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false"]


def app(tmp, *args, module="guardrail.train"):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=tmp, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "HYDRA_FULL_ERROR": "0"})


def train(tmp, name, *overrides):
    proc = app(tmp, "-cp", str(tmp / "configs"), "recipe=est",
               f"hydra.run.dir={tmp / name}", *QUICK, *overrides)
    return proc, tmp / name


def set_shuffle(tmp, value):
    path = tmp / "configs" / "recipe" / "est.yaml"
    text = path.read_text()
    old, new = (f"shuffle_before_split: {str(not value).lower()}",
                f"shuffle_before_split: {str(value).lower()}")
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """Run A; edit the YAML; run B (refused); approve; run B; run C (override); run D = A."""
    tmp = tmp_path_factory.mktemp("experiment")
    shutil.copytree(Path(guardrail.configs.__file__).parent, tmp / "configs",
                    ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    out = {"tmp": tmp}
    out["a"] = train(tmp, "a")
    set_shuffle(tmp, True)
    out["b_refused"] = train(tmp, "b_refused")
    out["approve"] = app(tmp, "approve", "recipe=est", "--lock-dir", "locks", "-cp",
                         str(tmp / "configs"), module="guardrail")
    out["b"] = train(tmp, "b")
    out["diff_ab"] = app(tmp, "diff", str(tmp / "a"), str(tmp / "b"), "--json",
                         module="guardrail")
    set_shuffle(tmp, False)
    app(tmp, "approve", "recipe=est", "-cp", str(tmp / "configs"), module="guardrail")
    out["c"] = train(tmp, "c", "module.lr=0.01")
    out["d"] = train(tmp, "d")
    out["diff_ad"] = app(tmp, "diff", str(tmp / "a"), str(tmp / "d"), module="guardrail")
    return out


def test_first_run_writes_the_lock_and_completes(story):
    proc, run_dir = story["a"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (story["tmp"] / "locks" / "est.lock.yaml").is_file()
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "completed"


def test_yaml_edit_is_refused_with_a_key_by_key_diff_and_the_approval_command(story):
    proc, run_dir = story["b_refused"]
    assert proc.returncode == 2
    assert "data.shuffle_before_split: false → true" in proc.stderr
    assert "guardrail approve recipe=est" in proc.stderr and "Traceback" not in proc.stderr
    assert f"-cp {story['tmp'] / 'configs'}" in proc.stderr  # the run's own config folder
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "failed" and report["findings"]["by_check"]["config.lock"] == 1
    assert not list(run_dir.glob("checkpoints/*.ckpt"))  # refused before training


def test_approval_rewrites_the_lock_and_the_run_goes_through(story):
    assert story["approve"].returncode == 0, story["approve"].stderr[-2000:]
    assert "data.shuffle_before_split: false → true" in story["approve"].stdout
    proc, _ = story["b"]
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_diff_puts_the_shuffle_flag_first_and_explains_data_and_divergence(story):
    diff = json.loads(story["diff_ab"].stdout)
    real = [d for d in diff["differences"] if not d.get("same")]
    assert (real[0]["category"], real[0]["key"]) == ("config", "data.shuffle_before_split")
    keys = {(d["category"], d["key"]): d for d in real}
    assert ("data", "order") in keys
    assert "split membership changed" in keys[("data", "train.content")]["note"]
    # EST's network carries the training target's mean and sd as buffers, so a changed split
    # shows from the initial weights on; either way the divergence is at the start.
    steps = [d["key"] for d in real if d["category"] == "trajectory"]
    assert steps[0] in ("initial_weights", "step 1")


def test_command_line_override_runs_and_is_recorded(story):
    proc, run_dir = story["c"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert "module.lr=0.01" in manifest["configuration"]["overrides"]
    findings = [json.loads(line) for line in (run_dir / "findings.jsonl").read_text().splitlines()]
    assert any(f["check"] == "config.override" for f in findings)


def test_same_seed_and_config_twice_is_identical(story):
    (_, a), (pd, d) = story["a"], story["d"]
    assert pd.returncode == 0, pd.stderr[-3000:]
    ma, md = (json.loads((r / "manifest.json").read_text())["model"] for r in (a, d))
    assert ma["trajectory"] == md["trajectory"] and ma["final_hash"] == md["final_hash"]
    assert story["diff_ad"].returncode == 0, story["diff_ad"].stdout
    assert story["diff_ad"].stdout.startswith("The runs are identical")
