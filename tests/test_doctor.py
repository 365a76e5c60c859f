"""`guardrail doctor`: the environment against the manifest, golden outputs re-run.

One short EST run, trained and exported once for the module. Changes under the model are made
in-process by fixtures (a patched activation function, a changed preprocessing function, a
fake package version), so the same run shows "reproduces" and each kind of failure.
"""

import json
import os
import shutil

import numpy as np
import pytest
import torch

from conftest import trained_and_exported
from guardrail.checks.dependency import (
    compare_outputs,
    environment_changes,
    environment_findings,
    package_changes,
    rank_causes,
)
from guardrail.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A short EST run, exported."""
    return trained_and_exported(tmp_path_factory.mktemp("est"), "est", 1)


@pytest.fixture
def gelu_changed(monkeypatch):
    """A torch release whose GELU computes something else (the eager path only)."""
    original = torch.nn.functional.gelu
    monkeypatch.setattr(torch.nn.functional, "gelu",
                        lambda x, approximate="none": original(x, approximate=approximate) * 1.05)


@pytest.fixture
def log1p_changed(monkeypatch):
    """A numpy release whose log1p differs: the preprocessing of both paths moves."""
    original = np.log1p
    monkeypatch.setattr(np, "log1p", lambda x, *a, **k: original(x, *a, **k) * 1.02)


def doctor_json(run_dir, capsys, *extra):
    capsys.readouterr()
    code = main(["doctor", str(run_dir), "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_unchanged_environment_reproduces_and_writes_its_result(run_dir, capsys):
    code = main(["doctor", str(run_dir)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "verdict: outputs reproduce (max difference" in out
    assert "export.json (measured at export)" in out  # the spread export recorded
    written = sorted((run_dir / "doctor").iterdir())[-1]
    result = json.loads((written / "doctor.json").read_text())
    assert result["exit_code"] == 0 and result["verdict"].startswith("outputs reproduce")
    assert set(result["outputs"]) == {"exported", "checkpoint"}
    assert all(c["passed"] for c in result["outputs"].values())
    assert (written / "findings.jsonl").read_text() == ""


@pytest.mark.slow
def test_patched_activation_moves_the_checkpoint_outputs(run_dir, capsys, gelu_changed):
    code, result = doctor_json(run_dir, capsys)
    assert code == 2
    finding = next(f for f in result["findings"] if f["check"] == "dependency.outputs_changed")
    assert finding["severity"] == "error" and finding["where"] == "prediction"
    paths = finding["evidence"]["paths"]
    assert paths["exported"]["passed"]  # the exported program does not call F.gelu
    moved = paths["checkpoint"]
    assert not moved["passed"] and moved["moved_outputs"] == ["prediction"]
    assert len(moved["moved_records"]) == 64  # every record moved
    assert "checkpoint through the module: 64 of 64 records" in finding["message"]


@pytest.mark.slow
def test_changed_preprocessing_moves_both_paths_and_names_numpy_first(run_dir, capsys,
                                                                      log1p_changed,
                                                                      monkeypatch):
    from guardrail import doctor

    real = doctor.installed_versions()
    monkeypatch.setattr(doctor, "installed_versions", lambda: {
        **real, "numpy": "0.0.1", "zz-unused-package": "2.0"})
    code, result = doctor_json(run_dir, capsys)
    assert code == 2
    finding = result["findings"][0]
    assert finding["check"] == "dependency.outputs_changed"
    paths = finding["evidence"]["paths"]
    assert not paths["exported"]["passed"] and not paths["checkpoint"]["passed"]
    assert paths["exported"]["moved"][0]["output"] == "prediction"
    assert f"numpy {real['numpy']} → 0.0.1" in finding["message"]
    causes = [c["name"] for c in finding["evidence"]["likely_causes"]]
    assert causes[0] == "numpy" and "zz-unused-package" not in causes  # nothing imports it


@pytest.mark.slow
def test_a_fake_changed_package_version_is_listed(run_dir, capsys, monkeypatch):
    from guardrail import doctor

    real = doctor.installed_versions()
    monkeypatch.setattr(doctor, "installed_versions",
                        lambda: {**real, "torch": "99.0.0", "zz-unused-package": "2.0"})
    code = main(["doctor", str(run_dir), "--no-checkpoint"])
    out = capsys.readouterr().out
    assert code == 1, out  # outputs reproduce; a package the model runs on changed
    assert f"torch {real['torch']} → 99.0.0" in out
    assert "zz-unused-package (absent) → 2.0" in out
    assert "warning dependency.changed at torch" in out
    assert "info dependency.environment at zz-unused-package" in out
    assert "verdict: outputs reproduce" in out


@pytest.mark.slow
def test_a_replay_spread_recorded_at_export_is_the_tolerance(run_dir, tmp_path, capsys,
                                                             gelu_changed):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("doctor"))
    manifest = json.loads((copy / "export" / "export.json").read_text())
    manifest["replay_spread"] = 10.0  # a (huge) spread measured at export
    (copy / "export" / "export.json").write_text(json.dumps(manifest))
    code, result = doctor_json(copy, capsys)
    assert code == 0, result["verdict"]
    assert result["tolerance"]["spread"] == 10.0
    assert result["tolerance"]["spread_source"] == "export.json (measured at export)"


def test_a_run_without_manifest_or_export_is_named_with_the_fix(tmp_path, capsys):
    assert main(["doctor", str(tmp_path)]) == 2
    assert "has no manifest.json" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text("{}")
    assert main(["doctor", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "the run was not exported" in err and f"guardrail export {tmp_path}" in err


# --- the pure rules


def test_compare_outputs_passes_equal_outputs_and_names_what_moved():
    stored = [{"log_eur": 1.0, "grid": [[1.0, 2.0]]}, {"log_eur": 2.0, "grid": [[3.0, 4.0]]}]
    assert compare_outputs(stored, stored, spread=0.0).passed
    now = [stored[0], {"log_eur": 2.0, "grid": [[3.0, 4.1]]}]
    c = compare_outputs(stored, now, spread=0.0)
    assert (c.passed, c.moved_records, c.moved_outputs) == (False, [1], ["prediction.grid[0][1]"])
    assert compare_outputs(stored, now, spread=0.2).passed  # within a measured spread


def test_compare_outputs_catches_nan_strings_and_changed_structure():
    assert not compare_outputs([1.0], [float("nan")], spread=0.0).passed
    assert compare_outputs([float("nan")], [float("nan")], spread=0.0).passed
    assert not compare_outputs(["cat"], ["dog"], spread=0.0).passed
    broken = compare_outputs([[1.0, 2.0]], [[1.0]], spread=0.0)
    assert not broken.passed and broken.max_diff == float("inf")


def test_environment_findings_fire_on_a_change_and_stay_silent_on_equal():
    same = {"torch": "2.6.0", "numpy": "2.2.0"}
    assert environment_findings(rank_causes(package_changes(same, same))) == []
    env = environment_changes({"python": "3.11.7", "cuda": "12.4"},
                              {"python": "3.11.7", "cuda": "12.6"})
    [finding] = environment_findings(rank_causes(package_changes(same, same), env))
    assert (finding.check, finding.where) == ("dependency.changed", "cuda")


def test_causes_rank_torch_and_numpy_before_preprocessing_and_unrelated_packages():
    old = {"torch": "2.5", "numpy": "2.1", "pandas": "2.2", "lightning": "2.4", "rich": "13",
           "zz": "1"}
    new = {"torch": "2.6", "numpy": "2.2", "pandas": "3.0", "lightning": "2.5", "rich": "14",
           "zz": "2"}
    names = [c.name for c in rank_causes(package_changes(old, new), imported={"rich"})]
    assert names == ["torch", "numpy", "pandas", "lightning", "rich", "zz"]


def test_last_good_run_is_the_latest_completed_exported_sibling(tmp_path):
    from guardrail.doctor import last_good_run

    for name, status, exported in (("a", "completed", True), ("b", "completed", True),
                                   ("c", "failed", True), ("d", "completed", False)):
        (tmp_path / name / "export").mkdir(parents=True)
        (tmp_path / name / "manifest.json").write_text(json.dumps({"status": status}))
        if exported:
            (tmp_path / name / "export" / "export.json").write_text("{}")
    os.utime(tmp_path / "a" / "export" / "export.json", (1, 1))  # the older one
    assert last_good_run(tmp_path / "now") == (tmp_path / "b").absolute()
    assert last_good_run(tmp_path / "b") == (tmp_path / "a").absolute()
