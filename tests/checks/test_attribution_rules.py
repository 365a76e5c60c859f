"""Attribution rules under their thresholds, the time budget's plan, and task inference."""

import pytest
import torch

from guardrail.attribution.budget import FLOORS, Costs, estimate, plan
from guardrail.attribution.task import infer_task, model_error
from guardrail.callbacks import AttributionReport
from guardrail.checks.attribution import AttributionThresholds, attribution_findings
from guardrail.errors import ConfigError

SETTINGS = {"samples": 64, "n_steps": 32, "permutations": 3, "randomisations": 2,
            "occlusion_samples": 4}
GRID = Costs(forward_row=2e-4, backward_row=6e-4, features=1, windows=64, loss_s=0.02)


def checks(result, **fields):
    return [(f.check, f.where) for f in attribution_findings(
        result, AttributionThresholds(**fields))]


def test_min_agreement_decides_whether_methods_disagree():
    result = {"agreement": {"features": 0.3, "features_compared": 10}}
    assert checks(result) == []
    assert checks(result, min_agreement=0.5) == [("attribution.methods_disagree", "features")]


def test_min_features_leaves_a_few_features_unjudged():
    result = {"agreement": {"features": -0.5, "features_compared": 4}}
    assert checks(result) == []
    assert checks(result, min_features=3) == [("attribution.methods_disagree", "features")]


def test_support_percentile_is_a_threshold():
    result = {"local": [{"sample": 0, "unseen_values": 0, "percentile": 97.0}]}
    assert checks(result) == []
    assert checks(result, max_support_percentile=95) == [("attribution.low_support", None)]


def test_loss_ratio_threshold_decides_the_sanity_warning():
    result = {"sanity": {"method": "gradients", "similarity_to_randomised": 0.1,
                         "loss_ratio": 0.8}}
    assert checks(result) == []
    assert checks(result, max_loss_ratio=0.7) == [("attribution.sanity_failed", "gradients")]


def test_a_lowered_step_count_is_named_in_the_incomplete_hint():
    result = {"methods": {"integrated_gradients": {"completeness_error": 0.2}},
              "budget": {"reduced": {"n_steps": {"from": 32, "to": 16}}}}
    [finding] = attribution_findings(result)
    assert finding.check == "attribution.incomplete" and "lowered from 32" in finding.hint


def test_thresholds_from_a_mapping_and_bad_values_are_config_errors():
    report = AttributionReport(thresholds={"min_agreement": 0.4})
    assert report.thresholds.min_agreement == 0.4
    with pytest.raises(ConfigError, match="no threshold 'agreement'"):
        AttributionReport(thresholds={"agreement": 0.4})
    with pytest.raises(ConfigError, match=r"min_features=2 must be in \[3, inf\)"):
        AttributionThresholds(min_features=2)


def test_a_short_run_lowers_the_work_to_its_floors_and_a_long_one_keeps_it():
    short, reduced = plan(SETTINGS, GRID, target_s=0.01)
    assert short == FLOORS and set(reduced) == set(SETTINGS)
    assert reduced["n_steps"] == {"from": 32, "to": 16}
    assert plan(SETTINGS, GRID, target_s=1e3) == (SETTINGS, {})
    middle, _ = plan(SETTINGS, GRID, target_s=2.0)
    assert estimate(middle, GRID) <= 2.0 < estimate(SETTINGS, GRID)


def test_settings_below_the_floor_are_kept():
    mine = {**SETTINGS, "n_steps": 8, "randomisations": 0}
    settings, reduced = plan(mine, GRID, target_s=0.01)
    assert settings["n_steps"] == 8 and settings["randomisations"] == 0
    assert "n_steps" not in reduced and "randomisations" not in reduced


def test_the_task_is_read_from_outputs_and_targets():
    assert infer_task(torch.randn(8, 4), torch.randint(4, (8,))) == "multiclass"
    assert infer_task(torch.randn(8, 1), torch.tensor([0.0, 1.0] * 4)) == "binary"
    assert infer_task(torch.randn(8), torch.randn(8)) == "regression"
    assert infer_task(torch.randn(8, 1, 4, 4), None) is None


def test_a_plain_regression_module_gets_a_squared_error():
    net = torch.nn.Linear(3, 1)
    x = torch.randn(50, 3)
    error = model_error(net, [x], net(x).detach().squeeze(1), "regression")
    assert error is not None and error(net) < 1e-10


def test_an_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match=r"task='classification'.*multiclass"):
        AttributionReport(task="classification")
    with pytest.raises(ConfigError, match=r"budget_share=0"):
        AttributionReport(budget_share=0)
