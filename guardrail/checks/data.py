"""Data checks: unnormalised inputs and train/validation overlap.

Check ids ``data.unnormalized`` and ``data.leakage``, from statistics a callback measured.

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
from typing import Any

import torch
from torch import Tensor

from guardrail.findings import Finding, Severity


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
    max_abs: float = 100.0,
    scale_ratio: float = 1000.0,
) -> list[Finding]:
    """``data.unnormalized`` for raw-looking inputs or one feature's scale far from the bulk.

    Args:
        stats: :func:`input_stats` of a few training batches of one input.
        name: The input's name (``x`` or its position) for ``where``.
        feature_names: Names of the features (dim 1), if known.
        max_abs: Values this large do not come out of a standardisation (z-scores of real
            data stay far below it); a [-1, 1] rule would fire on healthy images.
        scale_ratio: A feature whose standard deviation is this many times the median
            feature's is on another scale.
    """
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
    if len(stds) >= 3:
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


def leakage_findings(overlap: int, n_val: int, split: str = "val",
                     min_fraction: float = 0.005) -> list[Finding]:
    """``data.leakage`` when samples of ``split`` also appear, byte for byte, in training.

    Example:
        >>> [f.severity.value for f in leakage_findings(30, 100)]
        ['error']
        >>> leakage_findings(0, 100)
        []
    """
    if overlap == 0 or n_val == 0:
        return []
    fraction = overlap / n_val
    severity = Severity.ERROR if fraction >= min_fraction else Severity.INFO
    return [Finding(
        "data.leakage", severity,
        f"{overlap} of {n_val} {split} samples ({fraction:.1%}) are also in the training data, "
        "byte for byte: the validation score overstates generalisation.",
        where=split, evidence={"overlap": overlap, "samples": n_val, "fraction": fraction},
        hint="Split by the entity (user, field, player, time) after removing duplicates, and "
             "build each split from disjoint rows.")]
