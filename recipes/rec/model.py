"""The REC hybrid recommender: item content plus collaborative ids, gated by rating count.

An item's vector is a content vector (from its genres, year and title tokens) plus its id
embedding scaled by a learned gate on ``log(1 + n_train_ratings)``: the id part is a residual
paid for by the item's own ratings (weight decay shrinks the rows few ratings pull on), so an
item with few ratings stays near its content vector and one with none (a new movie) is scored
from content alone. ``content=False`` removes the content path: every new item then gets the
same score and cold-start ranking falls to chance.

Example:
    >>> net = HybridRecommender(n_users=3, **toy_items(5))
    >>> net(torch.tensor([0, 2]), torch.tensor([[1, 4], [0, 3]])).shape  # chosen items
    torch.Size([2, 2])
    >>> net(torch.tensor([1])).shape  # every item
    torch.Size([1, 5])
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
import torchmetrics
from torch import Tensor, nn

from guardrail.errors import ConfigError
from guardrail.module import GuardrailModule
from guardrail.recipes.rec.ranking import GROUPS, K, UserMean, ranking_at_k


def toy_items(n: int = 6, n_genres: int = 3, seed: int = 0) -> dict[str, Any]:
    """Random item features shaped as the data module's ``net_kwargs``; the last two are new.

    Example:
        >>> toy_items(4)["n_ratings"][-2:].tolist()
        [0.0, 0.0]
    """
    g = torch.Generator().manual_seed(seed)
    ids = torch.arange(1, n + 1)
    ids[-2:] = 0  # the last two items are new: no id row
    return {"item_ids": ids, "genres": (torch.rand(n, n_genres, generator=g) > 0.5).float(),
            "year": torch.randn(n, 2, generator=g), "n_title_tokens": 5,
            "title_tokens": torch.randint(0, 5, (n, 3), generator=g),
            "n_ratings": torch.cat([torch.randint(1, 50, (n - 2,), generator=g), torch.zeros(2)])}


class HybridRecommender(nn.Module):
    """Score = user vector . item vector + item bias; item = content + gated id residual.

    ``g = sigmoid(a * log(1 + n) + b)`` (``a``, ``b`` learned) for an item with ``n > 0``
    training ratings and ``g = 0`` for a new item; the item's (vector, bias) is
    ``content(genres, year, title) + g * id_embedding``. The content path gets the gradient of
    every item's ratings, so it learns what id residuals cannot: how new items score.

    Args:
        n_users: Users in training (from the data module).
        item_ids: ``[N]`` long, each item's id-embedding row, 0 for items without training
            ratings (from the data module).
        genres: ``[N, G]`` float multi-hot over the training genres (from the data module).
        year: ``[N, Y]`` float year features, scaled with training items (from the data module).
        title_tokens: ``[N, T]`` long title-token ids, 0 = padding or unknown (data module).
        n_title_tokens: Title vocabulary size including 0 (from the data module).
        n_ratings: ``[N]`` training ratings per item (from the data module).
        dim: Width of user and item vectors.
        hidden: Hidden width of the content MLP.
        title_dim: Width of the title-token embeddings (averaged per title).
        content: Use the content path; ``False`` leaves ids only (the cold-start failure).

    Example:
        >>> scores = HybridRecommender(n_users=4, content=False, **toy_items(6))(torch.arange(4))
        >>> bool((scores[:, -1] == scores[:, -2]).all())  # ids only: new items are all alike
        True
    """

    def __init__(
        self, n_users: int, item_ids: Tensor, genres: Tensor, year: Tensor, title_tokens: Tensor,
        n_title_tokens: int, n_ratings: Tensor, dim: int = 32, hidden: int = 64,
        title_dim: int = 16, content: bool = True,
    ) -> None:
        super().__init__()
        if dim < 1:
            raise ConfigError(f"`model.dim` must be >= 1, got {dim}; e.g. `model.dim=32`.")
        self.n_users, self.n_items, self.content = n_users, len(item_ids), bool(content)
        for name, value in (("item_ids", item_ids), ("genres", genres), ("year", year),
                            ("title_tokens", title_tokens), ("n_ratings", n_ratings)):
            self.register_buffer(name, torch.as_tensor(value).clone())
        self.users = nn.Embedding(n_users, dim)
        self.ids = nn.Embedding(int(self.item_ids.max()) + 1, dim + 1)  # vector + bias column
        for emb in (self.users, self.ids):
            nn.init.normal_(emb.weight, std=0.05)
        self.titles = nn.Embedding(n_title_tokens, title_dim, padding_idx=0)
        width = self.genres.shape[1] + self.year.shape[1] + title_dim
        self.encoder = nn.Sequential(nn.Linear(width, hidden), nn.GELU(),
                                     nn.Linear(hidden, dim + 1))
        self.gate = nn.Parameter(torch.tensor([1.0, -2.0]))  # slope, offset on log(1 + n)

    def item_parts(self) -> tuple[Tensor, Tensor | None, Tensor]:
        """Every item's id and content parts ``[N, dim + 1]`` (vector, bias) and gate ``[N]``.

        Computed for all N items at once: cheaper than per scored item (9k items, 5k per batch).
        """
        idv = self.ids(self.item_ids)  # new items share row 0: never trained
        if not self.content:
            return idv, None, torch.ones_like(self.n_ratings)
        mask = (self.title_tokens > 0).unsqueeze(-1).float()  # [N, T, 1]
        title = (self.titles(self.title_tokens) * mask).sum(1) / mask.sum(1).clamp(min=1)
        content = self.encoder(torch.cat([self.genres, self.year, title], 1))  # [N, dim + 1]
        gate = torch.sigmoid(self.gate[0] * torch.log1p(self.n_ratings) + self.gate[1])
        return idv, content, gate * (self.n_ratings > 0)

    def forward(self, users: Tensor, items: Tensor | None = None) -> Tensor:
        """Scores ``[B, K]`` of ``items [B, K]`` (or ``[B]`` -> ``[B]``; None: all ``[B, N]``)."""
        u = self.users(users)  # [B, dim]
        idv, content, gate = self.item_parts()
        if items is None:
            v = idv if content is None else gate[:, None] * idv + content
            return u @ v[:, :-1].T + v[:, -1]  # [B, N]
        g = gate[items].unsqueeze(-1)  # [B, K, 1]
        v = idv[items] if content is None else g * idv[items] + content[items]
        u = u.view(*u.shape[:1], *([1] * (items.ndim - 1)), -1)  # broadcast over K
        return (u * v[..., :-1]).sum(-1) + v[..., -1]


class HybridRecommenderModule(GuardrailModule):
    """BPR training with sampled negatives; recall@10 / NDCG@10 on warm and cold items.

    Training batches are ``(users, positive items)``; ``num_negatives`` items per positive are
    drawn uniformly from the items with training ratings. Evaluation batches are dicts of
    per-user rows (see :class:`MovieLensDataModule`); every user's candidates are ranked.

    Logged keys: ``{train,val,test}/loss`` (BPR; for val/test: held-out relevant items against
    100 of the user's candidates drawn with a fixed seed) and ``{val,test}/recall_at_10_warm``,
    ``ndcg_at_10_warm``, ``recall_at_10_cold``, ``ndcg_at_10_cold``.

    Args:
        net: A :class:`HybridRecommender`.
        lr: Learning rate of AdamW.
        weight_decay: Weight decay of AdamW.
        num_negatives: Sampled negatives per training positive.
        feature_names: Names of the two inputs (from the data module).
        scheduler: Optional partial LR scheduler, stepped per epoch.

    Example:
        >>> m = HybridRecommenderModule(HybridRecommender(n_users=3, **toy_items(5)))
        >>> sorted(m.metrics["test_metrics"].keys())[:2]
        ['test/ndcg_at_10_cold', 'test/ndcg_at_10_warm']
        >>> m(*m.example_input_array).shape
        torch.Size([2])
    """

    task = "ranking"

    def __init__(
        self, net: HybridRecommender, lr: float = 2e-2, weight_decay: float = 0.1,
        num_negatives: int = 4, feature_names: list[str] | None = None, scheduler: Any = None,
    ) -> None:
        if num_negatives < 1:
            raise ConfigError(f"`module.num_negatives` must be >= 1, got {num_negatives}; "
                              "e.g. `module.num_negatives=4`.")
        # a plain list: Hydra hands a ListConfig, which a weights-only checkpoint load rejects
        feature_names = list(feature_names) if feature_names is not None else None
        super().__init__(net=net, lr=lr, weight_decay=weight_decay, scheduler=scheduler,
                         feature_names=feature_names)
        self.num_negatives = num_negatives
        self.register_buffer("sampleable", torch.nonzero(net.n_ratings > 0).flatten())
        self.example_input_array = (torch.zeros(2, dtype=torch.long),
                                    torch.zeros(2, dtype=torch.long))

    def build_metrics(self) -> dict[str, torchmetrics.Metric]:
        """Recall@10 and NDCG@10 for warm and for cold items."""
        return {f"{kind}_at_{K}_{group}": UserMean(kind, group)
                for group in GROUPS for kind in ("recall", "ndcg")}

    def split_batch(self, batch: Any) -> tuple[tuple[Tensor, ...], Any]:
        """Eval dicts -> ``((users,), masks)``; training pairs -> ``((users, items), None)``."""
        if isinstance(batch, dict):
            return (batch["users"],), batch
        users, items = batch
        return (users, items), None

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """BPR of each positive against ``num_negatives`` uniformly drawn training items."""
        users, pos = batch
        draw = torch.randint(len(self.sampleable), (len(pos), self.num_negatives),
                             device=pos.device)
        scores = self(users, torch.cat([pos[:, None], self.sampleable[draw]], 1))  # [B, 1+neg]
        loss = F.softplus(scores[:, 1:] - scores[:, :1]).mean()
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True,
                 batch_size=len(users), sync_dist=True)
        return loss

    def compute_loss(self, preds: Tensor, target: dict[str, Tensor]) -> Tensor:
        """Eval BPR: each held-out relevant item vs 100 of its user's candidates (fixed draw)."""
        g = torch.Generator().manual_seed(0)  # the same negatives every epoch: comparable
        terms = []
        for group in GROUPS:
            cand, rel = target[f"{group}_candidates"], target[f"{group}_relevant"]
            has = cand.any(1)
            if not has.any():
                continue
            cum = cand[has].cumsum(1)  # [U', N]: the j-th candidate is where cum first hits j
            draw = torch.rand(len(cum), 100, generator=g).to(cum.device)
            neg = torch.searchsorted(cum, (draw * cum[:, -1:]).long() + 1)  # [U', 100]
            neg_scores = preds[has].gather(1, neg)
            u, i = torch.nonzero(rel[has] & cand[has], as_tuple=True)
            terms.append(F.softplus(neg_scores[u] - preds[has][u, i].unsqueeze(1)).flatten())
        diffs = torch.cat(terms) if terms else preds.new_zeros(0)
        return diffs.mean() if len(diffs) else preds.new_zeros(())

    def update_metrics(
        self, metrics: torchmetrics.MetricCollection, preds: Tensor, target: dict[str, Tensor]
    ) -> None:
        """Rank each user's candidates once per group and feed recall and NDCG."""
        results = {g: ranking_at_k(preds.detach(), target[f"{g}_candidates"],
                                   target[f"{g}_relevant"]) for g in GROUPS}
        for metric in metrics.values(copy_state=False):
            recall, ndcg, valid = results[metric.group]
            metric.update(recall if metric.kind == "recall" else ndcg, valid)
