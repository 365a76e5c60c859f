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

import math
from typing import Any

import torch
import torch.nn.functional as F
import torchmetrics
from torch import Tensor, nn

from guardrail.errors import ConfigError
from guardrail.module import GuardrailModule

K = 10  # cut-off of recall@K and NDCG@K; the metric names carry it
GROUPS = ("warm", "cold")


def ranking_at_k(
    scores: Tensor, candidates: Tensor, relevant: Tensor, k: int = K, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-user recall@k and NDCG@k of ranking each user's candidate items by score.

    Exact score ties are broken at random (seeded), so a constant scorer ranks at chance
    instead of by item order. Relevant items that are not candidates do not count.

    Args:
        scores: ``[U, N]`` float (or ``[N]``, the same scores for every user).
        candidates: ``[U, N]`` bool, the items each user's ranking is over.
        relevant: ``[U, N]`` bool, the user's held-out relevant items.
        k: Cut-off.
        seed: Seed of the tie-breaking keys.

    Returns:
        ``(recall [U], ndcg [U], has_relevant [U] bool)``; users without a relevant candidate
        get 0 and ``has_relevant=False`` (leave them out of the mean).

    Example:
        >>> cand = torch.tensor([[True, True, True, False]])
        >>> rel = torch.tensor([[False, True, False, True]])
        >>> r, n, ok = ranking_at_k(torch.tensor([[3.0, 2.0, 1.0, 9.0]]), cand, rel, k=1)
        >>> r.tolist(), n.tolist(), ok.tolist()
        ([0.0], [0.0], [True])
    """
    cols = candidates.any(0).nonzero().flatten()  # only items some user ranks: [C]
    scores = scores.expand(candidates.shape)[:, cols].float()
    candidates = candidates[:, cols]
    relevant = relevant[:, cols] & candidates
    keys = torch.rand(scores.shape, generator=torch.Generator().manual_seed(seed))
    order = keys.to(scores.device).argsort(dim=1)  # a random item order per user: the tie-break
    masked = scores.masked_fill(~candidates, -math.inf).gather(1, order)
    top = order.gather(1, masked.sort(dim=1, descending=True, stable=True).indices[:, :k])
    hits = (relevant.gather(1, top) & candidates.gather(1, top)).float()  # [U, <=k]
    n_rel = relevant.sum(1)
    discount = 1.0 / torch.log2(torch.arange(2, hits.shape[1] + 2, device=scores.device))
    ideal = discount.cumsum(0)[(n_rel.clamp(1, hits.shape[1]) - 1)]  # IDCG of min(n_rel, k)
    recall = hits.sum(1) / n_rel.clamp(min=1)
    ndcg = (hits * discount).sum(1) / ideal
    return recall, ndcg, n_rel > 0


def expected_ranking_at_k(
    scores: Tensor, candidates: Tensor, relevant: Tensor, k: int = K
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`ranking_at_k` of one ranking shared by all users (``scores [N]``), in expectation.

    Exact over random tie-breaks, no sampling: a slot held by an item of a group of tied
    candidates is relevant with probability (relevant in the group) / (candidates in the
    group). Constant scores give the chance level; the non-personalised baselines (popularity,
    genre popularity) have many ties, so one random tie-break would make them noisy.

    Example:
        >>> cand = torch.ones(1, 20, dtype=torch.bool)
        >>> r, n, ok = expected_ranking_at_k(torch.zeros(20), cand, torch.arange(20)[None] < 2)
        >>> round(float(r), 3), ok.tolist()  # chance: 10 of 20 slots
        (0.5, [True])
    """
    order = scores.argsort(descending=True, stable=True)
    sorted_scores = scores[order].double()
    cand = candidates[:, order]
    rel = (relevant & candidates)[:, order].double()
    group = torch.cat([torch.zeros(1, dtype=torch.long),
                       (sorted_scores[1:] != sorted_scores[:-1]).long().cumsum(0)])  # tie group
    n_groups = int(group[-1]) + 1
    size = cand.new_zeros(len(cand), n_groups, dtype=torch.float64).index_add_(1, group,
                                                                              cand.double())
    hit = rel.new_zeros(len(cand), n_groups).index_add_(1, group, rel)
    p = (hit / size.clamp(min=1))[:, group]  # [U, N] chance a slot of this item's group is a hit
    pos = cand.long().cumsum(1) - 1  # each candidate's slot in the user's ranking
    top = (cand & (pos < k)).double()
    n_rel = rel.sum(1).long()
    ideal = (1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))).cumsum(0)
    recall = (p * top).sum(1) / n_rel.clamp(min=1)
    dcg = (p * top / torch.log2(pos.clamp(min=0).double() + 2)).sum(1)
    ndcg = dcg / ideal[n_rel.clamp(1, k) - 1]
    return recall.float(), ndcg.float(), n_rel > 0


class UserMean(torchmetrics.Metric):
    """Mean of a per-user ranking score over every user with a relevant item in the split.

    Sums and counts across batches (and ranks), so the value is exact over the split.

    Args:
        kind: ``recall`` or ``ndcg``.
        group: ``warm`` (held-out ratings of known items) or ``cold`` (new items).

    Example:
        >>> m = UserMean("recall", "cold")
        >>> m.update(torch.tensor([1.0, 0.5, 0.0]), torch.tensor([True, True, False]))
        >>> float(m.compute())
        0.75
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, kind: str, group: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind, self.group = kind, group
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("users", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, values: Tensor, valid: Tensor) -> None:
        """Add per-user ``values [U]`` where ``valid [U]``."""
        self.total += values.detach()[valid].double().sum()
        self.users += valid.sum()

    def compute(self) -> Tensor:
        """The mean over users (0 if none)."""
        return (self.total / self.users.clamp(min=1)).float()


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
