"""``BaselineCheck``: compare the model with the datamodule's baselines on the test or val split."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.trainer.states import TrainerFn

from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.checks.baseline import (
    BaselineThresholds,
    compare_to_baselines,
    datamodule_baselines,
    datamodule_roles,
    guess_higher_is_better,
)
from guardrail.errors import ConfigError
from guardrail.findings import Finding, Severity

STAGES: tuple[str, ...] = ("test", "val")


class BaselineCheck(GuardrailCallback):
    """Fire when the model does not beat a trivial baseline, or a simpler model is as good.

    The baselines come from the datamodule's ``baselines()`` method (baseline name -> metric
    short name -> value on the compared split); a datamodule without one gets an ``info``
    ``baseline.missing``. An optional ``baseline_roles()`` (baseline name -> ``trivial`` or
    ``reference``) says which baselines are trivial rules (not beating one is
    ``baseline.not_beaten``, an error) and which are simpler models the team could ship
    instead (``baseline.simpler_model_suffices``, a warning); a baseline it does not name is
    trivial, so a datamodule written before roles existed keeps its meaning. Exact ties on a
    metric that cannot separate the two are ``baseline.not_separable`` (info); see
    :mod:`guardrail.checks.baseline`. A metric's direction is its torchmetrics
    ``higher_is_better`` where the module keeps its metrics in a ``GuardrailModule`` way, else
    a guess by name.

    Each comparison is the verdict: it replaces this callback's findings of the previous one,
    so ``stage="val"`` keeps the latest validation's verdict rather than one finding per
    epoch, and testing twice does not repeat findings. Under ``strict``, an error of a
    ``val`` comparison stops the run when fitting ends (an untrained model loses to the mean
    at epoch 0); one of a ``test`` comparison stops it when testing ends. Two instances, one
    per stage, can share a Trainer (their ``state_key`` differs).

    Args:
        policy: ``record`` or ``strict`` (see :class:`GuardrailCallback`).
        stage: The split compared: ``test`` (after testing) or ``val`` (after each validation).
        thresholds: A :class:`~guardrail.checks.baseline.BaselineThresholds`, or a mapping of
            the fields to change (``{"reference_margin": 0.1}``).

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

    state_key_fields = ("stage",)
    family = "baseline"

    def __init__(self, policy: Policy = "record", stage: str = "test",
                 thresholds: BaselineThresholds | Mapping[str, Any] | None = None) -> None:
        super().__init__(policy)
        if stage not in STAGES:
            raise ConfigError(
                f"BaselineCheck: stage={stage!r} is not one of {', '.join(STAGES)}; the "
                "baselines are scored on a held-out split. Set it with e.g. "
                "`guardrails.callbacks.baseline_check.stage=val`.")
        self.stage = stage
        self.thresholds = BaselineThresholds.coerce(thresholds)

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Validate the datamodule's ``baseline_roles()`` before any training is spent."""
        datamodule_roles(getattr(trainer, "datamodule", None))

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Compare ``test/*`` metrics with the baselines once testing is over."""
        if self.stage == "test":
            self._check(trainer, pl_module)
            self.enforce(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Compare ``val/*`` metrics, when configured with ``stage="val"``."""
        if self.stage == "val" and not trainer.sanity_checking:
            self._check(trainer, pl_module)
            if trainer.state.fn != TrainerFn.FITTING:  # trainer.validate(): no fit end
                self.enforce(trainer)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Under ``strict``, stop on the last validation's verdict (``stage="val"``)."""
        if self.stage == "val":
            self.enforce(trainer)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take a checkpoint's verdict only where this callback has none of its own yet.

        Resuming a run restores the verdict; testing the best checkpoint after fit (which
        loads callback states too) keeps the verdict reached since.
        """
        verdict = self.findings
        super().load_state_dict(state_dict)
        if verdict:
            self.findings = verdict

    def _check(self, trainer: Trainer, pl_module: LightningModule) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        baselines = datamodule_baselines(datamodule)
        self.findings, self._pending = [], None  # a new verdict replaces the last one
        if not baselines:
            self.emit(trainer, Finding(
                "baseline.missing", Severity.INFO,
                "No baseline to compare the model with: the datamodule has no baselines().",
                hint="Give the datamodule a `baselines()` method returning "
                     "{name: {metric: value}} for a trivial rule (mean, median, popularity), "
                     "and a `baseline_roles()` naming any simpler model as 'reference'.",
            ))
            return
        prefix = f"{self.stage}/"
        metrics = {k[len(prefix):]: float(v) for k, v in trainer.callback_metrics.items()
                   if k.startswith(prefix)}
        names = {name for values in baselines.values() for name in values}
        directions = {name: _direction(pl_module, self.stage, name) for name in names}
        for finding in compare_to_baselines(metrics, baselines, directions, self.stage,
                                            datamodule_roles(datamodule), self.thresholds):
            self.emit(trainer, finding)


def _direction(pl_module: LightningModule, stage: str, name: str) -> bool | None:
    collection: Any = getattr(pl_module, "metrics", None)
    try:
        metric = collection[f"{stage}_metrics"][name]
        return bool(metric.higher_is_better) if metric.higher_is_better is not None else None
    except (KeyError, TypeError, AttributeError):
        return guess_higher_is_better(name)
