"""The settings a run *actually* trains with, read from live objects, as flat ``key: value``.

A YAML file can say ``shuffle: false`` while the sampler shuffles (a changed code default,
Lightning's DDP sampler); these functions read what the objects do, not what config says.

Example:
    >>> import torch
    >>> from torch.utils.data import DataLoader
    >>> dataloader_settings(DataLoader(list(range(10)), batch_size=4, shuffle=True), "train")
    {'train_dataloader.sampler': 'RandomSampler', 'train_dataloader.shuffle': True, \
'train_dataloader.batch_size': 4, 'train_dataloader.drop_last': False}

"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where a live object is read: `guardrail diff` needs none
    import torch
    from torch.utils.data import DataLoader

Scalar = str | int | float | bool | None


def scalar(value: Any) -> Scalar:
    """``value`` as a YAML/JSON scalar (tuples and other objects as their ``repr``)."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    torch = sys.modules.get("torch")  # a tensor exists only once torch is imported
    if torch is not None and isinstance(value, torch.Tensor) and value.numel() == 1:
        return scalar(value.item())
    return repr(value)


def flatten(tree: Any, prefix: str = "") -> dict[str, Scalar]:
    """Nested dicts and lists as ``{"a.b.0": value}``.

    Example:
        >>> flatten({"a": {"b": [1, 2]}, "c": None})
        {'a.b.0': 1, 'a.b.1': 2, 'c': None}

    """
    if isinstance(tree, Mapping):
        if not tree and prefix:
            return {prefix.rstrip("."): "{}"}
        out: dict[str, Scalar] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(tree, list | tuple):
        if not tree and prefix:
            return {prefix.rstrip("."): "[]"}
        out = {}
        for i, value in enumerate(tree):
            out.update(flatten(value, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): scalar(tree)}


def sampler_kind(loader: DataLoader) -> tuple[str, bool | None]:
    """The sampler's class name and whether it shuffles (None: cannot tell)."""
    from torch.utils.data import DistributedSampler, RandomSampler, SequentialSampler

    sampler = loader.sampler
    batch_sampler = getattr(loader, "batch_sampler", None)
    inner = getattr(batch_sampler, "sampler", None)
    if batch_sampler is not None and inner is not None and inner is not sampler:
        sampler = inner  # a custom batch sampler wrapping its own sampler
    elif batch_sampler is not None and hasattr(batch_sampler, "sample_rate"):
        return type(batch_sampler).__name__, True  # Poisson sampling (DP-SGD): random batches
    if isinstance(sampler, DistributedSampler):
        return type(sampler).__name__, bool(sampler.shuffle)
    if isinstance(sampler, RandomSampler):
        return type(sampler).__name__, True
    if isinstance(sampler, SequentialSampler):
        return type(sampler).__name__, False
    shuffle = getattr(sampler, "shuffle", None)
    return type(sampler).__name__, shuffle if isinstance(shuffle, bool) else None


def sampler_record(loader: Any) -> dict[str, Scalar]:
    """What decides a loader's order: the sampler, and a DistributedSampler's partitioning.

    Example:
        >>> from torch.utils.data import DataLoader, DistributedSampler
        >>> data = list(range(10))
        >>> sampler = DistributedSampler(data, num_replicas=2, rank=1, shuffle=True, seed=7)
        >>> sampler_record(DataLoader(data, sampler=sampler))["num_replicas"]
        2

    """
    from torch.utils.data import DataLoader, DistributedSampler

    if not isinstance(loader, DataLoader):
        return {"sampler": type(loader).__name__}
    kind, shuffle = sampler_kind(loader)
    out: dict[str, Scalar] = {"sampler": kind, "shuffle": shuffle}
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler):
        out.update(num_replicas=sampler.num_replicas, seed=sampler.seed,
                   drop_last=sampler.drop_last)
    return out


def dataloader_settings(loader: Any, name: str) -> dict[str, Scalar]:
    """Sampler kind, batch size and drop_last of one dataloader, keyed ``<name>_dataloader.*``."""
    from torch.utils.data import DataLoader

    if not isinstance(loader, DataLoader):
        return {f"{name}_dataloader": type(loader).__name__}
    kind, shuffle = sampler_kind(loader)
    batch_sampler = loader.batch_sampler
    return {
        f"{name}_dataloader.sampler": kind,
        f"{name}_dataloader.shuffle": shuffle,
        f"{name}_dataloader.batch_size": loader.batch_size
        if loader.batch_size is not None else getattr(batch_sampler, "batch_size", None),
        f"{name}_dataloader.drop_last": loader.drop_last
        if loader.batch_size is not None else getattr(batch_sampler, "drop_last", None),
    }


def optimizer_settings(optimizers: Iterable[torch.optim.Optimizer]) -> dict[str, Scalar]:
    """Each optimiser's class and every param group's hyperparameters (not the parameters)."""
    out: dict[str, Scalar] = {}
    for i, opt in enumerate(optimizers):
        prefix = "optimizer" if i == 0 else f"optimizer{i}"
        out[f"{prefix}.class"] = f"{type(opt).__module__}.{type(opt).__qualname__}"
        for g, group in enumerate(opt.param_groups):
            for key, value in sorted(group.items()):
                if key != "params":
                    out[f"{prefix}.param_groups.{g}.{key}"] = scalar(value)
    return out


def effective_settings(
    dataloaders: Mapping[str, Any],
    optimizers: Iterable[torch.optim.Optimizer],
    trainer: Mapping[str, Any],
    hparams: Mapping[str, Any],
    data_hparams: Mapping[str, Any] | None = None,
) -> dict[str, Scalar]:
    """All effective settings, flat and sorted.

    Args:
        dataloaders: ``{"train": loader, "val": loader_or_list, ...}``.
        optimizers: The optimisers training steps.
        trainer: ``precision``, ``gradient_clip_val``, ``gradient_clip_algorithm``,
            ``accumulate_grad_batches``.
        hparams: The module's hyperparameters.
        data_hparams: The datamodule's hyperparameters, where it saves them (its code
            defaults included, so a changed default shows even when no YAML names the key).

    """
    out: dict[str, Scalar] = {}
    for name, loader in dataloaders.items():
        loaders = loader if isinstance(loader, list | tuple) else [loader]
        for i, one in enumerate(loaders):
            out.update(dataloader_settings(one, name if i == 0 else f"{name}{i}"))
    out.update(optimizer_settings(optimizers))
    out.update({f"trainer.{k}": scalar(v) for k, v in trainer.items()})
    out.update(flatten(dict(hparams), "hparams."))
    out.update(flatten(dict(data_hparams or {}), "data_hparams."))
    return dict(sorted(out.items()))


def trainer_settings(trainer: Any) -> dict[str, Any]:
    """The trainer settings a lock covers: precision, clipping and accumulation."""
    return {
        "precision": trainer.precision,
        "gradient_clip_val": trainer.gradient_clip_val,
        "gradient_clip_algorithm": trainer.gradient_clip_algorithm,
        "accumulate_grad_batches": trainer.accumulate_grad_batches,
    }


def optimizers_of(configured: Any) -> list[torch.optim.Optimizer]:
    """The optimisers in any form ``configure_optimizers`` may return.

    Example:
        >>> import torch
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> optimizers_of({"optimizer": opt, "lr_scheduler": None}) == [opt]
        True

    """
    import torch

    if isinstance(configured, torch.optim.Optimizer):
        return [configured]
    if isinstance(configured, Mapping):
        return optimizers_of(configured.get("optimizer"))
    if isinstance(configured, list | tuple):
        if len(configured) == 2 and isinstance(configured[0], list | tuple):
            return optimizers_of(configured[0])  # ([optimizers], [schedulers])
        return [o for item in configured for o in optimizers_of(item)]
    return []


def run_settings(trainer: Any, pl_module: Any) -> dict[str, Scalar]:
    """Effective settings of a live fit (call from ``on_train_start`` or later)."""
    return effective_settings(
        {"train": trainer.train_dataloader, "val": trainer.val_dataloaders or []},
        trainer.optimizers, trainer_settings(trainer), getattr(pl_module, "hparams", {}),
        getattr(trainer.datamodule, "hparams", None))
