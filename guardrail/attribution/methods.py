"""The attribution methods, through Captum 0.9, on any module's forward inputs.

Every method sees the model through :class:`Forward`, which turns whatever the module returns
(a tensor, a tuple, several outputs per sample) into one number per sample, so Captum's
``target`` is needed only for multiclass outputs.

- :func:`integrated_gradients`: IG on the floating-point inputs, from a baseline of training
  means, with its convergence delta (completeness error) and the path-averaged gradients;
  integer inputs (ids, categories) ride along unchanged: no gradient reaches an index.
- :func:`embedding_gradients`: layer IG through the embeddings that read integer inputs
  (categories, ids, tokens), attributed to the feature each embedding reads.
- :func:`permutation_importance`: every feature permuted across the explained samples, one
  feature at a time (all its elements at once, so an embedded category or a whole channel is
  one feature); the mean absolute change of the output. It works on any input dtype.
- :func:`occlusion`: Captum's Occlusion over square windows of a grid, replacing them with
  the training mean.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from guardrail.attribution.features import describe, feature_masks
    >>> net = nn.Linear(3, 1)
    >>> x = torch.randn(16, 3)
    >>> f = Forward(net, (x,), "regression")
    >>> attrs, grads, terms = integrated_gradients(f, (x,), (x.mean(0, keepdim=True),), 8)
    >>> attrs[0].shape, bool(terms[:, 0].max() < 1e-4)
    (torch.Size([16, 3]), True)
    >>> torch.allclose(grads[0][0], net.weight[0])  # a linear model's gradient is its weight
    True

"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from captum.attr import (
    FeaturePermutation,
    IntegratedGradients,
    LayerIntegratedGradients,
    Occlusion,
)
from lightning.pytorch.utilities.seed import isolate_rng
from torch import Tensor, nn

from guardrail.attribution.features import Feature, feature_axis, per_feature
from guardrail.shapes import first_tensor


def _prediction(out: Any) -> Tensor:
    """The module's prediction among what it returned (its first tensor, however nested)."""
    found = first_tensor(out)
    if found is None:
        raise TypeError(f"the model returned {type(out).__name__}, with no tensor in it")
    return found


class Forward:
    """``module`` as one number per sample: the prediction, or the mean of a multi-output one.

    Multiclass outputs keep their logits; :attr:`target` holds each explained sample's
    predicted class, for Captum's ``target``. A module that declares no task and returns
    several columns per sample (a plain classifier) is explained the same way: the mean of
    its class scores (or probabilities, which sum to one) would explain nothing.
    """

    def __init__(self, module: nn.Module, inputs: Sequence[Tensor], task: str | None) -> None:
        self.module = module
        with torch.no_grad():
            out = _prediction(module(*inputs))
        self.multiclass = task in ("multiclass", None) and out.ndim == 2 and out.shape[1] > 1
        self.target: Tensor | None = out.argmax(1) if self.multiclass else None

    def __call__(self, *inputs: Tensor) -> Tensor:
        """``[N]`` (or ``[N, C]`` logits for multiclass) for the inputs Captum passes."""
        out = _prediction(self.module(*inputs)).float()
        if self.multiclass or out.ndim == 1:
            return out
        return out.reshape(out.shape[0], -1).mean(1)


def _per_eval(n: int, rows: int = 512) -> int:
    """Perturbations per forward pass: about ``rows`` rows at a time, fewer Python round trips."""
    return max(1, rows // max(n, 1))


def _reordered(f: Callable[..., Tensor], first: Sequence[int], n: int) -> Callable[..., Tensor]:
    """``f`` called as Captum calls it: the attributed inputs first, the others after them."""
    order = [*first, *(i for i in range(n) if i not in first)]

    def g(*args: Tensor) -> Tensor:
        full: list[Tensor | None] = [None] * n
        for position, arg in zip(order, args, strict=True):
            full[position] = arg
        return f(*full)

    return g


def integrated_gradients(
    forward: Forward, inputs: Sequence[Tensor], baselines: Sequence[Tensor], n_steps: int = 32,
) -> tuple[list[Tensor | None], list[Tensor | None], Tensor | None]:
    """IG on the floating-point inputs: ``(attributions, path gradients, completeness)``.

    Per input (None for integer inputs): the attributions ``(x - baseline) * g`` and ``g``,
    the gradient averaged along the straight path from the baseline (what the weights make
    of the input, without its deviation from the baseline). ``completeness`` is ``[N, 2]``:
    per sample, ``|sum(attributions) - (f(x) - f(baseline))|`` (Captum's convergence delta:
    how far the Riemann sum is from the exact integral) and ``|f(x) - f(baseline)|``, what
    the attributions should add up to; None when no input is floating point.
    """
    floats = [i for i, x in enumerate(inputs) if x.is_floating_point()]
    attrs: list[Tensor | None] = [None] * len(inputs)
    grads: list[Tensor | None] = [None] * len(inputs)
    if not floats:
        return attrs, grads, None
    others = tuple(x for i, x in enumerate(inputs) if i not in floats)
    g = _reordered(forward, floats, len(inputs))
    path = IntegratedGradients(g, multiply_by_inputs=False).attribute(
        tuple(inputs[i] for i in floats), baselines=tuple(baselines[i] for i in floats),
        target=forward.target, additional_forward_args=others or None, n_steps=n_steps,
        internal_batch_size=max(len(inputs[0]), 1) * 8)
    for i, grad in zip(floats, path, strict=True):
        grads[i] = grad.detach()
        attrs[i] = grads[i] * (inputs[i] - baselines[i]).detach()
    with torch.no_grad():
        full_base = [baselines[i].expand_as(x) if i in floats else x for i, x in enumerate(inputs)]
        gap = forward(*inputs) - forward(*full_base)
        if forward.target is not None:
            gap = gap.gather(1, forward.target[:, None]).squeeze(1)
    total = sum(a.reshape(len(a), -1).sum(1) for a in attrs if a is not None)
    delta = (total - gap).abs()  # type: ignore[operator]
    return attrs, grads, torch.stack([delta.cpu(), gap.abs().cpu()], 1)


def _reads(index: Tensor, inputs: Sequence[Tensor], feature: Feature) -> bool:
    """Whether an embedding's index tensor is exactly ``feature``'s column of the inputs."""
    if isinstance(feature.index, tuple):
        return False
    x = inputs[feature.input]
    column = x if feature.index is None else x.select(feature_axis(x) or 0, feature.index)
    return index.shape == column.shape and bool(torch.equal(index, column))


def embedding_gradients(
    forward: Forward, module: nn.Module, inputs: Sequence[Tensor], baselines: Sequence[Tensor],
    features: Sequence[Feature], n_steps: int = 32,
) -> dict[int, Tensor]:
    """``{feature k: [N] attributions}`` for integer features, by layer IG on their embeddings.

    An embedding is matched to the feature whose column it reads (seen on one forward pass);
    embeddings that read something else (offsets added, a lookup of another table) or that
    several columns match are left out. Each feature's attribution is the layer IG of its
    embedding's output from the embedding of the baseline id, summed over the embedding.
    """
    embeddings = [m for m in module.modules() if isinstance(m, nn.Embedding | nn.EmbeddingBag)]
    if not embeddings or all(x.is_floating_point() for x in inputs):
        return {}
    seen: dict[nn.Module, Tensor] = {}
    hooks = [e.register_forward_pre_hook(
        lambda m, args: seen.setdefault(m, args[0]) if args else None) for e in embeddings]
    try:
        with torch.no_grad():
            forward(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    matched: dict[nn.Module, int] = {}
    for layer, index in seen.items():
        ks = [k for k, f in enumerate(features)
              if f.kind in ("categorical", "id") and _reads(index, inputs, f)]
        if len(ks) == 1 and ks[0] not in matched.values():
            matched[layer] = ks[0]
    if not matched:
        return {}
    layers = list(matched)
    base = tuple(b.expand_as(x) if not x.is_floating_point() else x
                 for x, b in zip(inputs, baselines, strict=True))
    attrs = LayerIntegratedGradients(forward, layers).attribute(
        tuple(inputs), baselines=base, target=forward.target, n_steps=n_steps,
        internal_batch_size=max(len(inputs[0]), 1) * 8)
    attrs = attrs if isinstance(attrs, list) else [attrs]
    return {matched[layer]: a.detach().reshape(len(a), -1).sum(1).float().cpu()
            for layer, a in zip(layers, attrs, strict=True)}


def permutation_importance(
    forward: Forward, inputs: Sequence[Tensor], masks: Sequence[Tensor],
    features: Sequence[Feature], repeats: int = 3, seed: int = 0,
) -> Tensor:
    """``[N, n_features]``: mean over ``repeats`` permutations of ``|f(x) - f(x permuted)|``.

    Seeded, and every global RNG is left as it was.
    """
    method = FeaturePermutation(forward)
    runs = []
    with isolate_rng():
        torch.manual_seed(seed)
        for _ in range(repeats):
            attrs = method.attribute(tuple(inputs), target=forward.target,
                                     feature_mask=tuple(masks),
                                     perturbations_per_eval=_per_eval(len(inputs[0])))
            runs.append(per_feature(attrs, masks, features, reduce="first").abs())
    return torch.stack(runs).mean(0)


def occlusion(forward: Forward, grid: Tensor, baseline: Tensor, others: Sequence[Tensor],
              position: int, window: int) -> Tensor:
    """``[N, H, W]``: how much each pixel's square window, set to the baseline, moves the output.

    ``grid`` is forward input number ``position``; the windows span all channels and tile
    the grid.
    """
    channels = grid.shape[1]
    stride = window  # side by side: a few hundred forward rows per sample, not thousands
    g = _reordered(forward, [position], len(others) + 1)
    attr = Occlusion(g).attribute(
        grid, sliding_window_shapes=(channels, window, window), strides=(channels, stride, stride),
        baselines=baseline, target=forward.target, additional_forward_args=tuple(others) or None,
        perturbations_per_eval=_per_eval(len(grid)))
    return attr.detach().abs().sum(1).cpu()
