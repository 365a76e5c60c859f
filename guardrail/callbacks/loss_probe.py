"""``LossProbe``: a loss that starts wrong, diverges, never moves, or swings."""

from __future__ import annotations

import math
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor

from guardrail.batches import model_inputs
from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.checks.loss import (
    divergence_findings,
    initial_findings,
    oscillation_findings,
    plateau_findings,
)


class LossProbe(GuardrailCallback):
    """Watch the training and validation loss for the four classic failures.

    ``loss.initial`` (the first loss far above an untrained model's: ln C for C classes, the
    mean squared target for regression), ``loss.divergence`` (the recent loss an order of
    magnitude above its best), ``loss.plateau`` (no improvement since the first epoch while
    the loss sits near a constant prediction's) and ``loss.oscillation`` (large up-and-down
    swings between epochs). Step losses stay on the device and are read once per epoch; each
    check fires at most once per run. The expected and trivial losses need a
    ``GuardrailModule`` (its ``task`` and ``compute_loss``); on other modules the checks that
    need them are skipped.

    Args:
        policy: ``record`` or ``strict``.
        min_epochs: Epochs before plateau is judged.

    Example:
        >>> import torch
        >>> import lightning.pytorch as pl
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from guardrail import GuardrailModule
        >>> _ = torch.manual_seed(0)
        >>> def unrelated():  # y unrelated to x: nothing to learn
        ...     return DataLoader(TensorDataset(torch.randn(256, 4), torch.randn(256)), 32)
        >>> probe = LossProbe()
        >>> trainer = pl.Trainer(callbacks=[probe], max_epochs=6, logger=False,
        ...                      enable_progress_bar=False, enable_model_summary=False,
        ...                      enable_checkpointing=False)
        >>> trainer.fit(GuardrailModule(torch.nn.Linear(4, 1), lr=0.01), unrelated(), unrelated())
        >>> [(f.check, f.where) for f in probe.findings]
        [('loss.plateau', 'val/loss')]
    """

    def __init__(self, policy: Policy = "record", min_epochs: int = 4) -> None:
        super().__init__(policy)
        self.min_epochs = min_epochs
        self.step_losses: list[float] = []
        self.train_epochs: list[float] = []
        self.val_epochs: list[float] = []
        self.expected: float | None = None
        self.trivial: float | None = None
        self._buffer: list[Tensor] = []

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        """Keep the step loss on the device; on the first step, the reference losses."""
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, Tensor) and loss.numel() == 1:
            self._buffer.append(loss.detach().reshape(()))
        if trainer.global_step <= 1 and self.expected is None:
            self.expected, self.trivial = _references(pl_module, batch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """The epoch's validation loss, if the module logs ``val/loss``."""
        value = trainer.callback_metrics.get("val/loss")
        if value is not None and not trainer.sanity_checking:
            self.val_epochs.append(float(value))

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Read the epoch's step losses (one host sync) and run the checks."""
        if self._buffer:
            losses = torch.stack(self._buffer).float().tolist()
            self._buffer = []
            first_epoch = not self.step_losses
            self.step_losses += losses
            self.train_epochs.append(sum(losses) / len(losses))
            if first_epoch:
                self.emit_once(trainer, initial_findings(
                    losses[0], getattr(pl_module, "task", None), self.expected))
        self.emit_once(trainer, divergence_findings(self.step_losses))
        split, epochs = ("val", self.val_epochs) if self.val_epochs else \
            ("train", self.train_epochs)
        self.emit_once(trainer, plateau_findings(epochs, self.trivial, split, self.min_epochs))
        self.emit_once(trainer, oscillation_findings(epochs, split))
        self.enforce(trainer)



def _references(pl_module: LightningModule, batch: Any) -> tuple[float | None, float | None]:
    """(expected initial loss, trivial constant-prediction loss) for a GuardrailModule."""
    task = getattr(pl_module, "task", None)
    split = getattr(pl_module, "split_batch", None)
    compute = getattr(pl_module, "compute_loss", None)
    if task is None or not callable(split) or not callable(compute) \
            or model_inputs(pl_module, batch) is None:
        return None, None
    try:
        _, target = split(batch)
        if not isinstance(target, Tensor) or (not target.is_floating_point()
                                              and task not in ("binary", "multiclass")):
            return None, None
        with torch.no_grad():
            if task == "multiclass":
                # class frequencies as logits: the best constant prediction for cross-entropy
                classes = int(getattr(pl_module, "hparams", {}).get("num_classes") or 0)
                freq = torch.bincount(target.long(), minlength=classes).float() + 0.5
                logits = (freq / freq.sum()).log().expand(len(target), -1)
                return math.log(classes), float(compute(logits, target))
            if task == "binary":
                p = target.float().mean().clamp(1e-4, 1 - 1e-4)
                const = torch.full_like(target.float(), float(torch.logit(p)))
                return math.log(2), float(compute(const, target))
            if task in ("regression", "reconstruction"):
                target = target.float()
                return float(target.pow(2).mean()), float(compute(
                    torch.full_like(target, float(target.mean())), target))
    except Exception:  # a custom batch or loss the probe does not understand
        return None, None
    return None, None
