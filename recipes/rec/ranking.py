"""Ranking metrics of the REC recipe and the non-personalised rankings its baselines use.

The module (:class:`~guardrail.recipes.rec.model.HybridRecommenderModule`) and the
datamodule's baselines score rankings with the same functions here: recall@K and NDCG@K over
each user's candidate items, warm (known items) and cold (new items) apart.

Example:
    >>> cand = torch.ones(1, 20, dtype=torch.bool)
    >>> recall, ndcg, ok = expected_ranking_at_k(torch.zeros(20), cand, torch.arange(20)[None] < 2)
    >>> round(float(recall), 3)  # chance: 10 of 20 slots
    0.5
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torchmetrics
from torch import Tensor

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


def popularity(train_items: np.ndarray, n_items: int) -> np.ndarray:
    """Training rating count per item: the warm baseline's score (new items score 0).

    Example:
        >>> popularity(np.array([0, 2, 2]), 4).tolist()
        [1.0, 0.0, 2.0, 0.0]
    """
    return np.bincount(train_items, minlength=n_items).astype(float)


def genre_popularity(train_items: np.ndarray, genres: np.ndarray) -> np.ndarray:
    """Cold baseline's score: the mean, over an item's genres, of the genre's training ratings.

    A genre's popularity is the number of training ratings of items that have it; an item
    without a known genre scores 0. The same ranking for every user.

    Example:
        >>> genres = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=float)
        >>> genre_popularity(np.array([0, 0, 1]), genres).tolist()
        [2.0, 1.0, 1.5, 0.0]
    """
    per_genre = genres[train_items].sum(0)  # [G] training ratings per genre
    return genres @ per_genre / np.maximum(genres.sum(1), 1)


def baseline_scores(scores: np.ndarray, rows: dict[str, Tensor],
                    groups: tuple[str, ...] = GROUPS) -> dict[str, float]:
    """``recall_at_K_<group>`` and ``ndcg_at_K_<group>`` of one ranking shared by every user.

    Scored in expectation over random tie-breaks (:func:`expected_ranking_at_k`), averaged
    over the users with a relevant candidate; ``rows`` holds ``<group>_candidates`` and
    ``<group>_relevant`` ``[U, N]`` bool.

    Example:
        >>> rows = {"cold_candidates": torch.ones(1, 20, dtype=torch.bool),
        ...         "cold_relevant": torch.arange(20)[None] < 2}
        >>> baseline_scores(np.zeros(20), rows, ("cold",))["recall_at_10_cold"]
        0.5
    """
    out = {}
    for group in groups:
        recall, ndcg, valid = expected_ranking_at_k(
            torch.from_numpy(scores), rows[f"{group}_candidates"], rows[f"{group}_relevant"])
        out[f"recall_at_{K}_{group}"] = float(recall[valid].mean())
        out[f"ndcg_at_{K}_{group}"] = float(ndcg[valid].mean())
    return out
