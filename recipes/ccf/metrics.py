"""CCF metrics: exact recall at 1 % FPR, average precision and AUROC, for model and baselines.

Under extreme imbalance (about 1 positive in 100) accuracy and even AUROC flatter a model;
what a fraud team needs is precision over the ranked alerts (average precision) and how
much fraud is caught when only 1 % of honest customers may be bothered (recall at 1 % FPR).
The module (:class:`~guardrail.recipes.ccf.FraudModule`) and the baselines
(:mod:`guardrail.recipes.ccf.baselines`) are scored by the same metric objects.

Example:
    >>> import numpy as np
    >>> score_predictions(np.array([0.9, 0.1, 0.2]), np.array([1, 0, 0]))["recall_at_1pct_fpr"]
    1.0

"""

from __future__ import annotations

import numpy as np
import torch
import torchmetrics
from torch import Tensor
from torchmetrics.utilities import dim_zero_cat

from guardrail.errors import ConfigError


def recall_at_fpr(scores: Tensor, target: Tensor, max_fpr: float = 0.01) -> Tensor:
    """Exact true-positive rate at the lowest threshold whose false-positive rate <= ``max_fpr``.

    A threshold flags every score >= it, so tied scores are flagged together. With no
    positives the recall is undefined and 0 is returned; with no negatives every threshold
    is allowed.

    Example:
        >>> s = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
        >>> recall_at_fpr(s, torch.tensor([1, 0, 1, 0, 1]), max_fpr=0.0).item()
        0.3333333432674408
        >>> recall_at_fpr(s, torch.tensor([1, 0, 1, 0, 1]), max_fpr=0.5).item()
        0.6666666865348816

    """
    scores, target = scores.flatten().double(), target.flatten().double()
    n_pos, n_neg = target.sum(), (1 - target).sum()
    if n_pos == 0:
        return torch.tensor(0.0)
    order = torch.argsort(scores, descending=True, stable=True)
    s, t = scores[order], target[order]
    tp, fp = torch.cumsum(t, 0), torch.cumsum(1 - t, 0)
    last_of_tie = torch.ones_like(s, dtype=torch.bool)  # a threshold takes a whole tie run
    last_of_tie[:-1] = s[1:] != s[:-1]
    tp, fp = tp[last_of_tie], fp[last_of_tie]
    allowed = fp <= max_fpr * n_neg * (1 + 1e-12)  # (1 + eps): 0.01 * 1400 is not exact
    best = tp[allowed].max() if allowed.any() else torch.tensor(0.0, dtype=torch.float64)
    return (best / n_pos).float()


class RecallAtFPR(torchmetrics.Metric):
    """Recall (TPR) at a false-positive rate of at most ``max_fpr``, exact over a whole split.

    Stores every score and target (cat states, gathered across ranks) and computes
    :func:`recall_at_fpr` once at the end: not a mean of batch values.

    Args:
        max_fpr: The false-positive-rate budget, 0.01 for "recall at 1 % FPR".

    Example:
        >>> metric = RecallAtFPR(max_fpr=0.0)
        >>> metric.update(torch.tensor([0.9, 0.8]), torch.tensor([1, 0]))
        >>> metric.update(torch.tensor([0.7]), torch.tensor([1]))
        >>> metric.compute().item()
        0.5

    """

    higher_is_better = True
    is_differentiable = False
    full_state_update = False

    def __init__(self, max_fpr: float = 0.01) -> None:
        super().__init__()
        if not 0.0 <= max_fpr < 1.0:
            raise ConfigError(f"RecallAtFPR max_fpr must be in [0, 1), got {max_fpr}.")
        self.max_fpr = max_fpr
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, scores: Tensor, target: Tensor) -> None:
        """Keep a batch of scores ``[B]`` and 0/1 targets ``[B]``."""
        self.scores.append(scores.detach().flatten().float())
        self.target.append(target.detach().flatten().long())

    def compute(self) -> Tensor:
        """The exact recall at ``max_fpr`` over everything seen."""
        if isinstance(self.scores, list) and not self.scores:  # under DDP, synced: a tensor
            return torch.tensor(0.0)
        return recall_at_fpr(dim_zero_cat(self.scores), dim_zero_cat(self.target), self.max_fpr)


def fraud_metrics() -> dict[str, torchmetrics.Metric]:
    """The recipe's metrics by short name: ``average_precision``, ``recall_at_1pct_fpr``, ``auroc``.

    Example:
        >>> sorted(fraud_metrics())
        ['auroc', 'average_precision', 'recall_at_1pct_fpr']

    """
    return {
        # thresholds=None: exact over every score, not binned
        "average_precision": torchmetrics.AveragePrecision(task="binary"),
        "recall_at_1pct_fpr": RecallAtFPR(max_fpr=0.01),
        "auroc": torchmetrics.AUROC(task="binary"),
    }


def score_predictions(scores: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """The recipe's metrics of one split's scores, with the same metric objects as the module.

    Example:
        >>> score_predictions(np.array([0.9, 0.1, 0.2]), np.array([1, 0, 0]))["average_precision"]
        1.0

    """
    results = {}
    for name, metric in fraud_metrics().items():
        metric.sync_on_compute = False  # this process's whole split: nothing to gather under DDP
        metric.update(torch.as_tensor(scores, dtype=torch.float32),
                      torch.as_tensor(target, dtype=torch.long))
        results[name] = float(metric.compute())
    return results
