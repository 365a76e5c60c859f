"""The committed locks match what the recipes train with today.

A config or code-default change that forgets `guardrail approve` would refuse every user's
run of the recipe (the lock is strict by default); this catches it first.
"""

import shutil
from pathlib import Path

import pytest

from guardrail.lockfile import approve_recipe, lock_path
from guardrail.recipes import RECIPES

LOCKS = Path(__file__).resolve().parents[1] / "locks"


@pytest.mark.parametrize("recipe", [r.name for r in RECIPES])
def test_committed_lock_matches_the_recipe(recipe, tmp_path):
    shutil.copy(lock_path(LOCKS, recipe), lock_path(tmp_path, recipe))
    _, changes = approve_recipe(recipe, tmp_path, None, tmp_path / "scratch")
    assert changes == [], f"run `guardrail approve recipe={recipe}` and commit the lock"
