"""Learning-curve forecasts: when will the validation metric be good enough (``effort.*``).

A validation metric's curve (epoch -> value) is fitted with several parametric families of
learning curves (after Domhan et al. 2015), each member is weighted by how well it predicted
points it had not seen (fitted on the first points, scored on the last ones), and the weighted
members give a predictive *distribution*: samples of whole curves (each member's fitted trend,
shifted beyond the last epoch seen by an error that grows like the member's held-out error
with the distance ahead, plus the metric's own epoch-to-epoch noise), from which come
quantiles of the metric at the planned last epoch, of the epoch at which a target is reached,
and the probability of reaching it within the planned epochs. No member forecasts more further
improvement than ``ceiling`` times the improvement seen so far.

The families, written for a curve that rises towards an asymptote ``c`` (a falling metric,
such as a loss, is flipped first; every curve is scaled so that its observed range is 1):

======================  ====================================  ==============================
member                  curve                                 also known as
======================  ====================================  ==============================
``constant``            c                                     a plateau already reached
``log_linear``          a + b log x                           log-log linear (no ceiling)
``ilog2``               c - a / log(x + 1)
``pow3``                c - a x^-alpha                        power law
``pow4``                c - a (x + b)^-alpha
``exp3``                c - a exp(-b x)                       exponential
``janoschek``           c - (c - beta) exp(-kappa x^delta)    Weibull, exp4 (the same family)
``mmf``                 c - (c - beta) / (1 + (kappa x)^delta)  log-power, Hill (the same)
======================  ====================================  ==============================

``x`` counts epochs from 1 (the first validation after one epoch of training).

Findings: ``effort.forecast`` (info: the sentence), ``effort.futile`` (warning: the target
has under ``futile_probability`` chance within the planned epochs, judged only after
``futile_min_points`` validations and ``futile_min_fraction`` of the planned epochs, once the
curve has begun to level off (its last third gained less than its middle third), and only for
a target beyond the straight line of its recent pace) and
``effort.thin_evidence`` (info: too few points, or noise as large as the trend).

Example:
    >>> import numpy as np
    >>> epochs = np.arange(1, 16)
    >>> ap = 0.8 - 0.5 * epochs ** -0.7 + np.random.default_rng(0).normal(0, 0.005, 15)
    >>> fc = forecast_curve(epochs, ap, planned=30, metric="val/ap", target=0.95)
    >>> fc.status, fc.higher_is_better
    ('forecast', True)
    >>> lo, hi = fc.final[0.1], fc.final[0.9]
    >>> bool(lo < 0.8 - 0.5 * 30 ** -0.7 < hi)
    True
    >>> [f.check for f in effort_findings(fc)]
    ['effort.forecast', 'effort.futile']

"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from guardrail.checks.baseline import guess_higher_is_better
from guardrail.findings import Finding, Severity
from guardrail.thresholds import Thresholds, limit

__all__ = ["FAMILIES", "EffortThresholds", "Forecast", "effort_findings", "forecast_curve",
           "metric_bounds", "warm_start"]

EFFORT_FILE = "effort.json"  # the forecast EffortEstimator writes into the run directory
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
# Tuned on the tuning half of the calibration curves only (scripts/bench_effort.py): the
# temperature of the held-out weighting (1: weights ~ exp(-mse / 2 sigma^2)), the factor on
# each member's held-out error that spreads its extrapolation, how that spread grows with the
# distance ahead, and the ceiling on further improvement (in observed ranges).
TEMPERATURE = 1.0
INFLATION = 1.0
GROWTH = 0.5
CEILING = 1.0
SAMPLES = 400
HOLDOUT_SHARE = 0.3  # share of the points (at least one) a member must predict unseen
HORIZON = 4  # the target is looked for up to this many times the planned epochs
# Metrics that live in [0, 1] by name, and metrics that cannot go below 0.
_UNIT = ("ap", "auroc", "auc", "accuracy", "acc", "precision", "recall", "f1", "ndcg", "iou",
         "dice", "average_precision", "r2", "hit", "hitrate", "map", "mrr")
_NON_NEGATIVE = ("loss", "rmse", "mse", "mae", "nll", "error", "err", "perplexity", "ce",
                 "bce", "usd")


@dataclasses.dataclass(frozen=True)
class EffortThresholds(Thresholds):
    """What ``effort.*`` judges against.

    Example:
        >>> EffortThresholds(futile_probability=0.01).futile_probability
        0.01
        >>> EffortThresholds(min_points=1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        guardrail.errors.ConfigError: EffortThresholds: min_points=1 must be in [3, inf)...

    """

    min_points: int = limit(
        4, "effort.thin_evidence", "validations needed before any forecast is made", low=3,
        integer=True)
    max_noise_ratio: float = limit(
        0.5, "effort.thin_evidence", "epoch-to-epoch noise (sd), as a share of the change "
        "from the curve's first to its last third, above which the curve is too noisy to "
        "extrapolate", low=0, open_low=True)
    interval: float = limit(
        0.8, "effort.forecast", "coverage of the reported interval", low=0.5, high=0.99)
    futile_probability: float = limit(
        0.05, "effort.futile", "chance of reaching the target within the planned epochs below "
        "which the run is judged futile", low=0, high=0.5, open_low=True)
    futile_min_points: int = limit(
        6, "effort.futile", "validations needed before a run can be judged futile", low=3,
        integer=True)
    futile_min_fraction: float = limit(
        0.25, "effort.futile", "share of the planned epochs that must have run before a run "
        "can be judged futile", low=0, high=1)


DEFAULTS = EffortThresholds()


# --------------------------------------------------------------------------------- families
@dataclasses.dataclass(frozen=True)
class Family:
    """One parametric curve: its function, a starting guess and bounds (all in scaled units)."""

    name: str
    params: tuple[str, ...]
    fn: Callable[..., Any]
    start: Callable[[float, float], list[float]]
    bounds: Callable[[float, float, float], tuple[list[float], list[float]]]


def _c(lo: float, top: float) -> tuple[float, float]:
    """Range of an asymptote: from a range below the worst value seen up to ``top``."""
    return lo - 1.0, top


FAMILIES: tuple[Family, ...] = (
    Family("constant", ("c",), lambda x, c: c + 0.0 * x,
           lambda lo, hi: [hi], lambda lo, hi, top: ([lo - 1.0], [hi + 1.0])),
    Family("log_linear", ("a", "b"), lambda x, a, b: a + b * np.log(x),
           lambda lo, hi: [lo, 0.3], lambda lo, hi, top: ([lo - 10, -5.0], [hi + 10, 10.0])),
    Family("ilog2", ("c", "a"), lambda x, c, a: c - a / np.log(x + 1.0),
           lambda lo, hi: [hi + 0.5, 1.0],
           lambda lo, hi, top: ([_c(lo, top)[0], 0.0], [_c(lo, top)[1], 50.0])),
    Family("pow3", ("c", "a", "alpha"), lambda x, c, a, al: c - a * x ** -al,
           lambda lo, hi: [hi + 0.2, 1.0, 0.5],
           lambda lo, hi, top: ([_c(lo, top)[0], 0.0, 0.01], [_c(lo, top)[1], 50.0, 4.0])),
    Family("pow4", ("c", "a", "b", "alpha"),
           lambda x, c, a, b, al: c - a * (x + b) ** -al,
           lambda lo, hi: [hi + 0.2, 1.0, 0.5, 0.5],
           lambda lo, hi, top: ([_c(lo, top)[0], 0.0, -0.99, 0.01],
                                [_c(lo, top)[1], 1e3, 50.0, 4.0])),
    Family("exp3", ("c", "a", "b"), lambda x, c, a, b: c - a * np.exp(-b * x),
           lambda lo, hi: [hi + 0.1, 1.5, 0.3],
           lambda lo, hi, top: ([_c(lo, top)[0], 0.0, 1e-4], [_c(lo, top)[1], 200.0, 5.0])),
    Family("janoschek", ("c", "beta", "kappa", "delta"),
           lambda x, c, be, k, d: c - (c - be) * np.exp(-k * x ** d),
           lambda lo, hi: [hi + 0.1, lo - 0.5, 0.5, 0.7],
           lambda lo, hi, top: ([_c(lo, top)[0], lo - 3.0, 1e-4, 0.05],
                           [_c(lo, top)[1], hi + 1.0, 10.0, 3.0])),
    Family("mmf", ("c", "beta", "kappa", "delta"),
           lambda x, c, be, k, d: c - (c - be) / (1.0 + (k * x) ** d),
           lambda lo, hi: [hi + 0.2, lo - 0.5, 0.5, 1.0],
           lambda lo, hi, top: ([_c(lo, top)[0], lo - 3.0, 1e-4, 0.05],
                           [_c(lo, top)[1], hi + 1.0, 10.0, 5.0])),
)
_BY_NAME = {f.name: f for f in FAMILIES}


@dataclasses.dataclass
class _Fit:
    family: Family
    theta: np.ndarray
    sigma: float
    holdout: np.ndarray | None = None  # the parameters fitted without the held-out points


def _fit(family: Family, x: np.ndarray, z: np.ndarray, lo: float, hi: float, top: float,
         start: Sequence[float] | None = None, iterations: int = 30) -> _Fit | None:
    """Least squares within the family's bounds; None when it cannot be fitted.

    A small Levenberg-Marquardt with steps projected onto the bounds and a forward-difference
    Jacobian: scipy's ``least_squares`` spends about 2 ms per iteration on bookkeeping, this
    one well under 0.1 ms on 200 points, which keeps a forecast within its 50 ms budget.
    """
    p = len(family.params)
    if len(x) < p + 1 and family.name != "constant":
        return None
    low, high = (np.asarray(b, float) for b in family.bounds(lo, hi, top))
    guesses = [family.start(lo, hi)] if start is None else [start, family.start(lo, hi)]
    with np.errstate(all="ignore"):
        for guess in guesses:
            theta = np.clip(np.asarray(guess, float), low, high)
            fitted = family.fn(x, *theta) + 0.0 * x
            cost = float((fitted - z) @ (fitted - z))
            if math.isfinite(cost):
                break
        else:
            return None
        damping = 1e-3
        jac = _jacobian(family.fn, x, theta, fitted, high)
        for _ in range(iterations):
            if jac is None:
                return None
            a, g = jac.T @ jac, jac.T @ (fitted - z)
            diag = np.diag(np.diag(a)) + 1e-12 * np.eye(p)
            improved = done = False
            while damping < 1e10:
                step = np.linalg.lstsq(a + damping * diag, -g, rcond=None)[0]
                new = np.clip(theta + step, low, high)
                f_new = family.fn(x, *new) + 0.0 * x
                c_new = float((f_new - z) @ (f_new - z))
                if c_new < cost:  # False for NaN
                    done = cost - c_new <= 1e-6 * cost
                    theta, fitted, cost, damping, improved = new, f_new, c_new, damping / 3, True
                    break
                damping *= 4
            if not improved or done:
                break
            jac = _jacobian(family.fn, x, theta, fitted, high)
    return _Fit(family, theta, math.sqrt(cost / max(len(x) - p, 1)))


def _jacobian(fn: Callable[..., Any], x: np.ndarray, theta: np.ndarray, fitted: np.ndarray,
              high: np.ndarray) -> np.ndarray | None:
    """Forward differences (stepping inwards at an upper bound), all parameters in one call."""
    h = 1e-6 * np.maximum(1.0, np.abs(theta))
    h = np.where(theta + h > high, -h, h)
    shifted = theta[None, :] + np.diag(h)  # p x p: row j moves parameter j
    values = fn(x[None, :], *(shifted[:, j:j + 1] for j in range(len(theta)))) + 0.0 * x
    jac = ((values - fitted[None, :]) / h[:, None]).T  # n x p
    return jac if math.isfinite(float(np.sum(jac))) else None


# ------------------------------------------------------------------------------- forecasts
@dataclasses.dataclass
class Forecast:
    """A learning-curve forecast; ``status`` is ``forecast`` or ``thin``.

    Attributes:
        metric: The metric's name.
        higher_is_better: Its direction.
        epochs: Epochs of the observed validations (counted from 1).
        values: The observed values.
        planned: The planned last epoch (None when the run has no planned end).
        status: ``forecast``, or ``thin`` (``reason`` says why no forecast was made).
        reason: Why the evidence is thin ('' otherwise).
        members: Per member: name, parameters (scaled units), weight, held-out RMSE.
        final: Quantile -> the metric at the planned last epoch (or at the horizon).
        band: Epochs and the 10/50/90% quantiles of the curve at each (for the plot).
        target: The target value, or None.
        p_reach: Chance that the target is reached by the planned last epoch.
        reach: Quantile -> epoch at which the curve reaches the target (inf: not within
            ``HORIZON`` times the planned epochs).
        plateau: Quantile -> the metric at the horizon (where the curve levels off).
        noise: Epoch-to-epoch noise (sd) of the metric, in its own units.

    """

    metric: str
    higher_is_better: bool
    epochs: list[float]
    values: list[float]
    planned: int | None
    status: str = "forecast"
    reason: str = ""
    members: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    final: dict[float, float] = dataclasses.field(default_factory=dict)
    band: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    target: float | None = None
    p_reach: float | None = None
    reach: dict[float, float] = dataclasses.field(default_factory=dict)
    plateau: dict[float, float] = dataclasses.field(default_factory=dict)
    noise: float | None = None
    horizon: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``effort.json``): quantile keys as strings, infinities as None."""
        def clean(v: Any) -> Any:
            if isinstance(v, dict):
                return {str(k): clean(x) for k, x in v.items()}
            if isinstance(v, list | tuple):
                return [clean(x) for x in v]
            if isinstance(v, float | np.floating):
                return float(v) if math.isfinite(v) else None
            return v
        return clean(dataclasses.asdict(self))

    def sentence(self) -> str:
        """The forecast in one sentence a product owner can read.

        Example:
            >>> fc = Forecast("val/ap", True, [1.0, 2.0], [0.5, 0.6], 60, target=0.8,
            ...               p_reach=0.7, reach={0.1: 22.0, 0.5: 34.0, 0.9: 61.0},
            ...               final={0.1: 0.76, 0.5: 0.83, 0.9: 0.88})
            >>> fc.sentence()  # doctest: +NORMALIZE_WHITESPACE
            'val/ap will reach 0.8 by epoch 34 (80% interval 22-61); 70% chance within the
             planned 60 epochs.'

        """
        if self.status != "forecast":
            return f"No forecast for {self.metric} yet: {self.reason}."
        lo, hi = min(self.final), max(self.final)
        share = f"{round((hi - lo) * 100)}%"
        planned = f"the planned {self.planned} epochs" if self.planned else \
            f"{self.horizon} epochs"
        if self.target is not None and self.reach:
            mid, r_lo, r_hi = self.reach[0.5], self.reach[lo], self.reach[hi]
            chance = f"{_pct(self.p_reach or 0.0)} chance within {planned}"
            if math.isfinite(mid):
                upper = _epoch(r_hi) if math.isfinite(r_hi) else f"beyond {self.horizon}"
                return (f"{self.metric} will reach {_fmt(self.target)} by epoch {_epoch(mid)} "
                        f"({share} interval {_epoch(r_lo)}-{upper}); {chance}.")
            return (f"{self.metric} is not expected to reach {_fmt(self.target)}: it "
                    f"{self._level(lo, hi, share)}; {chance}.")
        return f"{self.metric} {self._level(lo, hi, share)}."

    def _level(self, lo: float, hi: float, share: str) -> str:
        f_lo, f_mid, f_hi = self.final[lo], self.final[0.5], self.final[hi]
        p_mid = self.plateau.get(0.5, f_mid)
        if abs(p_mid - f_mid) <= 0.5 * (f_hi - f_lo):
            return f"plateaus near {_fmt(f_mid)} ({share} interval {_fmt(f_lo)}-{_fmt(f_hi)})"
        at = self.planned or self.horizon
        return (f"will be about {_fmt(f_mid)} at epoch {at} ({share} interval {_fmt(f_lo)}-"
                f"{_fmt(f_hi)}), still {'rising' if self.higher_is_better else 'falling'}")


def metric_bounds(name: str) -> tuple[float, float]:
    """The range a metric can take, from its name: [0, 1], [0, inf) or unbounded.

    Example:
        >>> metric_bounds("val/average_precision"), metric_bounds("val/loss")
        ((0.0, 1.0), (0.0, inf))
        >>> metric_bounds("val/log_score")
        (-inf, inf)

    """
    tokens = name.lower().replace("/", "_").replace("@", "_").split("_")
    if any(t in _UNIT for t in tokens) or "average_precision" in name.lower():
        return 0.0, 1.0
    if any(t.rstrip("0123456789") in _NON_NEGATIVE for t in tokens):
        return 0.0, math.inf
    return -math.inf, math.inf


def _noise(z: np.ndarray) -> float:
    """Epoch-to-epoch noise (sd) from second differences: a smooth trend cancels out."""
    if len(z) < 3:
        return math.inf
    # The median absolute second difference (robust to the bend of the first epochs); the
    # second difference of white noise has sd sqrt(6) times the noise's.
    return float(1.4826 * np.median(np.abs(np.diff(z, 2))) / math.sqrt(6.0))


def forecast_curve(
    epochs: Sequence[float], values: Sequence[float], planned: int | None, metric: str = "metric",
    *, higher_is_better: bool | None = None, target: float | None = None,
    bounds: tuple[float, float] | None = None, limits: EffortThresholds = DEFAULTS,
    temperature: float = TEMPERATURE, inflation: float = INFLATION, growth: float = GROWTH,
    ceiling: float = CEILING, samples: int = SAMPLES,
    members: Sequence[str] | None = None, seed: int = 0,
    warm: Mapping[str, Sequence[float]] | None = None,
) -> Forecast:
    """Fit the curve's members, weight them by held-out error, and sample the forecast.

    Args:
        epochs: Epoch of each validation, counted from 1.
        values: The metric at each (non-finite values are dropped).
        planned: The planned last epoch; None: forecast ``HORIZON`` times the epochs seen.
        metric: Its name (the direction and range are guessed from it when not given).
        higher_is_better: The metric's direction; None: from the name, else from the curve.
        target: A value to reach, or None.
        bounds: The metric's range; None: :func:`metric_bounds`.
        limits: The thresholds.
        temperature: Of the held-out weighting (higher: flatter weights).
        inflation: Factor on each member's held-out error, the spread of its extrapolation.
        growth: How that spread grows with the distance ahead (0.5: as a random walk; 1:
            linearly, as the error of a wrong trend).
        ceiling: The most further improvement any member may forecast, in units of the
            improvement seen so far (the curve's observed range).
        samples: Curves drawn for the predictive distribution.
        members: Names of the families used; None: all of :data:`FAMILIES`.
        seed: Of the draws (forecasts are reproducible).
        warm: Member name (``name@holdout`` for the fit without the held-out points) ->
            parameters to start from: the previous epoch's fits (:func:`warm_start`).

    """
    x = np.asarray(epochs, float)
    y = np.asarray(values, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    direction = higher_is_better if higher_is_better is not None else \
        guess_higher_is_better(metric)
    if direction is None:
        direction = bool(len(y) < 2 or y[-1] >= y[0])
    fc = Forecast(metric, bool(direction), x.tolist(), y.tolist(), planned, target=target)
    if len(x) < limits.min_points:
        fc.status, fc.reason = "thin", (f"{len(x)} validation{'s' if len(x) != 1 else ''} so "
                                        f"far, {limits.min_points} are needed")
        return fc
    sign = 1.0 if direction else -1.0
    scale = float(np.ptp(y)) or max(abs(float(y[0])), 1.0) * 1e-6
    z = sign * (y - y[0]) / scale
    lo, hi = float(z.min()), float(z.max())
    noise = _noise(z)
    fc.noise = noise * scale
    third = max(1, len(z) // 3)
    change = abs(float(np.mean(z[-third:]) - np.mean(z[:third])))
    if noise > limits.max_noise_ratio * change:
        fc.status, fc.reason = "thin", (
            f"its epoch-to-epoch noise ({_fmt(fc.noise)}) is "
            f"{'larger than' if noise > change else f'{noise / change:.0%} of'} its change "
            f"from the first to the last third of the epochs ({_fmt(change * scale)}), too "
            "noisy to extrapolate")
        return fc
    families = [_BY_NAME[m] for m in members] if members is not None else list(FAMILIES)
    top = hi + ceiling
    fits = _weighted_fits(families, x, z, lo, hi, top, temperature, noise, warm or {})
    if not fits:
        fc.status, fc.reason = "thin", "no learning-curve family could be fitted"
        return fc
    planned_x = int(planned) if planned else int(x.max())
    horizon = HORIZON * max(planned_x, int(x.max()))
    fc.horizon = horizon
    grid = np.unique(np.concatenate([np.arange(1, planned_x + 1, dtype=float),
                                     np.geomspace(max(planned_x, 1), horizon, 40)]))
    h = max(1, round(HOLDOUT_SHARE * len(x)))
    lead = float(np.mean(x[-h:] - x[-h - 1]))  # how far ahead the held-out points were
    curves, noise_sd = _draw(fits, grid, float(x.max()), lead, samples, inflation, growth,
                             seed)
    curves = np.minimum(curves, top)  # no member improves beyond the ceiling
    natural = bounds if bounds is not None else metric_bounds(metric)
    def to_y(zz: np.ndarray) -> np.ndarray:
        return np.clip(y[0] + sign * zz * scale, *natural)

    at_planned = int(np.searchsorted(grid, planned_x))
    rng = np.random.default_rng(seed + 1)
    final_z = curves[:, at_planned] + rng.normal(0.0, 1.0, len(curves)) * noise_sd
    final = to_y(final_z)
    half = (1.0 - limits.interval) / 2
    qs = sorted({*QUANTILES, round(half, 6), round(1.0 - half, 6)})
    fc.final = {q: float(v) for q, v in zip(qs, np.quantile(final, qs), strict=True)}
    fc.plateau = {q: float(v) for q, v in zip(qs, np.quantile(to_y(curves[:, -1]), qs),
                                               strict=True)}
    shown = grid <= planned_x
    band = np.quantile(to_y(curves[:, shown]), [half, 0.5, 1.0 - half], axis=0)
    fc.band = {"epoch": grid[shown].tolist(), "low": band[0].tolist(), "mid": band[1].tolist(),
               "high": band[2].tolist()}
    fc.members = [{"name": f.family.name, "weight": round(w, 4), "params": f.theta.tolist(),
                   "holdout_params": None if f.holdout is None else f.holdout.tolist(),
                   "holdout_rmse": None if not math.isfinite(e) else e * scale,
                   "sigma": f.sigma * scale}
                  for f, w, e in fits]
    if target is not None:
        reached = sign * (to_y(curves) - target) >= 0  # the trend at or past the target
        first = np.where(reached.any(axis=1), grid[np.argmax(reached, axis=1)], math.inf)
        # By the planned end, the measured value counts: trend plus the metric's noise.
        fc.p_reach = float(np.mean(sign * (final - target) >= 0)) if planned else \
            float(np.mean(np.isfinite(first)))
        fc.reach = {q: float(v) for q, v in zip(
            qs, np.quantile(first, qs, method="inverted_cdf"), strict=True)}
    return fc


def _weighted_fits(families: Sequence[Family], x: np.ndarray, z: np.ndarray, lo: float,
                   hi: float, top: float, temperature: float, noise: float,
                   warm: Mapping[str, Sequence[float]]) -> list[tuple[_Fit, float, float]]:
    """(full fit, weight, held-out RMSE) per member that could be fitted and scored."""
    n = len(x)
    h = max(1, round(HOLDOUT_SHARE * n))
    scored = []
    for family in families:
        start = warm.get(family.name)
        part = _fit(family, x[:n - h], z[:n - h], lo, hi, top,
                    warm.get(f"{family.name}@holdout", start))
        if part is None:
            continue
        err = float(np.sqrt(np.mean((family.fn(x[n - h:], *part.theta) - z[n - h:]) ** 2)))
        full = _fit(family, x, z, lo, hi, top, part.theta if start is None else start)
        if full is None or not math.isfinite(err):
            continue
        full.holdout = part.theta
        scored.append((full, err))
    if not scored:
        return []
    # The noise floor: an error at the noise level is as good as a member can do.
    sd = max(noise, min(f.sigma for f, _ in scored), 1e-3)
    logits = np.array([-0.5 * (e / sd) ** 2 / temperature for _, e in scored])
    weights = np.exp(logits - logits.max())
    weights /= weights.sum()
    return [(f, float(w), e) for (f, e), w in zip(scored, weights, strict=True)]


def _draw(fits: Sequence[tuple[_Fit, float, float]], grid: np.ndarray, last: float,
          lead: float, samples: int, inflation: float, growth: float,
          seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sampled curves over ``grid`` (samples x len(grid)) and each sample's noise sd.

    Each member gets samples in proportion to its weight: its fitted curve, shifted beyond
    the last observed epoch by an error that grows with the distance, ``inflation`` times the
    member's held-out error at ``lead`` epochs ahead, times ``(distance / lead) ** growth``
    (one draw per sampled curve, so a curve stays a curve), plus the metric's own noise at
    the end.
    """
    rng = np.random.default_rng(seed)
    weights = np.array([w for _, w, _ in fits])
    counts = rng.multinomial(samples, weights / weights.sum())
    ahead = (np.clip(grid - last, 0.0, None) / lead) ** growth
    curves, noise = [], []
    for (fit, _, err), k in zip(fits, counts, strict=True):
        if k == 0:
            continue
        with np.errstate(all="ignore"):
            trend = fit.family.fn(grid, *fit.theta) + 0.0 * grid
        spread = inflation * max(err, fit.sigma) * ahead
        curves.append(trend[None, :] + rng.normal(0.0, 1.0, (k, 1)) * spread[None, :])
        noise.append(np.full(k, fit.sigma))
    return np.concatenate(curves), np.concatenate(noise)


def warm_start(fc: Forecast) -> dict[str, list[float]]:
    """A forecast's fitted parameters, to start the next epoch's fits from.

    Example:
        >>> fc = forecast_curve(range(1, 9), [0.3, 0.45, 0.52, 0.56, 0.58, 0.6, 0.6, 0.61], 20)
        >>> sorted(warm_start(fc))[:2]
        ['constant', 'constant@holdout']

    """
    out = {}
    for m in fc.members:
        out[m["name"]] = m["params"]
        if m.get("holdout_params") is not None:
            out[f"{m['name']}@holdout"] = m["holdout_params"]
    return out


# -------------------------------------------------------------------------------- findings
def effort_findings(fc: Forecast, limits: EffortThresholds = DEFAULTS) -> list[Finding]:
    """``effort.forecast`` or ``effort.thin_evidence``, and ``effort.futile`` when it holds.

    Example:
        >>> [f.check for f in effort_findings(forecast_curve([1, 2], [0.5, 0.6], 10, "val/ap"))]
        ['effort.thin_evidence']

    """
    evidence: dict[str, Any] = {"points": len(fc.values), "planned_epochs": fc.planned}
    if fc.status != "forecast":
        return [Finding("effort.thin_evidence", Severity.INFO, fc.sentence(), where=fc.metric,
                        evidence={**evidence, "reason": fc.reason},
                        hint="Wait for more validation epochs; a noisy metric needs a larger "
                             "validation split or validation every epoch.")]
    evidence.update({f"final_q{round(q * 100)}": v for q, v in fc.final.items()})
    weights = {m["name"]: m["weight"] for m in fc.members}
    evidence["top_member"] = max(weights, key=weights.get)  # type: ignore[arg-type]
    if fc.target is not None:
        evidence.update({"target": fc.target, "p_reach": fc.p_reach,
                         **{f"reach_q{round(q * 100)}": (v if math.isfinite(v) else None)
                            for q, v in fc.reach.items()}})
    out = [Finding("effort.forecast", Severity.INFO, fc.sentence(), where=fc.metric,
                   evidence=evidence, hint="")]
    seen = max(fc.epochs) if fc.epochs else 0
    if fc.target is not None and fc.planned and fc.p_reach is not None and \
            fc.p_reach < limits.futile_probability and \
            len(fc.values) >= limits.futile_min_points and \
            seen >= limits.futile_min_fraction * fc.planned and _bending(fc) and \
            _beyond_trend(fc, fc.target):
        out.append(Finding(
            "effort.futile", Severity.WARNING,
            f"{fc.metric} has a {_pct(fc.p_reach)} chance of reaching {_fmt(fc.target)} within "
            f"the planned {fc.planned} epochs: it is expected to end near "
            f"{_fmt(fc.final[0.5])} ({round((max(fc.final) - min(fc.final)) * 100)}% interval "
            f"{_fmt(fc.final[min(fc.final)])}-{_fmt(fc.final[max(fc.final)])}).",
            where=fc.metric, evidence=evidence,
            hint="More epochs will not get there: change the model, the data or the target "
                 "(`effort.target`); under guardrails=strict the run stops here."))
    return out


def _bending(fc: Forecast) -> bool:
    """Whether the curve has begun to level off: its last third gained less than its middle.

    A curve still speeding up (a slow start, as autoencoders and sigmoid classifiers often
    have) says nothing yet about its ceiling, so it is never judged futile.
    """
    v = np.asarray(fc.values, float) * (1.0 if fc.higher_is_better else -1.0)
    third = len(v) // 3
    if third < 1:
        return False
    first, middle, last = (float(np.mean(p)) for p in (v[:third], v[third:-third], v[-third:]))
    return last - middle < middle - first


def _beyond_trend(fc: Forecast, target: float) -> bool:
    """Whether ``target`` is out of reach even at the curve's recent pace to the planned end.

    The pace is the gain from the middle to the last third of the epochs seen; a curve that
    levels off gains less than that, so a target beyond this straight line is beyond the
    curve (the members' ceiling alone does not make a run futile).
    """
    sign = 1.0 if fc.higher_is_better else -1.0
    x, v = np.asarray(fc.epochs, float), np.asarray(fc.values, float)
    third = len(v) // 3
    if third < 1 or not fc.planned:
        return False
    middle, last = slice(third, len(v) - third), slice(len(v) - third, None)
    pace = (np.mean(v[last]) - np.mean(v[middle])) / max(np.mean(x[last]) - np.mean(x[middle]),
                                                         1e-9)
    reach = float(np.mean(v[last]) + max(sign * pace, 0.0) * sign * (fc.planned -
                                                                      np.mean(x[last])))
    return sign * (target - reach) > 0


def _fmt(v: float | None) -> str:
    """A value as people read it: 3 significant digits, thousands with commas."""
    if v is None or not math.isfinite(v):
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _pct(p: float) -> str:
    return "under 1%" if 0 < p < 0.01 else f"{p:.0%}"


def _epoch(v: float) -> str:
    return str(math.ceil(v))
