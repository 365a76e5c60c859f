import math

import pytest

from guardrail.checks.baseline import (
    BaselineThresholds,
    compare_to_baselines,
    datamodule_baselines,
    datamodule_roles,
    guess_higher_is_better,
)
from guardrail.errors import ConfigError


def problems(findings):
    """(check, severity, where) of the findings that are not info."""
    return [(f.check, f.severity.value, f.where) for f in findings if f.severity.value != "info"]


def checks(findings):
    return [f.check for f in findings]


# --------------------------------------------------------------------- trivial: not_beaten
def test_fires_when_lower_is_better_metric_is_worse():
    findings = compare_to_baselines({"rmse": 1.5}, {"mean": {"rmse": 1.0}}, {"rmse": False})
    assert problems(findings) == [("baseline.not_beaten", "error", "test/rmse")]
    assert findings[0].evidence["baseline_value"] == 1.0
    assert findings[0].evidence["role"] == "trivial"


def test_silent_when_model_beats_every_baseline():
    findings = compare_to_baselines(
        {"rmse": 0.4, "auroc": 0.9},
        {"mean": {"rmse": 1.0}, "rule": {"auroc": 0.7}},
        {"rmse": False, "auroc": True})
    assert checks(findings) == ["baseline.compared"]
    assert findings[0].evidence["beaten"] == "mean, rule" and findings[0].where == "test"


def test_higher_is_better_metric_that_is_worse_fires():
    findings = compare_to_baselines({"auroc": 0.6}, {"rule": {"auroc": 0.7}}, {"auroc": True})
    assert problems(findings) == [("baseline.not_beaten", "error", "test/auroc")]


def test_nan_metric_never_beats_a_baseline():
    findings = compare_to_baselines({"rmse": math.nan}, {"mean": {"rmse": 1.0}}, {"rmse": False})
    assert checks(findings) == ["baseline.not_beaten", "baseline.compared"]


def test_unknown_direction_or_missing_metric_is_info_only():
    findings = compare_to_baselines({"score": 1.0}, {"b": {"score": 2.0, "rmse": 1.0}},
                                    {"score": None, "rmse": False})
    assert {(f.check, f.severity.value) for f in findings} == {("baseline.not_compared", "info")}
    assert len(findings) == 2  # nothing compared: no baseline.compared either


def test_trivial_baseline_needs_no_margin():
    findings = compare_to_baselines({"ap": 0.101}, {"prior": {"ap": 0.1}}, {"ap": True},
                                    thresholds=BaselineThresholds(reference_margin=0.5))
    assert problems(findings) == []


# ------------------------------------------------------------ reference: simpler model
def test_reference_model_as_good_fires_a_warning_not_an_error():
    findings = compare_to_baselines({"ap": 0.0176}, {"logistic": {"ap": 0.0175}}, {"ap": True},
                                    roles={"logistic": "reference"})
    assert problems(findings) == [("baseline.simpler_model_suffices", "warning", "test/ap")]
    found = findings[0]
    assert "logistic" in found.message and "simpler model is as good" in found.message
    assert found.hint.startswith("Ship the simpler model (logistic), or find signal it cannot")
    assert found.evidence["margin"] == 0.05


def test_reference_model_clearly_beaten_is_silent():
    findings = compare_to_baselines({"rmse": 0.10}, {"ridge": {"rmse": 0.15}}, {"rmse": False},
                                    roles={"ridge": "reference"})
    assert problems(findings) == []
    assert "ridge (reference)" in findings[-1].message


def test_reference_margin_comes_from_the_thresholds():
    args = ({"rmse": 0.14}, {"ridge": {"rmse": 0.15}}, {"rmse": False})
    tight = compare_to_baselines(*args, roles={"ridge": "reference"},
                                 thresholds=BaselineThresholds(reference_margin=0.1))
    loose = compare_to_baselines(*args, roles={"ridge": "reference"},
                                 thresholds=BaselineThresholds(reference_margin=0.0))
    assert problems(tight) == [("baseline.simpler_model_suffices", "warning", "test/rmse")]
    assert problems(loose) == []
    with pytest.raises(ConfigError, match=r"reference_margin=2\.0 must be in \[0, 1\]"):
        BaselineThresholds(reference_margin=2.0)


# ------------------------------------------------------------------- ties: not_separable
def test_a_tie_the_metric_cannot_separate_is_info_not_a_loss():
    # recall at 1% FPR over 14 positives takes the values k/14: both models score 0
    findings = compare_to_baselines(
        {"average_precision": 0.041, "recall_at_1pct_fpr": 0.0},
        {"rule_set": {"average_precision": 0.016, "recall_at_1pct_fpr": 0.0}},
        {"average_precision": True, "recall_at_1pct_fpr": True})
    assert problems(findings) == []
    tie = findings[0]
    assert (tie.check, tie.severity.value, tie.where) == (
        "baseline.not_separable", "info", "test/recall_at_1pct_fpr")
    assert "cannot separate" in tie.message


def test_float32_rounding_is_a_tie():
    findings = compare_to_baselines({"ap": 0.5, "recall": 1 / 14 + 1e-9},
                                    {"rule": {"ap": 0.4, "recall": 1 / 14}},
                                    {"ap": True, "recall": True})
    assert checks(findings) == ["baseline.not_separable", "baseline.compared"]


def test_a_tie_on_every_metric_is_not_beaten():
    # a model that predicts as the prior does (a constant) ties it everywhere: a failure
    findings = compare_to_baselines({"ap": 0.01, "recall": 0.0},
                                    {"prior": {"ap": 0.01, "recall": 0.0}},
                                    {"ap": True, "recall": True})
    assert problems(findings) == [("baseline.not_beaten", "error", "test/ap"),
                                  ("baseline.not_beaten", "error", "test/recall")]
    assert "equals" in findings[0].message


def test_a_tie_next_to_a_loss_to_a_reference_is_not_separable():
    findings = compare_to_baselines(
        {"ap": 0.0176, "recall": 0.0}, {"logistic": {"ap": 0.0175, "recall": 0.0}},
        {"ap": True, "recall": True}, roles={"logistic": "reference"})
    assert [(f.check, f.where) for f in findings] == [
        ("baseline.simpler_model_suffices", "test/ap"),
        ("baseline.not_separable", "test/recall"), ("baseline.compared", "test")]


# ------------------------------------------------------------------ the datamodule side
class Data:
    def baselines(self):
        return {"mean": {"rmse": 1.0}, "ridge": {"rmse": 0.5}}

    def baseline_roles(self):
        return {"ridge": "reference"}


def test_roles_default_to_trivial_and_bad_roles_name_the_options():
    assert datamodule_baselines(Data()) == {"mean": {"rmse": 1.0}, "ridge": {"rmse": 0.5}}
    assert datamodule_roles(Data()) == {"ridge": "reference"}
    assert datamodule_roles(object()) == {} and datamodule_baselines(None) == {}

    class Bad(Data):
        def baseline_roles(self):
            return {"ridge": "simpler"}

    with pytest.raises(ConfigError, match=r"Bad\.baseline_roles\(\) gives baseline 'ridge' the "
                                          r"role 'simpler'; a role is one of trivial, reference"):
        datamodule_roles(Bad())


def test_direction_guessed_from_names():
    assert guess_higher_is_better("rmse_log") is False
    assert guess_higher_is_better("average_precision") is True
    assert guess_higher_is_better("recall_at_10") is True
    assert guess_higher_is_better("widgets") is None
