"""Scores, losses and input checks the recipes share (one copy, not one per recipe).

- :func:`binary_scores`: a binary baseline's ``average_precision`` and ``auroc``, by the same
  torchmetrics functions as :class:`guardrail.GuardrailModule`'s binary metrics, so a
  baseline and the model are scored alike.
- :func:`negatives_per_positive` and :func:`pos_weighted_bce`: the class-balanced binary
  cross-entropy of the rare-positive recipes (BOT, RET, CCF).
- :func:`check_feature_names`: a module's ``feature_names`` must name each network input.

Example:
    >>> import numpy as np
    >>> labels = np.array([1, 0, 0, 0])
    >>> binary_scores(np.array([0.9, 0.1, 0.4, 0.2]), labels), negatives_per_positive(labels)
    ({'average_precision': 1.0, 'auroc': 1.0}, 3.0)

"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torchmetrics.functional.classification import binary_auroc, binary_average_precision

from guardrail.errors import ConfigError


def binary_scores(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """``average_precision`` and ``auroc`` of ``scores`` (higher = more likely positive).

    Scores are taken in float64, so a baseline's constant or rule score ranks exactly.

    Example:
        >>> binary_scores(np.array([0.9, 0.1, 0.4]), np.array([True, False, False]))
        {'average_precision': 1.0, 'auroc': 1.0}
        >>> binary_scores(np.full(4, 0.25), np.array([1, 0, 0, 0]))  # a constant: chance
        {'average_precision': 0.25, 'auroc': 0.5}

    """
    preds = torch.as_tensor(np.asarray(scores), dtype=torch.float64)
    target = torch.as_tensor(np.asarray(labels)).long()
    return {"average_precision": float(binary_average_precision(preds, target)),
            "auroc": float(binary_auroc(preds, target))}


def negatives_per_positive(labels: np.ndarray) -> float:
    """Training negatives per positive: the ``pos_weight`` that balances the two classes.

    Example:
        >>> negatives_per_positive(np.array([True, False, False])), negatives_per_positive([0, 0])
        (2.0, 2.0)

    """
    labels = np.asarray(labels).astype(bool)
    return float((~labels).sum() / max(int(labels.sum()), 1))


def pos_weighted_bce(logits: Tensor, target: Tensor, pos_weight: float | Tensor) -> Tensor:
    """Binary cross-entropy on logits, each positive weighted by ``pos_weight``.

    Example:
        >>> logits, target = torch.zeros(2), torch.tensor([1.0, 0.0])
        >>> plain, weighted = (float(pos_weighted_bce(logits, target, w)) for w in (1.0, 5.0))
        >>> round(weighted / plain, 6)  # (5 + 1) / 2 vs (1 + 1) / 2
        3.0

    """
    weight = torch.as_tensor(pos_weight, device=logits.device, dtype=logits.dtype)
    return nn.functional.binary_cross_entropy_with_logits(logits, target.float(),
                                                          pos_weight=weight)


def check_feature_names(owner: str, feature_names: Sequence[str] | None, n_inputs: int,
                        inputs: str | None = None) -> list[str] | None:
    """``feature_names`` as strings, after checking there is one per network input.

    Args:
        owner: The module's class name, for the message.
        feature_names: Names from the datamodule, or ``None`` (no names: nothing to check).
        n_inputs: Input columns of the network.
        inputs: How the message describes the inputs; default ``"<n_inputs> inputs"``.

    Raises:
        ConfigError: The counts differ; names both objects and says how to build them.

    Example:
        >>> check_feature_names("Demo", ["a", 2], 2)
        ['a', '2']
        >>> check_feature_names("Demo", ["a"], 3)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        guardrail.errors.ConfigError: Demo got 1 feature_names for a network with 3 inputs; ...

    """
    if feature_names is None:
        return None
    names = [str(n) for n in feature_names]
    if len(names) != n_inputs:
        raise ConfigError(
            f"{owner} got {len(names)} feature_names for a network with "
            f"{inputs or f'{n_inputs} inputs'}; build both from the same datamodule "
            "(`net_kwargs()`, `module_kwargs()`).")
    return names
