"""The EST valuation network and its GuardrailModule: log sale price from house features."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchmetrics
from torch import Tensor, nn

from guardrail.errors import ConfigError
from guardrail.module import GuardrailModule, SchedulerFactory
from guardrail.recipes.scoring import check_feature_names


def embedding_dim(cardinality: int, max_dim: int = 16) -> int:
    """Embedding width of a categorical column: ``min(max_dim, round(1.6 * card**0.56))``.

    Example:
        >>> embedding_dim(2), embedding_dim(29)
        (2, 11)

    """
    return max(1, min(max_dim, round(1.6 * cardinality**0.56)))


class ValuationNet(nn.Module):
    """Embeddings per categorical column + numeric features -> MLP -> log price.

    A linear term on the same inputs runs alongside the MLP ("wide and deep"), so the
    network starts from what a ridge regression captures and the MLP learns the rest. The
    output is ``target_mean + target_std * (linear + mlp)``: the layers work on a unit scale.

    Args:
        n_num: Number of numeric features (from the datamodule).
        cardinalities: Embedding rows per categorical column, unknown index included (from
            the datamodule).
        hidden: Widths of the MLP's hidden layers.
        dropout: Dropout after each hidden layer and on the concatenated inputs.
        max_embedding_dim: Upper bound of each column's embedding width.
        target_mean: Training mean of the target (from the datamodule).
        target_std: Training standard deviation of the target (from the datamodule).

    Example:
        >>> net = ValuationNet(n_num=3, cardinalities=[4, 10])
        >>> net(torch.zeros(5, 3), torch.zeros(5, 2, dtype=torch.long)).shape
        torch.Size([5, 1])

    """

    def __init__(
        self,
        n_num: int,
        cardinalities: Sequence[int],
        hidden: Sequence[int] = (128, 64),
        dropout: float = 0.3,
        max_embedding_dim: int = 16,
        target_mean: float = 0.0,
        target_std: float = 1.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"`model.dropout` must be in [0, 1), got {dropout}; "
                              "e.g. `model.dropout=0.1`.")
        self.n_num, self.cardinalities = n_num, list(cardinalities)
        self.embeddings = nn.ModuleList(
            nn.Embedding(card, embedding_dim(card, max_embedding_dim)) for card in cardinalities
        )
        width = n_num + sum(e.embedding_dim for e in self.embeddings)
        self.linear = nn.Linear(width, 1)
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        for size in hidden:
            layers += [nn.Linear(width, size), nn.GELU(), nn.Dropout(dropout)]
            width = size
        self.mlp = nn.Sequential(*layers, nn.Linear(width, 1))
        self.register_buffer("target_mean", torch.tensor(float(target_mean)))
        self.register_buffer("target_std", torch.tensor(float(target_std)))

    def forward(self, x_num: Tensor, x_cat: Tensor) -> Tensor:
        """Log price ``[B, 1]`` from ``x_num [B, n_num]`` (float) and ``x_cat [B, n_cat]``."""
        embedded = [emb(x_cat[:, j]) for j, emb in enumerate(self.embeddings)]  # [B, d_j]
        h = torch.cat([x_num, *embedded], dim=1)  # [B, n_num + sum d_j]
        return self.target_mean + self.target_std * (self.linear(h) + self.mlp(h))


class ValuationModule(GuardrailModule):
    """Regression of log sale price, reported as ``rmse_log`` and ``mae_usd``.

    Loss: MSE on log price. Metrics: ``{stage}/rmse_log`` (RMSE of log price, about the
    relative error) and ``{stage}/mae_usd`` (mean absolute error in dollars, exp of both).

    Args:
        net: The network, e.g. :class:`ValuationNet`; its inputs are ``(x_num, x_cat)``.
        lr: Learning rate of AdamW.
        weight_decay: Weight decay of AdamW.
        feature_names: Original Ames column names, numeric then categorical, one per input
            column (from the datamodule).
        scheduler: Optional partial LR scheduler taking the optimiser, stepped per epoch.

    Example:
        >>> net = ValuationNet(n_num=2, cardinalities=[3])
        >>> module = ValuationModule(net, feature_names=["Gr_Liv_Area", "Latitude", "Street"])
        >>> sorted(module.metrics["test_metrics"].keys())
        ['test/mae_usd', 'test/rmse_log']
        >>> module(*module.example_input_array).shape
        torch.Size([2])

    """

    task = "regression"

    def __init__(
        self,
        net: ValuationNet,
        lr: float = 3e-3,
        weight_decay: float = 0.1,
        feature_names: Sequence[str] | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        n_inputs = net.n_num + len(net.cardinalities)
        feature_names = check_feature_names(
            "ValuationModule", feature_names, n_inputs,
            f"{n_inputs} input columns ({net.n_num} numeric + {len(net.cardinalities)} "
            "categorical)")
        super().__init__(net=net, lr=lr, weight_decay=weight_decay, scheduler=scheduler,
                         feature_names=feature_names)
        self.example_input_array = (
            torch.zeros(2, net.n_num), torch.zeros(2, len(net.cardinalities), dtype=torch.long)
        )

    def build_metrics(self) -> dict[str, torchmetrics.Metric]:
        """``rmse_log`` and ``mae_usd``."""
        return {
            "rmse_log": torchmetrics.MeanSquaredError(squared=False),
            "mae_usd": torchmetrics.MeanAbsoluteError(),
        }

    def update_metrics(
        self, metrics: torchmetrics.MetricCollection, preds: Tensor, target: Tensor
    ) -> None:
        """Log-space RMSE; dollar-space MAE (``exp`` of prediction and target)."""
        preds = preds.detach()
        for name, metric in metrics.items(keep_base=True, copy_state=False):
            if name == "mae_usd":
                metric.update(preds.exp(), target.exp())
            else:
                metric.update(preds, target)
