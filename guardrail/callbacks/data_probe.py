"""``DataProbe``: unnormalised inputs and train/validation overlap, checked before training."""

from __future__ import annotations

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor

from guardrail.batches import model_inputs, peek_batches, peekable
from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.checks.data import (
    duplicate_share,
    input_stats,
    leakage_findings,
    repeats_expected,
    unnormalized_findings,
)
from guardrail.findings import Finding, Severity
from guardrail.fingerprint import sample_hashes, sample_rows


class DataProbe(GuardrailCallback):
    """Check the data a model is about to train on.

    At fit start, on global rank zero: every floating-point input of the first
    ``batches`` training batches is measured (``data.unnormalized``: raw 0-255 pixels or
    counts, or one feature on a scale far from the others, named by ``feature_names`` where
    the module has them); integer inputs (token or category ids) are not judged and say so in
    an ``info``; and every validation sample is hashed against the training samples
    (``data.leakage``: byte-identical inputs on both sides, beyond what chance explains:
    where inputs take few values, as a customer's first-week counts do, two customers can
    share them, so the share of validation samples found in training is judged against the
    share of training samples that equal another training sample).

    Args:
        policy: ``record`` or ``strict``.
        batches: Training batches measured for the scale checks.
        max_abs: Values at least this large count as unnormalised.
        scale_ratio: A feature's standard deviation this many times the median feature's
            counts as on another scale.

    Example:
        >>> import torch
        >>> import lightning.pytorch as pl
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from guardrail import GuardrailModule
        >>> x = torch.randint(0, 256, (64, 4)).float()  # raw, like pixels
        >>> data = DataLoader(TensorDataset(x, torch.randn(64)), batch_size=16)
        >>> probe = DataProbe()
        >>> trainer = pl.Trainer(callbacks=[probe], fast_dev_run=True, logger=False,
        ...                      enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(GuardrailModule(torch.nn.Linear(4, 1)), data, data)
        >>> sorted((f.check, f.where) for f in probe.findings)
        [('data.leakage', 'val'), ('data.unnormalized', 'input 0')]
    """

    def __init__(self, policy: Policy = "record", batches: int = 4, max_abs: float = 100.0,
                 scale_ratio: float = 1000.0) -> None:
        super().__init__(policy)
        self.batches = batches
        self.max_abs = max_abs
        self.scale_ratio = scale_ratio

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Scale checks on the first batches and the overlap check, then agree."""
        if trainer.is_global_zero:
            self._scales(trainer, pl_module)
            self._leakage(trainer)
        self.enforce(trainer)

    def _scales(self, trainer: Trainer, pl_module: LightningModule) -> None:
        loader = trainer.train_dataloader
        if not peekable(loader):
            return
        batches = [model_inputs(pl_module, b) for b in peek_batches(loader, self.batches)]
        if not batches or batches[0] is None:
            self.emit(trainer, Finding(
                "data.skipped", Severity.INFO, "Input scales were not checked: the batch "
                "layout is not one the probe understands.",
                hint="Give the module a split_batch(batch) -> (inputs, target) method."))
            return
        names = getattr(pl_module, "feature_names", None)
        for i, first in enumerate(batches[0]):
            where = f"input {i}"
            if not isinstance(first, Tensor):
                continue
            if not torch.is_floating_point(first):
                self.emit(trainer, Finding(
                    "data.skipped", Severity.INFO,
                    f"Input {i} holds integers ({first.dtype}): ids are not judged for scale.",
                    where=where))
                continue
            x = torch.cat([b[i] for b in batches if b is not None and len(b) > i])
            for finding in unnormalized_findings(input_stats(x), where, names,
                                                 self.max_abs, self.scale_ratio):
                self.emit(trainer, finding)

    def _leakage(self, trainer: Trainer) -> None:
        train = getattr(trainer.train_dataloader, "dataset", None)
        vals = trainer.val_dataloaders
        vals = vals if isinstance(vals, list | tuple) else [vals]
        train_hashes = sample_hashes(train) if train is not None else None
        if train_hashes is None:
            return
        natural: float | None = None  # measured once, only where some sample is shared
        for i, loader in enumerate(v for v in vals if v is not None):
            val_hashes = sample_hashes(getattr(loader, "dataset", None))
            if val_hashes is None:
                continue
            overlap = int(np.isin(val_hashes, train_hashes).sum())
            if overlap and natural is None:
                natural = self._natural_share(train, train_hashes)
            split = "val" if i == 0 else f"val{i}"
            for finding in leakage_findings(overlap, len(val_hashes), split,
                                            natural=natural or 0.0):
                self.emit(trainer, finding)

    @staticmethod
    def _natural_share(train: object, hashes: np.ndarray) -> float:
        """Duplicates within training, where inputs can repeat without anyone copying them."""
        within = duplicate_share(hashes)
        if within == 0.0:
            return 0.0
        rows = sample_rows(train)
        return within if rows is None or repeats_expected(rows) else 0.0
