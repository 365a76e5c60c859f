"""The RET retention network (GRU over the first week + static features) and its module.

Example:
    >>> net = RetentionNet(n_seq_features=3, n_static_num=1, cardinalities=[8, 4])
    >>> module = RetentionModule(net, pos_weight=17.0)
    >>> module(*module.example_input_array).shape
    torch.Size([2])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from guardrail.errors import ConfigError
from guardrail.module import GuardrailModule, SchedulerFactory
from guardrail.recipes.scoring import check_feature_names, pos_weighted_bce


class RetentionNet(nn.Module):
    """GRU over the daily sequence, plus static features with embeddings -> one logit.

    A linear ("wide") term on the flattened sequence and the static features runs alongside
    the GRU head: on sparse purchase logs most of the signal is additive (how much and how
    often a customer bought), and the GRU adds what depends on the order of the days.

    Args:
        n_seq_features: Features per day (from the datamodule).
        n_days: Length of the daily sequence (from the datamodule).
        n_static_num: Numeric static features (from the datamodule).
        cardinalities: Embedding rows per categorical static feature, unknown index included
            (from the datamodule).
        hidden: Width of the GRU state and of the head's hidden layer.
        num_layers: Stacked GRU layers.
        dropout: Dropout on the head's input and hidden layer.
        embedding_dim: Width of each categorical embedding.

    Example:
        >>> net = RetentionNet(n_seq_features=5, cardinalities=[8, 4, 6, 9])
        >>> net(torch.zeros(4, 7, 5), torch.zeros(4, 0), torch.zeros(4, 4).long()).shape
        torch.Size([4, 1])
    """

    def __init__(
        self, n_seq_features: int, n_days: int = 7, n_static_num: int = 0,
        cardinalities: Sequence[int] = (), hidden: int = 32, num_layers: int = 1,
        dropout: float = 0.1, embedding_dim: int = 4,
    ) -> None:
        super().__init__()
        problems = []
        if not 0.0 <= dropout < 1.0:
            problems.append(f"`model.dropout` must be in [0, 1), got {dropout} "
                            "(e.g. `model.dropout=0.1`)")
        for key, value in (("hidden", hidden), ("num_layers", num_layers),
                           ("embedding_dim", embedding_dim)):
            if value < 1:
                problems.append(f"`model.{key}` must be >= 1, got {value}")
        if problems:
            raise ConfigError("; ".join(problems) + ".")
        self.n_seq_features, self.n_days, self.n_static_num = n_seq_features, n_days, n_static_num
        self.cardinalities = [int(c) for c in cardinalities]
        self.gru = nn.GRU(n_seq_features, hidden, num_layers, batch_first=True)
        self.embeddings = nn.ModuleList(nn.Embedding(c, embedding_dim) for c in self.cardinalities)
        static = n_static_num + embedding_dim * len(self.cardinalities)
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(hidden + static, hidden), nn.GELU(),
            nn.Dropout(dropout), nn.Linear(hidden, 1),
        )
        self.wide = nn.Linear(n_days * n_seq_features + static, 1)

    def forward(self, seq: Tensor, static_num: Tensor, static_cat: Tensor) -> Tensor:
        """Logit ``[B, 1]`` from ``seq [B, T, F]``, ``static_num [B, S]``, ``static_cat [B, C]``."""
        _, h_n = self.gru(seq)  # h_n: [layers, B, hidden]
        embedded = [emb(static_cat[:, j]) for j, emb in enumerate(self.embeddings)]  # [B, d]
        static = torch.cat([static_num, *embedded], dim=1)  # [B, S + C*d]
        deep = self.head(torch.cat([h_n[-1], static], dim=1))
        return deep + self.wide(torch.cat([seq.flatten(1), static], dim=1))


class RetentionModule(GuardrailModule):
    """Binary classification "active on days 7-13" with ``auroc`` and ``average_precision``.

    The loss is binary cross-entropy with ``pos_weight`` on the rare positives.

    Args:
        net: A :class:`RetentionNet`; its inputs are ``(seq, static_num, static_cat)``.
        lr: Learning rate of AdamW.
        weight_decay: Weight decay of AdamW.
        balance_classes: Weight positives by ``pos_weight`` in the loss (else weight 1).
        pos_weight: Training negatives per positive (from the datamodule).
        feature_names: Per-day features, then numeric and categorical static features
            (from the datamodule).
        scheduler: Optional partial LR scheduler taking the optimiser, stepped per epoch.

    Logged keys: ``{train,val,test}/loss`` and ``{stage}/auroc``, ``{stage}/average_precision``.

    Example:
        >>> net = RetentionNet(n_seq_features=5, cardinalities=[8])
        >>> m = RetentionModule(net, pos_weight=2.0)
        >>> round(float(m.compute_loss(torch.tensor([0.0]), torch.tensor([1.0]))), 4)  # 2 ln 2
        1.3863
    """

    task = "binary"

    def __init__(
        self, net: RetentionNet, lr: float = 3e-3, weight_decay: float = 1e-2,
        balance_classes: bool = True, pos_weight: float = 1.0,
        feature_names: Sequence[str] | None = None, scheduler: SchedulerFactory | None = None,
    ) -> None:
        if not pos_weight > 0:
            raise ConfigError(f"`module.pos_weight` must be > 0, got {pos_weight}; leave it to "
                              "the datamodule (negatives per positive in training).")
        n_inputs = net.n_seq_features + net.n_static_num + len(net.cardinalities)
        # A plain list: Hydra passes a ListConfig, which a weights-only checkpoint load refuses.
        feature_names = check_feature_names("RetentionModule", feature_names, n_inputs,
                                            f"{n_inputs} input features")
        super().__init__(net=net, lr=lr, weight_decay=weight_decay, scheduler=scheduler,
                         feature_names=feature_names)
        weight = float(pos_weight) if balance_classes else 1.0
        self.register_buffer("pos_weight", torch.tensor(weight))
        self.example_input_array = (
            torch.zeros(2, net.n_days, net.n_seq_features), torch.zeros(2, net.n_static_num),
            torch.zeros(2, len(net.cardinalities), dtype=torch.long),
        )

    def compute_loss(self, preds: Tensor, target: Tensor) -> Tensor:
        """Binary cross-entropy on logits, positives weighted by ``pos_weight``."""
        return pos_weighted_bce(preds, target, self.pos_weight)
