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
import math
from collections.abc import Mapping, Sequence
from typing import Any

from guardrail.findings import Finding, Severity

_MISSING = "<absent>"

# Which effective settings an override of a top-level config key may change.
_SAMPLER_KEYS = ("strategy", "devices", "num_nodes", "use_distributed_sampler")
OVERRIDE_SCOPES: dict[str, tuple[str, ...]] = {
    "data": ("train_dataloader", "val_dataloader", "test_dataloader", "data_hparams.",
             "hparams."),
    "module": ("optimizer", "hparams."),
    "model": ("hparams.",),
    # DP-SGD (`privacy.dp=true`) samples the training data (Poisson) and wraps the optimiser.
    "privacy": ("train_dataloader", "optimizer"),
    # Recipes pass the global seed on (`data.seed: ${seed}`): a `seed=N` run is an experiment.
    "seed": ("data_hparams.seed", "hparams.seed"),
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
    """Every key whose value differs between two flat settings maps, sorted by key.

    Floats equal to 1e-9 relative are the same: a statistic of the data (WEA's ``field_std``)
    moves in its last digit with the number of threads that summed it.

    Example:
        >>> diff_settings({"std": 1.441845017518252}, {"std": 1.4418450175182522}, "effective")
        []

    """
    keys = sorted(set(locked) | set(current))
    return [Change(k, locked.get(k, _MISSING), current.get(k, _MISSING), kind)
            for k in keys if not _same(locked.get(k, _MISSING), current.get(k, _MISSING))]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9)
    return bool(a == b)


def _override_roots(overrides: Sequence[str]) -> set[str]:
    roots = set()
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        roots.add(key.split(".", 1)[0].split("@", 1)[0])
    return roots


def overrides_changing_settings(overrides: Sequence[str],
                                effective: Mapping[str, Any]) -> list[str]:
    """The overrides that can make a run's effective settings differ from its recipe's.

    Any override of ``data``, ``module``, ``model`` or ``seed`` (they reach the hparams, the
    loaders and derived values); of ``trainer`` only a key the effective settings hold, or
    one that decides the distributed sampler. A lock written from such a run would hold the
    experiment, not the recipe.

    Example:
        >>> overrides_changing_settings(["data.train_fraction=0.25", "hydra.run.dir=x",
        ...     "trainer.enable_progress_bar=false", "trainer.precision=16-mixed"],
        ...     {"trainer.precision": "32-true"})
        ['data.train_fraction=0.25', 'trainer.precision=16-mixed']

    """
    found = []
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        root, _, rest = key.partition(".")
        root = root.split("@", 1)[0]
        if root in ("data", "module", "model", "seed") or (root == "trainer" and (
                key in effective or rest in _SAMPLER_KEYS)):
            found.append(override)
    return found


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


_SINGLE = {"RandomSampler": True, "SequentialSampler": False}
DISTRIBUTED = "DistributedSampler"


def distributed_sampler_findings(
    changes: Sequence[Change], locked: Mapping[str, Any], current: Mapping[str, Any]
) -> tuple[list[Change], list[Finding]]:
    """Tell Lightning's DDP sampler swap from a real change of the data order.

    Under DDP Lightning replaces each dataloader's sampler with a ``DistributedSampler``
    (every rank reads its own share). Where it shuffles exactly as the locked single-process
    sampler did (``RandomSampler`` / ``SequentialSampler``, or the other way round), the
    sampler change is dropped and one ``config.distributed_sampler`` info says so. Where the
    locked loader did not shuffle but the distributed one does (Lightning forces shuffling of
    the training data, Lightning issue #10170), the changes stay and a
    ``config.distributed_shuffle`` warning explains them.

    Returns:
        The remaining changes and the findings.

    Example:
        >>> locked = {"train_dataloader.sampler": "SequentialSampler",
        ...           "train_dataloader.shuffle": False}
        >>> now = {"train_dataloader.sampler": "DistributedSampler",
        ...        "train_dataloader.shuffle": True}
        >>> rest, found = distributed_sampler_findings(
        ...     diff_settings(locked, now, "effective"), locked, now)
        >>> [c.key for c in rest], [f.check for f in found]
        (['train_dataloader.sampler', 'train_dataloader.shuffle'], ['config.distributed_shuffle'])
        >>> locked["train_dataloader.shuffle"] = True
        >>> locked["train_dataloader.sampler"] = "RandomSampler"
        >>> distributed_sampler_findings(diff_settings(locked, now, "effective"), locked, now)[0]
        []

    """
    kept: list[Change] = []
    swapped: list[str] = []
    forced: list[str] = []
    for change in changes:
        if not change.key.endswith(".sampler") or DISTRIBUTED not in (change.old, change.new):
            kept.append(change)
            continue
        loader = change.key.removesuffix(".sampler")
        single = change.new if change.old == DISTRIBUTED else change.old
        old_shuffle = locked.get(f"{loader}.shuffle", _SINGLE.get(str(single)))
        new_shuffle = current.get(f"{loader}.shuffle")
        if single in _SINGLE and old_shuffle == new_shuffle:
            swapped.append(loader)
            continue
        kept.append(change)
        if change.new == DISTRIBUTED and old_shuffle is False and new_shuffle is True:
            forced.append(loader)
    findings = []
    if swapped:
        findings.append(Finding(
            "config.distributed_sampler", Severity.INFO,
            f"The sampler of {', '.join(swapped)} differs from the lock only by DDP's "
            "DistributedSampler, which shuffles as the other one does (under DDP each rank "
            "reads its own share of the data).",
            where=f"{swapped[0]}.sampler", evidence={"loaders": swapped},
            hint="Nothing to do; the data-order fingerprint in manifest.json covers all ranks."))
    if forced:
        findings.append(Finding(
            "config.distributed_shuffle", Severity.WARNING,
            f"Under DDP, Lightning's DistributedSampler shuffles {', '.join(forced)} although "
            "the locked loader did not shuffle (Lightning issue #10170): the training order "
            "changed.", where=f"{forced[0]}.shuffle", evidence={"loaders": forced},
            hint="To keep the order, set `trainer.use_distributed_sampler=false` and give the "
                 "loader a DistributedSampler(dataset, shuffle=False) yourself; if shuffling is "
                 "intended, approve the lock."))
    return kept, findings
