"""Look at a module's inputs without disturbing training.

Example:
    >>> import torch
    >>> from torch.utils.data import DataLoader
    >>> loader = DataLoader(list(range(10)), batch_size=4, shuffle=True)
    >>> state = torch.random.get_rng_state()
    >>> [b.tolist() for b in peek_batches(loader, 1)][0].__len__()
    4
    >>> torch.equal(state, torch.random.get_rng_state())  # training will draw the same order
    True
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

import torch
from lightning.pytorch.utilities.seed import isolate_rng
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset


@contextlib.contextmanager
def _generators_kept(loader: DataLoader) -> Iterator[None]:
    """Leave a sampler's own generator as it was (iterating it advances it)."""
    gens = [g for g in (getattr(loader.sampler, "generator", None), loader.generator)
            if isinstance(g, torch.Generator)]
    states = [g.get_state() for g in gens]
    try:
        yield
    finally:
        for g, s in zip(gens, states, strict=True):
            g.set_state(s)


def peekable(loader: Any) -> bool:
    """A map-style DataLoader: peeking at it cannot consume data training needs."""
    return isinstance(loader, DataLoader) and not isinstance(loader.dataset, IterableDataset)


def peek_batches(loader: DataLoader, n: int) -> list[Any]:
    """The first ``n`` batches of a fresh iterator, with every RNG left as it was."""
    with isolate_rng(), _generators_kept(loader):
        return list(itertools.islice(iter(loader), n))


def peek_rows(loader: Any, pl_module: Any, n: int) -> tuple[tuple[Tensor, ...] | None, Any, str]:
    """The forward inputs and targets of a fresh iterator's first ``n`` samples.

    Returns ``(inputs, targets, why)``: inputs None (and why not) unless they are tensors
    sharing one batch size; targets None unless they are a tensor or a tuple of tensors of
    that batch size (``split_batch`` decides what the target is). Every RNG is left as it was.
    """
    if not peekable(loader):
        return None, None, "the loader is not a map-style DataLoader"
    parts, targets, rows = [], [], 0
    split = getattr(pl_module, "split_batch", None)
    with isolate_rng(), _generators_kept(loader):
        for batch in loader:
            inputs = model_inputs(pl_module, batch)
            if not inputs or not all(isinstance(x, Tensor) and x.ndim for x in inputs) or \
                    len({x.shape[0] for x in inputs}) != 1:
                return None, None, "its batches' forward inputs are not tensors of one batch size"
            parts.append(inputs)
            targets.append(split(batch)[1] if callable(split) else None)
            rows += len(inputs[0])
            if rows >= n:
                break
    if not parts:
        return None, None, "the loader is empty"
    return (tuple(torch.cat(column)[:n] for column in zip(*parts, strict=True)),
            _stack_targets(targets, n), "")


def _stack_targets(targets: list[Any], n: int) -> Any:
    if all(isinstance(t, Tensor) and t.ndim for t in targets):
        return torch.cat(targets)[:n]
    if all(isinstance(t, tuple) and t and all(isinstance(x, Tensor) and x.ndim for x in t)
           for t in targets):
        return tuple(torch.cat(column)[:n] for column in zip(*targets, strict=True))
    return None


def model_inputs(pl_module: Any, batch: Any) -> tuple[Any, ...] | None:
    """The forward inputs in ``batch``, or None when it cannot tell.

    ``split_batch`` where the module has one, else the first element of a tuple or list, a
    dict's tensors other than its target (``target``, ``label``, ``y``, ...), or the tensor
    itself.

    Example:
        >>> batch = {"image": torch.zeros(2, 3), "label": torch.tensor([0, 1])}
        >>> [x.shape for x in model_inputs(None, batch)]
        [torch.Size([2, 3])]
    """
    split = getattr(pl_module, "split_batch", None)
    if callable(split):
        return tuple(split(batch)[0])
    if isinstance(batch, Tensor):
        return (batch,)
    if isinstance(batch, list | tuple) and batch and isinstance(batch[0], Tensor):
        return (batch[0],)
    if isinstance(batch, dict):
        inputs = tuple(v for k, v in batch.items()
                       if isinstance(v, Tensor) and k not in _TARGET_KEYS)
        return inputs or None
    return None


def batch_tensors(batch: Any) -> list[Tensor]:
    """Every tensor in a batch (tuples, lists and dicts, nested), in order.

    Example:
        >>> [t.tolist() for t in batch_tensors({"x": torch.tensor([1]), "y": [torch.tensor(2)]})]
        [[1], 2]
    """
    if isinstance(batch, Tensor):
        return [batch]
    if isinstance(batch, list | tuple):
        return [t for item in batch for t in batch_tensors(item)]
    if isinstance(batch, dict):
        return [t for item in batch.values() for t in batch_tensors(item)]
    return []


_TARGET_KEYS = ("target", "targets", "label", "labels", "y")


def default_target(batch: Any) -> Tensor | None:
    """The target as most training steps take it.

    ``(x, y)``'s last tensor, a dict's ``target``/``label``/``y`` entry, or a lone tensor
    itself (reconstruction).

    Example:
        >>> default_target((torch.zeros(2, 3), torch.tensor([0, 1]))).tolist()
        [0, 1]
    """
    if isinstance(batch, dict):
        found = [batch[k] for k in _TARGET_KEYS if isinstance(batch.get(k), Tensor)]
        return found[0] if found else None
    tensors = batch_tensors(batch)
    return tensors[-1] if tensors else None


def example_inputs(pl_module: Any) -> tuple[Any, ...] | None:
    """The module's ``example_input_array`` as a tuple of forward inputs (None if unset)."""
    example = getattr(pl_module, "example_input_array", None)
    if example is None:
        return None
    return tuple(example) if isinstance(example, list | tuple) else (example,)


@contextlib.contextmanager
def no_logging(pl_module: Any) -> Iterator[None]:
    """``self.log`` is not allowed outside Lightning's loop; the replay logs nothing."""
    pl_module.log = lambda *a, **k: None  # type: ignore[method-assign]
    pl_module.log_dict = lambda *a, **k: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        del pl_module.log, pl_module.log_dict
