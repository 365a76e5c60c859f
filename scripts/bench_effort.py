"""Calibration and cost of EffortEstimator's learning-curve forecasts (``effort.*``).

Usage:
    OMP_NUM_THREADS=1 python scripts/bench_effort.py --runs /tmp/recipe-runs   # calibration
    OMP_NUM_THREADS=1 python scripts/bench_effort.py --collect-faults 40       # longer curves
    OMP_NUM_THREADS=1 python scripts/bench_effort.py --runs DIR --tune         # tuning half
    OMP_NUM_THREADS=1 python scripts/bench_effort.py --cost                    # ms per epoch

Curves: every ``val/*`` metric of the recipes' run directories under ``--runs`` (the CSV
logger's ``metrics/metrics.csv``; ``scripts/recipe_alarms.py --out DIR`` makes them, seven
recipes x 3 seeds), and the validation curves of the fault suite's healthy models trained for
``--collect-faults`` epochs (``scripts/faults``; 8 steps per epoch; cached in
``--fault-curves``). From the first 25% and 50% of each curve's epochs, the metric at its last
epoch is forecast (the planned last epoch is the curve's own) and compared with what the run
measured there: mean absolute error (in units of the curve's whole range, so that curves of
different metrics average) against the naive forecasts "last value" and "best so far", and the
share of measured final values inside the 80% interval (target 0.7-0.9). A prefix shorter than
``min_points`` validations gets no forecast (``effort.thin_evidence``): counted, not scored.
``effort.futile`` false alarms: with the value the run did reach as target, the share of curves
on which the rule would have fired (judged at its first chance and at 25/50/75% of the epochs);
and its recall: from half the epochs, with a target beyond the best value reached by the
curve's whole range, the share of curves judged futile.

The split, fixed before anything was tuned: recipes alternate alphabetically (bot, est, rec,
wea tune; ccf, oil, ret are held out) and fault-suite models follow the suite's own rule (the
parity of the SHA-256 of the case name). ``--tune`` searches the spread's inflation and growth
and the ceiling on further improvement on the tuning half only (the weighting's temperature
stays 1), then evaluates both halves with the best setting.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import statistics
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from guardrail.checks.effort import (  # noqa: E402
    CEILING,
    DEFAULTS,
    GROWTH,
    INFLATION,
    TEMPERATURE,
    effort_findings,
    forecast_curve,
    metric_bounds,
    warm_start,
)

RECIPES = ("bot", "ccf", "est", "oil", "rec", "ret", "wea")
TUNING_RECIPES = RECIPES[0::2]  # bot, est, rec, wea
FRACTIONS = (0.25, 0.5)


# ------------------------------------------------------------------------------------ curves
def recipe_curves(runs: Path) -> list[dict[str, Any]]:
    """Every ``val/*`` curve of every ``<recipe>-seed<S>`` run directory under ``runs``."""
    out = []
    for run in sorted(runs.glob("*-seed*")):
        recipe, seed = run.name.split("-seed")
        files = sorted(run.glob("**/metrics.csv"))
        if recipe not in RECIPES or not files or not (run / "report.json").is_file():
            continue  # a run still going has no report.json yet
        per_key: dict[str, dict[int, float]] = defaultdict(dict)
        with files[0].open() as fh:
            for row in csv.DictReader(fh):
                for key, value in row.items():
                    if key.startswith("val/") and value not in ("", None) and row.get("epoch"):
                        per_key[key][int(float(row["epoch"]))] = float(value)
        for key, points in per_key.items():
            epochs = sorted(points)
            out.append({"source": "recipe", "name": recipe, "seed": int(seed), "metric": key,
                        "half": "tuning" if recipe in TUNING_RECIPES else "held_out",
                        "epochs": [e + 1 for e in epochs], "values": [points[e] for e in epochs]})
    return out


def collect_fault_curves(epochs: int, seeds: int, path: Path) -> list[dict[str, Any]]:
    """Train the fault suite's healthy models for ``epochs`` epochs; keep their val curves."""
    import lightning.pytorch as pl
    from fault_suite import half
    from faults import CASES
    from lightning.pytorch import Callback

    class Curves(Callback):
        def __init__(self) -> None:
            self.curves: dict[str, list[float]] = defaultdict(list)

        def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
            if not trainer.sanity_checking:
                for k, v in trainer.callback_metrics.items():
                    if k.startswith(("val/", "val_", "valid")):
                        self.curves[k].append(float(v))

    out = []
    healthy = [c for c in CASES if c.family is None]
    for case, seed in itertools.product(healthy, range(seeds)):
        pl.seed_everything(seed, verbose=False)
        run, rec = case.build(seed), Curves()
        trainer = pl.Trainer(**{
            "accelerator": "cpu", "max_epochs": epochs, "logger": False,
            "enable_progress_bar": False, "enable_model_summary": False,
            "enable_checkpointing": False, "num_sanity_val_steps": 0, "callbacks": [rec],
            "default_root_dir": "/tmp/guardrail-effort-bench", **run.trainer})
        start = time.perf_counter()
        try:
            trainer.fit(run.module, run.train, run.val)
        except Exception as err:  # a healthy model that fails is reported, not fatal
            print(f"{case.name}/{seed}: {type(err).__name__}: {err}", file=sys.stderr)
            continue
        for key, values in rec.curves.items():
            if len(values) == epochs:
                out.append({"source": "fault_suite", "name": case.name, "seed": seed,
                            "metric": key, "half": half(case.name),
                            "epochs": list(range(1, epochs + 1)), "values": values})
        print(f"{case.name}/{seed}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    path.write_text(json.dumps(out))
    return out


# ------------------------------------------------------------------------------- calibration
def evaluate(curves: list[dict[str, Any]], temperature: float = TEMPERATURE,
             inflation: float = INFLATION, growth: float = GROWTH, ceiling: float = CEILING,
             futile: bool = True) -> list[dict[str, Any]]:
    """One row per (curve, fraction): the forecast's and the naive forecasts' errors."""
    rows = []
    for c in curves:
        y, x = np.asarray(c["values"], float), np.asarray(c["epochs"], float)
        if len(y) < 4 or not np.all(np.isfinite(y)) or np.ptp(y) == 0:
            continue
        last, span = int(x[-1]), float(np.ptp(y))
        for frac in FRACTIONS:
            k = max(1, math.floor(frac * len(y)))
            fc = forecast_curve(x[:k], y[:k], last, c["metric"], temperature=temperature,
                                inflation=inflation, growth=growth, ceiling=ceiling)
            up = fc.higher_is_better
            truth = float(y[-1])
            row = {**{key: c[key] for key in ("source", "name", "seed", "metric", "half")},
                   "fraction": frac, "points": k, "epochs": len(y), "status": fc.status,
                   "last_err": abs(float(y[k - 1]) - truth) / span,
                   "best_err": abs(float(y[:k].max() if up else y[:k].min()) - truth) / span}
            if fc.status == "forecast":
                row.update(err=abs(fc.final[0.5] - truth) / span,
                           inside=fc.final[0.1] <= truth <= fc.final[0.9],
                           width=(fc.final[0.9] - fc.final[0.1]) / span)
            rows.append(row)
        if futile:
            rows[-1]["false_futile"] = _false_futile(x, y, c["metric"], temperature, inflation,
                                                     growth, ceiling)
            rows[-1]["caught_futile"] = _caught_futile(x, y, c["metric"], temperature,
                                                       inflation, growth, ceiling)
    return rows


def _false_futile(x: np.ndarray, y: np.ndarray, metric: str, temperature: float,
                  inflation: float, growth: float, ceiling: float) -> bool:
    """Would effort.futile fire for the value this run did reach at its end?

    Judged at the first epoch the rule may fire and at 25%, 50% and 75% of the epochs.
    """
    last = int(x[-1])
    for k in sorted({DEFAULTS.futile_min_points, *(int(f * len(y)) for f in (0.25, 0.5, 0.75))}):
        if k < DEFAULTS.futile_min_points or k >= len(y):
            continue
        fc = forecast_curve(x[:k], y[:k], last, metric, target=float(y[-1]),
                            temperature=temperature, inflation=inflation, growth=growth,
                            ceiling=ceiling)
        if any(f.check == "effort.futile" for f in effort_findings(fc)):
            return True
    return False


def _caught_futile(x: np.ndarray, y: np.ndarray, metric: str, temperature: float,
                   inflation: float, growth: float, ceiling: float) -> bool | None:
    """From half the epochs, is a target the run missed by its whole range judged futile?

    None where that target lies outside the metric's range (a unit metric above 1).
    """
    up = (y[-1] >= y[0]) if metric_bounds(metric) == (-math.inf, math.inf) else None
    fc = forecast_curve(x[:2], y[:2], int(x[-1]), metric)  # only for the direction
    up = fc.higher_is_better if up is None else up
    best = float(y.max() if up else y.min())
    target = best + (1 if up else -1) * float(np.ptp(y))
    low, high = metric_bounds(metric)
    if not low <= target <= high:
        return None
    k = max(DEFAULTS.futile_min_points, len(y) // 2)
    fc = forecast_curve(x[:k], y[:k], int(x[-1]), metric, target=target,
                        temperature=temperature, inflation=inflation, growth=growth,
                        ceiling=ceiling)
    return any(f.check == "effort.futile" for f in effort_findings(fc))


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per half and fraction: curves, forecasts made, MAE (ours vs naive), coverage, width."""
    table: dict[str, Any] = {}
    for half, frac in itertools.product(("tuning", "held_out", "all"), FRACTIONS):
        rs = [r for r in rows if r["fraction"] == frac and half in ("all", r["half"])]
        made = [r for r in rs if r["status"] == "forecast"]
        if not rs:
            continue
        table[f"{half}@{frac:.0%}"] = {
            "curves": len(rs), "forecasts": len(made),
            "mae": _mean(r["err"] for r in made),
            "mae_last": _mean(r["last_err"] for r in made),
            "mae_best": _mean(r["best_err"] for r in made),
            "coverage80": _mean(float(r["inside"]) for r in made),
            "width80": _mean(r["width"] for r in made),
        }
    for half in ("tuning", "held_out", "all"):
        ff = [r["false_futile"] for r in rows if "false_futile" in r and half in
              ("all", r["half"])]
        if ff:
            table[f"{half}:false_futile"] = {"curves": len(ff), "share": sum(ff) / len(ff)}
        caught = [r["caught_futile"] for r in rows if r.get("caught_futile") is not None
                  and half in ("all", r["half"])]
        if caught:
            table[f"{half}:caught_futile"] = {"curves": len(caught),
                                              "share": sum(caught) / len(caught)}
    return table


def by_group(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The same numbers per recipe (and for the fault suite as one group), both fractions."""
    out = {}
    groups = sorted({r["name"] if r["source"] == "recipe" else "fault_suite" for r in rows})
    for g in groups:
        for frac in FRACTIONS:
            rs = [r for r in rows if r["fraction"] == frac and
                  (r["name"] if r["source"] == "recipe" else "fault_suite") == g]
            made = [r for r in rs if r["status"] == "forecast"]
            out[f"{g}@{frac:.0%}"] = {
                "curves": len(rs), "epochs": statistics.median(r["epochs"] for r in rs),
                "forecasts": len(made), "mae": _mean(r["err"] for r in made),
                "mae_last": _mean(r["last_err"] for r in made),
                "mae_best": _mean(r["best_err"] for r in made),
                "coverage80": _mean(float(r["inside"]) for r in made)}
    return out


def _mean(values: Any) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else None


def tune(curves: list[dict[str, Any]]) -> dict[str, Any]:
    """Grid on the tuning half: coverage of the 80% interval nearest 0.8, then the lowest MAE.

    Searched: the held-out weighting's temperature, the spread's inflation and growth, and the
    ceiling on further improvement.
    """
    tuning = [c for c in curves if c["half"] == "tuning"]
    results = []
    for temperature, inflation, growth, ceiling in itertools.product(
            (1.0,), (0.5, 1.0), (0.5, 1.0), (0.5, 1.0)):
        rows = [r for r in evaluate(tuning, temperature, inflation, growth, ceiling,
                                    futile=False) if r["status"] == "forecast"]
        cov = _mean(float(r["inside"]) for r in rows) or 0.0
        mae = _mean(r["err"] for r in rows) or 0.0
        results.append({"temperature": temperature, "inflation": inflation, "growth": growth,
                        "ceiling": ceiling, "coverage80": cov, "mae": mae})
        print(results[-1], file=sys.stderr)
    best = min(results, key=lambda r: (round(abs(r["coverage80"] - 0.8) / 0.05), r["mae"]))
    return {"grid": results, "best": best}


# -------------------------------------------------------------------------------------- cost
def cost(max_points: int = 200, repeats: int = 3) -> dict[str, Any]:
    """ms per validation epoch of the callback's forecast, epoch by epoch up to ``max_points``.

    As EffortEstimator calls it: each epoch's fit starts from the previous epoch's parameters.
    """
    rng = np.random.default_rng(0)
    x = np.arange(1, max_points + 1, dtype=float)
    y = 0.85 - 0.5 * x ** -0.6 + rng.normal(0, 0.01, max_points)
    per_epoch = np.zeros((repeats, max_points))
    for rep in range(repeats):
        warm: dict[str, Any] = {}
        for n in range(1, max_points + 1):
            start = time.perf_counter()
            fc = forecast_curve(x[:n], y[:n], max_points, "val/ap", target=0.8, warm=warm)
            effort_findings(fc)
            per_epoch[rep, n - 1] = (time.perf_counter() - start) * 1000
            warm = warm_start(fc)
    best = per_epoch.min(axis=0)  # the least disturbed of the repeats, epoch by epoch
    return {"points": max_points, "ms_median": round(float(np.median(best)), 2),
            "ms_p95": round(float(np.quantile(best, 0.95)), 2),
            "ms_max": round(float(best.max()), 2),
            "ms_at_200": round(float(best[-1]), 2) if max_points >= 200 else None,
            "ms_last10_mean": round(float(best[-10:].mean()), 2)}


def main(argv: list[str] | None = None) -> int:
    intro, usage = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(description=intro, epilog=usage,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, help="parent of <recipe>-seed<S> run directories")
    parser.add_argument("--fault-curves", type=Path, default=Path("/tmp/effort_fault_curves.json"))
    parser.add_argument("--collect-faults", type=int, metavar="EPOCHS",
                        help="train the fault suite's healthy models this long first")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tune", action="store_true", help="grid search on the tuning half")
    parser.add_argument("--cost", action="store_true", help="time the forecast per epoch")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    result: dict[str, Any] = {}
    if args.cost:
        result["cost"] = cost()
        print(json.dumps(result["cost"], indent=1))
    curves: list[dict[str, Any]] = []
    if args.collect_faults:
        curves += collect_fault_curves(args.collect_faults, args.seeds, args.fault_curves)
    elif args.fault_curves.is_file() and (args.runs or args.tune):
        curves += json.loads(args.fault_curves.read_text())
    if args.runs:
        curves += recipe_curves(args.runs)
    if curves:
        print(f"{len(curves)} curves: " + ", ".join(
            f"{g} {n}" for g, n in sorted(_count(curves).items())))
        if args.tune:
            result["tune"] = tune(curves)
            print(json.dumps(result["tune"]["best"]))
        chosen = {k: result["tune"]["best"][k] for k in
                  ("temperature", "inflation", "growth", "ceiling")} if args.tune else {}
        rows = evaluate(curves, **chosen)
        result["summary"], result["groups"] = summarise(rows), by_group(rows)
        result["rows"] = rows
        print(json.dumps(result["summary"], indent=1))
        print(json.dumps(result["groups"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


def _count(curves: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for c in curves:
        counts[c["name"] if c["source"] == "recipe" else "fault_suite"] += 1
    return counts


if __name__ == "__main__":
    sys.exit(main())
