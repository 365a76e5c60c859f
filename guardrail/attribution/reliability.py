"""How far an explanation can be trusted: agreement, uncertainty, sanity and data support.

- :func:`spearman`: rank correlation, the agreement figure between two methods and the
  similarity measure of the randomisation test (Adebayo et al. 2018 use it too).
- :func:`bootstrap_ci`: confidence intervals of global importance over the explained samples.
- :func:`randomised_copy`: the model with every layer re-initialised (the cascade of the
  model-parameter randomisation test, run to the end).
- :func:`support`: for each explained sample, its distance to the nearest training samples,
  against the distances among training samples themselves: a prediction far outside them
  sits where the model saw little data, and so does its explanation.

Example:
    >>> import torch
    >>> spearman(torch.tensor([1., 2., 3.]), torch.tensor([10., 20., 30.]))
    1.0
    >>> ref = torch.randn(200, 2)
    >>> ratio, pct = support(torch.tensor([[0., 0.], [8., 8.]]), ref)
    >>> bool(pct[0] < 95), bool(pct[1] == 100)
    (True, True)

"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


def _ranks(x: Tensor) -> Tensor:
    """Average ranks (ties share their mean rank)."""
    order = x.argsort()
    ranks = torch.empty_like(x, dtype=torch.float64)
    ranks[order] = torch.arange(len(x), dtype=torch.float64)
    values, inverse = torch.unique(x, return_inverse=True)
    if len(values) < len(x):
        sums = torch.zeros(len(values), dtype=torch.float64).index_add_(0, inverse, ranks)
        counts = torch.bincount(inverse, minlength=len(values)).double()
        ranks = (sums / counts)[inverse]
    return ranks


def spearman(a: Tensor, b: Tensor) -> float | None:
    """Spearman's rank correlation of two flat tensors over their finite pairs (None if < 3)."""
    a, b = a.flatten().double(), b.flatten().double()
    keep = torch.isfinite(a) & torch.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 3:
        return None
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = (ra.norm() * rb.norm()).item()
    return round((ra @ rb).item() / denom, 6) if denom > 0 else None


def bootstrap_ci(values: Tensor, n_boot: int = 200, level: float = 0.95,
                 seed: int = 0) -> tuple[Tensor, Tensor]:
    """Percentile bootstrap intervals of the column means of ``values`` ``[N, F]``.

    Example:
        >>> lo, hi = bootstrap_ci(torch.ones(10, 2))
        >>> lo.tolist(), hi.tolist()
        ([1.0, 1.0], [1.0, 1.0])

    """
    g = torch.Generator().manual_seed(seed)
    n = values.shape[0]
    idx = torch.randint(n, (n_boot, n), generator=g)
    means = values[idx].nanmean(1)  # [n_boot, F]
    alpha = (1 - level) / 2
    return means.nanquantile(alpha, dim=0), means.nanquantile(1 - alpha, dim=0)


def randomised_copy(module: nn.Module, seed: int) -> nn.Module:
    """A copy of ``module`` with every parameter re-drawn from its layer's initialisation.

    Layers with ``reset_parameters`` use it (BatchNorm's running statistics are kept, so the
    copy is evaluated on the same normalisation); other parameters are re-drawn from a
    normal distribution with the same standard deviation.
    """
    twin = copy.deepcopy(module)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for layer in twin.modules():
            if isinstance(layer, nn.modules.batchnorm._NormBase):
                if layer.affine:
                    nn.init.ones_(layer.weight)
                    nn.init.zeros_(layer.bias)
                continue
            reset = getattr(layer, "reset_parameters", None)
            if callable(reset) and any(True for _ in layer.parameters(recurse=False)):
                reset()
            else:
                for p in layer.parameters(recurse=False):
                    p.normal_(0.0, float(p.std()) if p.numel() > 1 else 1.0)
    return twin


def support(samples: Tensor, reference: Tensor, k: int = 5) -> tuple[Tensor, Tensor]:
    """Each sample's data support: (distance ratio, percentile), both ``[N]``.

    The distance is the mean Euclidean distance to the ``k`` nearest reference rows, in
    features standardised by the reference. The ratio divides it by the median of the same
    distance among reference rows (leave-one-out); the percentile says where it falls in
    that distribution (100: farther than every training row is from its neighbours).
    """
    mean, std = reference.mean(0), reference.std(0).clamp_min(1e-8)
    ref, x = (reference - mean) / std, (samples - mean) / std
    k = max(1, min(k, len(ref) - 1))
    d_ref = torch.cdist(ref, ref)
    d_ref.fill_diagonal_(float("inf"))
    own = d_ref.topk(k, largest=False).values.mean(1)
    dist = torch.cdist(x, ref).topk(k, largest=False).values.mean(1)
    ratio = dist / own.median().clamp_min(1e-12)
    percentile = (dist[:, None] > own[None, :]).double().mean(1) * 100
    return ratio, percentile
