"""CCF models: the fraud MLP and its module, with the losses for extreme imbalance.

Focal loss, positive-weighted BCE (:func:`~guardrail.recipes.scoring.pos_weighted_bce`) or
plain BCE (the naive choice); the metrics are those of :mod:`guardrail.recipes.ccf.metrics`,
which score the baselines too.

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

import torch
import torchmetrics
from torch import Tensor, nn

from guardrail.errors import ConfigError
from guardrail.module import GuardrailModule, SchedulerFactory
from guardrail.recipes.ccf.metrics import fraud_metrics
from guardrail.recipes.scoring import pos_weighted_bce

LOSSES = ("weighted_bce", "focal", "bce")


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
        if self.loss_name == "focal":
            return focal_loss(preds, target.float(), self.focal_gamma, self.focal_alpha)
        weight = self.pos_weight if self.loss_name == "weighted_bce" else 1.0
        return pos_weighted_bce(preds, target, weight)

    def configure_optimizers(self) -> Any:
        """Adam with coupled L2 (``weight_decay``), not the base class's AdamW; the scheduler."""
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr,
                                     weight_decay=self.hparams.weight_decay)
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}
