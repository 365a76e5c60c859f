"""``guardrail score``: the ML Test Score rests on evidence, rises with it, and is the minimum.

Run folders here are written by hand (the files a default run, an export, doctor and monitor
leave), so the tests take milliseconds; one end-to-end test trains a real recipe (slow).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from guardrail.cli import main
from guardrail.errors import ConfigError
from guardrail.report.score import score_section
from guardrail.score import (
    SECTIONS,
    cited_files,
    empty_evidence,
    gather_evidence,
    judge,
    score_run,
)

ROOT = Path(__file__).resolve().parents[1]
GUARDRAILS = {  # name in configs/guardrails/default.yaml -> callback class
    "config_lock": "ConfigLock", "run_manifest": "RunManifest", "determinism": "DeterminismGuard",
    "architecture": "ArchitectureCheck", "data_probe": "DataProbe",
    "data_contract": "DataContract", "activation_probe": "ActivationProbe",
    "gradient_probe": "GradientProbe", "loss_probe": "LossProbe",
    "baseline_check": "BaselineCheck", "resources": "ResourceMonitor",
    "attribution": "AttributionReport", "effort": "EffortEstimator"}


def write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if path.suffix == ".json" else str(data))


def make_run(folder: Path, guardrails: bool = True) -> Path:
    """What `python -m guardrail.train recipe=est` leaves (guardrails on, lock off, or none)."""
    callbacks = {name: {"_target_": f"guardrail.callbacks.{cls}", "policy": "${guardrails.policy}",
                        **({"mode": "off"} if cls == "ConfigLock" else {}),
                        **({"verify_steps": 2} if cls == "DeterminismGuard" else {})}
                 for name, cls in GUARDRAILS.items()} if guardrails else {}
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(
        {"recipe_name": "est", "guardrails": {"policy": "record", "callbacks": callbacks}}))
    write(folder / "report.json", {"baselines": {"median": {}, "ridge": {}},
                                   "baseline_roles": {"median": "trivial", "ridge": "reference"},
                                   "resources": {"samples_per_s": 3000.0}})
    (folder / "metrics").mkdir()
    findings = []
    if guardrails:
        write(folder / "manifest.json", {"status": "completed", "data": {"train": {}},
                                         "model": {"trajectory": [1]}})
        write(folder / "contract.json", {"fields": {"area": {}, "rooms": {}}})
        write(folder / "attribution" / "attribution.json", {
            "features": [{"name": "area"}, {"name": "rooms"}], "ranking": ["area", "rooms"],
            "methods": {"permutation": {"importance": [1.0, 0.5]}},
            "sanity": {"passed": True}})
        (folder / "metrics" / "metrics.csv").write_text(
            "epoch,guardrail/determinism_verified,step\n,1.0,0\n0,,9\n")
        findings = [{"check": "baseline.compared", "severity": "info", "where": "test",
                     "message": "Compared."}]
    (folder / "findings.jsonl").write_text("".join(json.dumps(f) + "\n" for f in findings))
    return folder


def add_export(run: Path) -> None:
    write(run / "export" / "export.json", {"parity": {"passed": True, "max_abs_diff": 0.0},
                                           "files": {"model.pt2": "ab"}, "model_id": "m1"})


def add_doctor(run: Path, stamp: str = "2026-01-01_00-00-00") -> None:
    write(run / "doctor" / stamp / "doctor.json", {
        "verdict": "outputs reproduce", "outputs": {"exported": {}, "checkpoint": {}},
        "changes": [], "environment": {"recorded": {"python": "3.11"}}, "exit_code": 0})


def add_monitor(run: Path, stamp: str = "2026-01-01_00-00-01", labelled: bool = True) -> None:
    performance = {"metric": "rmse", "value": 0.2, "test": 0.18} if labelled else None
    write(run / "monitoring" / stamp / "monitor.json", {
        "source": {"kind": "records"}, "windowing": {"window": 300}, "records": 600,
        "windows": [{"index": i, "performance": performance} for i in range(2)],
        "findings": [], "status": "ok"})


def total(result: dict) -> float:
    return sum(s["score"] for s in result["sections"].values())


def scores(result: dict) -> dict[str, float]:
    return {i["id"]: i["score"] for i in result["items"]}


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    """A default run, the same after export + doctor + monitor, and a guardrails=off run."""
    default = make_run(tmp_path / "outputs" / "default")
    served = make_run(tmp_path / "other" / "served")
    add_export(served)
    add_doctor(served)
    add_monitor(served)
    return {"default": default, "served": served,
            "off": make_run(tmp_path / "off" / "run", guardrails=False)}


def test_no_item_scores_without_evidence(runs):
    for run in runs.values():
        result = score_run(run)
        assert len(result["items"]) == 28
        for item in result["items"]:
            if item["score"] > 0:
                assert item["evidence"], item
            if not item["judged"]:
                assert item["score"] == 0, item
        for file in cited_files(result):
            assert (run / file).exists(), file


def test_hand_built_evidence_that_names_no_file_earns_nothing():
    ev = empty_evidence("RUN")  # every guardrail claims to have run, but no file is there
    ev["guardrails"] = {cls: {"key": f"guardrails.callbacks.{name}", "settings": {}}
                        for name, cls in GUARDRAILS.items()}
    ev.update(contract={"fields": 3}, metrics={"guardrail/determinism_verified": 1.0},
              findings=[{"check": "baseline.compared"}],
              export={"parity": {"passed": True}, "files": 1})
    result = judge(ev)
    assert result["final"] == 0 and total(result) == 0
    ev["files"] = [".hydra/config.yaml", "contract.json"]
    assert scores(judge(ev))["Data 1"] == 1.0  # the same claim with its files: a point


def test_score_rises_with_evidence(runs):
    default, served = score_run(runs["default"]), score_run(runs["served"])
    assert total(default) < total(served)
    assert default["final"] < served["final"]
    assert all(served["sections"][s]["score"] >= default["sections"][s]["score"]
               for s in SECTIONS)
    before, after = scores(default), scores(served)
    assert before["Model 2"] == 0 and after["Model 2"] == 0.5  # labelled monitoring, once
    assert before["Data 7"] == 0 and after["Data 7"] == 0.5  # export parity


def test_guardrails_off_scores_lower(runs):
    off, default = score_run(runs["off"]), score_run(runs["default"])
    assert total(off) == 0 and off["final"] == 0
    assert default["final"] > off["final"] and total(default) > total(off)


def test_final_is_the_minimum_of_the_sections(runs):
    for run in runs.values():
        result = score_run(run)
        sums = {s: sum(i["score"] for i in result["items"] if i["section"] == s)
                for s in SECTIONS}
        assert {s: v["score"] for s, v in result["sections"].items()} == sums
        assert result["final"] == min(sums.values())
        assert result["limited_by"] == [s for s in SECTIONS if sums[s] == result["final"]]


def test_a_skipped_guardrail_earns_nothing(runs):
    run = runs["default"]
    assert scores(score_run(run))["Infra 1"] == 1.0  # silent: the replay ran
    with open(run / "findings.jsonl", "a") as fh:
        fh.write(json.dumps({"check": "determinism.skipped", "severity": "info",
                             "message": "Replay verification skipped: no loader."}) + "\n")
    item = next(i for i in score_run(run)["items"] if i["id"] == "Infra 1")
    assert item["score"] == 0 and "skipped" in item["why"]


def test_once_is_half_repeated_is_one(runs):
    run = runs["served"]
    assert scores(score_run(run))["Infra 3"] == 0.5
    add_doctor(run, "2026-02-01_00-00-00")
    add_monitor(run, "2026-02-01_00-00-01")
    after = scores(score_run(run))
    assert after["Infra 3"] == 1.0 and after["Model 2"] == 1.0 and after["Monitor 7"] == 1.0


def test_unjudgeable_items_say_so():
    items = {i["id"]: i for i in judge(empty_evidence("RUN"))["items"]}
    for key in ("Data 3", "Data 6", "Model 6", "Model 7"):
        assert not items[key]["judged"] and "Cannot be judged" in items[key]["why"]


def test_privacy_controls_earn_points_by_what_ran():
    ev = empty_evidence("RUN")
    assert next(i for i in judge(ev)["items"] if i["id"] == "Data 5")["score"] == 0
    ev["guardrails"]["PrivacyGuard"] = {"key": "guardrails.callbacks.privacy"}
    ev["files"] = [".hydra/config.yaml", "privacy.json"]  # a point needs its files
    ev["privacy"] = {"scan": True, "anonymity": False, "audit": False, "epsilon": None}
    assert next(i for i in judge(ev)["items"] if i["id"] == "Data 5")["score"] == 0.5
    ev["privacy"]["epsilon"] = 3.99
    item = next(i for i in judge(ev)["items"] if i["id"] == "Data 5")
    assert item["score"] == 1.0 and "epsilon 3.99" in item["why"]
    ev["findings"] = [{"check": "privacy.skipped", "severity": "info", "message": "no records"}]
    assert next(i for i in judge(ev)["items"] if i["id"] == "Data 5")["score"] == 0


def test_gather_reads_plain_data(runs):
    ev = gather_evidence(runs["served"])
    json.dumps(ev)
    assert ev["guardrails"]["DataContract"]["key"] == "guardrails.callbacks.data_contract"
    assert ev["metrics"] == {"guardrail/determinism_verified": 1.0}
    assert [m["labelled_windows"] for m in ev["monitoring"]] == [[0, 1]]


def test_not_a_run_directory(tmp_path):
    with pytest.raises(ConfigError, match=r"is not a run directory .* `guardrail score outputs"):
        score_run(tmp_path)


def test_cli_text_json_and_errors(runs, tmp_path, capsys):
    run = runs["served"]
    assert main(["score", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ML Test Score of {run}: ") and "evidence: export/export.json" in out
    assert (run / "score.json").is_file()
    assert main(["score", str(run), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["items"]) == 28 and data["final"] == min(
        s["score"] for s in data["sections"].values())
    assert main(["score", str(tmp_path / "nowhere")]) == 2
    assert "is not a run directory" in capsys.readouterr().err


def test_report_section_escapes_and_lists_evidence(runs):
    result = score_run(runs["served"])
    result["items"][0]["why"] = "<script>x</script>"
    html = score_section(result)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<code>export/export.json</code> [parity]" in html
    assert score_section({}) == ""


@pytest.mark.slow
def test_real_runs_end_to_end(tmp_path):
    """A trained EST run outscores the same recipe with guardrails=off; export raises it."""
    def train(name: str, *extra: str) -> Path:
        out = tmp_path / name
        subprocess.run([sys.executable, "-m", "guardrail.train", "recipe=est",
                        "trainer.max_epochs=2", f"hydra.run.dir={out}", *extra],
                       check=True, cwd=ROOT, capture_output=True)
        return out

    run = train("default", "guardrails.callbacks.config_lock.mode=off")
    off = train("off", "guardrails=off")
    before = score_run(run)
    assert score_run(off)["final"] == 0 < before["final"]
    assert main(["export", str(run)]) == 0
    after = score_run(run)
    assert total(after) > total(before)
    for result in (before, after):
        assert all((run / f).exists() for f in cited_files(result))


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    assert "examples:" in capsys.readouterr().out
