"""Does the model beat its trivial baselines? (check id ``baseline.not_beaten``).

A model that cannot beat a per-pixel mean or a neighbourhood median has learned nothing
worth shipping, however good its loss curve looks.

Example:
    >>> compare_to_baselines({"rmse": 0.5}, {"mean": {"rmse": 1.0}}, {"rmse": False})
    []
    >>> [f.where for f in compare_to_baselines({"rmse": 2.0}, {"mean": {"rmse": 1.0}},
    ...                                        {"rmse": False})]
    ['test/rmse']

"""

from __future__ import annotations

import math
from collections.abc import Mapping

from guardrail.findings import Finding, Severity

LOWER_IS_BETTER = ("loss", "rmse", "mse", "mae", "error", "ce", "nll")
HIGHER_IS_BETTER = ("auroc", "auc", "average_precision", "ap", "accuracy", "acc", "recall",
                    "precision", "ndcg", "f1", "r2")


def guess_higher_is_better(name: str) -> bool | None:
    """Direction of a metric from its name, or ``None`` when the name does not say.

    Example:
        >>> guess_higher_is_better("rmse_k"), guess_higher_is_better("val_auroc")
        (False, True)

    """
    tokens = name.lower().replace("/", "_").split("_")
    if any(t in LOWER_IS_BETTER for t in tokens):
        return False
    if any(t in HIGHER_IS_BETTER for t in tokens) or "average_precision" in name:
        return True
    return None


def compare_to_baselines(
    metrics: Mapping[str, float],
    baselines: Mapping[str, Mapping[str, float]],
    higher_is_better: Mapping[str, bool | None],
    stage: str = "test",
) -> list[Finding]:
    """Findings for every metric where the model does not beat a baseline.

    Args:
        metrics: The model's metrics by short name (``rmse``), on ``stage``.
        baselines: Baseline name -> metric short name -> value, on the same split.
        higher_is_better: Direction of each metric; ``None`` means unknown (an ``info``).
        stage: The split the numbers come from; used in ``where``.

    Returns:
        An ``error`` ``baseline.not_beaten`` per (baseline, metric) the model does not beat,
        and ``info`` findings for comparisons that could not be made.

    """
    findings: list[Finding] = []
    for baseline, values in baselines.items():
        for name, base in values.items():
            where = f"{stage}/{name}"
            model = metrics.get(name)
            direction = higher_is_better.get(name)
            if model is None or direction is None or not math.isfinite(base):
                findings.append(Finding(
                    "baseline.not_compared", Severity.INFO,
                    f"The {baseline} baseline's {name} could not be compared with the model "
                    f"({'metric not logged' if model is None else 'direction unknown'}).",
                    where=where, evidence={"baseline": baseline, "baseline_value": base},
                    hint=f"Log `{where}` from the module, or give the metric higher_is_better.",
                ))
                continue
            beaten = model > base if direction else model < base
            if not beaten:
                findings.append(Finding(
                    "baseline.not_beaten", Severity.ERROR,
                    f"The model's {name} {model:.4g} does not beat the {baseline} baseline's "
                    f"{base:.4g} ({'higher' if direction else 'lower'} is better).",
                    where=where,
                    evidence={"model": model, "baseline": baseline, "baseline_value": base},
                    hint="The model has learned less than a trivial rule: check the data "
                         "pipeline and split first, then capacity, learning rate and epochs.",
                ))
    return findings
