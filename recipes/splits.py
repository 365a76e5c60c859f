"""Dataloader methods over a datamodule's ``_loader(split, shuffle)``.

New recipes subclass :class:`guardrail.datamodule.RecipeDataModule`, which builds the loaders
itself (batch size, workers, the seeded shuffle); :class:`SplitLoaders` remains for
datamodules that write their own ``_loader``. :class:`BatchedTensors` and :func:`collate`
live in :mod:`guardrail.datamodule` and are re-exported here.

Example:
    >>> import lightning.pytorch as pl
    >>> class Demo(SplitLoaders, pl.LightningDataModule):
    ...     def _loader(self, split: str, shuffle: bool = False) -> list:
    ...         return [split, shuffle]
    >>> Demo().train_dataloader(), Demo().val_dataloader()
    (['train', True], ['val', False])
"""

from __future__ import annotations

from typing import Any

from guardrail.datamodule import BatchedTensors, collate

__all__ = ["BatchedTensors", "SplitLoaders", "collate"]


class SplitLoaders:
    """``train/val/test_dataloader`` over a recipe's ``_loader(split, shuffle)``.

    Training batches are reshuffled every epoch; validation and test batches keep the
    split's order. The datamodule implements ``_loader`` (batch size, workers, generator).
    """

    def _loader(self, split: str, shuffle: bool = False) -> Any:
        raise NotImplementedError

    def train_dataloader(self) -> Any:
        """Training batches, reshuffled every epoch."""
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> Any:
        """Validation batches, in the split's order."""
        return self._loader("val")

    def test_dataloader(self) -> Any:
        """Test batches, in the split's order."""
        return self._loader("test")
