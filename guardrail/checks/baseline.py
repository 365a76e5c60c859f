"""Baseline checks: does the model beat its baselines, and a simpler model clearly.

A datamodule scores baselines on the held-out split (``baselines()``: name -> metric short
name -> value), and may give each a *role* (``baseline_roles()``: name -> role; a baseline
without one is ``trivial``):

- ``trivial``: a rule with no learning in it (the training mean, the prior, a hand-written
  rule set). Not beating it is ``baseline.not_beaten`` (error): the model has learned less
  than a rule, however good its loss curve looks.
- ``reference``: a simpler *model* the team could ship instead (logistic or ridge
  regression). Not beating it by ``reference_margin`` (relative) is
  ``baseline.simpler_model_suffices`` (warning): the ML Test Score's "a simpler model is not
  better" test. The complex model has to earn its cost in serving, debugging and explaining.

An exact tie (to float32 precision) is not a loss: a coarse metric (recall at 1% false
positives over 14 positives takes only the values k/14) often cannot tell two models apart.
It is ``baseline.not_separable`` (info), and the verdict on that baseline rests on the
metrics that do separate them. Only when no metric separates the model from a baseline
(a model that predicts as the baseline does ties it on every metric) do the ties count as
not beating it. ``baseline.compared`` (info) says what was compared and beaten, so a report
can tell a run that beat its baselines from one that compared nothing.

Example:
    >>> [f.check for f in compare_to_baselines({"rmse": 0.5}, {"mean": {"rmse": 1.0}},
    ...                                        {"rmse": False})]
    ['baseline.compared']
    >>> [(f.check, f.where) for f in compare_to_baselines(
    ...     {"rmse": 2.0}, {"mean": {"rmse": 1.0}}, {"rmse": False})][0]
    ('baseline.not_beaten', 'test/rmse')

"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from guardrail.errors import ConfigError
from guardrail.findings import Finding, Severity
from guardrail.thresholds import Thresholds, limit

LOWER_IS_BETTER = ("loss", "rmse", "mse", "mae", "error", "ce", "nll")
HIGHER_IS_BETTER = ("auroc", "auc", "average_precision", "ap", "accuracy", "acc", "recall",
                    "precision", "ndcg", "f1", "r2")
TRIVIAL, REFERENCE = "trivial", "reference"
ROLES: tuple[str, ...] = (TRIVIAL, REFERENCE)
# Two values this close are one value: metrics are computed in float32 (torchmetrics).
TIE_RTOL, TIE_ATOL = 1e-6, 1e-12


@dataclasses.dataclass(frozen=True)
class BaselineThresholds(Thresholds):
    """How much better than a reference model the model must be.

    Example:
        >>> BaselineThresholds(reference_margin=0.1).reference_margin
        0.1

    """

    reference_margin: float = limit(
        0.05, "baseline.simpler_model_suffices", "relative improvement over a reference model "
        "(a simpler model the team could ship) that earns the model its extra complexity",
        low=0, high=1, shown="5%")


DEFAULTS = BaselineThresholds()


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


def datamodule_baselines(datamodule: Any) -> dict[str, dict[str, float]]:
    """A datamodule's ``baselines()`` (``{}`` when it has none).

    Example:
        >>> class Data:
        ...     def baselines(self): return {"mean": {"rmse": 1.0}}
        >>> datamodule_baselines(Data()), datamodule_baselines(None)
        ({'mean': {'rmse': 1.0}}, {})

    """
    method = getattr(datamodule, "baselines", None)
    return {name: dict(values) for name, values in method().items()} if callable(method) else {}


def datamodule_roles(datamodule: Any) -> dict[str, str]:
    """A datamodule's ``baseline_roles()``, validated (``{}``: every baseline is trivial).

    Raises:
        ConfigError: A role is not one of ``trivial``, ``reference``.

    Example:
        >>> class Data:
        ...     def baseline_roles(self): return {"ridge": "reference"}
        >>> datamodule_roles(Data())
        {'ridge': 'reference'}
        >>> class Bad:
        ...     def baseline_roles(self): return {"ridge": "simple"}
        >>> datamodule_roles(Bad())  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        guardrail.errors.ConfigError: Bad.baseline_roles() gives baseline 'ridge' the role ...

    """
    method = getattr(datamodule, "baseline_roles", None)
    roles = {str(k): v for k, v in method().items()} if callable(method) else {}
    bad = [f"baseline {name!r} the role {role!r}" for name, role in roles.items()
           if role not in ROLES]
    if bad:
        raise ConfigError(
            f"{type(datamodule).__name__}.baseline_roles() gives {', '.join(bad)}; a role is one "
            f"of {', '.join(ROLES)} (trivial: a rule the model must beat; reference: a simpler "
            "model it should beat). Return one of them for each baseline, or leave a baseline "
            "out to make it trivial.")
    return roles


def _fmt(value: float) -> str:
    """``0.1461``, ``13,197``: four significant digits, thousands in full."""
    return f"{value:,.0f}" if math.isfinite(value) and abs(value) >= 1000 else f"{value:.4g}"


def _outcome(model: float, base: float, higher: bool, margin: float) -> str:
    """``beaten``, ``tied`` or ``lost``: the model against one baseline value."""
    if math.isclose(model, base, rel_tol=TIE_RTOL, abs_tol=TIE_ATOL):
        return "tied"
    gain = (model - base) if higher else (base - model)  # NaN never beats anything
    return "beaten" if gain > margin * abs(base) else "lost"


def compare_to_baselines(
    metrics: Mapping[str, float],
    baselines: Mapping[str, Mapping[str, float]],
    higher_is_better: Mapping[str, bool | None],
    stage: str = "test",
    roles: Mapping[str, str] | None = None,
    thresholds: BaselineThresholds = DEFAULTS,
) -> list[Finding]:
    """Findings of comparing the model's metrics with each baseline's.

    Args:
        metrics: The model's metrics by short name (``rmse``), on ``stage``.
        baselines: Baseline name -> metric short name -> value, on the same split.
        higher_is_better: Direction of each metric; ``None`` means unknown (an ``info``).
        stage: The split the numbers come from; used in ``where``.
        roles: Baseline name -> ``trivial`` or ``reference``; missing names are trivial.
        thresholds: ``reference_margin``, what beating a reference model takes.

    Returns:
        Per (baseline, metric): ``baseline.not_beaten`` (error, trivial baseline),
        ``baseline.simpler_model_suffices`` (warning, reference model),
        ``baseline.not_separable`` (info, an exact tie the verdict does not rest on) or
        ``baseline.not_compared`` (info); then one ``baseline.compared`` (info) summing up,
        when anything was compared.

    Example:
        >>> found = compare_to_baselines(
        ...     {"ap": 0.30, "recall": 0.0}, {"logistic": {"ap": 0.29, "recall": 0.0}},
        ...     {"ap": True, "recall": True}, roles={"logistic": "reference"})
        >>> [(f.check, f.where) for f in found]  # doctest: +NORMALIZE_WHITESPACE
        [('baseline.simpler_model_suffices', 'test/ap'),
         ('baseline.not_separable', 'test/recall'), ('baseline.compared', 'test')]

    """
    roles = roles or {}
    findings: list[Finding] = []
    verdicts: dict[str, bool] = {}  # baseline -> beaten on what separates them
    for baseline, values in baselines.items():
        role = roles.get(baseline, TRIVIAL)
        margin = thresholds.reference_margin if role == REFERENCE else 0.0
        outcomes: dict[str, tuple[str, float, float, bool]] = {}
        for name, base in values.items():
            model, direction = metrics.get(name), higher_is_better.get(name)
            if model is None or direction is None or not math.isfinite(base):
                findings.append(_not_compared(stage, baseline, name, base, model))
            else:
                outcomes[name] = (_outcome(model, base, direction, margin), model, base, direction)
        if not outcomes:
            continue
        separated = any(o != "tied" for o, *_ in outcomes.values())
        for name, (outcome, model, base, direction) in outcomes.items():
            if outcome == "lost" or (outcome == "tied" and not separated):
                findings.append(_not_beaten(stage, baseline, role, name, model, base, direction,
                                            margin, tied=outcome == "tied"))
            elif outcome == "tied":
                findings.append(_not_separable(stage, baseline, role, name, model, base))
        verdicts[baseline] = separated and all(o != "lost" for o, *_ in outcomes.values())
    if verdicts:
        findings.append(_compared(stage, verdicts, roles))
    return findings


def _not_compared(stage: str, baseline: str, name: str, base: float,
                  model: float | None) -> Finding:
    where = f"{stage}/{name}"
    why = ("metric not logged" if model is None else "baseline value not finite"
           if not math.isfinite(base) else "direction unknown")
    return Finding(
        "baseline.not_compared", Severity.INFO,
        f"The {baseline} baseline's {name} could not be compared with the model ({why}).",
        where=where, evidence={"baseline": baseline, "baseline_value": base},
        hint=f"Log `{where}` from the module, or give the metric higher_is_better.")


def _not_beaten(stage: str, baseline: str, role: str, name: str, model: float, base: float,
                higher: bool, margin: float, tied: bool) -> Finding:
    better = "higher" if higher else "lower"
    how = (f"equals the {baseline} baseline's {_fmt(base)} on every metric compared" if tied
           else f"does not beat the {baseline} baseline's {_fmt(base)} ({better} is better)")
    evidence: dict[str, Any] = {"model": model, "baseline": baseline, "baseline_value": base,
                                "role": role}
    if role == REFERENCE:
        if not tied:
            how = (f"is not {margin:.0%} better than the {baseline} reference model's "
                   f"{_fmt(base)} ({better} is better)")
        evidence["margin"] = margin
        return Finding(
            "baseline.simpler_model_suffices", Severity.WARNING,
            f"The model's {name} {_fmt(model)} {how}: the simpler model is as good.",
            where=f"{stage}/{name}", evidence=evidence,
            hint=f"Ship the simpler model ({baseline}), or find signal it cannot use (more "
                 "data, features, structure the model exploits) before paying for the more "
                 "complex one.")
    return Finding(
        "baseline.not_beaten", Severity.ERROR, f"The model's {name} {_fmt(model)} {how}.",
        where=f"{stage}/{name}", evidence=evidence,
        hint="The model has learned less than a trivial rule: check the data pipeline and "
             "split first, then capacity, learning rate and epochs.")


def _not_separable(stage: str, baseline: str, role: str, name: str, model: float,
                   base: float) -> Finding:
    return Finding(
        "baseline.not_separable", Severity.INFO,
        f"The model's {name} equals the {baseline} baseline's ({_fmt(model)}): this metric "
        "cannot separate them on this split (a metric over few positives takes few values); "
        "the comparison rests on the other metrics.",
        where=f"{stage}/{name}",
        evidence={"model": model, "baseline": baseline, "baseline_value": base, "role": role},
        hint="Judge the two on a finer metric, or on a larger held-out split.")


def _compared(stage: str, verdicts: Mapping[str, bool], roles: Mapping[str, str]) -> Finding:
    def named(beaten: bool, role: str | None = None) -> str:
        return ", ".join(f"{b} ({roles.get(b, TRIVIAL)})" for b, v in verdicts.items()
                         if v is beaten and role in (None, roles.get(b, TRIVIAL)))

    parts = [f"{verb} {names}" for verb, names in (
        ("beats", named(True)), ("does not beat", named(False, TRIVIAL)),
        ("is not clearly better than", named(False, REFERENCE))) if names]
    return Finding(
        "baseline.compared", Severity.INFO,
        f"Compared with {len(verdicts)} baseline(s) on {stage}: the model {'; '.join(parts)}.",
        where=stage,
        evidence={"beaten": ", ".join(b for b, v in verdicts.items() if v),
                  "not_beaten": ", ".join(b for b, v in verdicts.items() if not v),
                  "compared": len(verdicts), "stage": stage},
        hint="Nothing to do where every baseline is beaten.")
