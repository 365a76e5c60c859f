"""``RunReport``: write findings.jsonl, report.json and report.html as a run goes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

from guardrail.callbacks.base import best_effort, collect_findings
from guardrail.callbacks.resource_monitor import ResourceMonitor
from guardrail.checks.baseline import datamodule_baselines, datamodule_roles
from guardrail.distributed import world_size
from guardrail.errors import ConfigError
from guardrail.findings import Finding
from guardrail.io import utc_now
from guardrail.report.run import write_run_files


class RunReport(Callback):
    """Keep a run directory's report files current, whatever way the run ends.

    report.json is written when fitting starts (status ``running``), after fitting and testing
    (``completed``), and on an exception (``interrupted`` for Ctrl-C, else ``failed`` with the
    error), so a run that dies still leaves a valid report saying so. Files are written
    atomically, on global rank zero only, after findings are gathered from every rank. When
    the trainer has a ``ResourceMonitor``, its summary (all ranks) is report.json's
    ``resources``.

    Args:
        dirpath: Folder for the files; default: the trainer's ``default_root_dir``.
        run_info: Extra keys for report.json, e.g. ``{"recipe": "wea", "overrides": [...]}``.
        html: Also render report.html.

    Example:
        >>> import tempfile, json, pathlib
        >>> import lightning.pytorch as pl
        >>> from lightning.pytorch.demos.boring_classes import BoringModel
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> trainer = pl.Trainer(callbacks=[RunReport(d)], max_epochs=1, limit_train_batches=2,
        ...                      limit_val_batches=2, logger=False, enable_progress_bar=False,
        ...                      enable_checkpointing=False, enable_model_summary=False)
        >>> trainer.fit(BoringModel())
        >>> json.loads((d / "report.json").read_text())["status"]
        'completed'

    """

    def __init__(self, dirpath: str | Path | None = None, run_info: dict[str, Any] | None = None,
                 html: bool = True) -> None:
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.run_info = dict(run_info or {})
        self.html = html
        self.metrics: dict[str, dict[str, float]] = {}
        self.history: list[dict[str, float]] = []
        self.started_at = utc_now()
        self.report: dict[str, Any] = {}

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Resolve the output folder."""
        if self.dirpath is None:
            self.dirpath = Path(trainer.default_root_dir)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """A first report.json, status ``running``."""
        self.write(trainer, "running", gather=False)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """One learning-curve row: the epoch's train and validation metrics (and DP's ε)."""
        row: dict[str, Any] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        for split, values in _split_metrics(trainer.callback_metrics).items():
            if split in ("train", "val", "privacy"):
                row.update({f"{split}/{k}": v for k, v in values.items()})
        self.history.append(row)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Train and validation metrics; status ``completed`` (or ``interrupted``)."""
        self._update_metrics(trainer, ("train", "val", "privacy"))
        self.write(trainer, "interrupted" if trainer.interrupted else "completed")

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Test metrics and the baselines; status ``completed``."""
        self._update_metrics(trainer, ("test",))
        self.write(trainer, "completed")

    def on_exception(self, trainer: Trainer, pl_module: LightningModule,
                     exception: BaseException) -> None:
        """Status ``interrupted`` (Ctrl-C, SIGTERM) or ``failed``, with the error; local findings.

        SIGTERM is what a scheduler sends to preempt a job or end it at its time limit:
        the run is interrupted, not failed, and the error field names the signal.
        """
        if isinstance(exception, SIGTERMException):
            status, error = "interrupted", (
                f"SIGTERM at step {trainer.global_step}: the run was asked to stop (a "
                "scheduler's preemption or time limit); continue it with `python -m "
                f"guardrail.train resume={self.dirpath}`")
        elif isinstance(exception, KeyboardInterrupt):
            status, error = "interrupted", None
        else:
            status, error = "failed", f"{type(exception).__name__}: {exception}"
        with best_effort("write report.json"):
            self.write(trainer, status, gather=False, error=error)

    def write(self, trainer: Trainer | None, status: str, *, gather: bool = True,
              error: str | None = None, extra_findings: list[Finding] | None = None) -> None:
        """Write the report files now with ``status`` (also usable outside a trainer).

        Under DDP with ``gather`` this is a collective; every rank must call it.
        """
        findings = collect_findings(trainer, gather=gather) if trainer is not None else []
        findings += extra_findings or []
        # A datamodule's baselines() may hold collectives (torchmetrics objects sync under
        # DDP): call it on every rank, and only where every rank is (gather), or alone.
        datamodule = getattr(trainer, "datamodule", None)
        baselines = datamodule_baselines(datamodule) if gather or world_size() == 1 else {}
        roles = _roles(datamodule) if baselines else {}
        if trainer is not None and not trainer.is_global_zero:
            return
        self._write(status, error, findings, baselines, _resources(trainer), roles)

    @rank_zero_only
    def _write(self, status: str, error: str | None, findings: list[Finding],
               baselines: dict[str, Any], resources: dict[str, Any] | None = None,
               roles: dict[str, str] | None = None) -> None:
        if self.dirpath is None:
            return
        report = {
            **self.run_info,
            "status": status,
            "error": error,
            "started_at": self.started_at,
            "finished_at": None if status == "running" else utc_now(),
            "metrics": self.metrics,
            "baselines": baselines or self.report.get("baselines", {}),
            "baseline_roles": {name: (roles or {}).get(name, "trivial") for name in baselines}
            if baselines else self.report.get("baseline_roles", {}),
            "history": self.history,
            "resources": resources or self.report.get("resources"),
        }
        self.report = write_run_files(self.dirpath, report, findings, html=self.html)

    def _update_metrics(self, trainer: Trainer, splits: tuple[str, ...]) -> None:
        for split, values in _split_metrics(trainer.callback_metrics).items():
            if split in splits:
                self.metrics[split] = values


def _split_metrics(callback_metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{"val/rmse": t, "train/loss_epoch": t}`` -> ``{"val": {"rmse": ..}, "train": {..}}``."""
    out: dict[str, dict[str, float]] = {}
    for key, value in callback_metrics.items():
        if "/" not in key or key.endswith("_step"):
            continue
        split, name = key.split("/", 1)
        name = name.removesuffix("_epoch")
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        out.setdefault(split, {})[name] = number
    return out


def _roles(datamodule: Any) -> dict[str, str]:
    """The baselines' roles; a bad one is BaselineCheck's to report, so none here."""
    try:
        return datamodule_roles(datamodule)
    except ConfigError:
        return {}


def _resources(trainer: Trainer | None) -> dict[str, Any] | None:
    """The ResourceMonitor's summary (all ranks), if the trainer has one."""
    monitors = [cb for cb in getattr(trainer, "callbacks", []) if isinstance(cb, ResourceMonitor)]
    return monitors[0].summary() if monitors else None

