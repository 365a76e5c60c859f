"""``DataProbe``: unnormalised inputs and train/validation overlap, checked before training."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor

from guardrail.batches import model_inputs, peek_batches, peekable
from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.checks.data import (
    DataThresholds,
    duplicate_share,
    input_stats,
    leakage_findings,
    repeats_expected,
    unnormalized_findings,
)
from guardrail.distributed import gather_objects
from guardrail.findings import Finding, Severity
from guardrail.fingerprint import MAX_SAMPLES, sample_hashes, sample_rows

Hashes = tuple[np.ndarray, int] | None  # (per-sample hashes, samples in the split)


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

    Hashing grows with the data, so under DDP every rank hashes a shard of each split and the
    hashes are gathered (the others no longer wait for rank zero); a map-style split of more
    than ``max_samples`` samples is hashed on a seeded sample, and the overlap found in a
    sampled training split is scaled up by its coverage (an ``info`` says so).

    Args:
        policy: ``record`` or ``strict``.
        batches: Training batches measured for the scale checks.
        thresholds: :class:`~guardrail.checks.data.DataThresholds`, or a mapping of the fields
            to change (``{"max_abs": 1e9}``).
        max_samples: Samples of a map-style split hashed before a seeded sample is taken.

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

    family = "data"

    def __init__(self, policy: Policy = "record", batches: int = 4,
                 thresholds: DataThresholds | Mapping[str, Any] | None = None,
                 max_samples: int = MAX_SAMPLES) -> None:
        super().__init__(policy)
        self.batches = batches
        self.thresholds = DataThresholds.coerce(thresholds)
        self.max_samples = max_samples

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Scale checks on the first batches and the overlap check, then agree."""
        train, vals = self._hashes(trainer)  # a collective: every rank hashes a shard
        if trainer.is_global_zero:
            self._scales(trainer, pl_module)
            self._leakage(trainer, train, vals)
        self.enforce(trainer)

    def _hashes(self, trainer: Trainer) -> tuple[Hashes, list[Hashes]]:
        """The training split's and each validation split's hashes, sharded over the ranks."""
        rank, world = trainer.global_rank, trainer.world_size
        gather = gather_objects if world > 1 else None

        def hashes(dataset: Any) -> Hashes:
            return sample_hashes(dataset, self.max_samples, rank=rank, world=world,
                                 gather=gather) if dataset is not None else None

        train = hashes(getattr(trainer.train_dataloader, "dataset", None))
        if train is None:
            return None, []
        vals = trainer.val_dataloaders
        vals = vals if isinstance(vals, list | tuple) else [vals]
        return train, [hashes(getattr(v, "dataset", None)) for v in vals if v is not None]

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
            if not isinstance(first, Tensor) or first.numel() == 0:
                continue  # e.g. a block of numeric features the data happens not to have
            if not torch.is_floating_point(first):
                self.emit(trainer, Finding(
                    "data.skipped", Severity.INFO,
                    f"Input {i} holds integers ({first.dtype}): ids are not judged for scale.",
                    where=where))
                continue
            x = torch.cat([b[i] for b in batches if b is not None and len(b) > i])
            for finding in unnormalized_findings(input_stats(x), where, names,
                                                 self.thresholds):
                self.emit(trainer, finding)

    def _leakage(self, trainer: Trainer, train: Hashes, vals: list[Hashes]) -> None:
        if train is None:
            return
        train_hashes, n_train = train
        coverage = len(train_hashes) / max(n_train, 1)  # below 1: a seeded sample was hashed
        natural: float | None = None  # measured once, only where some sample is shared
        for i, val in enumerate(vals):
            if val is None:
                continue
            val_hashes, _ = val
            found = int(np.isin(val_hashes, train_hashes).sum())
            overlap = min(round(found / coverage), len(val_hashes)) if found else 0
            if overlap and natural is None:
                natural = self._natural_share(
                    getattr(trainer.train_dataloader, "dataset", None), train_hashes)
            split = "val" if i == 0 else f"val{i}"
            if coverage < 1:
                self.emit(trainer, Finding(
                    "data.skipped", Severity.INFO,
                    f"Leakage was judged on a seeded sample of {len(train_hashes)} of "
                    f"{n_train} training samples; the {found} {split} samples found in it "
                    f"count as {overlap}.", where=split,
                    evidence={"hashed": len(train_hashes), "samples": n_train},
                    hint="Raise `max_samples` (guardrails.callbacks.data_probe.max_samples) "
                         "to hash every sample."))
            for finding in leakage_findings(overlap, len(val_hashes), split,
                                            natural=natural or 0.0,
                                            thresholds=self.thresholds):
                self.emit(trainer, finding)

    def _natural_share(self, train: object, hashes: np.ndarray) -> float:
        """Duplicates within training, where inputs can repeat without anyone copying them."""
        within = duplicate_share(hashes)
        if within == 0.0:
            return 0.0
        rows = sample_rows(train)
        return within if rows is None or repeats_expected(rows, self.thresholds) else 0.0
