"""The BOT sequence network (1-D CNN or GRU over a player's actions) and its GuardrailModule.

Example:
    >>> net = BotSequenceNet(n_num=10, cardinalities=[4, 6, 6])
    >>> net(torch.zeros(2, 64, 10), torch.zeros(2, 64, 3, dtype=torch.long)).shape
    torch.Size([2, 1])

"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from guardrail.errors import ConfigError
from guardrail.module import GuardrailModule, SchedulerFactory
from guardrail.recipes.scoring import check_feature_names, pos_weighted_bce

ENCODERS = ("cnn", "gru")


class _ResidualConv(nn.Module):
    """``x + conv(GELU(x))`` over time, length-preserving; ``[B, C, T] -> [B, C, T]``."""

    def __init__(self, channels: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.GELU(), nn.Conv1d(channels, channels, kernel_size,
                                                       padding=kernel_size // 2),
                                  nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class BotSequenceNet(nn.Module):
    """Per-action encoder -> sequence encoder -> mean/std/max pooling -> one bot logit.

    Every action is embedded (categorical fields) and concatenated with its numeric fields,
    then passed through a per-action MLP, so that products such as "slow *and* hard" exist
    per action; the sequence encoder adds context; pooling over the whole session turns them
    into per-player statistics: the mean of such a product against the means of its factors
    is the timing-difficulty covariance that exposes humanised bots, the std the regularity
    that exposes plain ones.

    Args:
        n_num: Numeric inputs per action (from the datamodule).
        cardinalities: Levels of each categorical input (from the datamodule).
        encoder: ``cnn`` (residual 1-D convolutions; fast on CPU) or ``gru``.
        hidden: Channels of the per-action features and of the sequence encoder.
        n_layers: Residual convolution blocks, or GRU layers.
        kernel_size: Width in actions of each convolution (odd), ``cnn`` only.
        embedding_dim: Width of each categorical embedding.
        dropout: Dropout in the encoder and the head.

    Example:
        >>> net = BotSequenceNet(n_num=3, cardinalities=[4], encoder="gru", hidden=8)
        >>> net(torch.zeros(5, 7, 3), torch.zeros(5, 7, 1, dtype=torch.long)).shape
        torch.Size([5, 1])

    """

    def __init__(
        self, n_num: int, cardinalities: Sequence[int], encoder: str = "cnn", hidden: int = 32,
        n_layers: int = 2, kernel_size: int = 5, embedding_dim: int = 4, dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ConfigError(f"`model.encoder={encoder}` is not a BOT sequence encoder; choose "
                              f"one of {', '.join(ENCODERS)}, e.g. `model.encoder=cnn`.")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"`model.kernel_size={kernel_size}` must be odd and positive so "
                              "sequences keep their length, e.g. `model.kernel_size=5`.")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"`model.dropout={dropout}` must be in [0, 1), "
                              "e.g. `model.dropout=0.1`.")
        self.n_num, self.cardinalities = n_num, list(cardinalities)
        self.encoder_kind = encoder
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_dim) for c in cardinalities)
        width = n_num + embedding_dim * len(self.cardinalities)
        self.per_action = nn.Sequential(nn.Linear(width, hidden), nn.GELU(),
                                        nn.Linear(hidden, hidden))
        if encoder == "cnn":
            self.sequence: nn.Module = nn.Sequential(
                *(_ResidualConv(hidden, kernel_size, dropout) for _ in range(n_layers)))
        else:
            self.sequence = nn.GRU(hidden, hidden, num_layers=n_layers, batch_first=True,
                                   dropout=dropout if n_layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, 1))

    def forward(self, x_num: Tensor, x_cat: Tensor) -> Tensor:
        """Bot logit ``[B, 1]`` from ``x_num [B, T, n_num]`` and ``x_cat [B, T, n_cat]``."""
        embedded = [emb(x_cat[..., j]) for j, emb in enumerate(self.embeddings)]  # [B, T, e]
        h = self.per_action(torch.cat([x_num, *embedded], dim=-1))  # [B, T, H]
        if self.encoder_kind == "cnn":
            h = self.sequence(h.transpose(1, 2)).transpose(1, 2)  # convolve over T: [B, H, T]
        else:
            h, _ = self.sequence(h)
        pooled = torch.cat([h.mean(1), h.std(1), h.amax(1)], dim=-1)  # [B, 3H]
        return self.head(pooled)


class BotDetectorModule(GuardrailModule):
    """Binary bot detection per player; reports ``average_precision`` and ``auroc``.

    Loss: binary cross-entropy with ``pos_weight`` on the bot class, so the 1-5 % of bots
    weigh as much as the humans in the gradient (the base's metrics are rank-based and do
    not care about the calibration this costs).

    Args:
        net: The network, e.g. :class:`BotSequenceNet`; inputs ``(x_num, x_cat)``.
        lr: Learning rate of AdamW.
        weight_decay: Weight decay of AdamW.
        pos_weight: Weight of a bot in the loss; ``None`` uses ``class_ratio`` (balanced);
            ``1.0`` turns weighting off.
        class_ratio: Training humans per training bot (from the datamodule).
        n_actions: Actions per player, the length of the example input (from the datamodule).
        feature_names: The log field each input column comes from, numeric then categorical
            (from the datamodule).
        scheduler: Optional partial LR scheduler taking the optimiser, stepped per epoch.

    Example:
        >>> net = BotSequenceNet(n_num=10, cardinalities=[4, 6, 6], hidden=8)
        >>> module = BotDetectorModule(net, class_ratio=30.0)
        >>> module.pos_weight, sorted(module.metrics["val_metrics"].keys())
        (30.0, ['val/auroc', 'val/average_precision'])
        >>> module(*module.example_input_array).shape
        torch.Size([2])

    """

    task = "binary"

    def __init__(
        self, net: BotSequenceNet, lr: float = 2e-3, weight_decay: float = 1e-4,
        pos_weight: float | None = None, class_ratio: float = 1.0, n_actions: int = 64,
        feature_names: Sequence[str] | None = None, scheduler: SchedulerFactory | None = None,
    ) -> None:
        feature_names = check_feature_names("BotDetectorModule", feature_names,
                                            net.n_num + len(net.cardinalities))
        if pos_weight is not None and pos_weight <= 0:
            raise ConfigError(f"`module.pos_weight={pos_weight}` must be > 0 or null "
                              "(balanced), e.g. `module.pos_weight=null`.")
        super().__init__(net=net, lr=lr, weight_decay=weight_decay, scheduler=scheduler,
                         feature_names=feature_names)
        self.pos_weight = float(class_ratio if pos_weight is None else pos_weight)
        self.example_input_array = (  # [2, T, n_num] float, [2, T, n_cat] long
            torch.zeros(2, n_actions, net.n_num),
            torch.zeros(2, n_actions, len(net.cardinalities), dtype=torch.long))

    def compute_loss(self, preds: Tensor, target: Tensor) -> Tensor:
        """Binary cross-entropy on logits, bots weighted by ``pos_weight``."""
        return pos_weighted_bce(preds, target, self.pos_weight)
