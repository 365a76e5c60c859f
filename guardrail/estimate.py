"""``guardrail estimate``: a recipe run at several values of one quantity, and the forecast.

A sweep is a Hydra multirun of the training app (``python -m guardrail.train --multirun``, so
a launcher plugin in the user's config can send it to a cluster): each value of the swept key
(``data.train_fraction``, ``data.logged_days``, ...) times each seed, every run with every
guardrail on, in ``OUT/runs/<job>/``. The test metric of the completed runs is then fitted
against the swept quantity (:func:`guardrail.checks.scaling.scaling_forecast`) and the answer
is written to ``OUT/estimate.json`` and ``OUT/estimate.html``.

Example:
    >>> Sweep.parse("data.train_fraction=0.125,0.25,0.5").values
    (0.125, 0.25, 0.5)
    >>> parse_target("test/ap=0.8")
    ('test/ap', 0.8)

"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from guardrail.checks.scaling import scaling_forecast, summary
from guardrail.errors import ConfigError
from guardrail.io import utc_now, write_json, write_text

ESTIMATE_JSON = "estimate.json"
ESTIMATE_HTML = "estimate.html"
SWEEP_LOG = "sweep.log"
RUNS = "runs"
ALIASES = {"ap": "average_precision", "auc": "auroc"}  # short names the metrics go by


@dataclass(frozen=True)
class Sweep:
    """One config key and the numeric values it takes.

    Example:
        >>> Sweep.parse("data.logged_days=1,2,3").override
        'data.logged_days=1,2,3'
        >>> Sweep.parse("data.train_fraction=0.5")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        guardrail.errors.ConfigError: `--sweep data.train_fraction=0.5` has 1 value; ...

    """

    key: str
    values: tuple[float, ...]

    @classmethod
    def parse(cls, text: str) -> Sweep:
        """``KEY=V1,V2,...``: at least 3 distinct positive numbers."""
        example = "e.g. `--sweep data.train_fraction=0.125,0.25,0.5`"
        key, eq, raw = text.partition("=")
        if not eq or not key.strip() or not raw.strip():
            raise ConfigError(f"`--sweep {text}` is not KEY=V1,V2,...; {example}.")
        try:
            values = tuple(float(v) for v in raw.split(","))
        except ValueError:
            raise ConfigError(f"`--sweep {text}` has a value that is not a number; the swept "
                              f"quantity must be numeric, {example}.") from None
        if len(set(values)) < 3:
            raise ConfigError(f"`--sweep {text}` has {len(set(values))} value"
                              f"{'s' if len(set(values)) != 1 else ''}; a saturating curve "
                              f"needs at least 3 distinct values, {example}.")
        if any(not math.isfinite(v) or v <= 0 for v in values):
            raise ConfigError(f"`--sweep {text}`: the values must be positive (an amount of "
                              f"data, days, a share), {example}.")
        return cls(key.strip(), values)

    @property
    def override(self) -> str:
        """The sweep as a Hydra multirun override."""
        return f"{self.key}={','.join(f'{v:g}' for v in self.values)}"


def parse_target(text: str) -> tuple[str, float | None]:
    """``split/metric=value`` (or ``split/metric`` alone) -> ``(metric, value)``."""
    metric, eq, raw = text.partition("=")
    if "/" not in metric:
        raise ConfigError(f"`--target {text}`: name the split and the metric, e.g. "
                          "`--target test/ap=0.8` or `--metric test/auroc`.")
    if not eq:
        return metric, None
    try:
        return metric, float(raw)
    except ValueError:
        raise ConfigError(f"`--target {text}`: {raw!r} is not a number; e.g. "
                          "`--target test/ap=0.8`.") from None


def parse_at(text: str | None) -> list[float]:
    """``1.0,2.0,4.0`` -> the values to forecast at."""
    if not text:
        return []
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"`--at {text}` is not a list of numbers, e.g. `--at 1.0,2.0`.") \
            from None


def sweep_command(recipe: str, sweep: Sweep, seeds: Sequence[int], runs: Path,
                  overrides: Sequence[str] = ()) -> list[str]:
    """The multirun command line of the sweep (the app's own, a launcher may be overridden).

    Example:
        >>> cmd = sweep_command("bot", Sweep.parse("data.train_fraction=0.1,0.2,0.4"), [42],
        ...                     Path("out/runs"))
        >>> cmd[1:5]
        ['-m', 'guardrail.train', '--multirun', 'recipe=bot']
    """
    return [sys.executable, "-m", "guardrail.train", "--multirun", f"recipe={recipe}",
            sweep.override, f"seed={','.join(str(s) for s in seeds)}",
            f"hydra.sweep.dir={runs}", "hydra.sweep.subdir=${hydra.job.num}", *overrides]


def _override(overrides: Sequence[str], key: str) -> str | None:
    for item in overrides:
        k, _, v = item.lstrip("+~").partition("=")
        if k == key:
            return v
    return None


def collect_runs(runs: Path, key: str, metric: str) -> list[dict[str, Any]]:
    """Each job folder of ``runs``: the swept value, the seed, the metric, status and noise.

    The noise is the run's validation-curve noise of the same metric (``effort.json``), used
    only when the sweep cannot measure run-to-run noise itself.
    """
    split, _, name = metric.partition("/")
    found = []
    for job in sorted((p for p in runs.iterdir() if p.is_dir()), key=lambda p: (len(p.name),
                                                                                  p.name)):
        try:
            overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) or []
        except (OSError, yaml.YAMLError):
            continue  # not a job folder
        row: dict[str, Any] = {"dir": str(job), "x": None, "seed": _override(overrides, "seed"),
                               "value": None, "status": "missing", "noise": None}
        raw = _override(overrides, key)
        row["x"] = float(raw) if raw is not None else None
        try:
            report = json.loads((job / "report.json").read_text())
        except (OSError, json.JSONDecodeError):
            found.append({**row, "reason": "no report.json: the run did not start"})
            continue
        row["status"] = report.get("status", "unknown")
        values = (report.get("metrics") or {}).get(split) or {}
        value = values.get(name, values.get(ALIASES.get(name, name)))
        if isinstance(value, int | float) and math.isfinite(value):
            row["value"] = float(value)
        else:
            row["reason"] = (f"{metric} is not among the run's metrics "
                             f"({', '.join(_metric_names(report)) or 'none'})")
        try:
            effort = json.loads((job / "effort.json").read_text())
            if str(effort.get("metric", "")).partition("/")[2] in (name, ALIASES.get(name)):
                row["noise"] = effort.get("noise")
        except (OSError, json.JSONDecodeError):
            pass
        found.append(row)
    return found


def ensure_lock(recipe: str, lock_dir: str = "locks") -> Path | None:
    """Write the recipe's lock when it has none; returns its path then, else ``None``.

    Each run of a sweep overrides the swept key, and a run with overrides writes no lock
    (``config.lock_missing``): without this, no run of the sweep would be checked.
    """
    import tempfile

    from guardrail.lockfile import approve_recipe, lock_path, resolve_lock_dir
    from guardrail.recipe import make_importable, project_sources

    if lock_path(resolve_lock_dir(lock_dir), recipe).is_file():
        return None
    sources = project_sources()
    make_importable(sources)
    with tempfile.TemporaryDirectory() as scratch:
        path, _ = approve_recipe(recipe, lock_dir, None, scratch, searchpath=sources)
    return path


def _metric_names(report: dict[str, Any]) -> list[str]:
    return [f"{s}/{m}" for s, values in (report.get("metrics") or {}).items() for m in values]


def estimate(recipe: str, sweep: Sweep, metric: str, target: float | None, at: Sequence[float],
             out: str | Path, seeds: Sequence[int] = (42,), overrides: Sequence[str] = (),
             run: bool = True, echo: Any = None) -> dict[str, Any]:
    """Run the sweep (unless ``run`` is false: the runs already in ``out``), fit, write.

    Returns:
        What ``estimate.json`` holds: the sweep, the runs, the forecast and its sentences.

    Raises:
        ConfigError: No run measured ``metric`` at 3 distinct values (the log says why).

    """
    out = Path(out)
    runs = out / RUNS
    command = sweep_command(recipe, sweep, seeds, runs, overrides)
    if run:
        out.mkdir(parents=True, exist_ok=True)
        written = ensure_lock(recipe)
        if written and echo:
            echo(f"no config lock for '{recipe}': wrote {written} from the recipe itself (not "
                 f"from the sweep's overrides), so every run is checked; review and commit it")
        if echo:
            echo(f"running {len(sweep.values) * len(seeds)} runs of recipe={recipe} "
                 f"({sweep.override}, seeds {', '.join(map(str, seeds))}); log: "
                 f"{out / SWEEP_LOG}")
        with open(out / SWEEP_LOG, "w") as log:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
        if done.returncode and echo:
            echo(f"the sweep exited with status {done.returncode}: the completed runs are "
                 f"used, see {out / SWEEP_LOG}")
    if not runs.is_dir():
        raise ConfigError(f"{runs} holds no runs: run the sweep first (without `--no-run`), "
                          f"or name the folder of an earlier estimate with `--out`.")
    rows = collect_runs(runs, sweep.key, metric)
    usable = [r for r in rows if r["value"] is not None and r["x"] is not None
              and r["status"] == "completed"]
    if len({r["x"] for r in usable}) < 3:
        why = "; ".join(f"{Path(r['dir']).name}: {r['status']}"
                        + (f", {r['reason']}" if r.get("reason") else "")
                        for r in rows if r not in usable) or "no job folders"
        raise ConfigError(f"{len(usable)} completed run(s) in {runs} measured {metric} at "
                          f"{len({r['x'] for r in usable})} distinct value(s) of {sweep.key}; "
                          f"3 are needed ({why}). See {out / SWEEP_LOG} for the runs' output.")
    noises = sorted(r["noise"] for r in usable if isinstance(r["noise"], int | float))
    forecast = scaling_forecast([r["x"] for r in usable], [r["value"] for r in usable], metric,
                                at=at, target=target,
                                noise=noises[len(noises) // 2] if noises else None)
    result = {"recipe": recipe, "created": utc_now(), "sweep": {"key": sweep.key,
              "values": list(sweep.values), "seeds": list(seeds), "overrides": list(overrides)},
              "command": command, "runs": rows, "forecast": forecast,
              "summary": summary(forecast, sweep.key), "folder": str(out)}
    write_json(out / ESTIMATE_JSON, result)
    from guardrail.report.estimate import render_estimate

    write_text(out / ESTIMATE_HTML, render_estimate(result))
    return result
