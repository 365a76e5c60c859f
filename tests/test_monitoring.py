"""`guardrail monitor` end to end: a prediction log or a records file against an export's
reference; exit codes, --json, thin windows, windows by day, a long log streamed, clear errors."""

import json
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from guardrail.checks.drift import feature_plan, reference_profile
from guardrail.cli import main
from guardrail.io import write_json
from guardrail.monitoring import iter_windows, load_reference, monitor, read_windows
from guardrail.serving import SCHEMA

CONTRACT = {"fields": {"area": {"kind": "numeric"}, "zone": {"kind": "categorical"}}}


def sale(rng: random.Random) -> dict:
    return {"area": rng.gauss(1500, 300), "zone": rng.choices("ABC", weights=[6, 3, 1])[0]}


def predict(record: dict) -> float:
    return record["area"] / 1000


@pytest.fixture
def run(tmp_path) -> Path:
    """A run directory whose export holds only what monitoring reads: reference.json."""
    rng = random.Random(0)
    train = [sale(rng) for _ in range(2000)]
    plan = feature_plan(CONTRACT)
    reference = {"inputs": CONTRACT, "records": 2000,
                 "drift": reference_profile(plan, train, [predict(r) for r in train]),
                 "performance": {"metric": "rmse", "value": 0.1, "records": 300}}
    write_json(tmp_path / "run" / "export" / "reference.json", reference)
    return tmp_path / "run"


def write_log(path: Path, records: list, start_day: int = 1, per_day: int | None = None) -> None:
    con = sqlite3.connect(path)
    con.execute(SCHEMA)
    rows = [(f"2026-03-{start_day + (i // per_day if per_day else 0):02d}T12:00:00+00:00", "m1",
             json.dumps(r), json.dumps(predict(r)), "[]") for i, r in enumerate(records)]
    con.executemany("INSERT INTO predictions (time, model_id, record, prediction, warnings) "
                    "VALUES (?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()


def healthy(n: int, seed: int = 1) -> list:
    rng = random.Random(seed)
    return [sale(rng) for _ in range(n)]


def test_a_healthy_log_exits_0_and_writes_the_files(run, capsys):
    write_log(run / "serving.sqlite", healthy(900))
    assert main(["monitor", str(run), "--log", str(run / "serving.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "monitored 900 records in 3 window(s)" in out
    folder = next((run / "monitoring").iterdir())
    assert (folder / "findings.jsonl").read_text() == ""
    summary = json.loads((folder / "monitor.json").read_text())
    assert summary["exit_code"] == 0 and len(summary["windows"]) == 3
    assert summary["reference"]["features"]["area"]["kind"] == "numeric"
    windows = list(read_windows(folder))
    assert [w["records"] for w in windows] == [300, 300, 300]
    assert set(windows[0]["features"]) == {"area", "zone"}
    assert windows[0]["predictions"]["prediction"]["statistics"]["psi"] < 0.1
    page = (folder / "monitor.html").read_text()
    assert "<html" in page and "zone" in page  # the page is written beside monitor.json


def test_drift_exits_1_naming_the_field_and_json_prints_monitor_json(run, capsys):
    drifted = [{**r, "area": r["area"] + 150} for r in healthy(300)]  # +0.5 SD
    write_log(run / "log.sqlite", healthy(300) + drifted)
    assert main(["monitor", str(run), "--log", str(run / "log.sqlite"), "--json"]) == 1
    printed = json.loads(capsys.readouterr().out)
    found = [(f["check"], f["where"], f["evidence"]["window"]["index"])
             for f in printed["findings"]]
    assert ("drift.feature", "area", 1) in found and ("drift.prediction", "prediction", 1) in found
    assert all(index == 1 for _, _, index in found)
    assert printed["status"] == "warnings" and printed["windows"][1]["drifted"] == [
        "area", "prediction"]


def test_errors_exit_2(run):
    cents = [{**r, "area": r["area"] * 100} for r in healthy(300)]
    write_log(run / "log.sqlite", cents)
    assert main(["monitor", str(run), "--log", str(run / "log.sqlite")]) == 2


def test_a_thin_window_is_info_and_exits_0(run):
    write_log(run / "log.sqlite", [{**r, "area": r["area"] * 100} for r in healthy(40)])
    result = monitor(run, log=run / "log.sqlite")
    assert [(f.check, f.severity.value) for f in result.findings] == [
        ("monitor.thin_window", "info")]
    assert result.exit_code == 0


def test_windows_by_day_and_by_week(run):
    write_log(run / "log.sqlite", healthy(700), per_day=200)  # 200, 200, 200, 100 a day
    days = list(iter_windows(run, log=run / "log.sqlite", by="day"))
    assert [(w.key, w.records) for w in days] == [
        ("2026-03-01", 200), ("2026-03-02", 200), ("2026-03-03", 200), ("2026-03-04", 100)]
    weeks = list(iter_windows(run, log=run / "log.sqlite", by="week"))  # 03-01 ends ISO week 9
    assert [(w.key, w.records) for w in weeks] == [("2026-W09", 200), ("2026-W10", 500)]


def test_labels_judge_the_models_error(run, tmp_path):
    write_log(run / "log.sqlite", healthy(300))
    ok = tmp_path / "ok.jsonl"
    ok.write_text("".join(json.dumps({"id": i + 1, "label": predict(r) + 0.1}) + "\n"
                          for i, r in enumerate(healthy(300))))
    result = monitor(run, log=run / "log.sqlite", labels=ok, write=False)
    assert result.findings == [] and result.windows[0]["performance"]["value"] == \
        pytest.approx(0.1)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label\n" + "".join(f"{i + 1},{predict(r) + 0.5}\n"
                                           for i, r in enumerate(healthy(300))))
    result = monitor(run, log=run / "log.sqlite", labels=bad, write=False)
    assert [(f.check, f.severity.value) for f in result.findings] == [
        ("drift.performance", "error")]


def served_with_labels(tmp_path: Path, anchoring: float, seed: int = 5) -> tuple[Path, Path]:
    """1,200 served records, a random quarter of them not served, with labels that follow the
    served prediction by ``anchoring``: label = (1 - A) * market + A * prediction."""
    rng = random.Random(seed)
    lines, labels = [], []
    for i, record in enumerate(healthy(1_200, seed=seed)):
        served = rng.random() >= 0.25
        market = predict(record) + rng.gauss(0, 0.1)
        label = (1 - anchoring) * market + anchoring * predict(record) if served else market
        lines.append({"id": i, "record": record, "prediction": predict(record),
                      "served": served})
        labels.append({"id": i, "label": label})
    records, truth = tmp_path / "served.jsonl", tmp_path / "labels.jsonl"
    records.write_text("".join(json.dumps(x) + "\n" for x in lines))
    truth.write_text("".join(json.dumps(x) + "\n" for x in labels))
    return records, truth


def test_labels_following_the_served_predictions_are_a_feedback_loop(run, tmp_path):
    """Rows that say whether they were served: the feedback checks run on them, windows as
    rounds. Labels pulled halfway to the prediction fire anchoring and self-evaluation."""
    records, labels = served_with_labels(tmp_path, anchoring=0.5)
    result = monitor(run, records=records, labels=labels, window=300)
    fired = {(f.check, f.where) for f in result.findings}
    assert {("feedback.anchoring", "label"), ("feedback.self_evaluation", "mae")} <= fired
    assert 0.4 < result.feedback["anchoring"]["estimate"] < 0.6
    assert result.exit_code == 1
    page = (Path(result.folder) / "monitor.html").read_text()
    assert "Do new labels follow the model?" in page and "grading its own homework" in page
    assert result.feedback["metrics"]["mae"]["rounds"] == [0, 1, 2, 3]  # window indices


def test_labels_of_a_world_that_ignores_the_model_are_no_feedback_loop(run, tmp_path):
    records, labels = served_with_labels(tmp_path, anchoring=0.0)
    result = monitor(run, records=records, labels=labels, window=300, write=False)
    assert [f for f in result.findings if f.check.startswith("feedback.")] == []
    assert abs(result.feedback["anchoring"]["estimate"]) < 0.1
    assert len(result.feedback["metrics"]["mae"]["influenced"]) == 4


def test_feedback_checks_say_what_they_could_not_judge(run, tmp_path):
    records, labels = served_with_labels(tmp_path, anchoring=0.5)
    # one window of 1,200 rows is one round: self-evaluation needs three
    result = monitor(run, records=records, labels=labels, window=1_200, write=False)
    assert "not judged: 1 window(s)" in result.feedback["self_evaluation"]
    assert "feedback.self_evaluation" not in {f.check for f in result.findings}
    # 0/1 labels: a classifier's outcomes; anchoring is not estimated on them
    binary = tmp_path / "binary.jsonl"
    binary.write_text("".join(json.dumps({"id": i, "label": i % 2}) + "\n" for i in range(1_200)))
    result = monitor(run, records=records, labels=binary, window=300, write=False)
    assert result.feedback["anchoring"].startswith("not estimated: the labels are 0/1")
    assert result.feedback["metrics"]["brier"]["rounds"] == [0, 1, 2, 3]


def test_a_served_flag_that_is_not_true_or_false_is_one_clear_error(run, tmp_path, capsys):
    path = tmp_path / "served.jsonl"
    path.write_text(json.dumps({"record": healthy(1)[0], "served": "false"}) + "\n")
    assert main(["monitor", str(run), "--records", str(path)]) == 2
    assert "line 1: \"served\" is 'false'; give true or false" in capsys.readouterr().err


def test_labels_without_served_flags_say_the_feedback_checks_were_not_run(run, tmp_path):
    write_log(run / "log.sqlite", healthy(300))
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"id": i + 1, "label": predict(r)}) + "\n"
                              for i, r in enumerate(healthy(300))))
    result = monitor(run, log=run / "log.sqlite", labels=labels, write=False)
    assert "served" in result.feedback["skipped"] and result.findings == []


def test_a_long_log_is_streamed_in_chunks(run, monkeypatch):
    """50,000 rows read 1,000 at a time: 100 windows, never more rows held than a chunk."""
    write_log(run / "log.sqlite", healthy(50_000, seed=3))
    import guardrail.monitoring as monitoring

    held = []
    original = monitoring._read_log_raw

    def spy(path, chunk):
        for rows in original(path, chunk):
            held.append(len(rows))
            yield rows

    monkeypatch.setattr(monitoring, "_read_log_raw", spy)
    result = monitor(run, log=run / "log.sqlite", window=500, chunk=1000, workers=0)
    assert len(result.windows) == 100 and result.records == 50_000
    assert max(held) == 1000 and len(held) == 50
    assert sum(f.check == "drift.feature" for f in result.findings) <= 1


@pytest.mark.parametrize("by", [None, "day"])
def test_worker_processes_judge_the_same_windows(run, by):
    """A log parsed by two worker processes gives the windows of one process, exactly."""
    records = healthy(5_000, seed=4)
    for r in records[3_000:]:
        r["area"] *= 1.3  # drift in the second part, so that findings are compared too
    write_log(run / "log.sqlite", records, per_day=1_200)
    windows = {workers: [w.to_dict() for w in iter_windows(
        run, log=run / "log.sqlite", window=450, by=by, chunk=700, workers=workers)]
        for workers in (0, 2)}
    assert windows[0] == windows[2]
    assert len(windows[0]) == (5 if by else 12)
    assert any(f["where"] == "area" for w in windows[0] for f in w["findings"])


def test_a_records_file_with_predictions(run, tmp_path):
    lines = [{"record": r, "prediction": predict(r), "time": "2026-03-01T00:00:00Z"}
             for r in healthy(300)]
    path = tmp_path / "served.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    result = monitor(run, records=path, by="day", write=False)
    assert result.exit_code == 0 and result.windows[0]["key"] == "2026-03-01"


def test_clear_errors(run, tmp_path, capsys):
    assert main(["monitor", str(run), "--log", str(tmp_path / "none.sqlite")]) == 2
    assert "does not exist; `guardrail serve` writes" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"area": 1}\n[1, 2]\n')
    assert main(["monitor", str(run), "--records", str(bad)]) == 2
    assert "line 2 is list, not a JSON object" in capsys.readouterr().err
    bad.write_text('{"area": 1\n')
    assert main(["monitor", str(run), "--records", str(bad)]) == 2
    assert "line 1 is not valid JSON" in capsys.readouterr().err
    (tmp_path / "plain.txt").write_text("hello")
    assert main(["monitor", str(run), "--log", str(tmp_path / "plain.txt")]) == 2
    assert "is not a prediction log of `guardrail serve`" in capsys.readouterr().err
    empty = tmp_path / "norun"
    empty.mkdir()
    assert main(["monitor", str(empty)]) == 2
    assert "Run `guardrail export" in capsys.readouterr().err
    old = tmp_path / "old"
    shutil.copytree(run, old)
    saved = json.loads((old / "export" / "reference.json").read_text())
    del saved["drift"]
    (old / "export" / "reference.json").write_text(json.dumps(saved))
    with pytest.raises(Exception, match="Re-run `guardrail export"):
        load_reference(old)
    assert main(["monitor", str(run), "--threshold", "psi_warning=x"]) == 2
    assert "give NAME=NUMBER" in capsys.readouterr().err


@pytest.mark.slow
def test_a_real_export_monitors_its_own_test_records(tmp_path, capsys):
    """A team's own recipe, trained and exported: its test records are healthy, predictions
    computed by the exported program; the same records shifted drift."""
    import os
    import subprocess
    import sys

    from guardrail.cli.new import write_recipe

    folder = tmp_path / "proj"
    folder.mkdir()
    # A name of its own: the export below imports the package into this process, where a
    # later `guardrail new myproj` in another test would find it already importable.
    write_recipe("driftproj", folder)
    run_dir = folder / "outputs" / "first"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "guardrail.train", "recipe=driftproj",
                    f"hydra.run.dir={run_dir}", "trainer.enable_progress_bar=false",
                    "trainer.max_epochs=1"], cwd=folder, env=env, check=True,
                   capture_output=True, timeout=600)
    assert main(["export", str(run_dir)]) == 0
    capsys.readouterr()
    assert main(["records", str(run_dir), "--split", "test"]) == 0
    lines = capsys.readouterr().out.splitlines()
    path = tmp_path / "test.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = monitor(run_dir, records=path, window=len(lines), write=False)
    assert [f for f in result.findings if f.check.startswith("drift.")] == [], result.findings
    reference = load_reference(run_dir)
    sd = reference["features"]["x0"]["sd"]
    shifted = [json.loads(x) for x in lines]
    path.write_text("".join(json.dumps({**r, "x0": r["x0"] + sd}) + "\n" for r in shifted))
    result = monitor(run_dir, records=path, window=len(lines), write=False)
    assert ("drift.feature", "x0") in [(f.check, f.where) for f in result.findings]
