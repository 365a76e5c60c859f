"""A team's own recipe, in a folder outside the repository, as a new user makes and runs it.

`guardrail new myproj` writes the folder; the app run from it finds `configs/recipe/myproj.yaml`
and imports the `myproj` package; `--config-dir` does the same from elsewhere; `guardrail ls`,
`approve` and `diff` work on it.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from guardrail.cli import main
from guardrail.cli.new import write_recipe
from guardrail.preflight import check_argv

QUICK = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
         "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false"]


def run_app(args, cwd):
    # PYTHONPATH cleared: the project must be importable because the app makes it so.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "guardrail.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def findings(run_dir):
    lines = (run_dir / "findings.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """`guardrail new myproj` in a fresh folder, and the recipe's default run from there."""
    folder = tmp_path_factory.mktemp("myproj")
    write_recipe("myproj", folder)
    run_dir = folder / "outputs" / "first"
    proc = run_app(["recipe=myproj", f"hydra.run.dir={run_dir}",
                    "trainer.enable_progress_bar=false"], folder)
    return folder, run_dir, proc


def test_new_recipe_trains_out_of_the_box_with_no_warning_or_error(project):
    folder, run_dir, proc = project
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "completed" and report["recipe"] == "myproj"
    found = findings(run_dir)
    # cpu_contention speaks of the machine, not the recipe: a busy test host may get it
    assert [f["check"] for f in found if f["severity"] in ("warning", "error")
            and f["check"] != "resources.cpu_contention"] == []
    assert "config.lock_created" in [f["check"] for f in found]
    assert (folder / "locks" / "myproj.lock.yaml").is_file()
    assert "baseline.not_beaten" not in [f["check"] for f in found]
    assert report["baselines"]["train_mean"]["rmse"] > 2 * report["metrics"]["test"]["rmse"]


def test_user_recipe_is_listed_approved_run_with_config_dir_and_diffed(
        project, tmp_path, monkeypatch, capsys):
    folder, first_run, _ = project
    monkeypatch.chdir(folder)
    assert main(["ls"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines()
              if line.startswith("myproj ")]
    assert listed and str(folder / "configs" / "recipe" / "myproj.yaml") in listed[0]

    # Approval composes the recipe as the app did: the first run's lock needs no change.
    assert main(["approve", "recipe=myproj"]) == 0
    out = capsys.readouterr().out
    assert str(folder / "locks" / "myproj.lock.yaml") in out
    assert "(no change from the previous lock)" in out

    # From a subfolder of another git work tree, with --config-dir: the root's lock applies.
    elsewhere = tmp_path / "repo"
    (elsewhere / ".git").mkdir(parents=True)
    (elsewhere / "sub").mkdir()
    shutil.copytree(folder / "locks", elsewhere / "locks")
    run_dir = tmp_path / "second"
    proc = run_app(["--config-dir", str(folder / "configs"), "recipe=myproj",
                    f"hydra.run.dir={run_dir}", *QUICK], elsewhere / "sub")
    assert proc.returncode == 0, proc.stderr[-3000:]
    checks = [f["check"] for f in findings(run_dir)]
    assert "config.lock" not in checks and "config.lock_created" not in checks
    assert not (elsewhere / "sub" / "locks").exists()

    monkeypatch.chdir(tmp_path)
    assert main(["diff", str(first_run), str(run_dir)]) == 1
    assert "trainer.max_epochs" in capsys.readouterr().out


def test_misspelt_recipe_lists_the_users_recipes_too(project, monkeypatch):
    folder, _, _ = project
    message = check_argv(["--config-dir", str(folder / "configs"), "recipe=myprj"])
    assert message.startswith("Unknown recipe 'myprj'. Available recipes:")
    assert "  myproj " in message and "  wea " in message
    assert check_argv(["--config-dir", str(folder / "configs"), "recipe=myproj"]) is None


def test_missing_config_dir_is_named():
    message = check_argv(["--config-dir", "no/such/dir", "recipe=myproj"])
    assert "The config folder '--config-dir no/such/dir' does not exist" in message


@pytest.mark.slow
def test_generated_tests_pass(project):
    folder, _, _ = project
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests"], cwd=folder, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "2 passed" in proc.stdout


def test_recipe_without_a_header_is_listed_with_a_hint(tmp_path, monkeypatch, capsys):
    (tmp_path / "configs" / "recipe").mkdir(parents=True)
    (tmp_path / "configs" / "recipe" / "bare.yaml").write_text(
        "# @package _global_\nrecipe_name: bare\n")
    monkeypatch.chdir(tmp_path)
    assert main(["ls"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("bare ")]
    assert "bare — (no description: start" in line and "# title: ..." in line


def test_lock_written_by_the_app_is_readable_yaml(project):
    folder, _, _ = project
    lock = yaml.safe_load((folder / "locks" / "myproj.lock.yaml").read_text())
    assert lock["config"]["data._target_"] == "myproj.MyprojDataModule"


STOPPER = '''
import os

import lightning.pytorch as pl


class StopAfter(pl.Callback):
    """Ctrl-C after `epochs` epochs, when STOP_AFTER is set: an interrupted run."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if os.environ.get("STOP_AFTER") and trainer.current_epoch >= self.epochs:
            raise KeyboardInterrupt
'''


@pytest.mark.slow
def test_resume_continues_an_interrupted_run_in_its_directory(project, tmp_path):
    import torch

    folder, _, _ = project
    (folder / "stopper.py").write_text(STOPPER)
    run_dir = tmp_path / "run"
    args = ["recipe=myproj", "trainer.max_epochs=3", "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
            "trainer.enable_progress_bar=false",
            "+guardrails.callbacks.stop._target_=stopper.StopAfter",
            "+guardrails.callbacks.stop.epochs=1"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    first = subprocess.run([sys.executable, "-m", "guardrail.train", *args,
                            f"hydra.run.dir={run_dir}"], cwd=folder, capture_output=True,
                           text=True, timeout=300, env={**env, "STOP_AFTER": "1"})
    assert first.returncode != 0
    assert json.loads((run_dir / "report.json").read_text())["status"] == "interrupted"
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 0

    proc = run_app([f"resume={run_dir}"], folder)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "completed"
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == 2 and last["global_step"] == 6
    assert "config.lock" not in [f["check"] for f in findings(run_dir)]


def test_resume_refuses_a_folder_that_is_no_run_and_other_overrides(tmp_path):
    from guardrail.errors import ConfigError
    from guardrail.train import resume_argv

    assert resume_argv(["recipe=est"]) == ["recipe=est"]
    with pytest.raises(ConfigError, match="is not a run directory of the app"):
        resume_argv([f"resume={tmp_path}"])
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text("- recipe=est\n- seed=3\n")
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs=9 would change it"):
        resume_argv([f"resume={tmp_path}", "trainer.max_epochs=9"])
    assert resume_argv([f"resume={tmp_path}"]) == [
        "recipe=est", "seed=3", f"resume={tmp_path}", f"hydra.run.dir={tmp_path}"]


def test_records_export_and_parity_on_the_users_own_recipe(project, tmp_path, capsys):
    _, run_dir, proc = project
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run_dir / "contract.json").is_file() and (run_dir / "preprocessor.json").is_file()
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    assert main(["records", str(run), "--split", "test", "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and sorted(json.loads(lines[0])) == [f"x{j}" for j in range(8)]

    assert main(["export", str(run)]) == 0
    out = capsys.readouterr().out
    assert "parity on 64 held-out records" in out and "passed" in out
    manifest = json.loads((run / "export" / "export.json").read_text())
    assert manifest["format"] == "torch.export" and manifest["parity"]["passed"]
    examples = (run / "export" / "examples.jsonl").read_text().splitlines()
    assert json.loads(examples[0])["record"] == json.loads(lines[0])


SKEWED = '''
import torch
from guardrail.preprocess import TabularPreprocessor


class BatchStatistics(TabularPreprocessor):
    """The classic skew: standardise with the serving batch's own statistics."""

    def transform(self, records):
        columns = self.encoding.numeric
        x = torch.tensor([[float(r[c]) for c in columns] for r in records])
        return ((x - x.mean(0)) / x.std(0).clamp_min(1e-6),)
'''


def test_a_skewed_serving_preprocessor_fails_the_parity_test(project, tmp_path, capsys):
    folder, run_dir, _ = project
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (folder / "myproj" / "skewed.py").write_text(SKEWED)
    saved = json.loads((run / "preprocessor.json").read_text())
    saved["class"] = "myproj.skewed:BatchStatistics"
    (run / "preprocessor.json").write_text(json.dumps(saved))
    assert main(["export", str(run)]) == 2
    out = capsys.readouterr().out
    assert "FAILED" in out and "error export.parity at output[0]" in out


def test_export_refuses_a_corrupt_checkpoint_in_one_paragraph(project, tmp_path, capsys):
    _, run_dir, _ = project
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    for ckpt in (run / "checkpoints").glob("*.ckpt"):
        ckpt.write_bytes(b"not a checkpoint")
    assert main(["export", str(run)]) == 2
    err = capsys.readouterr().err
    assert "cannot be loaded as this run's weights" in err and "Traceback" not in err
