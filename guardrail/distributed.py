"""Small helpers that make guardrails correct under DDP: gather, agree, write once.

On a single process every helper is the identity, so callers need no special case.

Example:
    >>> gather_objects({"rank": 0})
    [{'rank': 0}]

"""

from __future__ import annotations

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
