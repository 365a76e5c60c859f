"""``LossProbe``: a loss that starts wrong, diverges, never moves, or swings."""

from __future__ import annotations

import math
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor

from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.checks.loss import (
    divergence_findings,
    initial_findings,
    oscillation_findings,
    plateau_findings,
)
from guardrail.distributed import mean_across_ranks


class LossProbe(GuardrailCallback):
    """Watch the training and validation loss for the four classic failures.

    ``loss.initial`` (the first loss far above an untrained model's: ln C for C classes, the
    mean squared target for regression), ``loss.divergence`` (the recent loss an order of
    magnitude above its best), ``loss.plateau`` (no improvement since the first epoch while
    the loss sits near a constant prediction's) and ``loss.oscillation`` (large up-and-down
    swings between epochs). Step losses stay on the device and are read once per epoch; each
    check fires at most once per run. Under DDP the step and validation losses are averaged
    over ranks (one gather per epoch) before they are judged, so every rank judges the loss
    DDP optimises. The expected and trivial losses need a
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
        self.max_targets = 4096
        self.expected: float | None = None
        self.trivial: dict[str, float | None] = {}
        self._targets: dict[str, list[Tensor]] = {"train": [], "val": []}
        self._buffer: list[Tensor] = []

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        """Keep the step loss on the device; on the first step, the reference losses."""
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, Tensor) and loss.numel() == 1:
            self._buffer.append(loss.detach().reshape(()))
        if trainer.current_epoch == 0:
            self._keep_target("train", pl_module, batch)

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule,
                                outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        """Keep validation targets of the first epoch, for the trivial validation loss."""
        if not trainer.sanity_checking and trainer.current_epoch == 0 and dataloader_idx == 0:
            self._keep_target("val", pl_module, batch)

    def _keep_target(self, split: str, pl_module: LightningModule, batch: Any) -> None:
        kept = self._targets[split]
        if sum(len(t) for t in kept) < self.max_targets:
            target = _target(pl_module, batch)
            if target is not None:
                kept.append(target)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """The epoch's validation loss, if the module logs ``val/loss``."""
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get("val/loss")
        # The mean over ranks (a collective): each rank validated its own share.
        reduced = mean_across_ranks([] if value is None else [float(value)])
        if reduced:
            self.val_epochs.append(reduced[0])

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Read the epoch's step losses (one host sync) and run the checks."""
        # The mean over ranks, step by step (a collective): the loss DDP optimises.
        losses = mean_across_ranks(torch.stack(self._buffer).float().tolist()
                                   if self._buffer else [])
        self._buffer = []
        if losses:
            first_epoch = not self.step_losses
            self.step_losses += losses
            self.train_epochs.append(sum(losses) / len(losses))
            if first_epoch:
                self._set_references(pl_module)
                self.emit_once(trainer, initial_findings(
                    losses[0], getattr(pl_module, "task", None), self.expected))
        self.emit_once(trainer, divergence_findings(self.step_losses))
        split, epochs = ("val", self.val_epochs) if self.val_epochs else \
            ("train", self.train_epochs)
        self.emit_once(trainer, plateau_findings(epochs, self.trivial.get(split), split,
                                                 self.min_epochs))
        self.emit_once(trainer, oscillation_findings(epochs, split))
        self.enforce(trainer)


    def _set_references(self, pl_module: LightningModule) -> None:
        train, val = (torch.cat(self._targets[s]) if self._targets[s] else None
                      for s in ("train", "val"))
        self._targets = {"train": [], "val": []}
        if train is None:
            return
        self.expected, trivial_train, trivial_val = _references(pl_module, train, val)
        self.trivial = {"train": trivial_train, "val": trivial_val}


def _target(pl_module: LightningModule, batch: Any) -> Tensor | None:
    split = getattr(pl_module, "split_batch", None)
    if not callable(split) or getattr(pl_module, "task", None) is None:
        return None
    try:
        target = split(batch)[1]
    except Exception:  # a batch layout the module's own split does not know
        return None
    return target.detach().cpu() if isinstance(target, Tensor) and target.ndim >= 1 else None


def _references(pl_module: LightningModule, train: Tensor,
                val: Tensor | None) -> tuple[float | None, float | None, float | None]:
    """(expected initial loss, trivial train loss, trivial val loss) of a GuardrailModule.

    The trivial losses are the module's own ``compute_loss`` of the best constant prediction
    fitted on the training targets (class frequencies, base rate, mean), on each split.
    """
    task = getattr(pl_module, "task", None)
    compute = getattr(pl_module, "compute_loss", None)
    try:
        with torch.no_grad():
            if task == "multiclass":
                classes = int(getattr(pl_module, "hparams", {}).get("num_classes") or 0)
                freq = torch.bincount(train.long().flatten(), minlength=classes).float() + 0.5
                log_freq = (freq / freq.sum()).log()
                expected = math.log(len(freq))

                def const(t: Tensor) -> Tensor:
                    return log_freq.expand(len(t), -1)
            elif task == "binary":
                logit = float(torch.logit(train.float().mean().clamp(1e-4, 1 - 1e-4)))
                expected = math.log(2)

                def const(t: Tensor) -> Tensor:
                    return torch.full(t.shape, logit)
            elif task in ("regression", "reconstruction"):
                mean = float(train.float().mean())
                expected = float(train.float().pow(2).mean())

                def const(t: Tensor) -> Tensor:
                    return torch.full(t.shape, mean)
            else:
                return None, None, None
            trivial = [float(compute(const(t), t if task != "binary" else t.float()))
                       if t is not None and callable(compute) else None for t in (train, val)]
    except Exception:  # a custom loss the probe does not understand: skip what needs it
        return None, None, None
    return expected, trivial[0], trivial[1]
