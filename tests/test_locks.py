"""The committed locks match what the recipes train with today.

A config or code-default change that forgets `guardrail approve` would refuse every user's
run of the recipe (the lock is strict by default); this catches it first.
"""

import shutil
from pathlib import Path

import pytest

from guardrail.lockfile import approve_recipe, lock_path, project_root, resolve_lock_dir
from guardrail.recipes import RECIPES

LOCKS = Path(__file__).resolve().parents[1] / "locks"


@pytest.mark.parametrize("recipe", [r.name for r in RECIPES])
def test_committed_lock_matches_the_recipe(recipe, tmp_path):
    shutil.copy(lock_path(LOCKS, recipe), lock_path(tmp_path, recipe))
    _, changes = approve_recipe(recipe, tmp_path, None, tmp_path / "scratch")
    assert changes == [], f"run `guardrail approve recipe={recipe}` and commit the lock"


def test_project_root_is_the_git_work_tree_else_the_folder(tmp_path):
    (tmp_path / "wt" / "a" / "b").mkdir(parents=True)
    assert project_root(tmp_path / "wt" / "a" / "b") == tmp_path / "wt" / "a" / "b"
    (tmp_path / "wt" / ".git").write_text("gitdir: /elsewhere/.git/worktrees/wt\n")  # worktree
    assert project_root(tmp_path / "wt" / "a" / "b") == tmp_path / "wt"
    assert resolve_lock_dir("locks", tmp_path / "wt" / "a") == tmp_path / "wt" / "locks"
    assert resolve_lock_dir(tmp_path / "mine", tmp_path / "wt") == tmp_path / "mine"


# --- dependency.changed: the lock records versions; a run under others is warned, not refused

def _fit_with_lock(lock_dir):
    from lightning.pytorch.demos.boring_classes import BoringModel

    from conftest import quiet_trainer
    from guardrail.callbacks import ConfigLock

    lock = ConfigLock(lock_dir=lock_dir, name="demo")
    trainer = quiet_trainer(callbacks=[lock], max_steps=1, limit_val_batches=1)
    trainer.fit(BoringModel())
    return lock, trainer


def _versions(**changed):
    from guardrail.lockfile import dependency_versions

    return {**dependency_versions(), **changed}


def test_a_new_lock_records_versions_outside_its_hash(tmp_path):
    from guardrail.lockfile import lock_hash, read_lock

    _fit_with_lock(tmp_path)
    lock = read_lock(tmp_path / "demo.lock.yaml")
    assert {"torch", "lightning", "numpy", "python", "cuda"} <= set(lock["versions"])
    assert lock["hash"] == lock_hash(lock["config"], lock["effective"])


def test_changed_torch_version_warns_dependency_changed_and_training_goes_on(tmp_path,
                                                                           monkeypatch):
    _fit_with_lock(tmp_path)
    monkeypatch.setattr("guardrail.callbacks.config_lock.dependency_versions",
                        lambda: _versions(torch="99.0.0"))
    lock, trainer = _fit_with_lock(tmp_path)
    assert [(f.check, f.severity.value, f.where) for f in lock.findings] == [
        ("dependency.changed", "warning", "torch")]
    finding = lock.findings[0]
    assert "→ 99.0.0" in finding.message and str(tmp_path / "demo.lock.yaml") in finding.message
    assert "guardrail doctor" in finding.hint
    assert trainer.global_step == 1  # warned, never refused


def test_equal_versions_are_silent(tmp_path):
    _fit_with_lock(tmp_path)
    lock, _ = _fit_with_lock(tmp_path)
    assert lock.findings == []


def test_a_lock_written_before_versions_were_recorded_stays_silent(tmp_path, monkeypatch):
    import yaml

    from guardrail.lockfile import read_lock, write_lock

    _fit_with_lock(tmp_path)
    path = tmp_path / "demo.lock.yaml"
    old = read_lock(path)
    write_lock(path, "demo", old["config"], old["effective"])  # no versions section
    assert "versions" not in yaml.safe_load(path.read_text())
    monkeypatch.setattr("guardrail.callbacks.config_lock.dependency_versions",
                        lambda: _versions(torch="99.0.0", numpy="0.1"))
    lock, _ = _fit_with_lock(tmp_path)
    assert lock.findings == []


def test_lock_versions_finding_names_the_last_good_run_and_ranks_torch_first():
    from guardrail.checks.dependency import lock_versions_finding

    finding = lock_versions_finding({"pandas": "2.2", "torch": "2.5", "numpy": "2.1"},
                                    {"pandas": "3.0", "torch": "2.6", "numpy": "2.1"},
                                    "locks/est.lock.yaml", "outputs/est/2026-01-01_12-00-00")
    assert finding.where == "torch"
    assert finding.message.index("torch 2.5 → 2.6") < finding.message.index("pandas 2.2 → 3.0")
    assert "numpy" not in finding.message
    assert "guardrail doctor outputs/est/2026-01-01_12-00-00" in finding.hint
