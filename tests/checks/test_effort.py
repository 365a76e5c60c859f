"""Learning-curve forecasts (guardrail.checks.effort): pure, on curves of known shape."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from guardrail.checks.effort import (
    FAMILIES,
    EffortThresholds,
    effort_findings,
    forecast_curve,
    metric_bounds,
)
from guardrail.errors import ConfigError

RNG = np.random.default_rng(0)


def _checks(fc):
    return [f.check for f in effort_findings(fc)]


@pytest.mark.parametrize("family,truth", [
    ("pow3", lambda x: 0.8 - 0.5 * x ** -0.7),
    ("exp3", lambda x: 0.75 - 0.4 * np.exp(-0.15 * x)),
    ("mmf", lambda x: 0.9 - 0.6 / (1 + (0.2 * x) ** 1.3)),
])
def test_the_interval_covers_a_known_curve_at_the_planned_end(family, truth):
    x = np.arange(1, 21, dtype=float)
    y = truth(x) + np.random.default_rng(1).normal(0, 0.004, len(x))
    fc = forecast_curve(x, y, planned=60, metric="val/accuracy")
    assert fc.status == "forecast" and fc.higher_is_better
    assert fc.final[0.1] <= truth(60.0) <= fc.final[0.9], (family, fc.final)
    assert fc.final[0.1] <= fc.final[0.5] <= fc.final[0.9]
    assert abs(sum(m["weight"] for m in fc.members) - 1) < 1e-3


def test_a_falling_loss_is_flipped_and_kept_above_zero():
    x = np.arange(1, 16, dtype=float)
    loss = 0.2 + 1.5 * x ** -0.8 + RNG.normal(0, 0.005, len(x))
    fc = forecast_curve(x, loss, planned=40, metric="val/loss")
    assert fc.higher_is_better is False
    assert fc.final[0.1] <= 0.2 + 1.5 * 40 ** -0.8 <= fc.final[0.9]
    assert min(fc.band["low"]) >= 0.0


def test_a_unit_metric_is_never_forecast_above_one():
    x = np.arange(1, 11, dtype=float)
    fc = forecast_curve(x, 0.5 + 0.05 * x, planned=200, metric="val/average_precision")
    assert max(fc.band["high"]) <= 1.0 and fc.final[0.9] <= 1.0


def test_too_few_points_is_thin_evidence():
    fc = forecast_curve([1, 2, 3], [0.5, 0.6, 0.65], planned=20, metric="val/ap")
    assert fc.status == "thin" and "3 validations" in fc.reason
    assert _checks(fc) == ["effort.thin_evidence"]


def test_noise_as_large_as_the_trend_is_thin_evidence():
    y = 0.5 + np.random.default_rng(3).normal(0, 0.05, 12)
    fc = forecast_curve(np.arange(1, 13), y, planned=30, metric="val/ap")
    assert fc.status == "thin" and "noisy" in fc.reason
    assert effort_findings(fc)[0].where == "val/ap"


def test_non_finite_values_are_dropped():
    y = [0.3, math.nan, 0.5, 0.55, math.inf, 0.6, 0.62, 0.63]
    fc = forecast_curve(range(1, 9), y, planned=20, metric="val/ap")
    assert fc.status == "forecast" and len(fc.values) == 6


def test_futile_pair_unreachable_target_fires_reachable_stays_silent():
    x = np.arange(1, 13, dtype=float)
    ap = 0.6 - 0.3 / x + RNG.normal(0, 0.003, len(x))
    unreachable = forecast_curve(x, ap, planned=40, metric="val/ap", target=0.95)
    futile = [f for f in effort_findings(unreachable) if f.check == "effort.futile"]
    assert len(futile) == 1 and futile[0].where == "val/ap" and futile[0].severity == "warning"
    assert unreachable.p_reach < 0.05
    reachable = forecast_curve(x, ap, planned=40, metric="val/ap", target=0.58)
    assert "effort.futile" not in _checks(reachable)
    assert reachable.p_reach > 0.5 and reachable.reach[0.5] <= 40
    assert "will reach 0.58 by epoch" in reachable.sentence()


def test_futile_waits_for_enough_evidence():
    x = np.arange(1, 6, dtype=float)  # 5 validations: below futile_min_points
    fc = forecast_curve(x, 0.6 - 0.3 / x, planned=40, metric="val/ap", target=0.95)
    assert fc.p_reach < 0.05 and "effort.futile" not in _checks(fc)
    early = forecast_curve(np.arange(1, 9.0), 0.6 - 0.3 / np.arange(1, 9.0), planned=100,
                           metric="val/ap", target=0.95)  # 8 of 100 epochs: too early
    assert "effort.futile" not in _checks(early)


def test_a_flat_curve_plateaus_and_the_forecast_is_json():
    x = np.arange(1, 21, dtype=float)
    y = 0.67 - 0.2 * np.exp(-0.6 * x) + RNG.normal(0, 0.002, len(x))
    fc = forecast_curve(x, y, planned=40, metric="val/ap")
    assert re.match(r"val/ap plateaus near 0.67\d? \(80% interval 0.6\d*-0.\d+\)\.$",
                    fc.sentence()), fc.sentence()
    data = json.loads(json.dumps(fc.to_dict()))
    assert data["final"]["0.5"] == pytest.approx(fc.final[0.5])
    assert {m["name"] for m in data["members"]} <= {f.name for f in FAMILIES}


def test_warm_start_gives_the_same_forecast():
    x = np.arange(1, 31, dtype=float)
    y = 0.8 - 0.5 * x ** -0.7 + RNG.normal(0, 0.004, len(x))
    cold = forecast_curve(x, y, planned=60, metric="val/ap")
    warm = forecast_curve(x, y, planned=60, metric="val/ap",
                          warm={m["name"]: m["params"] for m in cold.members})
    assert warm.final[0.5] == pytest.approx(cold.final[0.5], abs=0.01)


def test_metric_bounds_and_thresholds_validation():
    assert metric_bounds("val/auroc") == (0.0, 1.0)
    assert metric_bounds("val/rmse_log_eur") == (0.0, math.inf)
    with pytest.raises(ConfigError, match=r"futile_probability=0.7 must be in \(0, 0.5\]"):
        EffortThresholds(futile_probability=0.7)
    assert EffortThresholds.coerce({"min_points": 5.0}).min_points == 5
