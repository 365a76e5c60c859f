"""Repository-wide test fixtures (tests/ and the doctests of guardrail/ and recipes/)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _run_in_a_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test and doctest in its own temporary folder.

    Whatever it writes relative to the working directory (Lightning's checkpoints/,
    lightning_logs/, outputs/, locks/) lands there, never in the repository.
    """
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _idle_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle host for ResourceMonitor's contention rule.

    A test's findings must not depend on what else runs on the machine; the rule's own tests
    set a load.
    """
    import os

    if hasattr(os, "getloadavg"):
        monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
