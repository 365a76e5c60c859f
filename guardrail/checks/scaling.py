"""The metric against the amount of data: a saturating power law with bootstrap intervals.

``guardrail estimate`` runs a recipe at several values of one quantity (the share of the
training data, days logged per user, ...) and asks what more of it would buy. The curve is
Hestness et al.'s (2017) power law in data size with a floor: for a metric that rises,
``m(x) = c - a * x ** -b`` (``c`` the ceiling the model class reaches with unlimited data,
``a >= 0``, ``0.02 <= b <= 2``); for one that falls, ``m(x) = c + a * x ** -b``. A bounded
metric's ceiling stays inside its range (AP at most 1).

The intervals come from a parametric bootstrap: the points are redrawn around the fitted
curve with the run-to-run noise (measured between seeds at one value where there are
replicates, else by the residuals where there are more values than parameters), the curve is
refitted, and a new run's noise is added to what it predicts, so an interval says where a run
at that value would measure the metric. Pure functions, numpy only.

Example:
    >>> x = [0.125, 0.125, 0.25, 0.25, 0.5, 0.5]
    >>> y = [0.42, 0.46, 0.52, 0.55, 0.60, 0.61]
    >>> est = scaling_forecast(x, y, "test/ap", at=[1.0], target=0.9)
    >>> est["status"], est["noise"]["source"], est["points"][0]["runs"]
    ('forecast', 'replicates', 2)
    >>> low, mid, high = (est["at"][0][k] for k in ("low", "mid", "high"))
    >>> 0.55 < low < mid < high < 0.75
    True
    >>> est["reach"]["p_reachable"] < 0.5  # 0.9 lies above where the curve levels off
    True

"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from guardrail.checks.baseline import guess_higher_is_better
from guardrail.checks.effort import metric_bounds

EXPONENTS = np.geomspace(0.02, 2.0, 100)  # the exponents b tried; the best fit is kept
LEVEL = 0.8  # the intervals' coverage
SAMPLES = 500  # bootstrap refits


@dataclass(frozen=True)
class PowerLaw:
    """``m(x) = c - a * x ** -b`` when the metric rises with ``x`` (``+ a`` when it falls).

    Example:
        >>> law = PowerLaw(c=0.8, a=0.1, b=0.5, higher=True)
        >>> round(law(4.0), 3), round(law.reach(0.75), 3), law.reach(0.85)
        (0.75, 4.0, inf)

    """

    c: float
    a: float
    b: float
    higher: bool

    def __call__(self, x: Any) -> Any:
        """The curve at ``x`` (a float for a number, an array for an array)."""
        sign = -1.0 if self.higher else 1.0
        value = self.c + sign * self.a * np.asarray(x, dtype=float) ** -self.b
        return float(value) if np.ndim(value) == 0 else value

    def reach(self, target: float) -> float:
        """The ``x`` at which the curve reaches ``target`` (``inf`` beyond the ceiling)."""
        gap = (self.c - target) if self.higher else (target - self.c)
        if gap <= 0:
            return math.inf
        if self.a <= 0:
            return 0.0
        return float((self.a / gap) ** (1.0 / self.b))


def fit_power_law(x: Sequence[float], y: Sequence[float], higher: bool,
                  weights: Sequence[float] | None = None,
                  bounds: tuple[float, float] = (-math.inf, math.inf)) -> PowerLaw:
    """Weighted least squares over the exponents of :data:`EXPONENTS`, the rest in closed form.

    Example:
        >>> law = fit_power_law([1, 2, 4, 8], [0.5, 0.6, 0.67, 0.72], higher=True)
        >>> 0.72 < law.c <= 1.0 and law.a > 0
        True

    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    w = np.ones_like(xs) if weights is None else np.asarray(weights, dtype=float)
    best = _fits(xs[None, :], ys[None, :], w, higher, bounds)
    c, a, b = (float(v[0]) for v in best)
    return PowerLaw(c=c, a=a, b=b, higher=higher)


def _fits(xs: np.ndarray, ys: np.ndarray, w: np.ndarray, higher: bool,
          bounds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best ``(c, a, b)`` per row of ``ys [S, N]`` (``xs [1, N]``): all refits at once."""
    sign = -1.0 if higher else 1.0
    u = xs[:, None, :] ** -EXPONENTS[None, :, None]  # [1, B, N]
    y = ys[:, None, :]  # [S, 1, N]
    sw = w.sum()
    mu, my = (u * w).sum(-1) / sw, (y * w).sum(-1) / sw  # [1, B], [S, 1]
    du, dy = u - mu[..., None], y - my[..., None]
    var = (w * du * du).sum(-1)  # [1, B]
    k = (w * du * dy).sum(-1) / np.where(var > 0, var, np.inf)  # slope of y on u: sign * a
    a = np.maximum(sign * k, 0.0)  # the curve never turns back
    c = my - sign * a * mu
    low, high = bounds  # a bounded metric's ceiling stays in its range: refit the slope there
    for edge, beyond in ((high, c > high), (low, c < low)):
        if beyond.any():
            k_edge = (w * u * (y - edge)).sum(-1) / np.maximum((w * u * u).sum(-1), 1e-300)
            a = np.where(beyond, np.maximum(sign * k_edge, 0.0), a)
            c = np.where(beyond, edge, c)
    sse = (w * (y - c[..., None] - sign * a[..., None] * u) ** 2).sum(-1)  # [S, B]
    pick = np.argmin(sse, axis=1)
    rows = np.arange(len(ys))
    return c[rows, pick], a[rows, pick], EXPONENTS[pick]


def _noise(groups: dict[float, list[float]], fitted: PowerLaw,
           external: float | None) -> tuple[float, str, int]:
    """The run-to-run noise (sd), where it came from and its degrees of freedom.

    Seeds at one value measure it directly (``replicates``); with more values than the
    curve's 3 parameters the means' scatter about the curve measures it too (``residuals``,
    or ``lack of fit`` where it exceeds the replicates' spread: the curve does not describe
    the runs, and the intervals widen to say so). The larger counts. Otherwise the runs'
    validation-curve noise from outside, or none.
    """
    found = []
    df = sum(len(v) - 1 for v in groups.values())
    if df:
        within = sum(float(np.sum((np.asarray(v) - np.mean(v)) ** 2)) for v in groups.values())
        found.append((math.sqrt(within / df), "replicates", df))
    if len(groups) > 3:
        resid = [len(v) * (float(np.mean(v)) - float(fitted(x))) ** 2 for x, v in groups.items()]
        found.append((math.sqrt(sum(resid) / (len(groups) - 3)),
                      "lack of fit" if df else "residuals", len(groups) - 3))
    if found:
        return max(found)
    if external is not None and math.isfinite(external) and external > 0:
        return float(external), "validation curves", 0
    return math.nan, "none", 0


def scaling_forecast(x: Sequence[float], y: Sequence[float], metric: str,
                     at: Sequence[float] = (), target: float | None = None,
                     noise: float | None = None, samples: int = SAMPLES,
                     seed: int = 0) -> dict[str, Any]:
    """Fit the metric against ``x`` and forecast it at ``at`` and where it reaches ``target``.

    Args:
        x: The swept quantity per run (positive; values may repeat: replicates).
        y: The metric each run measured.
        metric: Its name (sets the direction and the range, e.g. ``test/ap``).
        at: Where to forecast (beyond the sweep is the point of it).
        target: A value of the metric to reach, or ``None``.
        noise: Run-to-run noise (sd) to use when the runs cannot measure it (no replicates,
            no more values than parameters), e.g. the validation curves' noise.
        samples: Bootstrap refits.
        seed: The bootstrap's seed.

    Returns:
        A JSON-able dict: ``status`` (``forecast``, or ``thin`` with ``reason``), ``points``
        (per value: runs, mean, sd), ``curve`` (``c``, ``a``, ``b``), ``noise`` (sd, source,
        degrees of freedom), ``at`` (per point: low, mid, high of a run's metric there),
        ``band`` (the curve's interval over a grid, for the plot), ``reach`` (the ``x`` where
        the target is reached: low, mid, high, ``inf`` for never, and ``p_reachable``).

    """
    pairs = [(float(a), float(b)) for a, b in zip(x, y, strict=True)
             if math.isfinite(float(a)) and float(a) > 0 and math.isfinite(float(b))]
    groups: dict[float, list[float]] = {}
    for a, b in pairs:
        groups.setdefault(a, []).append(b)
    higher = guess_higher_is_better(metric)
    higher = True if higher is None else higher
    xs = sorted(groups)
    out: dict[str, Any] = {
        "metric": metric, "higher_is_better": higher, "level": LEVEL, "target": target,
        "points": [{"x": v, "runs": len(groups[v]), "mean": float(np.mean(groups[v])),
                    "sd": float(np.std(groups[v], ddof=1)) if len(groups[v]) > 1 else None,
                    "values": groups[v]} for v in xs],
    }
    if len(xs) < 3:
        return {**out, "status": "thin", "reason": f"{len(xs)} distinct value(s) of the swept "
                "quantity measured; a saturating curve needs at least 3"}
    means = np.array([np.mean(groups[v]) for v in xs])
    runs = np.array([len(groups[v]) for v in xs], dtype=float)
    bounds = metric_bounds(metric)
    law = fit_power_law(xs, means, higher, runs, bounds)
    sd, source, df = _noise(groups, law, noise)
    out["curve"] = {"c": law.c, "a": law.a, "b": law.b}
    out["noise"] = {"sd": sd if math.isfinite(sd) else None, "source": source, "df": df}
    if not math.isfinite(sd):
        return {**out, "status": "thin", "reason": "no measure of the run-to-run noise: "
                "repeat each value with another seed (`--seeds 2`) or sweep more than 3 values"}
    rng = np.random.default_rng(seed)
    grid = np.array(xs)
    # The noise itself is uncertain when few runs measured it: each refit draws its own sd
    # from the scaled inverse chi-squared with the estimate's degrees of freedom.
    sds = sd * np.sqrt(df / rng.chisquare(df, samples)) if df else np.full(samples, sd)
    drawn = law(grid)[None, :] + rng.normal(0.0, 1.0, (samples, len(xs))) \
        * sds[:, None] / np.sqrt(runs)
    c, a, b = _fits(grid[None, :], drawn, runs, higher, bounds)
    sign = -1.0 if higher else 1.0

    def curve(points: np.ndarray) -> np.ndarray:  # [S, P]: every refit at every point
        return c[:, None] + sign * a[:, None] * points[None, :] ** -b[:, None]

    q = [(1 - LEVEL) / 2, 0.5, (1 + LEVEL) / 2]

    def clip(values: np.ndarray) -> np.ndarray:  # a bounded metric's draws stay in its range
        return np.clip(values, *bounds)

    where = np.asarray([float(v) for v in at if float(v) > 0], dtype=float)
    if len(where):
        runs_there = clip(curve(where) + rng.normal(0.0, 1.0, (samples, len(where)))
                          * sds[:, None])
        lo, mid, hi = np.quantile(runs_there, q, axis=0)
        out["at"] = [{"x": float(v), "low": float(lo[i]), "mid": float(mid[i]),
                      "high": float(hi[i]), "fitted": float(law(v))}
                     for i, v in enumerate(where)]
    else:
        out["at"] = []
    span = np.geomspace(min(xs) / 1.5, max([*xs, *where]) * 1.5, 60)
    lo, mid, hi = np.quantile(clip(curve(span)), q, axis=0)
    out["band"] = {"x": span.tolist(), "low": lo.tolist(), "mid": mid.tolist(),
                   "high": hi.tolist()}
    top = max(xs)
    steps = {"per_doubling": 2 * top} | ({"per_unit": top + 1}
                                        if all(float(v).is_integer() for v in xs) else {})
    out["gain"] = {"at": top}
    for name, beyond in steps.items():
        lo, mid, hi = np.quantile(curve(np.array([beyond]))[:, 0] - curve(np.array([top]))[:, 0],
                                  q)
        out["gain"][name] = {"low": float(lo), "mid": float(mid), "high": float(hi)}
    if target is not None:
        gap = (c - target) if higher else (target - c)
        with np.errstate(divide="ignore", invalid="ignore"):
            reach = np.where(gap > 0, (a / np.where(gap > 0, gap, 1.0)) ** (1.0 / b), np.inf)
        reach = np.where((gap > 0) & (a <= 0), 0.0, reach)
        lo, mid, hi = np.quantile(reach, q, method="inverted_cdf")  # inf stays inf
        out["reach"] = {"low": float(lo), "mid": float(mid), "high": float(hi),
                        "fitted": law.reach(target), "p_reachable": float(np.mean(gap > 0))}
    return {**out, "status": "forecast"}


def _fmt(value: float) -> str:
    return "never" if not math.isfinite(value) else f"{value:.3g}"


def summary(est: dict[str, Any], quantity: str) -> list[str]:
    """The forecast in sentences a product owner can read.

    Example:
        >>> est = scaling_forecast([1, 1, 2, 2, 4, 4], [.5, .52, .6, .61, .66, .65], "test/ap",
        ...                        at=[8], target=0.95)
        >>> print(summary(est, "data.train_fraction")[0])  # doctest: +ELLIPSIS
        test/ap at data.train_fraction=8: 0.68... (80% interval 0.6...-0.7...); the fitted ...

    """
    metric, share = est.get("metric", "metric"), f"{round(100 * est.get('level', LEVEL))}%"
    if est.get("status") != "forecast":
        return [f"No forecast for {metric}: {est.get('reason', 'too little evidence')}."]
    lines = [f"{metric} at {quantity}={p['x']:g}: {p['mid']:.3f} ({share} interval "
             f"{p['low']:.3f}-{p['high']:.3f}); the fitted curve says {p['fitted']:.3f}."
             for p in est.get("at") or []]
    curve, gain = est["curve"], est.get("gain") or {}
    for name, step in (("per_unit", 1.0), ("per_doubling", gain.get("at", 0.0))):
        if name in gain:
            g = gain[name]
            lines.append(f"Going from {quantity}={gain['at']:g} to {gain['at'] + step:g} "
                         f"changes {metric} by {g['mid']:+.3f} ({share} interval "
                         f"{g['low']:+.3f} to {g['high']:+.3f}).")
    if curve["b"] > 0.5:  # the curve bends within a factor 100 of the sweep: a real ceiling
        lines.append(f"The fitted curve levels off near {curve['c']:.3f} "
                     f"({'at most' if est['higher_is_better'] else 'at least'} that with "
                     f"unlimited {quantity.rsplit('.', 1)[-1]}).")
    else:
        lines.append(f"No ceiling in sight: the fitted curve is close to logarithmic (exponent "
                     f"{curve['b']:.2f}), gaining about as much per doubling for a long way.")
    reach, target = est.get("reach"), est.get("target")
    if reach and target is not None:
        beyond = f"{100 * (1 - reach['p_reachable']):.0f}%"
        if reach["p_reachable"] < 0.05:
            lines.append(f"{metric}={target:g} is out of reach: it lies beyond where the curve "
                         f"levels off in {beyond} of the bootstrap fits.")
        elif not math.isfinite(reach["mid"]):
            lines.append(f"{metric}={target:g} is probably out of reach: it lies beyond where "
                         f"the curve levels off in {beyond} of the bootstrap fits (where it is "
                         f"reachable, not before {quantity}={_fmt(reach['low'])}).")
        else:
            lines.append(f"{metric}={target:g} is reached at {quantity}={_fmt(reach['mid'])} "
                         f"({share} interval {_fmt(reach['low'])}-{_fmt(reach['high'])}; "
                         f"reachable at all in {100 * reach['p_reachable']:.0f}% of the "
                         "bootstrap fits).")
    noise = est.get("noise") or {}
    lines.append(f"Run-to-run noise sd {noise.get('sd', 0):.3f} of {metric}, from "
                 f"{noise.get('source')}" + (f" ({noise['df']} degrees of freedom)."
                                             if noise.get("df") else "."))
    return lines
