"""`guardrail estimate`: the scaling fit, its intervals, the sweep's runs and the command."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import yaml

from guardrail.checks.scaling import PowerLaw, fit_power_law, scaling_forecast, summary
from guardrail.cli import main
from guardrail.errors import ConfigError
from guardrail.estimate import ESTIMATE_HTML, ESTIMATE_JSON, Sweep, collect_runs

TRUTH = PowerLaw(c=0.75, a=0.12, b=0.5, higher=True)
SWEEP = [0.125, 0.125, 0.25, 0.25, 0.5, 0.5]  # three values, two seeds each


def test_a_noiseless_curve_is_recovered():
    xs = [0.0625, 0.125, 0.25, 0.5, 1.0]
    law = fit_power_law(xs, TRUTH(np.array(xs)), higher=True, bounds=(0.0, 1.0))
    assert law.c == pytest.approx(0.75, abs=0.01) and law.b == pytest.approx(0.5, rel=0.05)
    falling = PowerLaw(c=0.2, a=0.3, b=0.4, higher=False)
    law = fit_power_law(xs, falling(np.array(xs)), higher=False, bounds=(0.0, math.inf))
    assert law.c == pytest.approx(0.2, abs=0.02) and law(4.0) < law(1.0)  # b on a grid


def test_a_ceiling_stays_inside_the_metrics_range():
    # points still rising steeply at AP 0.97: an unbounded fit would level off above 1
    law = fit_power_law([1, 2, 4], [0.90, 0.95, 0.97], higher=True, bounds=(0.0, 1.0))
    assert law.c <= 1.0


def test_intervals_hold_new_runs_at_their_rate():
    """Sweeps drawn from a known curve with seed noise: the 80% interval at x=1 (twice the
    largest value swept) holds a new run there 70-92% of the time."""
    rng = np.random.default_rng(7)
    hits = 0
    for i in range(100):
        measured = TRUTH(np.array(SWEEP)) + rng.normal(0, 0.03, len(SWEEP))
        at = scaling_forecast(SWEEP, measured, "test/ap", at=[1.0], seed=i)["at"][0]
        hits += at["low"] <= TRUTH(1.0) + rng.normal(0, 0.03) <= at["high"]
    assert 70 <= hits <= 92


def test_reach_of_a_target_below_and_above_the_ceiling():
    measured = TRUTH(np.array(SWEEP)) + np.tile([-0.01, 0.01], 3)
    near = scaling_forecast(SWEEP, measured, "test/ap", at=[1.0], target=0.66)
    assert near["reach"]["p_reachable"] > 0.6  # truth: 0.66 at 1.9
    assert 1 < near["reach"]["mid"] < 3 and near["reach"]["low"] < near["reach"]["mid"]
    assert "is reached at data.train_fraction=" in " ".join(summary(near, "data.train_fraction"))
    far = scaling_forecast(SWEEP, measured, "test/ap", target=0.95)
    # the near-logarithmic fits (b near 0.02) climb to 1 eventually: a minority
    assert far["reach"]["p_reachable"] < 0.5 and math.isinf(far["reach"]["mid"])
    assert "out of reach" in " ".join(summary(far, "data.train_fraction"))


def test_the_gain_of_one_more_step_and_of_a_doubling():
    """RET's question: what one more day of logging buys (integer sweeps), and a doubling."""
    days = np.repeat([1, 2, 3, 4], 2)
    est = scaling_forecast(days, TRUTH(days) + np.tile([-0.002, 0.002], 4), "test/auroc")
    gain = est["gain"]
    assert gain["at"] == 4 and 0 < gain["per_unit"]["mid"] < gain["per_doubling"]["mid"]
    assert gain["per_unit"]["low"] <= TRUTH(5.0) - TRUTH(4.0) <= gain["per_unit"]["high"]
    assert "Going from data.logged_days=4 to 5 changes test/auroc by +0.0" in \
        " ".join(summary(est, "data.logged_days"))
    assert "per_unit" not in scaling_forecast(SWEEP, TRUTH(np.array(SWEEP)) + 0.01 * np.tile(
        [-1, 1], 3), "test/ap")["gain"]  # a share has no unit step


def test_too_little_evidence_is_said_not_guessed():
    two = scaling_forecast([0.25, 0.5], [0.6, 0.65], "test/ap", at=[1.0])
    assert two["status"] == "thin" and "at least 3" in two["reason"]
    once = scaling_forecast([0.125, 0.25, 0.5], [0.5, 0.6, 0.65], "test/ap", at=[1.0])
    assert once["status"] == "thin" and "--seeds 2" in once["reason"] and "at" not in once
    outside = scaling_forecast([0.125, 0.25, 0.5], [0.5, 0.6, 0.65], "test/ap", at=[1.0],
                               noise=0.02)
    assert outside["status"] == "forecast" and outside["noise"]["source"] == "validation curves"


@pytest.mark.parametrize("text, message", [
    ("data.train_fraction", "is not KEY=V1,V2"),
    ("data.train_fraction=0.25,0.5", "at least 3 distinct"),
    ("data.train_fraction=0.25,0.5,0.5", "at least 3 distinct"),
    ("data.source=a,b,c", "not a number"),
    ("data.train_fraction=0,0.5,1", "must be positive"),
])
def test_a_bad_sweep_is_refused_with_an_example(text, message):
    with pytest.raises(ConfigError, match=message) as err:
        Sweep.parse(text)
    assert "--sweep data.train_fraction=0.125,0.25,0.5" in str(err.value)


def _job(runs, num, fraction, seed, ap, status="completed"):
    job = runs / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(
        ["recipe=bot", f"data.train_fraction={fraction}", f"seed={seed}"]))
    metrics = {"test": {"average_precision": ap}} if ap is not None else {"test": {}}
    (job / "report.json").write_text(json.dumps({"status": status, "metrics": metrics}))


@pytest.fixture
def swept(tmp_path):
    """An estimate folder with six finished jobs, one failed and one without the metric."""
    runs = tmp_path / "runs"
    for num, (x, ap) in enumerate(zip(SWEEP, TRUTH(np.array(SWEEP)) + np.tile([-.01, .01], 3),
                                      strict=True)):
        _job(runs, num, x, 42 + num % 2, float(ap))
    _job(runs, 6, 1.0, 42, None, status="failed")
    _job(runs, 7, 1.0, 43, None)
    return tmp_path


def test_the_runs_of_a_sweep_are_read_with_their_value_and_why_one_is_unusable(swept):
    rows = collect_runs(swept / "runs", "data.train_fraction", "test/ap")  # ap: an alias
    assert [r["x"] for r in rows] == [*SWEEP, 1.0, 1.0]
    assert [r["seed"] for r in rows[:2]] == ["42", "43"]
    assert rows[6]["status"] == "failed" and rows[7]["value"] is None
    assert "test/ap is not among the run's metrics" in rows[7]["reason"]


def test_refit_without_running_writes_json_and_html(swept, capsys):
    code = main(["estimate", "recipe=bot", "--sweep", "data.train_fraction=0.125,0.25,0.5",
                 "--target", "test/ap=0.7", "--at", "1,2", "--out", str(swept), "--no-run"])
    assert code == 0
    out = capsys.readouterr().out
    assert "test/ap at data.train_fraction=1: " in out and str(swept / ESTIMATE_HTML) in out
    result = json.loads((swept / ESTIMATE_JSON).read_text())
    assert result["forecast"]["status"] == "forecast" and len(result["runs"]) == 8
    assert [p["x"] for p in result["forecast"]["at"]] == [1.0, 2.0]
    page = (swept / ESTIMATE_HTML).read_text()
    assert "<svg" in page and "failed" in page and "test/ap at data.train_fraction=2" in page


def test_fewer_than_three_usable_values_is_a_clear_error(tmp_path, capsys):
    for num, x in enumerate((0.25, 0.5)):
        _job(tmp_path / "runs", num, x, 42, 0.6)
    _job(tmp_path / "runs", 2, 1.0, 42, None, status="failed")
    code = main(["estimate", "recipe=bot", "--sweep", "data.train_fraction=0.25,0.5,1",
                 "--metric", "test/ap", "--out", str(tmp_path), "--no-run"])
    err = capsys.readouterr().err
    assert code == 2 and "2 distinct value(s)" in err and "2: failed" in err


@pytest.mark.parametrize("argv, message", [
    (["estimate", "bot", "--sweep", "data.x=1,2,3", "--metric", "test/ap", "--out", "o"],
     "Expected `recipe=NAME`"),
    (["estimate", "recipe=bot", "--sweep", "data.x=1,2,3", "--metric", "ap", "--out", "o"],
     "name the split and the metric"),
    (["estimate", "recipe=bot", "--sweep", "data.x=1,2,3", "--target", "test/ap=high"],
     "is not a number"),
    (["estimate", "recipe=bot", "--sweep", "data.x=1,2,3", "--metric", "test/ap", "--no-run"],
     "name its folder with `--out`"),
])
def test_bad_arguments_exit_2_with_the_fix(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_overrides_after_double_dash_only_where_a_command_runs_something(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["ls", "--", "trainer.max_epochs=1"])
    assert stop.value.code == 2
    assert "takes no overrides after `--`" in capsys.readouterr().err


@pytest.mark.slow
def test_a_real_sweep_of_bot_forecasts_the_full_data(tmp_path):
    """Three training fractions, two seeds, one short epoch each: a forecast for 1.0."""
    out = tmp_path / "est"
    done = subprocess.run(
        [sys.executable, "-m", "guardrail", "estimate", "recipe=bot",
         "--sweep", "data.train_fraction=0.25,0.5,0.75", "--target", "test/ap=0.9",
         "--at", "1.0", "--out", str(out), "--", "trainer.max_epochs=1",
         "data.n_players=1200", "trainer.enable_progress_bar=false"],
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:] + (out / "sweep.log").read_text()[-3000:]
    result = json.loads((out / ESTIMATE_JSON).read_text())
    assert [r["status"] for r in result["runs"]] == ["completed"] * 6
    assert result["forecast"]["status"] == "forecast"
    assert result["forecast"]["noise"]["source"] == "replicates"
    assert "test/ap at data.train_fraction=1: " in done.stdout
    # no lock in this folder: written from the recipe first, so that each run is checked
    assert (tmp_path / "locks" / "bot.lock.yaml").is_file() and "wrote" in done.stderr
    first = (out / "runs" / "0" / "findings.jsonl").read_text()
    assert '"config.override"' in first and '"config.lock_missing"' not in first
