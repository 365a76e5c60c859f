"""``BaselineCheck``: after testing, compare the model with the datamodule's baselines."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer

from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.checks.baseline import compare_to_baselines, guess_higher_is_better
from guardrail.findings import Finding, Severity


class BaselineCheck(GuardrailCallback):
    """Fire ``baseline.not_beaten`` when a test metric does not beat a trivial baseline.

    The baselines come from the datamodule's ``baselines()`` method (baseline name -> metric
    short name -> test value); a datamodule without one gets an ``info`` finding
    ``baseline.missing``. A metric's direction is its torchmetrics ``higher_is_better``
    where the module keeps its metrics in a ``GuardrailModule`` way, else a guess by name.

    Args:
        policy: ``record`` or ``strict`` (see :class:`GuardrailCallback`).
        stage: The split compared, ``test`` by default.

    Example:
        >>> import lightning.pytorch as pl
        >>> from lightning.pytorch.demos.boring_classes import BoringModel
        >>> cb = BaselineCheck()
        >>> trainer = pl.Trainer(callbacks=[cb], max_epochs=1, limit_test_batches=2, logger=False,
        ...                      enable_progress_bar=False, enable_model_summary=False)
        >>> _ = trainer.test(BoringModel(), verbose=False)
        >>> [f.check for f in cb.findings]
        ['baseline.missing']

    """

    def __init__(self, policy: Policy = "record", stage: str = "test") -> None:
        super().__init__(policy)
        self.stage = stage

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Compare ``test/*`` metrics with the baselines once testing is over."""
        if self.stage == "test":
            self._check(trainer, pl_module)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Compare ``val/*`` metrics, when configured with ``stage="val"``."""
        if self.stage == "val" and not trainer.sanity_checking:
            self._check(trainer, pl_module)

    def _check(self, trainer: Trainer, pl_module: LightningModule) -> None:
        baselines = _baselines(trainer)
        if not baselines:
            self.emit(trainer, Finding(
                "baseline.missing", Severity.INFO,
                "No baseline to compare the model with: the datamodule has no baselines().",
                hint="Give the datamodule a `baselines()` method returning "
                     "{name: {metric: value}} for a trivial rule (mean, median, popularity).",
            ))
            return
        prefix = f"{self.stage}/"
        metrics = {k[len(prefix):]: float(v) for k, v in trainer.callback_metrics.items()
                   if k.startswith(prefix)}
        names = {name for values in baselines.values() for name in values}
        directions = {name: _direction(pl_module, self.stage, name) for name in names}
        for finding in compare_to_baselines(metrics, baselines, directions, self.stage):
            self.emit(trainer, finding)
        self.enforce(trainer)


def _baselines(trainer: Trainer) -> dict[str, dict[str, float]]:
    datamodule: Any = getattr(trainer, "datamodule", None)
    method = getattr(datamodule, "baselines", None)
    return dict(method()) if callable(method) else {}


def _direction(pl_module: LightningModule, stage: str, name: str) -> bool | None:
    collection: Any = getattr(pl_module, "metrics", None)
    try:
        metric = collection[f"{stage}_metrics"][name]
        return bool(metric.higher_is_better) if metric.higher_is_better is not None else None
    except (KeyError, TypeError, AttributeError):
        return guess_higher_is_better(name)
