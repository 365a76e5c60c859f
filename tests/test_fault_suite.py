"""Smoke test of scripts/fault_suite.py: one fault and one healthy model, one seed."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fault_suite.py"


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("fault_suite", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fault_suite"] = module  # dataclasses look their module up while defined
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("fault_suite", None)


def test_suite_runs_one_fault_and_one_healthy_model(suite, tmp_path, capsys):
    out = tmp_path / "suite.json"
    assert suite.main(["--quick", "--cases", "log_of_relu", "healthy_mlp_tanh",
                       "--json", str(out)]) == 0

    summary = json.loads(out.read_text())
    assert summary["seeds"] == [0]
    assert set(summary["families"]) == {"nonfinite"}
    fam = summary["families"]["nonfinite"]
    assert fam["check"] == "probe.nonfinite"
    assert (fam["faults"], fam["runs"], fam["detected"], fam["localised"]) == (1, 1, 1, 1)
    assert summary["overall"]["recall"] == 1.0
    healthy = summary["healthy"]
    assert (healthy["models"], healthy["runs"]) == (1, 1)
    assert healthy["errors"] == 0 and healthy["crashes"] == 0
    assert healthy["errors"] + healthy["warnings"] == len(healthy["alarms"])
    assert all(isinstance(v, bool) for v in summary["targets"].values())
    assert {r["case"] for r in summary["runs"]} == {"log_of_relu", "healthy_mlp_tanh"}
    assert len(summary["runs"][1]["train"]) == suite.EPOCHS

    table = capsys.readouterr().out
    assert "| nonfinite | `probe.nonfinite` | 1 | 1 | 100% (1/1) | 100% (1/1) |" in table
    assert "| target | met |" in table


def test_every_fault_names_a_known_check_and_cases_are_unique(suite):
    names = [c.name for c in suite.CASES]
    assert len(names) == len(set(names))
    faults = [c for c in suite.CASES if c.family]
    assert len(faults) >= 20 and len(suite.CASES) - len(faults) >= 10
    assert {c.family for c in faults} == set(suite.CHECKS)
