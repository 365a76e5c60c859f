import math

from guardrail.checks.baseline import compare_to_baselines, guess_higher_is_better


def test_fires_when_lower_is_better_metric_is_worse():
    findings = compare_to_baselines({"rmse": 1.5}, {"mean": {"rmse": 1.0}}, {"rmse": False})
    assert [(f.check, f.severity.value, f.where) for f in findings] == [
        ("baseline.not_beaten", "error", "test/rmse")]
    assert findings[0].evidence["baseline_value"] == 1.0


def test_silent_when_model_beats_every_baseline():
    findings = compare_to_baselines(
        {"rmse": 0.4, "auroc": 0.9},
        {"mean": {"rmse": 1.0}, "rule": {"auroc": 0.7}},
        {"rmse": False, "auroc": True})
    assert findings == []


def test_higher_is_better_metric_that_is_worse_fires():
    findings = compare_to_baselines({"auroc": 0.6}, {"rule": {"auroc": 0.7}}, {"auroc": True})
    assert [f.check for f in findings] == ["baseline.not_beaten"]


def test_nan_metric_never_beats_a_baseline():
    findings = compare_to_baselines({"rmse": math.nan}, {"mean": {"rmse": 1.0}}, {"rmse": False})
    assert [f.check for f in findings] == ["baseline.not_beaten"]


def test_unknown_direction_or_missing_metric_is_info_only():
    findings = compare_to_baselines({"score": 1.0}, {"b": {"score": 2.0, "rmse": 1.0}},
                                    {"score": None, "rmse": False})
    assert {(f.check, f.severity.value) for f in findings} == {("baseline.not_compared", "info")}
    assert len(findings) == 2


def test_direction_guessed_from_names():
    assert guess_higher_is_better("rmse_log") is False
    assert guess_higher_is_better("average_precision") is True
    assert guess_higher_is_better("recall_at_10") is True
    assert guess_higher_is_better("widgets") is None
