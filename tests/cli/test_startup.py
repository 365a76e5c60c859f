"""The ``guardrail`` command answers without importing torch, Lightning or Captum.

Importing them costs seconds of CPU on every call; only commands that build objects
(``approve``) need them. Checked in a fresh interpreter, where ``sys.modules`` shows what a
command imported. ``scripts/bench_cli.py`` measures the time.
"""

import json
import subprocess
import sys
import textwrap

import pytest

import guardrail

HEAVY = ("torch", "lightning", "captum", "matplotlib")


def _imports_of(script: str, cwd=None) -> dict:
    """Run ``script`` in a fresh interpreter; it prints ``status`` and ``heavy`` as JSON."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cli(argv: list[str], cwd) -> dict:
    return _imports_of(f"""
        import contextlib, io, json, sys
        from guardrail.cli import main
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                status = main({argv!r})
            except SystemExit as exit:
                status = exit.code
        print(json.dumps({{"status": status, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
    """, cwd)


def _run_dir(path, lr: float) -> str:
    path.mkdir()
    (path / "report.json").write_text(json.dumps({"recipe": "est", "status": "completed"}))
    (path / "manifest.json").write_text(json.dumps(
        {"configuration": {"resolved": {"module": {"lr": lr}}, "effective": {}}}))
    return str(path)


@pytest.mark.parametrize("argv", [["--help"], ["ls"], ["diff", "--help"], ["report", "RUN_A"],
                                  ["diff", "RUN_A", "RUN_B"]], ids=" ".join)
def test_cli_imports_no_heavy_module(argv, tmp_path):
    runs = {"RUN_A": _run_dir(tmp_path / "a", 0.1), "RUN_B": _run_dir(tmp_path / "b", 0.2)}
    result = _cli([runs.get(a, a) for a in argv], tmp_path)
    assert result["status"] in (0, 1)  # diff: 1, the runs differ
    assert result["heavy"] == []


def test_the_check_sees_a_heavy_import():
    """The check above can fail: using a lazy export imports torch and Lightning."""
    result = _imports_of(f"""
        import json, sys, guardrail
        before = [m for m in {HEAVY!r} if m in sys.modules]
        guardrail.GuardrailModule
        print(json.dumps({{"status": before, "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
    """)
    assert result["status"] == []
    assert {"torch", "lightning"} <= set(result["heavy"])


def test_lazy_exports_resolve():
    from guardrail import GuardrailModule, collect_findings, default_callbacks
    from guardrail.callbacks import default_callbacks as the_callbacks
    from guardrail.module import GuardrailModule as the_module

    assert GuardrailModule is the_module and default_callbacks is the_callbacks
    assert callable(collect_findings)
    assert all(hasattr(guardrail, name) for name in guardrail.__all__)
    assert set(guardrail.__all__) <= set(dir(guardrail))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        guardrail.nope  # noqa: B018 - the attribute access is the test
