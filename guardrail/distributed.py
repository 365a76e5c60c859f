"""Small helpers that make guardrails correct under DDP: gather, agree, write once.

``gather_objects``, ``mean_across_ranks`` and ``on_rank_zero`` are collectives when a
process group with more than one process exists (every rank must call them, at the same
point); on a single process every helper is the identity, so callers need no special case.

Example:
    >>> gather_objects({"rank": 0})
    [{'rank': 0}]
    >>> on_rank_zero(lambda: "read once")
    'read once'

"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch.distributed as dist

T = TypeVar("T")


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_objects(obj: T) -> list[T]:
    """``obj`` from every rank, in rank order (a collective: every rank must call it)."""
    if not _initialized():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def global_rank() -> int:
    """Global rank of this process (0 without a process group)."""
    return dist.get_rank() if _initialized() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if _initialized() else 1


def mean_across_ranks(values: list[float]) -> list[float]:
    """The element-wise mean of ``values`` over ranks (a collective).

    Ranks holding lists of different lengths (uneven data without a DistributedSampler) keep
    their own values: a wrong average would be worse than a local one.

    Example:
        >>> mean_across_ranks([1.0, 3.0])
        [1.0, 3.0]

    """
    per_rank = gather_objects(list(values))
    if len(per_rank) == 1 or len({len(v) for v in per_rank}) != 1:
        return list(values)
    return [sum(column) / len(column) for column in zip(*per_rank, strict=True)]


def on_rank_zero(fn: Callable[[], T]) -> T:
    """``fn()`` run on global rank zero only; its result, or its error, on every rank.

    For reading a file that only rank zero should read (the config lock): every rank sees the
    same value, and an error on rank zero is raised on every rank instead of leaving the others
    waiting in the next collective.
    """
    if not _initialized():
        return fn()
    box: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            box[0] = ("ok", fn())
        except Exception as err:  # re-raised below, on every rank
            box[0] = ("error", err)
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        raise value
    return value
