"""``guardrail doctor RUN_DIR``: what changed under a trained model, and whether it matters.

Two measurements, judged by :mod:`guardrail.checks.dependency`:

1. **The environment against the run's manifest**: every installed package whose version
   changed (old → new), Python, CUDA, cuDNN, the driver, the GPU models, the CPU model and the
   vector instructions torch dispatches its CPU kernels on (``cpu_capability``; compared where
   the manifest recorded it).
2. **Golden outputs**: the export's held-out records (``export/examples.jsonl``) are run again,
   with today's libraries, through the exported program (the serving path:
   ``preprocessor.json`` -> program) and through the checkpoint (the run's module rebuilt
   from its config, the checkpoint's weights loaded ``weights_only``, called eagerly on the
   preprocessor's tensors), and compared with the predictions stored at export. The tolerance
   is the spread of two identical replays of the model (``replay_spread`` in ``export.json``;
   measured now when the export has none), floored at a few float32 rounding steps.

The result is written to ``RUN_DIR/doctor/<time>/`` (``doctor.json``, ``findings.jsonl``).

Example:
    >>> import torch
    >>> model = torch.nn.Linear(3, 1)
    >>> replay_spread(model, (torch.ones(4, 3),))
    0.0

"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from guardrail.checks.dependency import (
    DEFAULTS,
    Cause,
    Comparison,
    DependencyThresholds,
    compare_outputs,
    environment_changes,
    environment_findings,
    outputs_finding,
    package_changes,
    rank_causes,
    verdict,
)
from guardrail.errors import ConfigError, DataError
from guardrail.findings import Finding, Severity
from guardrail.io import utc_now, write_json, write_jsonl

FOLDER = "doctor"
@dataclasses.dataclass
class DoctorResult:
    """What ``guardrail doctor`` found; :meth:`to_dict` is ``doctor.json``."""

    run_dir: str
    verdict: str
    findings: list[Finding]
    comparisons: list[Comparison]
    causes: list[Cause]
    recorded: dict[str, Any]
    current: dict[str, Any]
    tolerance: dict[str, Any]
    timings: dict[str, float]
    written_to: str | None = None

    @property
    def exit_code(self) -> int:
        """0 nothing, 1 warnings, 2 errors."""
        return max((f.severity.rank for f in self.findings if f.severity > Severity.INFO),
                   default=0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: verdict, exit code, comparisons, changes, tolerance, findings, timings."""
        return {"run_dir": self.run_dir, "checked_at": utc_now(), "verdict": self.verdict,
                "exit_code": self.exit_code,
                "outputs": {c.path: c.to_dict() for c in self.comparisons},
                "changes": [c.to_dict() for c in self.causes],
                "environment": {"recorded": self.recorded, "current": self.current},
                "tolerance": self.tolerance, "timings_s": self.timings,
                "findings": [f.to_dict() for f in self.findings]}


def installed_versions() -> dict[str, str]:
    """Every installed distribution (lower-case name) with its version."""
    from guardrail.environment import platform_info

    return dict(platform_info()["packages"])


def current_environment() -> dict[str, Any]:
    """The facts :func:`recorded_environment` reads from a manifest, measured now."""
    import platform

    from guardrail.environment import hardware

    hw = hardware()
    return {"python": platform.python_version(), "cuda": hw["cuda"], "cudnn": hw["cudnn"],
            "driver": hw["driver"], "gpus": [g["name"] for g in hw["gpus"]], "cpu": hw["cpu"],
            "cpu_capability": hw["cpu_capability"], "cpu_flags": hw["cpu_flags"],
            "os": platform.platform()}


def recorded_environment(manifest: dict[str, Any]) -> dict[str, Any]:
    """The environment facts of a run's ``manifest.json`` (those it has).

    Example:
        >>> recorded_environment({"hardware": {"cuda": None, "gpus": [{"name": "A100"}]},
        ...                       "platform": {"python": "3.11.7"}})
        {'python': '3.11.7', 'cuda': None, 'gpus': ['A100']}
    """
    hw, plat = manifest.get("hardware") or {}, manifest.get("platform") or {}
    out: dict[str, Any] = {}
    if "python" in plat:
        out["python"] = plat["python"]
    for key in ("cuda", "cudnn", "driver"):
        if key in hw:
            out[key] = hw[key]
    if "gpus" in hw:
        out["gpus"] = [g.get("name") if isinstance(g, dict) else g for g in hw["gpus"]]
    for key in ("cpu", "cpu_capability", "cpu_flags"):
        if key in hw:
            out[key] = hw[key]
    if "os" in plat:
        out["os"] = plat["os"]
    return out


def imported_distributions() -> set[str]:
    """Distributions (lower-case) of every top-level module this process has imported."""
    mapping = importlib.metadata.packages_distributions()
    tops = {name.split(".", 1)[0] for name in list(sys.modules)}
    return {d.lower() for top in tops for d in mapping.get(top, ())}


@torch.no_grad()
def replay_spread(model: Callable[..., Any], inputs: Sequence[torch.Tensor],
                  predictions: Callable[[torch.Tensor], list[Any]] | None = None) -> float:
    """Largest difference between two identical replays of ``model`` on ``inputs``.

    The floor of run-to-run noise the golden outputs are judged against: 0 for a
    deterministic CPU model, above 0 where kernels are not deterministic (atomics on a GPU).
    ``predictions`` maps the model's first output tensor to what is stored (a preprocessor's
    ``predictions``); default: the tensor as nested lists. ``guardrail export`` records it in
    ``export.json`` (``replay_spread``).

    Example:
        >>> torch.manual_seed(0) is not None
        True
        >>> replay_spread(torch.nn.Dropout(0.5).train(), (torch.ones(64, 8),)) > 0
        True
    """
    from guardrail.checks.dependency import flatten_prediction
    from guardrail.export import first_output

    def once() -> list[Any]:
        out = first_output(model(*inputs)).detach()
        return predictions(out) if predictions is not None else out.cpu().tolist()

    first, second = once(), once()
    worst = 0.0
    for a, b in zip(first, second, strict=True):
        for (_, x), (_, y) in zip(flatten_prediction(a), flatten_prediction(b), strict=True):
            if isinstance(x, int | float) and isinstance(y, int | float) and x != y:
                d = abs(float(x) - float(y))
                worst = max(worst, d if d == d else float("inf"))  # NaN vs number: infinite
    return worst


def read_examples(path: Path) -> tuple[list[Any], list[Any]]:
    """``(records, predictions)`` of an ``examples.jsonl``.

    Raises:
        DataError: A line is not a JSON object with ``record`` and ``prediction``.
    """
    records, predictions = [], []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            records.append(row["record"])
            predictions.append(row["prediction"])
        except (ValueError, KeyError, TypeError) as err:
            raise DataError(f"{path} line {i + 1} is not a JSON object with `record` and "
                            f"`prediction` ({err}); export the run again "
                            "(`guardrail export RUN_DIR`).") from None
    return records, predictions


def _read_json(path: Path, what: str, fix: str) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path.parent} has no {path.name}: {what}. {fix}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ConfigError(f"{path} is not readable JSON ({err}). {fix}") from None


def _recorded_spread(export: dict[str, Any]) -> float | None:
    value = export.get("replay_spread")
    if isinstance(value, dict):
        value = value.get("max_abs_diff")
    return float(value) if isinstance(value, int | float) else None


def doctor_run(run_dir: str | Path, thresholds: DependencyThresholds = DEFAULTS,
               checkpoint: bool = True) -> DoctorResult:
    """Compare today's environment and golden outputs with the run's; nothing is written.

    Args:
        run_dir: A run directory of ``python -m guardrail.train``, exported.
        thresholds: The tolerance's floor.
        checkpoint: Also replay the checkpoint through the rebuilt module.

    Raises:
        ConfigError: No ``manifest.json``, or no export (``export/export.json``,
            ``examples.jsonl``).
        DataError: The exported program changed since export, or the examples are unreadable.
    """
    from guardrail.export import FOLDER as EXPORT
    from guardrail.export import load_weights
    from guardrail.serving import ServedModel

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is not a folder; give a run directory of `python -m "
                          "guardrail.train`, e.g. outputs/est/2026-01-01_12-00-00.")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    manifest = _read_json(run_dir / "manifest.json", "the run was trained without the "
                          "RunManifest guardrail, so nothing records what it was trained with",
                          "Train it again with `guardrails=default` (it records the manifest), "
                          "then export it.")
    folder = run_dir / EXPORT
    export = _read_json(folder / "export.json", "the run was not exported",
                        f"Run `guardrail export {run_dir}` first: it writes the program and the "
                        "golden outputs (examples.jsonl) that doctor replays.")
    if not (folder / "examples.jsonl").is_file():
        raise ConfigError(f"{folder} has no examples.jsonl (the golden records and their "
                          f"predictions); export again with `guardrail export {run_dir}`.")
    records, stored = read_examples(folder / "examples.jsonl")

    recorded = recorded_environment(manifest)
    current = current_environment()
    if not current["gpus"]:  # replayed on the CPU, as export computed the golden outputs
        recorded.pop("driver", None)
        recorded.pop("gpus", None)
    old_packages = (manifest.get("platform") or {}).get("packages") or {}
    packages = package_changes(old_packages, installed_versions())
    timings["environment"] = time.perf_counter() - t0

    t = time.perf_counter()
    served = ServedModel(folder)
    timings["load_export"] = time.perf_counter() - t
    pre = served.preprocessor
    t = time.perf_counter()
    exported_now = served.predict(records)
    timings["replay_exported"] = time.perf_counter() - t

    spread = _recorded_spread(export)
    findings: list[Finding] = []
    module = None
    ckpt_now: list[Any] | None = None
    ckpt_file: str | None = None
    if checkpoint:
        t = time.perf_counter()
        try:
            module, ckpt_file = _checkpoint_module(run_dir, export, load_weights)
        except Exception as err:  # the golden outputs of the export still get judged
            findings.append(Finding(
                "dependency.not_replayed", Severity.WARNING,
                f"The checkpoint could not be replayed ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}); only the exported program "
                "was compared.", where="checkpoint", evidence={"error": str(err)[:2000]},
                hint="Restore the recipe's code and the run's checkpoints/ to compare the "
                     "training path too."))
        timings["load_checkpoint"] = time.perf_counter() - t
    if module is not None:
        t = time.perf_counter()
        inputs = pre.transform(records)
        ckpt_now = _predict(module, inputs, pre.predictions)
        timings["replay_checkpoint"] = time.perf_counter() - t
    t = time.perf_counter()
    if spread is None:
        inputs = pre.transform(records)
        measured = [replay_spread(served.program, inputs, pre.predictions)]
        if module is not None:
            measured.append(replay_spread(module, inputs, pre.predictions))
        spread_value, spread_source = max(measured), (
            "measured now: export.json records no replay spread (two identical replays of "
            + ("the checkpoint model and " if module is not None else "")
            + "the exported program)")
    else:
        spread_value, spread_source = spread, "export.json (measured at export)"
    timings["replay_spread"] = time.perf_counter() - t

    comparisons = [compare_outputs(stored, exported_now, spread_value, thresholds, "exported")]
    if ckpt_now is not None:
        comparisons.append(compare_outputs(stored, ckpt_now, spread_value, thresholds,
                                           "checkpoint"))
    causes = rank_causes(packages, environment_changes(recorded, current),
                         imported_distributions())
    finding = outputs_finding(comparisons, causes, str(folder / "examples.jsonl"), records)
    findings = ([finding] if finding else []) + findings + environment_findings(
        causes, f"training ({run_dir / 'manifest.json'})")
    timings["total"] = time.perf_counter() - t0
    return DoctorResult(
        run_dir=str(run_dir), verdict=verdict(comparisons), findings=findings,
        comparisons=comparisons, causes=causes, recorded=recorded, current=current,
        tolerance={"spread": spread_value, "spread_source": spread_source,
                   "floor_abs": thresholds.floor_abs, "floor_rel": thresholds.floor_rel,
                   "rule": "per output: max(spread, floor_abs + floor_rel x its largest "
                           "|stored value|)",
                   "checkpoint": ckpt_file, "format": export.get("format")},
        timings={k: round(v, 3) for k, v in timings.items()})


def _checkpoint_module(run_dir: Path, export: dict[str, Any],
                       load_weights: Callable[[torch.nn.Module, Path], None]
                       ) -> tuple[torch.nn.Module, str]:
    """The run's module rebuilt from its config with the exported checkpoint's weights."""
    from guardrail.rundir import checkpoint_path, run_built

    named = Path(str(export.get("checkpoint") or ""))
    local = run_dir / "checkpoints" / named.name if named.name else None
    ckpt = local if local is not None and local.is_file() else checkpoint_path(run_dir, "best")
    module = run_built(run_dir).module
    load_weights(module, ckpt)
    return module.eval(), str(ckpt)


@torch.no_grad()
def _predict(module: torch.nn.Module, inputs: Sequence[torch.Tensor],
             predictions: Callable[[torch.Tensor], list[Any]]) -> list[Any]:
    from guardrail.export import first_output

    return predictions(first_output(module(*inputs)).detach())


def write_result(result: DoctorResult, run_dir: str | Path) -> Path:
    """``RUN_DIR/doctor/<UTC time>/`` with ``doctor.json`` and ``findings.jsonl``."""
    base = Path(run_dir) / FOLDER
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S", time.gmtime())
    folder, n = base / stamp, 1
    while folder.exists():  # two checks in one second keep both
        folder, n = base / f"{stamp}_{n}", n + 1
    folder.mkdir(parents=True)
    result.written_to = str(folder)
    write_json(folder / "doctor.json", result.to_dict())
    write_jsonl(folder / "findings.jsonl", [f.to_dict() for f in result.findings])
    return folder


def last_good_run(run_dir: str | Path) -> Path | None:
    """The latest other run beside ``run_dir`` that completed and was exported, if any.

    What a training-time ``dependency.changed`` warning points ``guardrail doctor`` at: Hydra
    writes a recipe's runs side by side (``outputs/est/<time>/``).

    Example:
        >>> import tempfile
        >>> last_good_run(Path(tempfile.mkdtemp()) / "now") is None
        True
    """
    run_dir = Path(run_dir).absolute()
    if not run_dir.parent.is_dir():
        return None
    found = []
    for other in run_dir.parent.iterdir():
        if other == run_dir or not (other / "export" / "export.json").is_file():
            continue
        try:
            status = json.loads((other / "manifest.json").read_text()).get("status")
        except (OSError, ValueError):
            continue
        if status == "completed":
            found.append(((other / "export" / "export.json").stat().st_mtime, other))
    return max(found)[1] if found else None
