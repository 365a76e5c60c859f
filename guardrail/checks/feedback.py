"""Feedback-loop rules: a deployed model that shapes the data it is later trained and judged on.

Check ids ``feedback.anchoring``, ``feedback.homogenization`` and ``feedback.self_evaluation``.
Everything here is pure: arrays and per-round numbers in, estimates and Findings out.
:class:`guardrail.feedback.FeedbackMonitor` feeds them from a prediction log and later labels;
``python -m guardrail.loop`` shows each of them happening on the EST and REC recipes.

**Anchoring** (a regression model's valuations pulled into the labels, Perdomo et al. 2020's
performative prediction): the later label ``y`` of a served prediction ``p`` is modelled as
``y = (1 - A) * m + A * p`` where ``m`` is what the label would have been without the model.
``A`` is not identifiable from served records alone (a calibrated ``p`` predicts ``y`` with
slope 1 whatever ``A`` is); two designs identify it:

- *holdout* (:func:`estimate_anchoring_holdout`): a random slice of records was not served
  (priced without the model), so its labels are ``m``. Served residuals ``y - p`` shrink by
  ``1 - A``: ``A = 1 - sqrt(MS_served / MS_holdout)`` (mean squares without each group's
  largest 10 %: real errors are heavy-tailed), with a bootstrap interval.
- *shadow* (:func:`estimate_anchoring_shadow`): a second model, trained like the served one
  but never shown to anyone (another seed), predicted the same records. What separates the
  two models is training noise, which the world cannot follow unless it follows the served
  model: regressing ``y`` on both, ``A = b_served - b_shadow``, with a heteroskedasticity-robust
  interval.

It warns when the whole interval lies above ``anchoring_warning``.

**Homogenization** (Chaney et al. 2018; Jiang et al. 2019): per round of retraining, spread
indicators in ``[0, 1]`` where lower means more concentrated -- catalogue coverage of the
recommendations and of new interactions, ``1 - Gini`` of item exposure and of the training
data's item counts, the diversity of users' top-k lists (:func:`exposure_round`). An
indicator *concentrates* when it falls in at least ``monotone_share`` of the round-to-round
steps and its relative drop from the first round to the last exceeds the drop under random
exposure (a reference series; none: no drop) by ``min_drop``. The rule warns when at least
``min_signals`` indicators concentrate.

**Self-evaluation** (Sculley et al. 2015's hidden feedback loops): the same metric measured
each round on data the model selected or influenced and on data it did not touch. It warns when
the influenced metric is better than the untouched one in every round and by ``min_gap``
(relative) on average, or improves by ``min_gain`` over the rounds while the untouched one
improves by less than half of that and the influenced one stays ``min_gap`` ahead from the
middle round on: the model grading its own homework. A round's metric on a few hundred
records is noisy, so no single round or single first-to-last change decides: at A = 0 of the
EST loop, where both slices measure the same thing, a round's RMSE on ~130 held-out sales was
up to 35 % off the served sales'.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> m = rng.normal(12, 0.4, 2000)                 # market values (log)
    >>> p = m + rng.normal(0, 0.15, 2000)             # the model's valuations
    >>> served = rng.random(2000) < 0.8
    >>> y = np.where(served, 0.6 * m + 0.4 * p, m)    # anchoring A = 0.4 on served records
    >>> est = estimate_anchoring_holdout(y, p, served)
    >>> round(est.estimate, 1), est.low > 0.1
    (0.4, True)
    >>> [f.check for f in anchoring_findings(est)]
    ['feedback.anchoring']
    >>> anchoring_findings(estimate_anchoring_holdout(np.where(served, m, m), p, served))
    []

"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from guardrail.errors import DataError
from guardrail.findings import Finding, Severity
from guardrail.thresholds import Thresholds, limit

__all__ = ["SPREAD_INDICATORS", "AnchoringEstimate", "FeedbackThresholds", "anchoring_findings",
           "estimate_anchoring_holdout", "estimate_anchoring_shadow", "exposure_round", "gini",
           "homogenization_findings", "self_evaluation_findings"]

# Spread indicators of a round of recommendations, each in [0, 1]; lower = more concentrated.
SPREAD_INDICATORS = {
    "coverage": "catalogue coverage of the recommendations",
    "interaction_coverage": "catalogue coverage of the new interactions",
    "exposure_equality": "1 - Gini of item exposure in the recommendations",
    "training_equality": "1 - Gini of the training data's item counts (popularity bias)",
    "diversity": "mean Jaccard distance between users' top-k lists",
}


@dataclasses.dataclass(frozen=True)
class FeedbackThresholds(Thresholds):
    """What the ``feedback.*`` rules compare against.

    Example:
        >>> FeedbackThresholds(anchoring_warning=0.2).anchoring_warning
        0.2
        >>> FeedbackThresholds(min_signals=0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        guardrail.errors.ConfigError: FeedbackThresholds: min_signals=0 must be in [1, 5]...

    """

    # Tuned on the even seeds of the EST loop (scripts/feedback_evidence.py): at A = 0 the
    # interval's lower end never passed 0.1, at A = 0.3 it always did.
    anchoring_warning: float = limit(
        0.1, "feedback.anchoring", "anchoring (share of a new label that follows the served "
        "prediction) the whole interval must lie above for a warning", low=0, high=1)
    confidence: float = limit(
        0.95, "feedback.anchoring", "confidence of the anchoring interval", low=0.5, high=0.999)
    min_records: int = limit(
        30, "feedback.anchoring", "labelled records needed in each group (served and holdout) "
        "before anchoring is estimated", low=3, integer=True)
    min_rounds: int = limit(
        3, "feedback.homogenization", "rounds of retraining needed before a trend is judged",
        low=2, integer=True)
    # REC under policy=model (even seeds): coverage fell for three rounds and rose a little in
    # the last two, so at 0.75 two of three tuning seeds went unflagged; at 0.5 all were,
    # while under random exposure no indicator moved by 1 % (min_drop keeps that silent).
    monotone_share: float = limit(
        0.5, "feedback.homogenization", "share of round-to-round steps in which a spread "
        "indicator must fall", low=0, high=1, open_low=True)
    # Tuned on the even seeds of the REC loop: random exposure moved no indicator by more
    # than a few percent; the model's own top-k cut coverage by more than half in 5 rounds.
    min_drop: float = limit(
        0.1, "feedback.homogenization", "relative drop of a spread indicator, beyond its drop "
        "under random exposure, from the first round to the last", low=0, high=1, open_low=True)
    min_signals: int = limit(
        2, "feedback.homogenization", "spread indicators that must concentrate for a warning",
        low=1, high=len(SPREAD_INDICATORS), integer=True)
    # Tuned on the even seeds of the EST loop (mean absolute error of log price per round):
    # at A = 0 no seed fired, at A = 0.3 and 0.6 every seed did.
    min_gap: float = limit(
        0.15, "feedback.self_evaluation", "mean relative advantage of the metric on influenced "
        "data over untouched data (ahead in every round)", low=0, open_low=True)
    min_gain: float = limit(
        0.1, "feedback.self_evaluation", "relative improvement over the rounds of the metric on "
        "influenced data (the untouched one improving less than half as much, the influenced "
        "one min_gap ahead from the middle round on)", low=0, open_low=True)
    # Rounds of 225 served and 75 held-out records with Gaussian errors and no feedback fired
    # by chance (RMSE, 4,000 draws): one round 3.7 % of the time, two 1.2 %, three 0.05 %.
    min_evaluation_rounds: int = limit(
        3, "feedback.self_evaluation", "rounds with the metric on both slices needed before "
        "self-evaluation is judged", low=1, integer=True)


DEFAULTS = FeedbackThresholds()
TRIM = 0.1  # share of the largest residuals left out of each group's mean square
BOOTSTRAP = 1000  # resamples of the holdout estimate's interval


# ----------------------------------------------------------------------------- anchoring
@dataclasses.dataclass(frozen=True)
class AnchoringEstimate:
    """How much new labels follow the served predictions, with an interval.

    Attributes:
        estimate: Estimated anchoring ``A`` (0: labels ignore the model; 1: labels are the
            model's predictions).
        low: Lower end of the interval.
        high: Upper end of the interval.
        confidence: Confidence of the interval.
        method: ``holdout`` or ``shadow``.
        n: Records used (served + holdout, or served with a shadow prediction).

    """

    estimate: float
    low: float
    high: float
    confidence: float
    method: str
    n: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, rounded to 4 decimals.

        Example:
            >>> AnchoringEstimate(0.31234, 0.2, 0.4, 0.95, "holdout", 500).to_dict()["estimate"]
            0.3123
        """
        return {k: round(v, 4) if isinstance(v, float) else v
                for k, v in dataclasses.asdict(self).items()}


def _vectors(names: Sequence[str], *arrays: Any) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=float).ravel() for a in arrays]
    lengths = {len(a) for a in out}
    if len(lengths) != 1:
        raise DataError(f"{', '.join(names)} must have one value per record, got lengths "
                        f"{[len(a) for a in out]}; join the prediction log and the labels on "
                        "the record id first.")
    bad = [n for n, a in zip(names, out, strict=True) if not np.isfinite(a).all()]
    if bad:
        raise DataError(f"{', '.join(bad)} contain NaN or infinity; drop records whose label "
                        "has not arrived yet (or whose prediction failed) before estimating.")
    return out


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def estimate_anchoring_holdout(
    labels: Sequence[float], predictions: Sequence[float], served: Sequence[bool],
    confidence: float = DEFAULTS.confidence, min_records: int = DEFAULTS.min_records,
) -> AnchoringEstimate:
    """Anchoring from a random holdout of records that were not served.

    ``A = 1 - sqrt(MS_s / MS_h)`` with ``MS`` the mean square of ``label - prediction`` among
    served (``s``) and holdout (``h``) records, each without its largest ``TRIM`` share (a
    few wild errors would otherwise decide it); the interval is a percentile bootstrap of
    both groups. The holdout must be a random slice; records priced without the model for a
    reason (a different market) bias the estimate.

    Args:
        labels: Later labels, on the scale the model predicts (e.g. log price).
        predictions: The model's predictions for the same records (logged, served or not).
        served: Whether each prediction was shown to the world.
        confidence: Confidence of the interval.
        min_records: Records needed in each group.

    Raises:
        DataError: Lengths differ, values are not finite, or a group has too few records.

    Example:
        >>> y, p = [1.0, 2.0, 3.0, 4.0] * 10, [1.5, 1.5, 3.5, 3.5] * 10
        >>> served = [True, True, False, False] * 10
        >>> estimate_anchoring_holdout(y, p, served, min_records=5).estimate
        0.0

    """
    y, p, s = _vectors(("labels", "predictions", "served"), labels, predictions, served)
    s = s.astype(bool)
    counts = {"served": int(s.sum()), "holdout": int((~s).sum())}
    thin = [f"{k} {n}" for k, n in counts.items() if n < min_records]
    if thin:
        raise DataError(f"anchoring needs {min_records} labelled records served and "
                        f"{min_records} held out (not served), got {', '.join(thin)}; wait for "
                        "more labels, or keep a random slice of records un-served.")
    r = y - p
    ms = [_trimmed_ms(r[g]) for g in (s, ~s)]
    if min(ms) <= 0:
        raise DataError("every label equals its prediction in one group: anchoring cannot "
                        "be told from a perfect model; check that labels are not copies "
                        "of the predictions.")
    # percentile bootstrap, each group resampled on its own (seeded: the same log, the same
    # interval)
    rng = np.random.default_rng(0)
    boot = [_trimmed_ms(r[g][rng.integers(g.sum(), size=(BOOTSTRAP, int(g.sum())))])
            for g in (s, ~s)]
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = 1 - np.sqrt(boot[0] / boot[1])
    draws = draws[np.isfinite(draws)]
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return AnchoringEstimate(1 - math.sqrt(ms[0] / ms[1]), float(low), float(high), confidence,
                             "holdout", len(y))


def _trimmed_ms(r: np.ndarray) -> Any:
    """Mean square of ``r`` without its largest ``TRIM`` share by size (along the last axis).

    Scale-equivariant, so the ratio of two groups' values is still ``(1 - A)^2``; EST's model
    errors have a kurtosis above 20 (a few partial sales), and trimming the largest 10 % halved
    the estimate's spread over random holdouts (0.12 to 0.05 at A = 0).
    """
    r2 = np.sort(r**2, axis=-1)
    keep = max(1, int(np.ceil(r2.shape[-1] * (1 - TRIM))))
    return r2[..., :keep].mean(axis=-1)


def estimate_anchoring_shadow(
    labels: Sequence[float], predictions: Sequence[float], shadow: Sequence[float],
    confidence: float = DEFAULTS.confidence, min_records: int = DEFAULTS.min_records,
) -> AnchoringEstimate:
    """Anchoring from a shadow model: trained like the served one, never shown to anyone.

    Ordinary least squares of ``label`` on ``1, prediction, shadow``; ``A = b_pred -
    b_shadow`` (the two models share what the features explain, so only the served model's
    own training noise can carry anchoring), with an HC1 (heteroskedasticity-robust) interval.
    The interval is wide when the two models barely differ: train the shadow with another
    seed, or another data order.

    Args:
        labels: Later labels of served records.
        predictions: The served predictions.
        shadow: The shadow model's predictions of the same records.
        confidence: Confidence of the interval.
        min_records: Records needed.

    Raises:
        DataError: Lengths differ, values are not finite, too few records, or the two
            models' predictions are identical.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> f = rng.normal(0, 1, 3000)
        >>> m, p, q = (f + rng.normal(0, s, 3000) for s in (0.3, 0.2, 0.2))
        >>> est = estimate_anchoring_shadow(0.5 * m + 0.5 * p, p, q)
        >>> est.low < 0.5 < est.high
        True

    """
    y, p, q = _vectors(("labels", "predictions", "shadow"), labels, predictions, shadow)
    if len(y) < max(min_records, 4):
        raise DataError(f"anchoring needs {min_records} labelled served records with a shadow "
                        f"prediction, got {len(y)}; wait for more labels.")
    x = np.column_stack([np.ones_like(p), p, q])
    xtx = x.T @ x
    if np.linalg.cond(xtx) > 1e12:
        raise DataError("the shadow predictions equal the served ones (or are a linear copy of "
                        "them): nothing separates the two models. Train the shadow model with "
                        "another seed.")
    inv = np.linalg.inv(xtx)
    beta = inv @ x.T @ y
    resid = y - x @ beta
    n, k = x.shape
    meat = (x * resid[:, None] ** 2).T @ x * n / (n - k)
    cov = inv @ meat @ inv
    contrast = np.array([0.0, 1.0, -1.0])
    estimate = float(contrast @ beta)
    se = math.sqrt(max(float(contrast @ cov @ contrast), 0.0))
    z = _z(confidence)
    return AnchoringEstimate(estimate, estimate - z * se, estimate + z * se, confidence,
                             "shadow", len(y))


def anchoring_findings(
    estimate: AnchoringEstimate, thresholds: FeedbackThresholds = DEFAULTS,
    where: str | None = "label",
) -> list[Finding]:
    """``feedback.anchoring`` (warning) when the interval lies above ``anchoring_warning``.

    Args:
        estimate: From :func:`estimate_anchoring_holdout` or :func:`estimate_anchoring_shadow`.
        thresholds: The rule's thresholds.
        where: The label field the estimate concerns.

    Example:
        >>> anchoring_findings(AnchoringEstimate(0.3, 0.2, 0.4, 0.95, "holdout", 800))[0].where
        'label'
        >>> anchoring_findings(AnchoringEstimate(0.3, 0.05, 0.55, 0.95, "holdout", 80))
        []

    """
    if estimate.low <= thresholds.anchoring_warning:
        return []
    pct = f"{estimate.confidence:.0%}"
    return [Finding(
        "feedback.anchoring", Severity.WARNING,
        f"New labels follow the model's own predictions: about {estimate.estimate:.0%} of each "
        f"label is the served prediction ({pct} interval {estimate.low:.2f} to "
        f"{estimate.high:.2f}, {estimate.method} estimate on {estimate.n} records); retrained on "
        "them, the model learns its own past errors and its measured error flatters it.",
        where=where, evidence={**estimate.to_dict(),
                               "anchoring_warning": thresholds.anchoring_warning},
        hint="Keep a random slice of cases priced without the model (an un-influenced holdout) "
             "and train and evaluate on it, or down-weight labels that were served; log which "
             "predictions were shown so the loop stays measurable.")]


# ----------------------------------------------------------------------- homogenization
def gini(counts: Sequence[float]) -> float:
    """Gini coefficient of non-negative counts (0: all equal; towards 1: one item has all).

    Example:
        >>> gini([5, 5, 5, 5]), round(gini([0, 0, 0, 20]), 2)
        (0.0, 0.75)

    """
    x = np.sort(np.asarray(counts, dtype=float).ravel())
    n, total = len(x), float(x.sum())
    if n == 0 or total <= 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * total))


def exposure_round(
    recommendations: Sequence[Sequence[int]], n_items: int,
    interactions: Sequence[int] | None = None, training_items: Sequence[int] | None = None,
    pairs: int = 2000, seed: int = 0,
) -> dict[str, float]:
    """The spread indicators (:data:`SPREAD_INDICATORS`) of one round of recommendations.

    Args:
        recommendations: Each user's top-k list of item indices (``0 .. n_items - 1``).
        n_items: Size of the catalogue.
        interactions: Items of the round's new interactions (one entry per interaction).
        training_items: Items of the training data's interactions that round.
        pairs: User pairs sampled for the diversity of top-k lists.
        seed: Seed of that sample.

    Example:
        >>> r = exposure_round([[0, 1], [0, 2], [0, 3]], n_items=8, interactions=[0, 0, 1])
        >>> r["coverage"], r["interaction_coverage"], round(r["diversity"], 2)
        (0.5, 0.25, 0.67)

    """
    if n_items < 1:
        raise DataError(f"n_items={n_items}: the catalogue must hold at least one item.")
    lists = [np.unique(np.asarray(r, dtype=int)) for r in recommendations]
    shown = np.concatenate(lists) if lists else np.zeros(0, int)
    if len(shown) and (shown.min() < 0 or shown.max() >= n_items):
        raise DataError(f"recommended item indices must lie in 0..{n_items - 1}, got "
                        f"{shown.min()}..{shown.max()}; map item ids to catalogue positions.")
    exposure = np.bincount(shown, minlength=n_items)
    out = {"coverage": float((exposure > 0).mean()), "exposure_equality": 1 - gini(exposure)}
    if interactions is not None:
        out["interaction_coverage"] = float(len(np.unique(interactions)) / n_items)
    if training_items is not None:
        out["training_equality"] = 1 - gini(np.bincount(np.asarray(training_items, dtype=int),
                                                        minlength=n_items))
    if len(lists) > 1:
        rng = np.random.default_rng(seed)
        a, b = rng.integers(len(lists), size=(2, pairs))
        keep = a != b
        distances = [1 - len(np.intersect1d(lists[i], lists[j])) / max(
            len(np.union1d(lists[i], lists[j])), 1) for i, j in zip(a[keep], b[keep], strict=True)]
        out["diversity"] = float(np.mean(distances)) if distances else 1.0
    return out


def _relative_drop(series: Sequence[float]) -> float:
    first, last = float(series[0]), float(series[-1])
    return (first - last) / first if first > 0 else 0.0


def homogenization_findings(
    rounds: Sequence[Mapping[str, float]], reference: Sequence[Mapping[str, float]] | None = None,
    thresholds: FeedbackThresholds = DEFAULTS, where: str | None = "recommendations",
) -> list[Finding]:
    """``feedback.homogenization`` (warning) when exposure concentrates round after round.

    Args:
        rounds: One dict of spread indicators per round of the deployed policy
            (:func:`exposure_round`); indicators missing from any round are skipped.
        reference: The same under random exposure (an exploration slice, or a simulation);
            ``None``: random exposure is taken to keep every indicator level.
        thresholds: The rule's thresholds.
        where: What the finding concerns (the recommendation log, a surface name).

    Example:
        >>> falling = [{"coverage": c, "diversity": d} for c, d in
        ...            [(0.5, 0.9), (0.4, 0.8), (0.3, 0.7), (0.2, 0.6)]]
        >>> [f.evidence["concentrating"] for f in homogenization_findings(falling)]
        [['coverage', 'diversity']]
        >>> homogenization_findings(falling[:2])  # too few rounds to judge a trend
        []

    """
    if len(rounds) < thresholds.min_rounds:
        return []
    names = [n for n in SPREAD_INDICATORS if all(n in r for r in rounds)]
    detail: dict[str, dict[str, float]] = {}
    concentrating = []
    for name in names:
        series = [float(r[name]) for r in rounds]
        steps = np.diff(series)
        falling = float((steps < 0).mean())
        drop = _relative_drop(series)
        ref = [float(r[name]) for r in reference or [] if name in r]
        ref_drop = _relative_drop(ref) if len(ref) >= 2 else 0.0
        detail[name] = {"first": round(series[0], 4), "last": round(series[-1], 4),
                        "drop": round(drop, 4), "reference_drop": round(ref_drop, 4),
                        "falling_steps": round(falling, 4)}
        if falling >= thresholds.monotone_share and drop - ref_drop >= thresholds.min_drop:
            concentrating.append(name)
    if len(concentrating) < thresholds.min_signals:
        return []
    worst = max(concentrating, key=lambda n: detail[n]["drop"] - detail[n]["reference_drop"])
    against = "random exposure" if reference else "level (random exposure)"
    return [Finding(
        "feedback.homogenization", Severity.WARNING,
        f"Over {len(rounds)} rounds of retraining on its own recommendations' outcomes, "
        f"{len(concentrating)} measures of spread fell round after round faster than under "
        f"{against}: {', '.join(concentrating)} ({SPREAD_INDICATORS[worst]} fell "
        f"{detail[worst]['drop']:.0%}, from {detail[worst]['first']:.3g} to "
        f"{detail[worst]['last']:.3g}); the model is narrowing what users see and then "
        "learning from that narrowed data.",
        where=where, evidence={"rounds": len(rounds), "concentrating": concentrating,
                               "indicators": detail, "reference": bool(reference),
                               "min_drop": thresholds.min_drop,
                               "monotone_share": thresholds.monotone_share},
        hint="Add exploration (show a share of random or under-exposed items), log the "
             "propensity of every shown item and weight training by its inverse, and keep "
             "a randomly served slice to measure against.")]


# ---------------------------------------------------------------------- self-evaluation
def self_evaluation_findings(
    influenced: Sequence[float], untouched: Sequence[float], higher_is_better: bool,
    metric: str = "metric", thresholds: FeedbackThresholds = DEFAULTS,
) -> list[Finding]:
    """``feedback.self_evaluation`` (warning): the model grades its own homework.

    Args:
        influenced: The metric per round on data the model selected or influenced.
        untouched: The same metric per round on data it did not touch.
        higher_is_better: ``True`` for recall or accuracy, ``False`` for an error.
        metric: The metric's name (the finding's ``where``).
        thresholds: The rule's thresholds.

    Raises:
        DataError: The two series differ in length or hold a value that is not finite.

    Example:
        >>> self_evaluation_findings([0.10, 0.09, 0.08], [0.14, 0.14, 0.15], False,
        ...                          "rmse")[0].where
        'rmse'
        >>> self_evaluation_findings([0.14, 0.13, 0.13], [0.14, 0.14, 0.13], False, "rmse")
        []

    """
    inf, unt = _vectors(("influenced", "untouched"), influenced, untouched)
    if len(inf) < thresholds.min_evaluation_rounds:
        return []
    sign = 1.0 if higher_is_better else -1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        gaps = sign * (inf - unt) / np.abs(unt)
    gaps = np.nan_to_num(gaps, nan=0.0, posinf=0.0, neginf=0.0)

    def gain(series: np.ndarray) -> float:
        return float(sign * (series[-1] - series[0]) / abs(series[0])) if series[0] else 0.0

    gain_inf, gain_unt = (gain(inf), gain(unt)) if len(inf) >= 2 else (0.0, 0.0)
    gap_rule = bool(gaps.min() > 0 and gaps.mean() >= thresholds.min_gap)
    trend_rule = (gain_inf >= thresholds.min_gain and gain_unt < gain_inf / 2
                  and bool(gaps[len(gaps) // 2:].min() >= thresholds.min_gap))
    if not (gap_rule or trend_rule):
        return []
    better = "higher" if higher_is_better else "lower"
    how = (f"is {gaps.mean():.0%} better ({better}) on average on the data the model "
           f"influenced than on data it did not touch, and better in every one of {len(inf)} "
           "rounds" if gap_rule else
           f"improved {gain_inf:.0%} over {len(inf)} rounds on the data the model influenced, "
           f"but {gain_unt:.0%} on data it did not touch")
    return [Finding(
        "feedback.self_evaluation", Severity.WARNING,
        f"{metric} {how}: the model is judged on outcomes it shaped itself, so this metric "
        "overstates how well it does.",
        where=metric, evidence={"influenced": [round(float(v), 4) for v in inf],
                                "untouched": [round(float(v), 4) for v in unt],
                                "gain_influenced": round(gain_inf, 4),
                                "gain_untouched": round(gain_unt, 4),
                                "gaps": [round(float(g), 4) for g in gaps],
                                "min_gap": thresholds.min_gap},
        hint="Report the metric on an un-influenced slice (a random holdout, or users shown "
             "random items) as the headline number, and track the gap between the two.")]
