"""The dataloader methods every recipe's datamodule shares.

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

import torch
from torch.utils.data import TensorDataset, default_collate


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


class _Batch(list):
    """Tensors already batched by :class:`BatchedTensors`: collation passes them through."""


class BatchedTensors(TensorDataset):
    """A ``TensorDataset`` that a DataLoader reads a batch at a time.

    The loader's fetcher calls ``__getitems__`` with a batch's indices; one indexing per
    tensor replaces a ``__getitem__`` per sample and the stacking after it. At RET's 1024
    users per batch the per-sample path took half of every training step
    (``resources.input_bound``). Samples, order and sampler are those of a
    ``TensorDataset``; pass :func:`collate` as the loader's ``collate_fn``.

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader
        >>> data = BatchedTensors(torch.arange(10.0), torch.arange(10))
        >>> [x.tolist() for x in next(iter(DataLoader(data, 4, collate_fn=collate)))]
        [[0.0, 1.0, 2.0, 3.0], [0, 1, 2, 3]]
    """

    def __getitems__(self, indices: list[int]) -> _Batch:
        index = torch.as_tensor(indices, dtype=torch.long)
        return _Batch(t[index] for t in self.tensors)


def collate(data: Any) -> Any:
    """A batch from :class:`BatchedTensors` as it is; anything else by ``default_collate``."""
    return list(data) if isinstance(data, _Batch) else default_collate(data)
