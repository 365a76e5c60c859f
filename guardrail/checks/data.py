"""Data checks: unnormalised inputs and train/validation overlap.

Check ids ``data.unnormalized`` and ``data.leakage``, from statistics a callback measured;
every number the rules compare against is a field of :class:`DataThresholds`.

Example:
    >>> import torch
    >>> raw = torch.randint(0, 256, (64, 3, 8, 8)).float()
    >>> [f.check for f in unnormalized_findings(input_stats(raw), "x")]
    ['data.unnormalized']
    >>> unnormalized_findings(input_stats(torch.randn(64, 3, 8, 8)), "x")
    []
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from guardrail.findings import Finding, Severity
from guardrail.thresholds import Thresholds, limit


@dataclass(frozen=True)
class DataThresholds(Thresholds):
    """What the data rules compare against.

    Example:
        >>> DataThresholds.coerce({"max_abs": 1e9}).max_abs
        1000000000.0
        >>> DataThresholds(leakage_min_fraction=2.0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        guardrail.errors.ConfigError: DataThresholds: leakage_min_fraction=2.0 must be in ...

    """

    max_abs: float = limit(
        100.0, "data.unnormalized", "|x| at least this large is not standardised (z-scores of "
        "real data stay far below it; a [-1, 1] rule would fire on healthy images)", low=0,
        open_low=True, shown="100")
    scale_ratio: float = limit(
        1000.0, "data.unnormalized", "a feature whose sd is this many times the median "
        "feature's is on another scale", low=1, open_low=True, shown="1000\u00d7")
    scale_min_features: int = limit(
        3, "data.unnormalized", "features an input needs before one is judged against the "
        "median", low=2, integer=True)
    leakage_min_fraction: float = limit(
        0.005, "data.leakage", "overlap beyond what chance explains, as a share of the split, "
        "that counts as leakage", low=0, high=1, shown="0.5%")
    leakage_standard_errors: float = limit(
        3.0, "data.leakage", "binomial standard errors of the natural share the excess must "
        "also exceed", low=0, shown="3")
    repeats_max_share: float = limit(
        0.5, "data.leakage", "inputs repeat naturally where the median column holds fewer "
        "distinct values than this share of the distinct rows", low=0, high=1)


DEFAULTS = DataThresholds()


def input_stats(x: Tensor) -> dict[str, Any]:
    """Per-feature statistics of a float input ``[B, F, ...]`` (features = dim 1).

    Returns max |x|, whether every value is an integer, and per-feature mean and std.
    """
    x = x.detach().float()
    flat = x.transpose(0, 1).reshape(x.shape[1], -1) if x.ndim >= 2 else x.reshape(1, -1)
    finite = torch.isfinite(flat)
    safe = torch.where(finite, flat, torch.zeros_like(flat))
    return {
        "max_abs": float(safe.abs().max()) if safe.numel() else 0.0,
        "feature_max_abs": safe.abs().amax(dim=1).tolist() if safe.numel() else [],
        "integers": bool(torch.all(safe == safe.round())) if safe.numel() else False,
        "mean": safe.mean(dim=1).tolist(),
        "std": safe.std(dim=1).tolist() if safe.shape[1] > 1 else [0.0] * safe.shape[0],
    }


def unnormalized_findings(
    stats: dict[str, Any],
    name: str,
    feature_names: Sequence[str] | None = None,
    thresholds: DataThresholds = DEFAULTS,
) -> list[Finding]:
    """``data.unnormalized`` for raw-looking inputs or one feature's scale far from the bulk.

    Args:
        stats: :func:`input_stats` of a few training batches of one input.
        name: The input's name (``x`` or its position) for ``where``.
        feature_names: Names of the features (dim 1), if known.
        thresholds: ``max_abs``, ``scale_ratio`` and ``scale_min_features``.
    """
    max_abs, scale_ratio = thresholds.max_abs, thresholds.scale_ratio
    findings = []
    if stats["max_abs"] >= max_abs:
        raw = " integer-valued (raw counts or 0-255 pixels?)" if stats["integers"] else ""
        per_feature = stats.get("feature_max_abs", [])
        big = [j for j, m in enumerate(per_feature) if m >= max_abs]
        named = [feature_names[j] if feature_names and j < len(feature_names)
                 else f"{name}[:, {j}]" for j in big]
        # Name the feature when a few of many are off; the input when (nearly) all are.
        where = named[0] if named and len(per_feature) > 2 and len(big) <= len(per_feature) // 2 \
            else name
        which = f" (features {', '.join(named[:5])})" if where != name else ""
        findings.append(Finding(
            "data.unnormalized", Severity.ERROR,
            f"Input '{name}' reaches |x| = {stats['max_abs']:.4g}{raw}{which}: it is not "
            "normalised.",
            where=where, evidence={"max_abs": stats["max_abs"], "integers": stats["integers"],
                                   "features": named[:20]},
            hint="Standardise inputs with training statistics (or divide pixels by 255) "
                 "before the first layer."))
        return findings
    stds = torch.tensor(stats["std"])
    if len(stds) >= thresholds.scale_min_features:
        median = float(stds.median())
        worst = int(stds.argmax())
        if median > 0 and float(stds[worst]) > scale_ratio * median:
            feature = (feature_names[worst] if feature_names and worst < len(feature_names)
                       else f"{name}[:, {worst}]")
            findings.append(Finding(
                "data.unnormalized", Severity.WARNING,
                f"Feature '{feature}' has a standard deviation {float(stds[worst]):.4g}, "
                f"{float(stds[worst]) / median:.0f}x the median feature's: it is on another "
                "scale.", where=feature,
                evidence={"std": float(stds[worst]), "median_std": median},
                hint="Standardise each feature with training statistics."))
    return findings


def repeats_expected(rows: Tensor, thresholds: DataThresholds = DEFAULTS) -> bool:
    """Whether identical samples can occur naturally: most input columns take few values.

    Counted over the distinct rows (copies would make any data look repetitive): if the
    median column holds fewer distinct values than ``repeats_max_share`` of those rows, two
    independent samples can coincide (counts, flags, ids: a customer's first week); where
    columns are continuous measurements, an identical sample is a copy.

    Example:
        >>> repeats_expected(torch.randint(0, 3, (500, 6)).float())
        True
        >>> repeats_expected(torch.randn(500, 6).repeat(2, 1))
        False
    """
    unique = torch.unique(rows.reshape(len(rows), -1).float(), dim=0)
    if len(unique) < 2:
        return True
    columns = unique[:, :: max(1, unique.shape[1] // 256)]  # at most ~256 columns
    distinct = torch.tensor([float(len(torch.unique(c))) for c in columns.T])
    return float(distinct.median()) < thresholds.repeats_max_share * len(unique)


def duplicate_share(hashes: np.ndarray) -> float:
    """Share of samples whose hash occurs more than once among ``hashes``.

    Example:
        >>> duplicate_share(np.array([1, 2, 2, 3], dtype=np.uint64))
        0.5
    """
    if len(hashes) == 0:
        return 0.0
    _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
    return float((counts[inverse] > 1).mean())


def leakage_findings(overlap: int, n_val: int, split: str = "val", natural: float = 0.0,
                     thresholds: DataThresholds = DEFAULTS) -> list[Finding]:
    """``data.leakage`` when more ``split`` samples appear in training than chance explains.

    Args:
        overlap: ``split`` samples whose inputs equal a training sample's, byte for byte.
        n_val: Samples in ``split``.
        split: The split's name, for ``where``.
        natural: The share expected without leakage: where inputs repeat naturally (see
            :func:`repeats_expected`), the share of training samples that equal another
            training sample; else 0.
        thresholds: The excess over ``natural`` must reach ``leakage_min_fraction`` of the
            split and ``leakage_standard_errors`` binomial standard errors of that share.

    Example:
        >>> [f.severity.value for f in leakage_findings(30, 100)]
        ['error']
        >>> leakage_findings(0, 100)
        []
        >>> [f.severity.value for f in leakage_findings(56, 100, natural=0.58)]
        ['info']
    """
    if overlap == 0 or n_val == 0:
        return []
    fraction = overlap / n_val
    min_fraction = thresholds.leakage_min_fraction
    margin = max(min_fraction, thresholds.leakage_standard_errors
                 * (natural * (1 - natural) / n_val) ** 0.5)
    evidence = {"overlap": overlap, "samples": n_val, "fraction": fraction,
                "expected_fraction": natural}
    if fraction - natural >= margin:
        explained = f", against {natural:.1%} that training samples share among themselves" \
            if natural else ""
        return [Finding(
            "data.leakage", Severity.ERROR,
            f"{overlap} of {n_val} {split} samples ({fraction:.1%}) are also in the training "
            f"data, byte for byte{explained}: the validation score overstates generalisation.",
            where=split, evidence=evidence,
            hint="Split by the entity (user, field, player, time) after removing duplicates, "
                 "and build each split from disjoint rows.")]
    why = (f"as often as training samples equal each other ({natural:.1%}): these inputs "
           "repeat naturally" if natural and fraction - natural < margin and
           fraction >= min_fraction else "too few to matter")
    return [Finding(
        "data.leakage", Severity.INFO,
        f"{overlap} of {n_val} {split} samples ({fraction:.1%}) equal a training sample, "
        f"{why}.", where=split, evidence=evidence,
        hint="Nothing to do unless the splits should share no entity; then split by it.")]
