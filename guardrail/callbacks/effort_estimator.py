"""``EffortEstimator``: when will the validation metric be good enough; is the target futile."""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningModule, Trainer

from guardrail.callbacks.base import GuardrailCallback, Policy, best_effort
from guardrail.callbacks.loss_probe import val_loss_key
from guardrail.checks.effort import (
    EFFORT_FILE,
    EffortThresholds,
    Forecast,
    effort_findings,
    forecast_curve,
    warm_start,
)
from guardrail.distributed import on_rank_zero
from guardrail.errors import ConfigError
from guardrail.findings import Finding, Severity
from guardrail.io import write_json

_LATEST = ("effort.forecast", "effort.thin_evidence")  # replaced by each new forecast
_VALIDATION = re.compile(r"^(val|valid|validation)[/_.-]", re.IGNORECASE)


class EffortEstimator(GuardrailCallback):
    """Forecast the validation metric's learning curve after every validation epoch.

    The curve so far (epoch -> value) is fitted with several learning-curve families, weighted
    by how well each predicted points it had not seen, and turned into a predictive
    distribution (:func:`guardrail.checks.effort.forecast_curve`): the metric at the planned
    last epoch (``trainer.max_epochs``, or ``max_steps`` in epochs) and, with a ``target``, the
    epoch at which it is reached and the chance of reaching it in time. ``effort.forecast``
    (info) says it in one sentence ("val/ap will reach 0.8 by epoch 34 (80% interval 22-61)";
    the latest one is kept), ``effort.thin_evidence`` (info) when there are too few or too
    noisy points, and ``effort.futile`` (warning, once) when the target has under
    ``futile_probability`` chance within the planned epochs. Under ``strict`` a futile run is
    stopped at once (``trainer.should_stop``, agreed across ranks), and the finding says how
    many epochs and how much wall time that saved. ``effort.json`` in the run directory keeps
    the curve, the members with their weights and the forecast's quantiles, for report.html.

    The monitored metric is ``monitor``, else the target's metric, else the one the trainer's
    ``ModelCheckpoint`` selects weights by, else the validation loss (``val/loss``,
    ``val_loss``, ...), else the first ``val/*`` or ``val_*`` key in alphabetical order. A
    key that is named but never logged is a configuration error, raised after the first
    validation epoch with the keys that are. A run without validation, a NaN metric or a
    single validation epoch gives an info or nothing, never an error. Under DDP
    the forecast is made on rank zero (from metrics Lightning has already reduced) and
    broadcast, so every rank takes the same decision.

    Args:
        policy: ``record`` (forecast only) or ``strict`` (stop a futile run).
        monitor: The validation metric's key; None: as above.
        target: ``{"metric": "val/ap", "value": 0.8}``, or None (forecast only).
        higher_is_better: The metric's direction; None: from its name, else from its curve.
        thresholds: An :class:`~guardrail.checks.effort.EffortThresholds`, or a mapping of the
            fields to change.
        dirpath: Folder of ``effort.json``; None: the trainer's ``default_root_dir``.

    Logged keys: ``guardrail/effort_p_reach`` (with a target), ``guardrail/effort_final_q50``.

    Example:
        >>> import lightning.pytorch as pl
        >>> from lightning.pytorch.demos.boring_classes import BoringModel
        >>> import tempfile
        >>> cb = EffortEstimator(monitor="valid_loss", dirpath=tempfile.mkdtemp())
        >>> trainer = pl.Trainer(callbacks=[cb], max_epochs=5, limit_train_batches=4,
        ...                      limit_val_batches=2, logger=False, enable_progress_bar=False,
        ...                      enable_model_summary=False, enable_checkpointing=False)
        >>> class Logged(BoringModel):
        ...     def validation_step(self, batch, i):
        ...         loss = self.step(batch)
        ...         self.log("valid_loss", loss)
        ...         return {"x": loss}
        >>> trainer.fit(Logged())
        >>> cb.key, len(cb.values), [f.check for f in cb.findings]
        ('valid_loss', 5, ['effort.forecast'])

    """

    family = "effort"
    state_fields = ("epochs", "values", "key", "seconds")

    def __init__(self, policy: Policy = "record", monitor: str | None = None,
                 target: Mapping[str, Any] | None = None, higher_is_better: bool | None = None,
                 thresholds: EffortThresholds | Mapping[str, Any] | None = None,
                 dirpath: str | Path | None = None) -> None:
        super().__init__(policy)
        metric = target.get("metric") if isinstance(target, Mapping) else None
        value = target.get("value") if isinstance(target, Mapping) else None
        self.require(
            ("monitor", monitor, monitor is None or (isinstance(monitor, str) and bool(monitor)),
             "a logged key such as 'val/ap', or None"),
            ("target", target, target is None or (
                isinstance(target, Mapping) and set(target) <= {"metric", "value"} and
                isinstance(value, int | float) and not isinstance(value, bool) and
                math.isfinite(value) and (metric is None or isinstance(metric, str))),
             "None or {'metric': 'val/ap', 'value': 0.8} (a finite number)"),
            ("higher_is_better", higher_is_better, higher_is_better in (None, True, False),
             "true, false or null"))
        self.monitor = monitor or metric
        self.target = None if target is None else float(value)  # type: ignore[arg-type]
        self.higher_is_better = higher_is_better
        self.thresholds = EffortThresholds.coerce(thresholds)
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.epochs: list[float] = []
        self.values: list[float] = []
        self.seconds: list[float] = []  # wall time of each validation since fit start
        self.key: str | None = None
        self.forecast: Forecast | None = None
        self._warm: dict[str, list[float]] = {}
        self._start = time.monotonic()
        self._offset = 0.0

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start the wall clock (a resumed run goes on from its recorded time)."""
        self._start = time.monotonic()
        self._offset = self.seconds[-1] if self.seconds else 0.0

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Read the metric, forecast, write ``effort.json``; stop a futile run under strict."""
        if trainer.sanity_checking:
            return
        key = self.key or self._find_key(trainer)
        if key is None:
            return
        value = trainer.callback_metrics.get(key)
        x = float(trainer.current_epoch + 1)
        if value is not None:
            if self.epochs and self.epochs[-1] == x:  # validated again within the epoch
                self.epochs.pop(), self.values.pop(), self.seconds.pop()
            self.key = key
            self.epochs.append(x)
            self.values.append(float(value))
            self.seconds.append(self._offset + time.monotonic() - self._start)
        planned = _planned_epochs(trainer)
        forecast, findings = on_rank_zero(lambda: self._judge(planned))
        self.forecast = forecast
        self.findings = [f for f in self.findings if f.check not in _LATEST]
        futile = None
        for finding in findings:
            if finding.check == "effort.futile":
                if ("effort.futile", finding.where) in self._emitted:
                    continue
                futile = finding = self._savings(trainer, finding, planned)
            self.emit_once(trainer, [finding]) if finding.check == "effort.futile" else \
                self.emit(trainer, finding)
        if self.policy == "strict" and trainer.strategy.reduce_boolean_decision(
                futile is not None, all=False):
            trainer.should_stop = True
        if trainer.is_global_zero and forecast is not None:
            if forecast.status == "forecast":
                metrics = {"guardrail/effort_final_q50": forecast.final[0.5]}
                if forecast.p_reach is not None:
                    metrics["guardrail/effort_p_reach"] = forecast.p_reach
                self.log_metrics(trainer, metrics)
            with best_effort(f"write {EFFORT_FILE}"):
                folder = self.dirpath or Path(trainer.default_root_dir)
                write_json(folder / EFFORT_FILE, {**forecast.to_dict(), "key": self.key,
                                                  "sentence": forecast.sentence(),
                                                  "seconds": self.seconds})

    # ------------------------------------------------------------------------------- helpers
    def _find_key(self, trainer: Trainer) -> str | None:
        metrics = trainer.callback_metrics
        if self.monitor is not None:
            if self.monitor in metrics:
                return self.monitor
            logged = sorted(k for k in metrics if not k.startswith("guardrail/"))
            raise ConfigError(
                f"EffortEstimator(monitor={self.monitor!r}): the module logged no such key after "
                f"a validation epoch; it logged: {', '.join(logged) or 'nothing'}. Set "
                "`guardrails.callbacks.effort.monitor` (or `effort.target.metric`) to a key your "
                "validation_step logs with self.log, e.g. 'val/loss'.")
        checkpoint = trainer.checkpoint_callback
        chosen = getattr(checkpoint, "monitor", None)
        if isinstance(chosen, str) and chosen in metrics:
            return chosen
        key = val_loss_key(metrics) or next(
            (k for k in sorted(metrics) if _VALIDATION.match(k)), None)
        if key is None:
            self.emit_once(trainer, [Finding(
                "effort.skipped", Severity.INFO, "No forecast: no validation metric was found "
                "(looked for the checkpoint's monitor, val/loss, val_loss, ..., and any val/* "
                "or val_* key).",
                where="monitor", hint="Set EffortEstimator(monitor=...) to a key your "
                "validation_step logs.")])
        return key

    def _judge(self, planned: int | None) -> tuple[Forecast | None, list[Finding]]:
        if not self.values or self.key is None:
            return None, []
        fc = forecast_curve(self.epochs, self.values, planned, self.key,
                            higher_is_better=self.higher_is_better, target=self.target,
                            limits=self.thresholds, warm=self._warm)
        self._warm = warm_start(fc)
        return fc, effort_findings(fc, self.thresholds)

    def _savings(self, trainer: Trainer, finding: Finding, planned: int | None) -> Finding:
        """Under strict, say what stopping now saves: epochs and (at the pace so far) time."""
        if self.policy != "strict" or not planned:
            return finding
        done = trainer.current_epoch + 1
        left = max(planned - done, 0)
        per_epoch = self.seconds[-1] / done if self.seconds else 0.0
        saved_s = left * per_epoch
        return dataclasses.replace(
            finding, message=f"{finding.message} Stopped after epoch {done} of {planned} "
            f"(guardrails=strict): {left} epochs, about {_duration(saved_s)} of training, saved.",
            evidence={**finding.evidence, "stopped_epoch": done, "saved_epochs": left,
                      "saved_s": round(saved_s, 1)})


def _planned_epochs(trainer: Trainer) -> int | None:
    """The planned last epoch: ``max_epochs``, else ``max_steps`` in epochs, else None."""
    if trainer.max_epochs is not None and trainer.max_epochs > 0:
        return int(trainer.max_epochs)
    batches = trainer.num_training_batches
    if trainer.max_steps > 0 and isinstance(batches, int | float) and math.isfinite(batches) \
            and batches > 0:
        per_epoch = math.ceil(batches / trainer.accumulate_grad_batches)
        return math.ceil(trainer.max_steps / per_epoch)
    return None


def _duration(seconds: float) -> str:
    """'42 s', '3.5 min', '2.1 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
