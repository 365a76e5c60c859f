"""Smoke test of scripts/fault_suite.py: one fault and one healthy model, one seed."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture(scope="module")
def suite():
    sys.path.insert(0, str(SCRIPTS))  # as when run: the script's folder holds `faults`
    spec = importlib.util.spec_from_file_location("fault_suite", SCRIPTS / "fault_suite.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fault_suite"] = module  # dataclasses look their module up while defined
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("fault_suite", None)
        sys.path.remove(str(SCRIPTS))


def test_suite_runs_one_fault_and_one_healthy_model(suite, tmp_path, capsys):
    out = tmp_path / "suite.json"
    assert suite.main(["--quick", "--cases", "plain_detach_in_forward", "healthy_mlp_tanh",
                       "--json", str(out)]) == 0

    summary = json.loads(out.read_text())
    assert summary["seeds"] == [0]
    assert set(summary["families"]) == {"not_updated"}
    fam = summary["families"]["not_updated"]
    held = suite.half("plain_detach_in_forward")
    assert fam["check"] == "grad.not_updated"
    assert (fam[held]["faults"], fam[held]["runs"], fam[held]["detected"],
            fam[held]["localised"]) == (1, 1, 1, 1)
    assert summary["overall"]["all"]["recall"] == 1.0
    assert summary["overall"]["plain"]["faults"] == 1
    healthy = summary["healthy"]
    assert (healthy["models"], healthy["runs"]) == (1, 1)
    assert healthy["errors"] == 0 and healthy["crashes"] == 0
    assert healthy["errors"] + healthy["warnings"] == len(healthy["alarms"])
    assert all(isinstance(v, bool) for v in summary["targets"].values())
    assert {(r["case"], r["half"]) for r in summary["runs"]} == {
        ("plain_detach_in_forward", held), ("healthy_mlp_tanh", suite.half("healthy_mlp_tanh"))}

    table = capsys.readouterr().out
    assert "| not_updated | `grad.not_updated` | 1 |" in table
    assert "| target | met |" in table


def test_every_fault_names_a_known_check_and_the_suite_is_large_and_plain(suite):
    from faults import CASES, CHECKS

    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
    faults = [c for c in CASES if c.family]
    healthy = [c for c in CASES if not c.family]
    assert len(faults) >= 40 and len(healthy) >= 15
    assert sum(c.plain for c in CASES) >= len(CASES) / 2
    assert {c.family for c in faults} == set(CHECKS)


def test_the_split_is_fixed_by_the_name_hash_and_both_halves_hold_faults(suite):
    from faults import CASES

    assert suite.half("log_of_relu") == "held_out"  # the rule, pinned: tuning stays tuning
    halves = {suite.half(c.name) for c in CASES if c.family}
    assert halves == {"tuning", "held_out"}
