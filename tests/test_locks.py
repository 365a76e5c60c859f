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
