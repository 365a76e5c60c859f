"""Feedback-loop monitoring of a deployed model from its prediction log and later labels.

:class:`FeedbackMonitor` gathers what a team already has, or can start logging -- each served
prediction (with whether it was shown, and optionally a shadow model's prediction of the same
case), the labels that arrive later, each round's recommendations, a metric measured on
influenced and on untouched data -- and hands it to the pure rules of
:mod:`guardrail.checks.feedback` (``feedback.anchoring``, ``feedback.homogenization``,
``feedback.self_evaluation``). A rule whose fields are missing from the log is skipped, and
:meth:`FeedbackMonitor.summary` says why. ``python -m guardrail.loop`` feeds one per simulated
loop.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> monitor = FeedbackMonitor()
    >>> market = rng.normal(12, 0.4, 1500)
    >>> pred = market + rng.normal(0, 0.15, 1500)
    >>> served = rng.random(1500) < 0.75
    >>> monitor.log_predictions([{"id": i, "prediction": p, "served": s}
    ...                          for i, (p, s) in enumerate(zip(pred, served))])
    >>> later = np.where(served, 0.7 * market + 0.3 * pred, market)  # the world follows the model
    >>> monitor.log_labels({i: y for i, y in enumerate(later)})
    >>> [(f.check, f.where) for f in monitor.findings()]
    [('feedback.anchoring', 'label')]
    >>> round(monitor.summary()["anchoring"]["estimate"], 1)
    0.3

"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from guardrail.checks.feedback import (
    AnchoringEstimate,
    FeedbackThresholds,
    anchoring_findings,
    estimate_anchoring_holdout,
    estimate_anchoring_shadow,
    exposure_round,
    homogenization_findings,
    self_evaluation_findings,
)
from guardrail.errors import DataError
from guardrail.findings import Finding

__all__ = ["FeedbackMonitor", "judge_windows"]


class FeedbackMonitor:
    """Collects a deployed model's log round by round and judges it for feedback loops.

    Args:
        thresholds: A :class:`~guardrail.checks.feedback.FeedbackThresholds`, a mapping of
            the fields to change, or ``None`` for the defaults.
        key: Field of a prediction row that identifies the case (joined with the labels).
        prediction: Field holding the model's prediction (on the label's scale).
        served: Field saying whether the prediction was shown; rows without it count as
            served. A random slice of un-served rows is what the holdout estimate needs.
        shadow: Field holding a shadow model's prediction of the same case (optional).
        label_name: What the labels are called in findings (their ``where``).

    Example:
        >>> m = FeedbackMonitor()
        >>> m.log_predictions([{"case": 1, "prediction": 2.0}])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        guardrail.errors.DataError: prediction row 0 has no 'id' field ...

    """

    def __init__(self, thresholds: FeedbackThresholds | Mapping[str, Any] | None = None, *,
                 key: str = "id", prediction: str = "prediction", served: str = "served",
                 shadow: str = "shadow", label_name: str = "label") -> None:
        self.thresholds = FeedbackThresholds.coerce(thresholds)
        self.key, self.prediction, self.served, self.shadow = key, prediction, served, shadow
        self.label_name = label_name
        self._predictions: dict[Any, tuple[float, bool, float | None]] = {}
        self._labels: dict[Any, float] = {}
        self._exposure: list[dict[str, float]] = []
        self._reference: list[dict[str, float]] = []
        self._metrics: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------------- logging
    def log_predictions(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add prediction-log rows: ``key``, ``prediction``, optional ``served`` and ``shadow``.

        Raises:
            DataError: A row lacks the key or the prediction, or the prediction is no number.

        """
        for n, row in enumerate(rows):
            for name in (self.key, self.prediction):
                if name not in row:
                    raise DataError(
                        f"prediction row {n} has no {name!r} field (it has "
                        f"{', '.join(map(repr, row)) or 'none'}); log it, or name the field "
                        f"that holds it: FeedbackMonitor(key=..., prediction=...).")
            shadow = row.get(self.shadow)
            self._predictions[row[self.key]] = (
                _number(row[self.prediction], self.prediction, n),
                bool(row.get(self.served, True)),
                None if shadow is None else _number(shadow, self.shadow, n))

    def log_labels(self, labels: Mapping[Any, float] | Iterable[Mapping[str, Any]],
                   field: str = "label") -> None:
        """Add later labels: a mapping ``key -> label``, or rows with ``key`` and ``field``.

        Raises:
            DataError: A row lacks the key or the label field, or a label is no number.

        """
        if isinstance(labels, Mapping):
            items = list(labels.items())
        else:
            items = []
            for n, row in enumerate(labels):
                if self.key not in row or field not in row:
                    raise DataError(f"label row {n} needs the fields {self.key!r} and {field!r}"
                                    f", it has {', '.join(map(repr, row)) or 'none'}; pass "
                                    "log_labels(rows, field=...) naming the label's field.")
                items.append((row[self.key], row[field]))
        for n, (k, v) in enumerate(items):
            self._labels[k] = _number(v, "label", n)

    def log_exposure(self, round_: int, recommendations: Sequence[Sequence[int]], n_items: int,
                     interactions: Sequence[int] | None = None,
                     training_items: Sequence[int] | None = None,
                     reference: bool = False) -> dict[str, float]:
        """Add one round of recommendations; returns its spread indicators.

        Args:
            round_: The round (retraining cycle) they were served in.
            recommendations: Each user's top-k list of catalogue positions.
            n_items: Catalogue size.
            interactions: Items of the interactions the round produced.
            training_items: Items of the training data's interactions that round.
            reference: ``True`` for a random-exposure slice (the rule's reference).

        """
        stats = exposure_round(recommendations, n_items, interactions, training_items,
                               seed=round_)
        (self._reference if reference else self._exposure).append(stats)
        return stats

    def log_metric(self, round_: int, metric: str, influenced: float, untouched: float,
                   higher_is_better: bool) -> None:
        """Add one round's value of ``metric`` on influenced and on untouched data."""
        entry = self._metrics.setdefault(metric, {"higher_is_better": higher_is_better,
                                                  "rounds": {}})
        entry["rounds"][round_] = (float(influenced), float(untouched))

    # --------------------------------------------------------------------------- judging
    def anchoring_estimate(self) -> AnchoringEstimate | None:
        """The anchoring estimate from the joined log, or ``None`` without what it needs.

        The holdout estimate when enough un-served rows have labels, else the shadow one.
        """
        joined = [(self._labels[k], *v) for k, v in self._predictions.items() if k in self._labels]
        t = self.thresholds
        served = [j for j in joined if j[2]]
        if len(served) >= t.min_records and len(joined) - len(served) >= t.min_records:
            y, p, s, _ = zip(*joined, strict=True)
            return estimate_anchoring_holdout(y, p, s, t.confidence, t.min_records)
        with_shadow = [j for j in served if j[3] is not None]
        if len(with_shadow) >= t.min_records:
            y, p, _, q = zip(*with_shadow, strict=True)
            return estimate_anchoring_shadow(y, p, q, t.confidence, t.min_records)
        return None

    def findings(self) -> list[Finding]:
        """Every ``feedback.*`` finding the log supports."""
        out: list[Finding] = []
        estimate = self.anchoring_estimate()
        if estimate is not None:
            out += anchoring_findings(estimate, self.thresholds, self.label_name)
        out += homogenization_findings(self._exposure, self._reference or None, self.thresholds)
        for metric, entry in self._metrics.items():
            rounds = [entry["rounds"][r] for r in sorted(entry["rounds"])]
            pairs = [p for p in rounds if all(math.isfinite(v) for v in p)]
            if pairs:
                inf, unt = zip(*pairs, strict=True)
                out += self_evaluation_findings(inf, unt, entry["higher_is_better"], metric,
                                                self.thresholds)
        return out

    def summary(self) -> dict[str, Any]:
        """What was measured, for a report: the anchoring estimate, indicators, metrics."""
        estimate = self.anchoring_estimate()
        joined = sum(k in self._labels for k in self._predictions)
        return {
            "predictions": len(self._predictions), "labelled": joined,
            "anchoring": estimate.to_dict() if estimate else
            f"not estimated: needs {self.thresholds.min_records} labelled rows served and as "
            "many held out, or served rows with a shadow prediction",
            "exposure": self._exposure, "reference_exposure": self._reference,
            "metrics": {m: {"higher_is_better": e["higher_is_better"],
                            "rounds": sorted(e["rounds"]),
                            "influenced": [e["rounds"][r][0] for r in sorted(e["rounds"])],
                            "untouched": [e["rounds"][r][1] for r in sorted(e["rounds"])]}
                        for m, e in self._metrics.items()},
        }


def judge_windows(outcomes: Sequence[tuple[Any, Any, Any, bool]],
                  metrics: Sequence[tuple[int, Mapping[str, Any]]], min_labels: int
                  ) -> tuple[dict[str, Any], list[Finding]]:
    """The ``feedback.*`` checks on a monitored log, each window a round (``guardrail monitor``).

    Args:
        outcomes: ``(id, prediction, label, served)`` of every labelled row that says whether
            its prediction was served.
        metrics: ``(window index, {"split_metric", "served", "holdout"})`` of each window
            with ``min_labels`` labelled rows in both groups (lower is better).
        min_labels: What such a window needed (named when too few windows had it).

    Anchoring needs numeric labels that are not all 0/1 (a regression) and served and
    held-out rows; self-evaluation the error on both groups in enough windows.

    Returns:
        :meth:`FeedbackMonitor.summary` with notes of what was not judged and why (or
        ``{"skipped": why}``), and the findings.
    """
    if not outcomes:
        return {"skipped": "The feedback checks were not run: no labelled row says whether its "
                "prediction was served. They need a records file whose rows read {\"record\": "
                "..., \"prediction\": ..., \"id\": ..., \"served\": true or false} (keep a "
                "random slice un-served) and --labels joined on the id; a serving log holds no "
                "such flag."}, []
    fm = FeedbackMonitor()
    numeric = [(i, p, y, s) for i, p, y, s in outcomes if _finite(p) and _finite(y)]
    notes: dict[str, str] = {}
    if numeric and all(float(y) in (0.0, 1.0) for _, _, y, _ in numeric):
        notes["anchoring"] = ("not estimated: the labels are 0/1; anchoring is measured on "
                              "numeric (regression) labels")
    elif numeric:
        fm.log_predictions({"id": i, "prediction": p, "served": s} for i, p, _, s in numeric)
        fm.log_labels({i: y for i, _, y, _ in numeric})
        if len(numeric) < len(outcomes):
            notes["anchoring_rows_left_out"] = (
                f"{len(outcomes) - len(numeric)} labelled rows whose prediction or label is not "
                "a finite number")
    for index, m in metrics:
        fm.log_metric(index, str(m["split_metric"]), m["served"], m["holdout"],
                      higher_is_better=False)  # mae and brier: lower is better
    needed = fm.thresholds.min_evaluation_rounds
    if len(metrics) < needed:
        notes["self_evaluation"] = (
            f"not judged: {len(metrics)} window(s) held {min_labels} labelled served and "
            f"{min_labels} held-out rows; it needs {needed}. Use a larger --window, or "
            "hold out a larger slice.")
    try:
        summary, found = fm.summary(), fm.findings()
    except DataError as err:
        return {"skipped": f"The feedback checks were not run: {err}"}, []
    return {**summary, **notes}, found


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and value.__class__ is not bool and math.isfinite(value)


def _number(value: Any, name: str, row: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise DataError(f"row {row}: {name}={value!r} is not a number; log the model's "
                            "numeric output (a regression value or a score).") from None
    return float(value)
