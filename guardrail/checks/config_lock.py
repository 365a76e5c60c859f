"""Compare a run's configuration and effective settings with the approved lock (``config.lock``).

A change that came from an edited YAML file or a changed code default is refused; a
command-line override is a deliberate experiment, allowed and recorded. Config keys are
compared on the config composed *without* overrides, so overrides never reach that
comparison; an effective setting is exempt when an override touched the part of the config
that governs it (``data.*`` governs the dataloaders, ``module.*``/``model.*`` the optimiser
and hyperparameters, ``trainer.*`` the trainer and, through DDP, the samplers).

Example:
    >>> changes = diff_settings({"data.shuffle": False}, {"data.shuffle": True}, "config")
    >>> print(changes[0])
    data.shuffle: false → true
    >>> refused, allowed = split_by_overrides(
    ...     diff_settings({"train_dataloader.batch_size": 32}, {"train_dataloader.batch_size": 8},
    ...                   "effective"), ["data.batch_size=8"])
    >>> refused, [c.key for c in allowed]
    ([], ['train_dataloader.batch_size'])

"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from guardrail.findings import Finding, Severity

_MISSING = "<absent>"

# Which effective settings an override of a top-level config key may change.
OVERRIDE_SCOPES: dict[str, tuple[str, ...]] = {
    "data": ("train_dataloader", "val_dataloader", "test_dataloader", "data_hparams.",
             "hparams."),
    "module": ("optimizer", "hparams."),
    "model": ("hparams.",),
    "trainer": ("trainer.", "train_dataloader.sampler", "train_dataloader.shuffle",
                "val_dataloader.sampler", "val_dataloader.shuffle",
                "test_dataloader.sampler", "test_dataloader.shuffle"),
}


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


@dataclasses.dataclass(frozen=True)
class Change:
    """One locked key whose value differs: ``kind`` is ``config`` or ``effective``."""

    key: str
    old: Any
    new: Any
    kind: str

    def __str__(self) -> str:
        return f"{self.key}: {_show(self.old)} → {_show(self.new)}"


def diff_settings(locked: Mapping[str, Any], current: Mapping[str, Any], kind: str) -> list[Change]:
    """Every key whose value differs between two flat settings maps, sorted by key."""
    keys = sorted(set(locked) | set(current))
    return [Change(k, locked.get(k, _MISSING), current.get(k, _MISSING), kind)
            for k in keys if locked.get(k, _MISSING) != current.get(k, _MISSING)]


def _override_roots(overrides: Sequence[str]) -> set[str]:
    roots = set()
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        roots.add(key.split(".", 1)[0].split("@", 1)[0])
    return roots


def split_by_overrides(
    changes: Sequence[Change], overrides: Sequence[str]
) -> tuple[list[Change], list[Change]]:
    """(refused, allowed): effective changes inside an override's scope are allowed."""
    scopes = tuple(p for root in _override_roots(overrides) for p in OVERRIDE_SCOPES.get(root, ()))
    refused, allowed = [], []
    for change in changes:
        exempt = change.kind == "effective" and bool(scopes) and change.key.startswith(scopes)
        (allowed if exempt else refused).append(change)
    return refused, allowed


def lock_finding(refused: Sequence[Change], lock_name: str, approve: str) -> Finding | None:
    """One ``config.lock`` error listing every refused change key by key, or None.

    Args:
        refused: The changes not covered by a command-line override.
        lock_name: The lock's name (the recipe), for the message.
        approve: The exact command that approves the changes.

    """
    if not refused:
        return None
    lines = "\n".join(f"  {c}   ({'config file' if c.kind == 'config' else 'effective setting'})"
                      for c in refused)
    return Finding(
        "config.lock", Severity.ERROR,
        f"The locked configuration of '{lock_name}' changed without a command-line override "
        f"({len(refused)} key(s)):\n{lines}",
        where=refused[0].key,
        evidence={"changes": [dataclasses.asdict(c) for c in refused]},
        hint=f"If the change is intended, approve it with `{approve}` and commit the lock file; "
             "otherwise undo the edit. To try it once, pass it as an override on the command "
             "line instead.",
    )
