"""Drift and skew rules: a window of serving records against the training reference.

Check ids ``drift.feature``, ``drift.prediction``, ``drift.performance``,
``skew.unseen_categories`` and ``monitor.thin_window``. Everything here is pure: profiles are
plain JSON-ready dicts, windows are lists of records, findings come out.

**Features.** :func:`feature_plan` turns the data contract into the quantities compared: each
numeric field as it is; each categorical or id field by its frequencies; a sequence by its
length and, per record, the mean of each numeric element (or element field), its categorical
elements pooled; a grid by its per-channel mean and spread (``std``). A derived feature is
named ``field:summary`` (``events:length``); its findings name the field.

**Reference.** :func:`reference_profile` profiles the training records once (``guardrail
export`` stores it in ``reference.json``), bounded in size: per numeric feature the
training-decile bin edges and counts (for PSI), a quantile sketch of the empirical CDF at up to
``GRID`` points (for the Kolmogorov-Smirnov test), moments and missing count; per categorical
feature the counts of up to ``MAX_CATEGORIES`` values and the Good-Turing share of values seen
once (what a fresh sample is expected to hold of values never seen).

**Windows.** :class:`WindowAccumulator` adds a window's records chunk by chunk and keeps only
counts on the reference's bins and grid, moments and category counts: memory is bounded by the
reference (and, for categories, by the values of one window), not by the window's length.

**Rules** (:class:`DriftThresholds`). A numeric feature drifts when its effect size is large --
PSI on the training-decile bins (plus a bin for missing values) or the KS distance -- *and* the
shift is significant (KS p-value, or a two-proportion test on the missing share, below
``significance``): the effect size decides, the test is a floor so that a small window's noise
is not an alarm, and a large window's tiny shift is not one either. A categorical feature drifts
when its Jensen-Shannon distance or L-infinity distance over frequencies is large and a
chi-square test is significant; values never seen in training beyond their Good-Turing
expectation are ``skew.unseen_categories``. Predictions are judged by the same tests
(``drift.prediction``); with labels, the window's error against the test split's
(``drift.performance``). A window with fewer than ``min_records`` records is only reported
(``monitor.thin_window``).

Example:
    >>> import random
    >>> rng = random.Random(0)
    >>> train = [{"x": rng.gauss(0, 1), "c": rng.choice("ab")} for _ in range(2000)]
    >>> contract = {"fields": {"x": {"kind": "numeric"}, "c": {"kind": "categorical"}}}
    >>> plan = feature_plan(contract)
    >>> ref = reference_profile(plan, train)
    >>> window = [{"x": rng.gauss(0, 1), "c": rng.choice("ab")} for _ in range(300)]
    >>> acc = WindowAccumulator(plan, ref)
    >>> acc.add(window)
    >>> drift_findings(ref, acc.profile(), {"index": 0, "records": 300})
    []
    >>> shifted = [{**r, "x": r["x"] + 0.5, "c": "z"} for r in window]
    >>> acc = WindowAccumulator(plan, ref)
    >>> acc.add(shifted)
    >>> sorted((f.check, f.where) for f in drift_findings(ref, acc.profile(), {"index": 1}))
    [('drift.feature', 'c'), ('drift.feature', 'x'), ('skew.unseen_categories', 'c')]

"""

from __future__ import annotations

import copy
import dataclasses
import math
import operator
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from guardrail.findings import Finding, Severity
from guardrail.thresholds import Thresholds, limit

__all__ = ["GRID", "MAX_CATEGORIES", "PROFILE_VERSION", "DriftThresholds", "Feature",
           "WindowAccumulator", "categorical_statistics", "drift_findings", "feature_plan",
           "jensen_shannon", "ks_p_value", "numeric_statistics", "performance_findings",
           "performance_metric", "prediction_plan", "psi", "reference_profile",
           "thin_window_finding"]

PROFILE_VERSION = 1
BINS = 10  # training deciles: the usual PSI binning
GRID = 512  # points of the quantile sketch the KS test reads the training CDF at
MAX_CATEGORIES = 5000  # most frequent values kept per categorical feature of the reference
MAX_CHANNELS = 16  # grid channels summarised one by one; more are summarised together
MAX_OUTPUTS = 16  # prediction outputs profiled one by one
MISSING, UNSEEN, OTHER = "<missing>", "<unseen>", "<other>"


@dataclasses.dataclass(frozen=True)
class DriftThresholds(Thresholds):
    """What ``guardrail monitor`` compares a window against.

    Defaults from ``scripts/drift_evidence.py`` on the held-out test splits of EST and CCF
    (200 windows of 300 records resampled from each; even windows and even-position fields to
    tune, odd ones held out). The significance floor is what keeps PSI honest: EST's
    ``Garage_Area`` reaches PSI 0.22 on 1% of healthy windows, never with KS p < 0.001. KS
    catches what decile bins cannot: a +0.5 SD shift of an integer field (``Overall_Qual``)
    stays inside its bins (PSI 0.01) but moves its CDF by 0.22. JS and L-infinity are high
    because their noise grows with the number of categories (``addr_state``'s 50 states reach
    JS 0.25 on healthy windows); a category replaced wholesale reaches far more.

    Example:
        >>> DriftThresholds(psi_warning=0.3).psi_warning
        0.3
        >>> DriftThresholds(significance=2)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        guardrail.errors.ConfigError: DriftThresholds: significance=2 must be in (0, 1]...

    """

    psi_warning: float = limit(
        0.175, "drift.feature", "PSI on training-decile bins from which a numeric feature (or "
        "a prediction) has drifted", low=0, open_low=True)
    ks_warning: float = limit(
        0.175, "drift.feature", "Kolmogorov-Smirnov distance from which a numeric feature has "
        "drifted (what PSI's bins miss: a shift within a bin)", low=0, high=1, open_low=True)
    psi_error: float = limit(
        2.0, "drift.feature", "PSI from which the drift is an error: the feature barely "
        "overlaps training (a unit changed upstream)", low=0, open_low=True)
    js_warning: float = limit(
        0.4, "drift.feature", "Jensen-Shannon distance (base 2) over a categorical feature's "
        "frequencies from which it has drifted", low=0, high=1, open_low=True)
    linf_warning: float = limit(
        0.25, "drift.feature", "largest change of one category's share from which a "
        "categorical feature has drifted", low=0, high=1, open_low=True)
    js_error: float = limit(
        0.7, "drift.feature", "Jensen-Shannon distance from which a categorical drift is an "
        "error", low=0, high=1, open_low=True)
    significance: float = limit(
        1e-3, "drift.feature", "p-value a shift must be below to count (KS, chi-square, "
        "missing share): the floor under the effect sizes", low=0, high=1, open_low=True)
    unseen_share: float = limit(
        0.02, "skew.unseen_categories", "share of a window's values never seen in training, "
        "beyond the Good-Turing expectation, that is a skew", low=0, high=1, open_low=True)
    unseen_min_count: int = limit(
        3, "skew.unseen_categories", "fewest unseen values in a window that are a skew",
        low=1, integer=True)
    unseen_error: float = limit(
        0.5, "skew.unseen_categories", "share of unseen values from which the skew is an "
        "error", low=0, high=1, open_low=True)
    performance_ratio: float = limit(
        0.25, "drift.performance", "relative worsening of the window's error over the test "
        "split's that is a warning (0.25: 25% worse)", low=0, open_low=True)
    performance_error_ratio: float = limit(
        1.0, "drift.performance", "relative worsening that is an error (1: twice the error)",
        low=0, open_low=True)
    min_labels: int = limit(
        50, "drift.performance", "fewest labelled records a window needs to judge its error",
        low=1, integer=True)
    min_records: int = limit(
        100, "monitor.thin_window", "fewest records a window needs to be judged", low=1,
        integer=True)


@dataclasses.dataclass(frozen=True)
class Feature:
    """One compared quantity: a field, or a summary of a sequence or grid field.

    Attributes:
        name: ``field`` or ``field:summary`` (``events:length``, ``temp:mean[0]``).
        field: The record's field it comes from (what findings name).
        summary: ``None`` for the field itself, else what is summarised.
        kind: ``numeric`` or ``categorical``.
        path: How to reach it: ``("value",)``, ``("length",)``, ``("mean", sub)``,
            ``("pool", sub)``, ``("grid", stat, channel)``.

    """

    name: str
    field: str
    summary: str | None
    kind: str
    path: tuple[Any, ...] = ("value",)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"name": self.name, "field": self.field, "summary": self.summary,
                "kind": self.kind, "path": list(self.path)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Feature:
        """Inverse of :meth:`to_dict`."""
        return cls(data["name"], data["field"], data.get("summary"), data["kind"],
                   tuple(data.get("path") or ("value",)))


def feature_plan(contract: Mapping[str, Any]) -> list[Feature]:
    """The features compared for a contract's fields (see the module docstring).

    Example:
        >>> plan = feature_plan({"fields": {
        ...     "age": {"kind": "numeric"}, "user": {"kind": "id"},
        ...     "events": {"kind": "sequence", "element": {"kind": "object", "fields": {
        ...         "amount": {"kind": "numeric"}, "type": {"kind": "categorical"}}}},
        ...     "temp": {"kind": "grid", "shape": [2, 4, 4]}}})
        >>> [(f.name, f.kind) for f in plan]  # doctest: +NORMALIZE_WHITESPACE
        [('age', 'numeric'), ('user', 'categorical'), ('events:length', 'numeric'),
         ('events:mean(amount)', 'numeric'), ('events:type', 'categorical'),
         ('temp:mean[0]', 'numeric'), ('temp:std[0]', 'numeric'),
         ('temp:mean[1]', 'numeric'), ('temp:std[1]', 'numeric')]

    """
    plan: list[Feature] = []
    for name, spec in (contract.get("fields") or {}).items():
        kind = spec.get("kind")
        if kind == "numeric":
            plan.append(Feature(name, name, None, "numeric"))
        elif kind in ("categorical", "id"):
            plan.append(Feature(name, name, None, "categorical"))
        elif kind == "sequence":
            plan.append(Feature(f"{name}:length", name, "length", "numeric", ("length",)))
            element = spec.get("element") or {}
            inner = element.get("fields") if element.get("kind") == "object" else {
                None: element}
            for sub, sub_spec in (inner or {}).items():
                sub_kind = (sub_spec or {}).get("kind")
                label = "items" if sub is None else sub
                if sub_kind == "numeric":
                    plan.append(Feature(f"{name}:mean({label})" if sub else f"{name}:mean",
                                        name, f"mean({label})" if sub else "mean", "numeric",
                                        ("mean", sub)))
                elif sub_kind in ("categorical", "id"):
                    plan.append(Feature(f"{name}:{label}", name, label, "categorical",
                                        ("pool", sub)))
        elif kind == "grid":
            shape = spec.get("shape") or []
            channels = shape[0] if len(shape) >= 3 and isinstance(shape[0], int) and \
                shape[0] <= MAX_CHANNELS else None
            for c in range(channels) if channels else [None]:
                tag = "" if c is None else f"[{c}]"
                for stat in ("mean", "std"):
                    plan.append(Feature(f"{name}:{stat}{tag}", name, f"{stat}{tag}",
                                        "numeric", ("grid", stat, c)))
    return plan


def prediction_plan(predictions: Sequence[Any]) -> list[Feature]:
    """Features of the model's answers: ``prediction`` or ``prediction[j]`` per output.

    Example:
        >>> [f.name for f in prediction_plan([[0.1, 0.9], [0.3, 0.7]])]
        ['prediction[0]', 'prediction[1]']
        >>> [(f.name, f.kind) for f in prediction_plan(["cat", "dog"])]
        [('prediction', 'categorical')]

    """
    first = next((p for p in predictions if p is not None), None)
    if isinstance(first, list | tuple):
        width = min(len(first), MAX_OUTPUTS)
        return [Feature(f"prediction[{j}]", "prediction", f"[{j}]", "numeric", ("output", j))
                for j in range(width)]
    kind = "numeric" if isinstance(first, int | float) and not isinstance(first, bool) \
        else "categorical"
    return [Feature("prediction", "prediction", None, kind, ("output", None))]


# ----------------------------------------------------------------------- values of features
def feature_values(feature: Feature, rows: Sequence[Any]) -> Any:
    """A feature's values over ``rows`` (records, or predictions for ``output`` features).

    Numeric features give a float array (NaN for missing); categorical ones a list of strings
    (``None`` for missing), pooled over a sequence's elements for ``pool`` features.
    """
    head = feature.path[0]
    if head == "output":
        j = feature.path[1]
        vals = [(p[j] if isinstance(p, list | tuple) and len(p) > j else None)
                if j is not None else p for p in rows]
        return _floats(vals) if feature.kind == "numeric" else _categories(vals)
    field = feature.field
    raw = [r.get(field) if r.__class__ is dict else _get(r, field) for r in rows]
    if head == "value":
        return _floats(raw) if feature.kind == "numeric" else _categories(raw)
    if head == "length":
        return np.array([len(v) if isinstance(v, list | tuple) else np.nan for v in raw],
                        dtype=np.float64)
    if head == "mean":
        sub = feature.path[1]
        out = np.full(len(raw), np.nan)
        for i, v in enumerate(raw):
            if isinstance(v, list | tuple) and v:
                items = _floats([e.get(sub) if isinstance(e, Mapping) else None for e in v]
                                if sub is not None else list(v))
                items = items[np.isfinite(items)]
                if len(items):
                    out[i] = items.mean()
        return out
    if head == "pool":
        sub = feature.path[1]
        pooled = [e.get(sub) if isinstance(e, Mapping) else None if sub is not None else e
                  for v in raw if isinstance(v, list | tuple) for e in v]
        return _categories(pooled)
    if head == "grid":
        _, stat, channel = feature.path
        out = np.full(len(raw), np.nan)
        for i, v in enumerate(raw):
            try:
                arr = np.asarray(v, dtype=np.float64)
            except (TypeError, ValueError):
                continue
            if arr.size == 0:
                continue
            if channel is not None:
                if arr.ndim < 3 or arr.shape[0] <= channel:
                    continue
                arr = arr[channel]
            arr = arr[np.isfinite(arr)]
            if arr.size:
                out[i] = arr.mean() if stat == "mean" else arr.std()
        return out
    raise ValueError(f"unknown feature path {feature.path!r}")


def _get(row: Any, field: str) -> Any:
    return row.get(field) if isinstance(row, Mapping) else None


def _floats(values: list[Any]) -> np.ndarray:
    try:
        out = np.array(values, dtype=np.float64)  # None -> NaN
        if out.ndim == 1:
            return out
    except (TypeError, ValueError, OverflowError):
        pass
    return np.array([_float(v) for v in values], dtype=np.float64)


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _categories(values: Iterable[Any]) -> list[str | None]:
    return [v if v.__class__ is str or v is None else _category(v) for v in values]


def _category(v: Any) -> str:
    if isinstance(v, str):
        return v
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


# ------------------------------------------------------------------------------ reference
def reference_profile(plan: Sequence[Feature], records: Sequence[Any],
                      predictions: Sequence[Any] | None = None) -> dict[str, Any]:
    """Profile of the training records (and the model's predictions on them), JSON-ready.

    Returns:
        ``{"version", "records", "features": {name: profile}, "plan": [...],
        "predictions": {"records", "features", "plan"} or None}``.

    """
    out: dict[str, Any] = {
        "version": PROFILE_VERSION, "records": len(records), "plan": [f.to_dict() for f in plan],
        "features": {f.name: _reference_feature(f, feature_values(f, records)) for f in plan},
        "predictions": None}
    if predictions is not None and len(predictions):
        pplan = prediction_plan(predictions)
        out["predictions"] = {
            "records": len(predictions), "plan": [f.to_dict() for f in pplan],
            "features": {f.name: _reference_feature(f, feature_values(f, predictions))
                         for f in pplan}}
    return out


def _reference_feature(feature: Feature, values: Any) -> dict[str, Any]:
    if feature.kind == "numeric":
        return _numeric_reference(values)
    counts = Counter(v for v in values if v is not None)
    ranked = counts.most_common()
    kept = dict(ranked[:MAX_CATEGORIES])
    n = sum(counts.values())
    return {"kind": "categorical", "n": n, "missing": sum(v is None for v in values),
            "counts": kept, "other": n - sum(kept.values()),
            "capped": len(ranked) > MAX_CATEGORIES,
            "singletons": sum(1 for _, c in ranked if c == 1) / n if n else 0.0}


def _numeric_reference(values: np.ndarray) -> dict[str, Any]:
    finite = np.sort(values[np.isfinite(values)])
    n = len(finite)
    base = {"kind": "numeric", "n": n, "missing": int(len(values) - n)}
    if not n:
        return {**base, "edges": [], "counts": [0], "grid": [], "cdf": [], "mean": None,
                "sd": None, "quantiles": None}
    edges = np.unique(np.quantile(finite, np.arange(1, BINS) / BINS))
    counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)
    points = np.unique(np.quantile(finite, (np.arange(GRID) + 0.5) / GRID, method="nearest"))
    cdf = np.searchsorted(finite, points, side="right") / n
    return {**base, "edges": edges.tolist(), "counts": counts.tolist(), "grid": points.tolist(),
            "cdf": cdf.tolist(), **_moments(finite)}


def _moments(finite: np.ndarray) -> dict[str, Any]:
    qs = np.quantile(finite, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {"mean": float(finite.mean()), "sd": float(finite.std()),
            "quantiles": {k: float(v) for k, v in zip(("5", "25", "50", "75", "95"), qs,
                                                      strict=True)}}


# -------------------------------------------------------------------------------- windows
class WindowAccumulator:
    """A window's profile on the reference's bins, built chunk by chunk in bounded memory.

    Adding records is two steps. :meth:`encode` turns a chunk of records column by column into
    arrays (numeric features to floats, categorical ones to integer codes into the chunk's
    distinct values); :meth:`add_encoded` adds any range of rows of an encoded chunk to the
    window. :meth:`add` does both. Encoding is the costly step (one pass over every field of
    every record) and keeps no window state, so a monitor can encode chunks in other processes
    and add them here in order. The reference's bins, grid and categories are turned into
    arrays once, here, not once per window.

    Args:
        plan: The input features (``feature_plan`` of the contract).
        reference: :func:`reference_profile`'s output.

    Example:
        >>> plan = [Feature("x", "x", None, "numeric"), Feature("c", "c", None, "categorical")]
        >>> ref = reference_profile(plan, [{"x": float(i), "c": "ab"[i % 2]} for i in range(99)])
        >>> acc = WindowAccumulator(plan, ref)
        >>> chunk = acc.encode([{"x": 1.0, "c": "a"}, {"x": None, "c": "z"}, {"c": "a"}])
        >>> acc.add_encoded(chunk, 1, 3)  # rows 1 and 2 of the chunk
        >>> p = acc.profile()["features"]
        >>> p["x"]["n"], p["x"]["missing"], p["c"]["counts"]
        (0, 2, {'z': 1, 'a': 1})

    """

    def __init__(self, plan: Sequence[Feature], reference: Mapping[str, Any]) -> None:
        self.reference = reference
        pred = reference.get("predictions") or {}
        self.parts = [(f, reference["features"][f.name], "features") for f in plan
                      if f.name in reference["features"]]
        self.parts += [(Feature.from_dict(d), pred["features"][d["name"]], "predictions")
                       for d in pred.get("plan", [])]
        self.records = 0
        self.state: dict[tuple[str, str], dict[str, Any]] = {}
        self.pairs: list[tuple[Any, Any]] = []  # (prediction, label) of labelled records
        self._refs = [_RefArrays(ref) for _, ref, _ in self.parts]
        self._fields = [f.field for f, _, g in self.parts
                        if g == "features" and f.path[0] == "value"]
        # every categorical reference as one row of a padded matrix: their statistics are
        # computed for all features of a window at once
        self._categorical = [i for i, (f, _, _) in enumerate(self.parts)
                             if f.kind == "categorical"]
        width = max([len(self._refs[i].r) for i in self._categorical], default=0)
        self._r = np.zeros((len(self._categorical), width))
        for row, i in enumerate(self._categorical):
            self._r[row, :len(self._refs[i].r)] = self._refs[i].r
        self._r_total = self._r.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            self._rp = np.where(self._r_total[:, None] > 0, self._r / self._r_total[:, None], 0.0)

    def empty(self) -> WindowAccumulator:
        """A new, empty window on the same plan and reference (its arrays shared, not rebuilt).

        Example:
            >>> plan = [Feature("c", "c", None, "categorical")]
            >>> acc = WindowAccumulator(plan, reference_profile(plan, [{"c": "a"}]))
            >>> acc.add([{"c": "a"}])
            >>> acc.records, acc.empty().records
            (1, 0)

        """
        new = copy.copy(self)
        new.records, new.state, new.pairs = 0, {}, []
        return new

    def add(self, records: Sequence[Any], predictions: Sequence[Any] | None = None,
            labels: Sequence[Any] | None = None) -> None:
        """Add a chunk of records with their predictions (or ``None``) and labels (or ``None``)."""
        self.add_encoded(self.encode(records, predictions), 0, len(records))
        if labels is not None and predictions is not None:
            self.pairs.extend((p, y) for p, y in zip(predictions, labels, strict=True)
                              if y is not None)

    def encode(self, records: Sequence[Any],
               predictions: Sequence[Any] | None = None) -> EncodedChunk:
        """The chunk's features as arrays, one per feature of the plan (no window state).

        Picklable and compact: what a worker process sends back for :meth:`add_encoded`.
        """
        columns = _columns(records, self._fields)
        out: list[np.ndarray | _Codes | None] = []
        for i, (feature, _, group) in enumerate(self.parts):
            if group == "predictions" and predictions is None:
                out.append(None)
                continue
            rows = predictions if group == "predictions" else records
            head = feature.path[0]
            if group == "features" and head == "value" and feature.field in columns:
                raw = columns[feature.field]
                out.append(_floats(raw) if feature.kind == "numeric" else
                           _codes(raw, self._refs[i]))
            elif feature.kind == "numeric":
                out.append(feature_values(feature, rows))
            else:
                offsets = _pool_offsets(feature, rows) if head == "pool" else None
                out.append(_codes(feature_values(feature, rows), self._refs[i], offsets))
        return EncodedChunk(len(records), out)

    def add_encoded(self, chunk: EncodedChunk, start: int = 0, stop: int | None = None) -> None:
        """Add rows ``start:stop`` of an encoded chunk (:meth:`encode`) to the window."""
        stop = chunk.rows if stop is None else stop
        self.records += stop - start
        for i, (feature, ref, group) in enumerate(self.parts):
            column = chunk.columns[i]
            if column is None:
                continue
            key = (group, feature.name)
            if feature.kind == "numeric":
                self.state[key] = _add_numeric(self.state.get(key), ref, column[start:stop],
                                               self._refs[i])
                continue
            state = self.state.setdefault(key, {"counts": Counter(), "missing": 0})
            a, b = (start, stop) if column.offsets is None else (
                int(column.offsets[start]), int(column.offsets[stop]))
            names, counts = column.names, state["counts"]
            # Counter keeps first-seen order, as a Counter of the values themselves would
            for code, c in Counter(column.codes[a:b].tolist()).items():
                name = names[code]
                if name is None:
                    state["missing"] += c
                else:
                    counts[name] += c

    def profile(self) -> dict[str, Any]:
        """``{"records", "features": {name: window profile}, "predictions": {...}, "pairs"}``."""
        out: dict[str, Any] = {"records": self.records, "features": {}, "predictions": {},
                               "pairs": list(self.pairs)}
        for feature, ref, group in self.parts:
            state = self.state.get((group, feature.name))
            if state is None:
                continue
            if feature.kind == "numeric":
                out[group][feature.name] = _numeric_window(state, ref, feature)
            else:
                out[group][feature.name] = {"kind": "categorical", "field": feature.field,
                                            "summary": feature.summary,
                                            "n": sum(state["counts"].values()),
                                            "missing": state["missing"],
                                            "counts": dict(state["counts"])}
        return out

    def statistics(self, profile: Mapping[str, Any] | None = None
                   ) -> dict[tuple[str, str], dict[str, Any]]:
        """:func:`numeric_statistics` or :func:`categorical_statistics` of each feature.

        The same numbers, from the reference arrays built once; keyed by ``(group, name)``
        (what :func:`drift_findings` takes), for the features the window holds values of.
        """
        profile = profile if profile is not None else self.profile()
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for i, (feature, ref, group) in enumerate(self.parts):
            cur = profile[group].get(feature.name)
            if feature.kind != "numeric" or cur is None or not (cur["n"] or cur["missing"]):
                continue
            grid = self.state[(group, feature.name)]["grid"]
            cdf = np.cumsum(grid)[:-1] / cur["n"] if cur["n"] else None
            out[(group, feature.name)] = _numeric_statistics(self._refs[i], ref, cur, cdf)
        out.update(self._categorical_statistics(profile))
        return out

    def _categorical_statistics(self, profile: Mapping[str, Any]
                                ) -> dict[tuple[str, str], dict[str, Any]]:
        """:func:`categorical_statistics` of every categorical feature, as matrix operations."""
        if not self._categorical:  # numeric fields only: nothing to count
            return {}
        c = np.zeros_like(self._r)
        rows: list[tuple[int, int, Mapping[str, Any], Counter[str]]] = []
        for row, i in enumerate(self._categorical):
            feature, ref, group = self.parts[i]
            cur = profile[group].get(feature.name)
            if cur is None or not (cur["n"] or cur["missing"]):
                continue
            index, known = self._refs[i].index, ref["counts"]
            other = 0
            unseen: Counter[str] = Counter()
            for value, count in cur["counts"].items():
                j = index.get(value)
                if j is not None:
                    c[row, j] += count
                elif ref["capped"]:
                    other += count
                else:
                    unseen[value] += count
            if OTHER in known:  # a real category spelled like the bucket of the rest
                other += cur["counts"].get(OTHER, 0)
            c[row, len(known):len(known) + 3] = (other, cur["missing"], sum(unseen.values()))
            rows.append((row, i, cur, unseen))
        r, rp, r_total = self._r, self._rp, self._r_total
        total = c.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cp = np.where(total[:, None] > 0, c / total[:, None], 0.0)
            used = (r > 0) | (c > 0)
            n_used = used.sum(axis=1)
            smooth = np.where(used, (r + 0.5) / (r_total + 0.5 * n_used)[:, None], 0.0)
            expected = smooth / smooth.sum(axis=1)[:, None] * total[:, None]
            chi2 = np.where(used, (c - expected) ** 2 / expected, 0.0).sum(axis=1)
            gap = np.abs(cp - rp)
            linf_at = gap.argmax(axis=1)
            m = (rp + cp) / 2
            div = 0.5 * np.where(rp > 0, rp * np.log2(rp / m), 0.0).sum(axis=1) + \
                0.5 * np.where(cp > 0, cp * np.log2(cp / m), 0.0).sum(axis=1)
        out = {}
        for row, i, cur, unseen in rows:
            feature, ref, group = self.parts[i]
            if total[row] == 0 or r_total[row] == 0:
                out[(group, feature.name)] = {"js": 0.0, "linf": 0.0, "p_value": 1.0, "unseen": {
                    "share": 0.0, "count": 0, "expected": 0.0, "values": []}}
                continue
            n_unseen = int(sum(unseen.values()))
            seen_total = total[row] - cur["missing"]
            out[(group, feature.name)] = {
                "js": float(math.sqrt(max(float(div[row]), 0.0))),
                "linf": float(gap[row, linf_at[row]]),
                "linf_category": self._refs[i].names[int(linf_at[row])],
                "p_value": _chi2_p_value(float(chi2[row]), int(n_used[row]) - 1),
                "chi2": float(chi2[row]),
                "unseen": {"share": float(n_unseen / seen_total) if seen_total else 0.0,
                           "count": n_unseen, "expected": float(ref.get("singletons", 0.0)),
                           "values": [v for v, _ in unseen.most_common(5)]}}
        return out


@dataclasses.dataclass
class _Codes:
    """A categorical column: ``names[codes[i]]`` is value ``i`` (``None`` when missing).

    ``offsets`` (pooled sequence elements): row ``r``'s values are ``offsets[r]:offsets[r+1]``.
    """

    codes: np.ndarray
    names: list[str | None]
    offsets: np.ndarray | None = None


@dataclasses.dataclass
class EncodedChunk:
    """A chunk of records as :meth:`WindowAccumulator.encode` gives it.

    ``rows`` records; one column per feature of the accumulator's plan (``None`` for absent
    predictions).
    """

    rows: int
    columns: list[np.ndarray | _Codes | None]


class _RefArrays:
    """A reference feature's bins, grid, CDF and categories as arrays, built once."""

    def __init__(self, ref: Mapping[str, Any], kind: str | None = None) -> None:
        if (kind or ref.get("kind")) == "numeric":
            self.edges = np.asarray(ref["edges"], dtype=np.float64)
            self.grid = np.asarray(ref["grid"], dtype=np.float64)
            self.cdf = np.asarray(ref["cdf"], dtype=np.float64)
            r = np.asarray([*list(ref["counts"]), ref["missing"]], dtype=np.float64) + 0.5
            self.psi_reference = r / r.sum()
            return
        known = ref["counts"]
        self.names = [*list(known), OTHER, MISSING, UNSEEN]
        self.codes: list[str | None] = [*list(known), None]  # what _codes' codes stand for
        self.index: dict[str | None, int] = {k: i for i, k in enumerate(self.codes)}
        self.r = np.array([known[k] for k in known] + [ref.get("other", 0), ref["missing"], 0],
                          dtype=np.float64)
        self.r_total = float(self.r.sum())
        self.rp = self.r / self.r_total if self.r_total else self.r


def _codes(values: Sequence[Any], arrays: _RefArrays,
           offsets: np.ndarray | None = None) -> _Codes:
    """Integer codes of categorical values, normalised as :func:`_categories` does.

    Codes ``0..K-1`` are the reference's categories, ``K`` a missing value, then the values
    the reference does not know, in order of appearance.
    """
    index, names = arrays.index, arrays.codes
    try:
        codes = list(map(index.get, values))  # in C: None where not a reference category
    except TypeError:  # an unhashable value (a list in a categorical field)
        codes = [None] * len(values)
    if None in codes:
        names = list(names)
        extra: dict[str, int] = {}
        for i, code in enumerate(codes):
            if code is not None:
                continue
            v = values[i]
            # 1 and True are one dict key but two categories ("1", "true"): normalise first
            key = v if v.__class__ is str else _category(v)
            code = index.get(key)
            if code is None:
                code = extra.get(key)
                if code is None:
                    code = extra[key] = len(names)
                    names.append(key)
            codes[i] = code
    return _Codes(np.array(codes, dtype=np.int32), names, offsets)


def _pool_offsets(feature: Feature, rows: Sequence[Any]) -> np.ndarray:
    """Where each row's pooled sequence elements start in :func:`feature_values`' list."""
    field = feature.field
    sizes = [0]
    for r in rows:
        v = r.get(field) if r.__class__ is dict else _get(r, field)
        sizes.append(len(v) if isinstance(v, list | tuple) else 0)
    return np.cumsum(sizes)


def _columns(records: Sequence[Any], fields: list[str]) -> dict[str, list[Any]]:
    """The fields' values, column by column.

    Transposed in C where every record has every field (what the server logs: records that
    passed the contract).
    """
    if not fields or not records:
        return {}
    if len(fields) > 1:
        getter = operator.itemgetter(*fields)
        try:
            return dict(zip(fields, map(list, zip(*map(getter, records), strict=True)),
                            strict=True))
        except (KeyError, TypeError):
            pass
    return {f: [r.get(f) if r.__class__ is dict else _get(r, f) for r in records]
            for f in fields}


def _add_numeric(state: dict[str, Any] | None, ref: Mapping[str, Any],
                 values: np.ndarray, arrays: _RefArrays | None = None) -> dict[str, Any]:
    arrays = arrays or _RefArrays(ref, "numeric")
    if state is None:
        state = {"n": 0, "missing": 0, "sum": 0.0, "sumsq": 0.0, "min": math.inf,
                 "max": -math.inf, "bins": np.zeros(len(arrays.edges) + 1, dtype=np.int64),
                 "grid": np.zeros(len(arrays.grid) + 1, dtype=np.int64)}
    finite = values[np.isfinite(values)]
    state["missing"] += int(len(values) - len(finite))
    if len(finite):
        state["n"] += len(finite)
        state["sum"] += float(finite.sum())
        state["sumsq"] += float((finite * finite).sum())
        state["min"] = min(state["min"], float(finite.min()))
        state["max"] = max(state["max"], float(finite.max()))
        state["bins"] += np.bincount(np.searchsorted(arrays.edges, finite, side="right"),
                                     minlength=len(state["bins"]))
        # index j: the first grid point >= x, so the cumulative count up to j is #(x <= g_j)
        state["grid"] += np.bincount(np.searchsorted(arrays.grid, finite, side="left"),
                                     minlength=len(state["grid"]))
    return state


def _numeric_window(state: Mapping[str, Any], ref: Mapping[str, Any],
                    feature: Feature) -> dict[str, Any]:
    n = state["n"]
    mean = state["sum"] / n if n else None
    sd = math.sqrt(max(state["sumsq"] / n - mean * mean, 0.0)) if n else None  # type: ignore[operator]
    cdf = np.cumsum(state["grid"])[:-1] / n if n else None
    return {"kind": "numeric", "field": feature.field, "summary": feature.summary, "n": n,
            "missing": state["missing"], "counts": state["bins"].tolist(),
            "cdf": cdf.tolist() if cdf is not None else [], "mean": mean, "sd": sd,
            "min": state["min"] if n else None, "max": state["max"] if n else None,
            "quantiles": _grid_quantiles(ref["grid"], cdf) if n else None}


_QUANTILES = (("5", 0.05), ("25", 0.25), ("50", 0.5), ("75", 0.75), ("95", 0.95))


def _grid_quantiles(grid: Sequence[float], cdf: Any) -> dict[str, float] | None:
    """Window quantiles read off the reference grid (to its resolution)."""
    if not len(grid):
        return None
    at = np.searchsorted(np.asarray(cdf), [q for _, q in _QUANTILES]).tolist()
    return {k: float(grid[min(j, len(grid) - 1)]) for (k, _), j in zip(_QUANTILES, at,
                                                                       strict=True)}


# ----------------------------------------------------------------------------- statistics
def psi(reference: Sequence[float], current: Sequence[float], smoothing: float = 0.5) -> float:
    """Population stability index of two count vectors on the same bins.

    Counts get ``smoothing`` added (an empty bin is not an infinite term).

    Example:
        >>> round(psi([50, 50], [50, 50]), 6), round(psi([50, 50], [90, 10]), 3)
        (0.0, 0.853)

    """
    r = np.asarray(reference, dtype=np.float64) + smoothing
    c = np.asarray(current, dtype=np.float64) + smoothing
    r, c = r / r.sum(), c / c.sum()
    return float(((c - r) * np.log(c / r)).sum())


def ks_p_value(d: float, n: int, m: int) -> float:
    """Asymptotic p-value of a two-sample Kolmogorov-Smirnov distance ``d`` (Stephens).

    Example:
        >>> round(ks_p_value(0.05, 300, 2000), 2), ks_p_value(0.3, 300, 2000) < 1e-10
        (0.52, True)

    """
    if n <= 0 or m <= 0:
        return 1.0
    en = math.sqrt(n * m / (n + m))
    lam = (en + 0.12 + 0.11 / en) * d
    if lam < 0.2:
        return 1.0
    total, sign, rate = 0.0, 1.0, -2 * lam * lam
    for k in range(1, 101):
        term = math.exp(rate * k * k)
        if term < total * 1e-17:  # below half an ulp of the sum: it and the rest change nothing
            break
        total += sign * term
        sign = -sign
    return float(min(max(2 * total, 0.0), 1.0))


def _chi2_p_value(stat: float, df: int) -> float:
    """Upper tail of chi-square (Wilson-Hilferty): accurate enough for a significance floor."""
    if df <= 0:
        return 1.0
    z = ((stat / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df))
    return 0.5 * math.erfc(z / math.sqrt(2))


def _proportion_p_value(a: int, n: int, b: int, m: int) -> float:
    """Two-sided p-value of two proportions ``a/n`` and ``b/m`` being equal."""
    if n == 0 or m == 0:
        return 1.0
    pooled = (a + b) / (n + m)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    if se == 0:
        return 1.0
    return math.erfc(abs(a / n - b / m) / se / math.sqrt(2))


def jensen_shannon(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two frequency vectors.

    Example:
        >>> jensen_shannon([1, 0], [0, 1]), jensen_shannon([1, 1], [1, 1])
        (1.0, 0.0)

    """
    a = np.asarray(p, dtype=np.float64)
    b = np.asarray(q, dtype=np.float64)
    a, b = a / a.sum(), b / b.sum()
    m = (a + b) / 2
    at, bt = a > 0, b > 0  # where a > 0, m > 0 too: no division by zero, no NaN
    div = 0.5 * float((a[at] * np.log2(a[at] / m[at])).sum()) + \
        0.5 * float((b[bt] * np.log2(b[bt] / m[bt])).sum())
    return float(math.sqrt(max(div, 0.0)))


def numeric_statistics(ref: Mapping[str, Any], cur: Mapping[str, Any]) -> dict[str, Any]:
    """PSI (with a missing bin), KS distance and p-value, shift in training SDs, missing shares.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> ref = _numeric_reference(rng.normal(size=5000))
        >>> f = Feature("x", "x", None, "numeric")
        >>> cur = _numeric_window(_add_numeric(None, ref, rng.normal(0.5, 1, 300)), ref, f)
        >>> s = numeric_statistics(ref, cur)
        >>> s["psi"] > 0.15, s["ks"] > 0.15, s["p_value"] < 1e-6, round(s["shift_sd"], 1)
        (True, True, True, 0.5)

    """
    cdf = np.asarray(cur["cdf"], dtype=np.float64) if cur["n"] else None
    return _numeric_statistics(_RefArrays(ref, "numeric"), ref, cur, cdf)


def _numeric_statistics(arrays: _RefArrays, ref: Mapping[str, Any], cur: Mapping[str, Any],
                        cdf: np.ndarray | None) -> dict[str, Any]:
    n, m = cur["n"], ref["n"]
    c = np.asarray([*list(cur["counts"]), cur["missing"]], dtype=np.float64) + 0.5
    c = c / c.sum()
    r = arrays.psi_reference
    psi_value = float(((c - r) * np.log(c / r)).sum())
    d = float(np.max(np.abs(cdf - arrays.cdf))) if n and len(arrays.cdf) else 0.0
    p_ks = ks_p_value(d, n, m)
    n_all, m_all = n + cur["missing"], m + ref["missing"]
    p_missing = _proportion_p_value(cur["missing"], n_all, ref["missing"], m_all)
    shift = (cur["mean"] - ref["mean"]) / ref["sd"] if n and ref.get("sd") else None
    return {"psi": psi_value, "ks": d, "p_value": min(p_ks, p_missing), "ks_p_value": p_ks,
            "missing_p_value": p_missing, "shift_sd": shift,
            "missing": {"reference": ref["missing"] / m_all if m_all else 0.0,
                        "current": cur["missing"] / n_all if n_all else 0.0}}


def categorical_statistics(ref: Mapping[str, Any], cur: Mapping[str, Any]) -> dict[str, Any]:
    """JS and L-infinity distances over frequencies, a chi-square p-value, the unseen values.

    Missing and unseen values are categories of their own in the distances.

    Example:
        >>> ref = {"n": 1000, "missing": 0, "counts": {"a": 500, "b": 500}, "other": 0,
        ...        "capped": False, "singletons": 0.0}
        >>> s = categorical_statistics(ref, {"n": 100, "missing": 0, "counts": {"a": 50, "z": 50}})
        >>> round(s["js"], 2), s["linf"], s["unseen"]["share"], s["unseen"]["values"]
        (0.71, 0.5, 0.5, ['z'])

    """
    return _categorical_statistics(_RefArrays(ref, "categorical"), ref, cur)


def _categorical_statistics(arrays: _RefArrays, ref: Mapping[str, Any],
                            cur: Mapping[str, Any]) -> dict[str, Any]:
    known, capped = ref["counts"], ref["capped"]
    counts: dict[str, int] = {}
    other = 0
    unseen: Counter[str] = Counter()
    for value, c in cur["counts"].items():
        if value in known:
            counts[value] = counts.get(value, 0) + c
        elif capped:
            other += c
        else:
            unseen[value] += c
    if OTHER in counts:  # a real category spelled like the bucket of the rest
        other += counts[OTHER]
    n_unseen = int(sum(unseen.values()))
    r = arrays.r
    c = np.array([counts.get(k, 0) for k in known] + [other, cur["missing"], n_unseen],
                 dtype=np.float64)
    total = c.sum()
    if total == 0 or arrays.r_total == 0:
        return {"js": 0.0, "linf": 0.0, "p_value": 1.0, "unseen": {
            "share": 0.0, "count": 0, "expected": 0.0, "values": []}}
    rp, cp = arrays.rp, c / total
    used = (r > 0) | (c > 0)
    n_used = int(used.sum())
    smooth = (r + 0.5) / (arrays.r_total + 0.5 * n_used)
    expected = smooth[used] / smooth[used].sum() * total
    chi2 = float((((c[used] - expected) ** 2) / expected).sum())
    gap = np.abs(cp - rp)
    linf_at = int(np.argmax(gap))
    seen_total = total - cur["missing"]
    return {"js": jensen_shannon(rp, cp), "linf": float(gap[linf_at]),
            "linf_category": arrays.names[linf_at], "p_value": _chi2_p_value(chi2, n_used - 1),
            "chi2": chi2,
            "unseen": {"share": float(n_unseen / seen_total) if seen_total else 0.0,
                       "count": n_unseen,
                       "expected": float(ref.get("singletons", 0.0)),
                       "values": [v for v, _ in unseen.most_common(5)]}}


# ---------------------------------------------------------------------------------- rules
def thin_window_finding(window: Mapping[str, Any],
                        limits: DriftThresholds | None = None) -> Finding | None:
    """``monitor.thin_window`` (info) when the window has too few records to judge.

    Example:
        >>> thin_window_finding({"index": 3, "records": 12}).message  # doctest: +ELLIPSIS
        'Window 3 has 12 records, fewer than the 100 needed to judge drift; ...'
        >>> thin_window_finding({"index": 3, "records": 300}) is None
        True

    """
    limits = limits or DriftThresholds()
    if window.get("records", 0) >= limits.min_records:
        return None
    return Finding(
        "monitor.thin_window", Severity.INFO,
        f"Window {window.get('index')} has {window.get('records', 0)} records, fewer than the "
        f"{limits.min_records} needed to judge drift; it is reported, not judged.",
        where=None, evidence={"window": dict(window), "threshold": limits.min_records},
        hint="Use larger windows (`--window N`, or `--by week` instead of `--by day`), or "
             "lower `min_records` with `--threshold min_records=N`.")


def drift_findings(reference: Mapping[str, Any], window: Mapping[str, Any],
                   info: Mapping[str, Any], limits: DriftThresholds | None = None,
                   statistics: Mapping[tuple[str, str], Mapping[str, Any]] | None = None
                   ) -> list[Finding]:
    """``drift.feature``, ``drift.prediction`` and ``skew.unseen_categories`` of one window.

    Args:
        reference: :func:`reference_profile`'s output.
        window: :meth:`WindowAccumulator.profile`'s output.
        info: What identifies the window (index, start, end, records), copied into evidence.
        limits: The thresholds.
        statistics: Already computed :func:`numeric_statistics` or
            :func:`categorical_statistics` by ``(group, feature)``; the rest are computed.

    Returns:
        One finding per drifted field (its most drifted feature), most severe first.

    """
    limits = limits or DriftThresholds()
    if thin_window_finding({"records": window.get("records", 0)}, limits) is not None:
        return []
    found: list[Finding] = []
    for group, check in (("features", "drift.feature"), ("predictions", "drift.prediction")):
        ref_group = reference["features"] if group == "features" else (
            reference.get("predictions") or {}).get("features", {})
        per_field: dict[str, Finding] = {}
        for name, cur in window.get(group, {}).items():
            ref = ref_group.get(name)
            if ref is None:
                continue
            known = (statistics or {}).get((group, name))
            for finding in _feature_findings(check, name, ref, cur, info, limits, known):
                if finding.check != check:
                    found.append(finding)  # skew findings are kept per feature
                    continue
                best = per_field.get(finding.where or "")
                if best is None or _rank(finding) > _rank(best):
                    per_field[finding.where or ""] = finding
        found.extend(per_field.values())
    return sorted(found, key=_rank, reverse=True)


def _rank(f: Finding) -> tuple[int, float]:
    order = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}[f.severity]
    return order, float(f.evidence.get("value", 0.0))


def _feature_findings(check: str, name: str, ref: Mapping[str, Any], cur: Mapping[str, Any],
                      info: Mapping[str, Any], limits: DriftThresholds,
                      known: Mapping[str, Any] | None = None) -> list[Finding]:
    field = cur.get("field") or name
    subject = field if not cur.get("summary") else f"{field} ({cur['summary']})"
    what = "The model's predictions" if check == "drift.prediction" else f"Field '{subject}'"
    if cur["kind"] == "numeric":
        if not cur["n"] and not cur["missing"]:
            return []
        s = known or numeric_statistics(ref, cur)
        big_psi, big_ks = s["psi"] >= limits.psi_warning, s["ks"] >= limits.ks_warning
        if not ((big_psi or big_ks) and s["p_value"] < limits.significance):
            return []
        statistic = "psi" if big_psi or not big_ks else "ks"
        value = s[statistic]
        threshold = limits.psi_warning if statistic == "psi" else limits.ks_warning
        error = s["psi"] >= limits.psi_error
        shift = f", a shift of {s['shift_sd']:+.2f} training SDs in the mean" \
            if s["shift_sd"] is not None else ""
        message = (f"{what} drifted in window {info.get('index')}: {statistic.upper()} "
                   f"{value:.3g} >= {threshold:g} (KS p={s['p_value']:.2g}{shift}).")
        reference = {k: ref.get(k) for k in ("mean", "sd", "quantiles")}
        current = {k: cur.get(k) for k in ("mean", "sd", "quantiles", "min", "max")}
        reference["missing"], current["missing"] = s["missing"]["reference"], \
            s["missing"]["current"]
        evidence = {"statistic": statistic, "value": value, "threshold": threshold,
                    "psi": s["psi"], "ks": s["ks"], "p_value": s["p_value"],
                    "test": "two-sample Kolmogorov-Smirnov (missing share: two-proportion)",
                    "shift_sd": s["shift_sd"], "feature": name, "summary": cur.get("summary"),
                    "window": dict(info), "reference": reference, "current": current}
        return [Finding(check, Severity.ERROR if error else Severity.WARNING, message,
                        where=field, evidence=evidence, hint=_hint(check))]
    if not cur["n"] and not cur["missing"]:
        return []
    s = known or categorical_statistics(ref, cur)
    found = []
    unseen = s["unseen"]
    excess = unseen["share"] - unseen["expected"]
    if check == "drift.feature" and excess >= limits.unseen_share and \
            unseen["count"] >= limits.unseen_min_count:
        found.append(Finding(
            "skew.unseen_categories",
            Severity.ERROR if unseen["share"] >= limits.unseen_error else Severity.WARNING,
            f"{what}: {unseen['share']:.1%} of window {info.get('index')}'s values were never "
            f"seen in training ({unseen['count']}, e.g. {', '.join(map(repr, unseen['values']))})"
            f"; about {unseen['expected']:.1%} is expected.",
            where=field, evidence={"statistic": "unseen_share", "value": unseen["share"],
                                   "threshold": limits.unseen_share, "expected":
                                   unseen["expected"], "count": unseen["count"],
                                   "values": unseen["values"], "feature": name,
                                   "window": dict(info), "reference": _top(ref, ref["n"]),
                                   "current": _top(cur, cur["n"])},
            hint="A code renamed or added upstream (a new neighbourhood code, another spelling) "
                 "reaches the model as an unknown category: map it back at the source, or "
                 "retrain with it."))
    big_js, big_linf = s["js"] >= limits.js_warning, s["linf"] >= limits.linf_warning
    if (big_js or big_linf) and s["p_value"] < limits.significance:
        statistic = "js" if big_js or not big_linf else "linf"
        threshold = limits.js_warning if statistic == "js" else limits.linf_warning
        found.append(Finding(
            check, Severity.ERROR if s["js"] >= limits.js_error else Severity.WARNING,
            f"{what} drifted in window {info.get('index')}: "
            f"{'Jensen-Shannon distance' if statistic == 'js' else 'L-infinity distance'} "
            f"{s[statistic]:.3g} >= {threshold:g} (chi-square p={s['p_value']:.2g}; the share "
            f"of {s['linf_category']!r} moved most).",
            where=field, evidence={"statistic": statistic, "value": s[statistic],
                                   "threshold": threshold, "js": s["js"], "linf": s["linf"],
                                   "linf_category": s["linf_category"], "p_value": s["p_value"],
                                   "test": "chi-square", "feature": name,
                                   "summary": cur.get("summary"), "window": dict(info),
                                   "reference": _top(ref, ref["n"]),
                                   "current": _top(cur, cur["n"])},
            hint=_hint(check)))
    return found


def _top(profile: Mapping[str, Any], n: int, k: int = 5) -> dict[str, Any]:
    counts = Counter(profile.get("counts") or {})
    return {"records": n, "missing": profile.get("missing", 0),
            "top": [[v, c / n if n else 0.0] for v, c in counts.most_common(k)]}


def _hint(check: str) -> str:
    if check == "drift.prediction":
        return ("The model answers differently from training: look for the inputs that "
                "drifted in the same window; if none did, the model meets a new mix of cases. "
                "Check its error on labelled records of the window (`--labels`).")
    return ("Serving inputs no longer look like training's: check the source for a changed "
            "unit, encoding or default; if the world changed, retrain on recent data and "
            "compare the model's error on the window (`--labels`).")


# ------------------------------------------------------------------------------ performance
def performance_metric(pairs: Sequence[tuple[Any, Any]]) -> tuple[str, float] | None:
    """``("rmse", v)`` for numeric labels, ``("brier", v)`` for 0/1 labels.

    A prediction outside [0, 1] is taken for a logit; ``None`` when the pairs are not scalar
    numbers.

    Example:
        >>> performance_metric([(1.0, 2.0), (3.0, 3.0)])
        ('rmse', 0.7071067811865476)
        >>> performance_metric([(0.5, 1), (0.5, 0)])
        ('brier', 0.25)

    """
    try:
        p = np.array([float(a) for a, _ in pairs], dtype=np.float64)
        y = np.array([float(b) for _, b in pairs], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if not len(p):
        return None
    if set(np.unique(y)) <= {0.0, 1.0}:
        prob = p if ((p >= 0) & (p <= 1)).all() else 1 / (1 + np.exp(-p))
        return "brier", float(((prob - y) ** 2).mean())
    return "rmse", float(np.sqrt(((p - y) ** 2).mean()))


def performance_findings(expected: Mapping[str, Any] | None, pairs: Sequence[tuple[Any, Any]],
                         info: Mapping[str, Any], limits: DriftThresholds | None = None
                         ) -> tuple[dict[str, Any] | None, list[Finding]]:
    """The window's error against the test split's: ``(measurement, findings)``.

    Args:
        expected: ``{"metric", "value"}`` of the test split (from ``reference.json``), or
            ``None``: the window's metric is reported, not judged.
        pairs: ``(prediction, label)`` of the window's labelled records.
        info: What identifies the window.
        limits: The thresholds.

    Example:
        >>> m, f = performance_findings({"metric": "rmse", "value": 1.0},
        ...                             [(0.0, 2.0)] * 60, {"index": 0})
        >>> m["value"], [x.check for x in f]
        (2.0, ['drift.performance'])

    """
    limits = limits or DriftThresholds()
    if len(pairs) < limits.min_labels:
        return ({"labelled": len(pairs)} if pairs else None), []
    measured = performance_metric(pairs)
    if measured is None:
        return {"labelled": len(pairs)}, []
    name, value = measured
    out: dict[str, Any] = {"metric": name, "value": value, "labelled": len(pairs)}
    if not expected or expected.get("metric") != name or not expected.get("value"):
        return out, []
    out["test"] = expected["value"]
    ratio = value / expected["value"] - 1
    out["worse_by"] = ratio
    if ratio < limits.performance_ratio:
        return out, []
    return out, [Finding(
        "drift.performance",
        Severity.ERROR if ratio >= limits.performance_error_ratio else Severity.WARNING,
        f"The model's {name} on window {info.get('index')}'s {len(pairs)} labelled records is "
        f"{value:.4g}, {ratio:.0%} worse than its {expected['value']:.4g} on the test split.",
        where="prediction", evidence={"statistic": name, "value": value,
                                      "threshold": limits.performance_ratio,
                                      "worse_by": ratio, "test": expected["value"],
                                      "labelled": len(pairs), "window": dict(info)},
        hint="The model has become worse on recent data: retrain on data that includes it, "
             "and check the inputs that drifted in this window.")]
