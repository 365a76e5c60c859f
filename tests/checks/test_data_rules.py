"""Data rules under their thresholds (DataThresholds)."""

import pytest
import torch

from guardrail.checks.data import (
    DataThresholds,
    input_stats,
    leakage_findings,
    repeats_expected,
    unnormalized_findings,
)
from guardrail.errors import ConfigError


def test_max_abs_decides_what_is_unnormalised():
    stats = input_stats(torch.randn(64, 4).clamp(-3, 3) * 30)  # |x| < 100
    assert unnormalized_findings(stats, "x") == []
    [finding] = unnormalized_findings(stats, "x", thresholds=DataThresholds(max_abs=50))
    assert (finding.check, finding.where) == ("data.unnormalized", "x")


def test_scale_ratio_decides_when_a_feature_is_on_another_scale():
    x = torch.randn(256, 5).clamp(-1.5, 1.5)
    x[:, 2] *= 50  # 50x the others' sd, |x| < 100
    stats = input_stats(x)
    assert unnormalized_findings(stats, "x", list("abcde")) == []
    [finding] = unnormalized_findings(stats, "x", list("abcde"),
                                      DataThresholds(scale_ratio=10))
    assert (finding.check, finding.where, finding.severity.value) == (
        "data.unnormalized", "c", "warning")


def test_leakage_min_fraction_and_standard_errors_are_thresholds():
    assert [f.severity.value for f in leakage_findings(3, 1000)] == ["info"]
    assert [f.severity.value for f in leakage_findings(
        3, 1000, thresholds=DataThresholds(leakage_min_fraction=0.001))] == ["error"]
    # 58% shared naturally: 62% of 1000 is 2.6 standard errors above it
    assert [f.severity.value for f in leakage_findings(620, 1000, natural=0.58)] == ["info"]
    assert [f.severity.value for f in leakage_findings(
        620, 1000, natural=0.58, thresholds=DataThresholds(leakage_standard_errors=2))] == \
        ["error"]


def test_repeats_max_share_decides_what_repeats_naturally():
    rows = torch.randint(0, 40, (200, 4)).float()
    assert repeats_expected(rows)
    assert not repeats_expected(rows, DataThresholds(repeats_max_share=0.1))


def test_bad_thresholds_are_one_config_error():
    with pytest.raises(ConfigError, match=r"max_abs=0.0 must be in \(0, inf\).*scale_ratio"):
        DataThresholds(max_abs=0.0, scale_ratio=0.5)
