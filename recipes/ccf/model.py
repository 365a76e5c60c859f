"""CCF models: the fraud MLP and its module, exact recall at 1 % FPR, the logistic baseline.

Under extreme imbalance (about 1 positive in 100) accuracy and even AUROC flatter a model;
what a fraud team needs is precision over the ranked alerts (average precision) and how
much fraud is caught when only 1 % of honest customers may be bothered (recall at 1 % FPR).

Example:
    >>> net = FraudNet(n_num=3, cardinalities=[4], train_positive_rate=0.01)
    >>> module = FraudModule(net, feature_names=["a", "b", "c", "d"], train_positive_rate=0.01)
    >>> sorted(module.metrics["val_metrics"].keys())
    ['val/auroc', 'val/average_precision', 'val/recall_at_1pct_fpr']
    >>> module(*module.example_input_array).shape
    torch.Size([2])

"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torchmetrics
from torch import Tensor, nn
from torchmetrics.utilities import dim_zero_cat

from guardrail.errors import ConfigError
from guardrail.module import GuardrailModule, SchedulerFactory

LOSSES = ("weighted_bce", "focal", "bce")


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


def fit_logistic_regression(
    x: np.ndarray, y: np.ndarray, l2: float = 1e-2, max_iter: int = 500
) -> tuple[np.ndarray, float]:
    """Weights and intercept of L2-penalised logistic regression, by full-batch L-BFGS (float64).

    Minimises ``mean BCE(x @ w + b, y) + l2 * ||w||^2`` (intercept unpenalised, no class
    weights): the textbook baseline, fitted on whatever rows it is given (the training split).

    Example:
        >>> x = np.array([[-2.0], [-1.0], [1.0], [2.0]])
        >>> w, b = fit_logistic_regression(x, np.array([0, 0, 1, 1]))
        >>> bool(w[0] > 0)
        True

    """
    xt, yt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    w = torch.zeros(xt.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=max_iter, tolerance_grad=1e-10,
                                  tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt)
        loss = loss + l2 * w.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach().numpy(), float(b.detach())


def focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.0, alpha: float = 0.25) -> Tensor:
    """Mean sigmoid focal loss (Lin et al. 2017): BCE scaled by ``alpha_t * (1 - p_t)**gamma``.

    Example:
        >>> x, y = torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.0])
        >>> bce = nn.functional.binary_cross_entropy_with_logits(x, y)
        >>> torch.isclose(focal_loss(x, y, gamma=0.0, alpha=0.5), 0.5 * bce).item()
        True

    """
    target = target.float()
    ce = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * target + (1 - p) * (1 - target)  # probability given to the true class
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    return (alpha_t * (1 - p_t) ** gamma * ce).mean()


class FraudNet(nn.Module):
    """Standardised numeric columns + one-hot categorical columns -> linear term + MLP -> logit.

    Categorical codes are one-hot encoded inside the network, so the linear term has exactly
    the logistic baseline's parameters and the MLP adds the interactions. Not embeddings:
    under the firm L2 a few dozen positives call for, a small embedding times the small
    weights reading it sits at a saddle (both shrink to zero together) and the categorical
    columns go unused. The output bias starts at the training log-odds.

    Args:
        n_num: Number of numeric features (from the datamodule).
        cardinalities: Levels per categorical column, the unknown index included (from the
            datamodule); empty for all-numeric data (ULB).
        hidden: Widths of the MLP's hidden layers.
        dropout: Dropout after each hidden layer.
        train_positive_rate: Positive rate of the training split (from the datamodule).

    Example:
        >>> net = FraudNet(n_num=3, cardinalities=[4, 10], train_positive_rate=0.01)
        >>> net(torch.zeros(5, 3), torch.zeros(5, 2, dtype=torch.long)).shape
        torch.Size([5, 1])

    """

    def __init__(
        self,
        n_num: int,
        cardinalities: Sequence[int] = (),
        hidden: Sequence[int] = (64, 32),
        dropout: float = 0.1,
        train_positive_rate: float = 0.5,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"`model.dropout` must be in [0, 1), got {dropout}; "
                              "e.g. `model.dropout=0.1`.")
        if not 0.0 < train_positive_rate < 1.0:
            raise ConfigError(f"FraudNet train_positive_rate must be in (0, 1), got "
                              f"{train_positive_rate}; take it from the datamodule's net_kwargs().")
        self.n_num, self.cardinalities = n_num, list(cardinalities)
        width = n_num + sum(self.cardinalities)
        self.linear = nn.Linear(width, 1)
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(width, size), nn.GELU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)
        prior_logit = math.log(train_positive_rate / (1 - train_positive_rate))
        nn.init.constant_(self.linear.bias, prior_logit)

    def forward(self, x_num: Tensor, x_cat: Tensor | None = None) -> Tensor:
        """Fraud logit ``[B, 1]`` from ``x_num [B, n_num]`` and codes ``x_cat [B, n_cat]``."""
        one_hot = [nn.functional.one_hot(x_cat[:, j], card).to(x_num.dtype)  # [B, card_j]
                   for j, card in enumerate(self.cardinalities)]
        h = torch.cat([x_num, *one_hot], dim=1)  # [B, n_num + sum card_j]
        return self.linear(h) + self.mlp(h)


class FraudModule(GuardrailModule):
    """Binary fraud classifier trained with focal loss, weighted BCE or plain BCE.

    Metrics: ``{stage}/average_precision``, ``{stage}/recall_at_1pct_fpr`` and
    ``{stage}/auroc``, all exact over the split.

    The optimiser is Adam with a *coupled* L2 penalty (``weight_decay`` adds
    ``weight_decay * w`` to each gradient, as the logistic baseline's penalty does): with a
    few dozen positives the network must be regularised as firmly as the linear model, and
    AdamW's decoupled decay (``lr * weight_decay`` per step) is far too weak at these rates.

    Args:
        net: The network, e.g. :class:`FraudNet`; its inputs are ``(x_num, x_cat)``, or
            ``(x_num,)`` without categorical columns.
        lr: Learning rate of Adam.
        weight_decay: Coupled L2 penalty of Adam.
        loss: ``focal``, ``weighted_bce`` (positives weighted by ``pos_weight``) or ``bce``
            (unweighted: the naive choice under extreme imbalance).
        pos_weight: Weight of a positive in ``weighted_bce``; ``None`` = negatives per
            positive in the training split.
        focal_gamma: Focusing exponent of the focal loss.
        focal_alpha: Weight of positives in the focal loss (negatives get ``1 - alpha``).
        feature_names: Original column names, numeric then categorical (from the datamodule).
        train_positive_rate: Positive rate of the training split (from the datamodule).
        scheduler: Optional partial LR scheduler taking the optimiser, stepped per epoch; a
            cosine decay lets the penalised fit settle, so runs agree across seeds.

    Example:
        >>> net = FraudNet(n_num=2, cardinalities=[], train_positive_rate=0.1)
        >>> module = FraudModule(net, loss="focal", train_positive_rate=0.1)
        >>> float(module.compute_loss(torch.zeros(4), torch.tensor([0, 0, 0, 1]))) > 0
        True

    """

    task = "binary"

    def __init__(
        self,
        net: FraudNet,
        lr: float = 3e-3,
        weight_decay: float = 2e-2,
        loss: str = "focal",
        pos_weight: float | None = None,
        focal_gamma: float = 2.0,
        focal_alpha: float = 0.25,
        feature_names: Sequence[str] | None = None,
        train_positive_rate: float = 0.5,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        problems = []
        if loss not in LOSSES:
            problems.append(f"`module.loss={loss}` is not one of {', '.join(LOSSES)} "
                            "(e.g. `module.loss=focal`)")
        if pos_weight is not None and not pos_weight > 0:
            problems.append(f"`module.pos_weight` must be > 0 or null (= negatives per "
                            f"positive), got {pos_weight} (e.g. `module.pos_weight=null`)")
        if focal_gamma < 0 or not 0 < focal_alpha < 1:
            problems.append(f"`module.focal_gamma` must be >= 0 and `module.focal_alpha` in "
                            f"(0, 1), got {focal_gamma} and {focal_alpha} (e.g. "
                            "`module.focal_gamma=2 module.focal_alpha=0.25`)")
        n_inputs = net.n_num + len(net.cardinalities)
        if feature_names is not None and len(feature_names) != n_inputs:
            problems.append(f"{len(feature_names)} feature_names for a network with {n_inputs} "
                            "input columns; build both from the same datamodule")
        if problems:
            raise ConfigError("CCF module config: " + "; ".join(problems) + ".")
        super().__init__(net=net, lr=lr, weight_decay=weight_decay, feature_names=feature_names,
                         scheduler=scheduler)
        self.loss_name, self.focal_gamma, self.focal_alpha = loss, focal_gamma, focal_alpha
        auto = (1 - train_positive_rate) / train_positive_rate
        self.pos_weight = float(pos_weight) if pos_weight is not None else auto
        self.example_input_array: tuple[Tensor, ...] = (torch.zeros(2, net.n_num),)
        if net.cardinalities:
            self.example_input_array += (torch.zeros(2, len(net.cardinalities), dtype=torch.long),)

    def build_metrics(self) -> dict[str, torchmetrics.Metric]:
        """``average_precision``, ``recall_at_1pct_fpr`` and ``auroc``."""
        return fraud_metrics()

    def compute_loss(self, preds: Tensor, target: Tensor) -> Tensor:
        """Weighted BCE, focal loss or plain BCE of logits ``[B]`` against 0/1 targets ``[B]``."""
        target = target.float()
        if self.loss_name == "focal":
            return focal_loss(preds, target, self.focal_gamma, self.focal_alpha)
        weight = self.pos_weight if self.loss_name == "weighted_bce" else 1.0
        return nn.functional.binary_cross_entropy_with_logits(
            preds, target, pos_weight=torch.tensor(weight, device=preds.device))

    def configure_optimizers(self) -> Any:
        """Adam with coupled L2 (``weight_decay``), not the base class's AdamW; the scheduler."""
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr,
                                     weight_decay=self.hparams.weight_decay)
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}
