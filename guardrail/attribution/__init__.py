"""Explain a trained model, and say how far the explanation can be trusted.

:func:`explain` runs, on a bounded set of held-out samples and a reference set of training
samples:

1. permutation importance of every named feature (any input type): the global ranking, with
   bootstrap confidence intervals;
2. Integrated Gradients on the floating-point inputs, with its completeness error;
3. agreement between the two (Spearman over the features both cover), and for grids,
   between IG and occlusion heat maps (per sample, over pixels);
   for grids, also *where*: the extent that carries information (padding trimmed), and the
   share of the attribution falling in each region of a 3 x 3 split of it, overall and per
   sample (``result["grids"]``, ``local[...]["top_region"]``);
4. the model-parameter randomisation test (Adebayo et al. 2018): what the trained weights
   make of the inputs (path-averaged gradients) against what re-initialised copies make of
   them, and, given a loss, whether the model predicts better than those copies;
5. for each explained sample, its data support: distance to the nearest training samples,
   and ids or categories never seen in training; for a reconstruction task (an autoencoder),
   its reconstruction error (``result["reconstruction_errors"]``).

Each stage is one function below. Given ``target_s``, the work is first scaled to fit it
(:mod:`guardrail.attribution.budget`): the settings used are in ``result["settings"]``, and
what was lowered, with the estimates before and after, in ``result["budget"]``.

The result is a JSON-ready dict (written as ``attribution/attribution.json`` by
:class:`~guardrail.callbacks.AttributionReport`) plus the arrays the plots need.

Example:
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <...>
    >>> x = torch.randn(64, 4)
    >>> net = nn.Linear(4, 1)
    >>> with torch.no_grad():
    ...     _ = net.weight.copy_(torch.tensor([[3.0, 0.0, 0.0, 1.0]]))
    >>> result, arrays = explain(net, (x,), (torch.randn(128, 4),), names=list("abcd"))
    >>> result["ranking"][:2], result["sanity"]["similarity_to_randomised"] < 0.5
    (['a', 'd'], True)

"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from guardrail.attribution.budget import Costs, estimate, plan
from guardrail.attribution.features import (
    Feature,
    describe,
    feature_masks,
    grid_extent,
    grid_regions,
    informative_pixels,
    input_kind,
    per_feature,
    region_shares,
)
from guardrail.attribution.methods import (
    Forward,
    embedding_gradients,
    integrated_gradients,
    occlusion,
    permutation_importance,
)
from guardrail.attribution.reliability import (
    bootstrap_ci,
    randomised_copy,
    spearman,
    support,
)
from guardrail.shapes import first_tensor

__all__ = ["Feature", "explain"]

SCHEMA = 1
LOSS_COPIES = 4  # random copies the randomisation test's error ratio is averaged over


def _global(values: Tensor, seed: int) -> dict[str, list[float]]:
    importance = values.abs().nanmean(0)
    low, high = bootstrap_ci(values.abs(), seed=seed)
    return {"importance": _floats(importance), "ci_low": _floats(low), "ci_high": _floats(high)}


def _floats(t: Tensor) -> list[float | None]:
    return [None if not torch.isfinite(v) else round(float(v), 8) for v in t.flatten()]


@dataclass
class _Run:
    """What every stage of one explanation reads, and the result it fills in."""

    module: nn.Module
    inputs: Sequence[Tensor]
    reference: Sequence[Tensor]
    task: str | None
    features: list[Feature]
    masks: tuple[Tensor, ...]
    forward: Forward
    baselines: tuple[Tensor, ...]
    result: dict[str, Any]
    arrays: dict[str, Any]
    start: float
    budget_s: float
    top_regions: list[str] | None = None  # per explained sample, of the first grid input

    def over_budget(self, step: str) -> bool:
        """Whether the absolute budget is spent (said in ``skipped``, and ``step`` skipped)."""
        if time.perf_counter() - self.start > self.budget_s:
            self.result["skipped"].append(f"{step}: the {self.budget_s:g} s budget was spent")
            return True
        return False


def explain(
    module: nn.Module,
    inputs: Sequence[Tensor],
    reference: Sequence[Tensor],
    *,
    names: Sequence[str] | None = None,
    task: str | None = "regression",
    n_steps: int = 32,
    permutations: int = 3,
    randomisations: int = 2,
    occlusion_samples: int = 4,
    budget_s: float = 60.0,
    target_s: float | None = None,
    seed: int = 0,
    loss: Callable[[nn.Module], float] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Attribute ``module``'s predictions on ``inputs``; see the module docstring.

    Args:
        module: The model; called as ``module(*inputs)``, in eval mode, gradients enabled.
        inputs: The explained samples, one tensor per forward input, on the model's device.
        reference: Training samples, the same inputs: baselines and data support.
        names: One name per feature (see :mod:`guardrail.attribution.features`).
        task: The module's task (``multiclass``, or None with several output columns,
            explains the predicted class's logit).
        n_steps: Integrated Gradients steps.
        permutations: Permutations averaged per feature.
        randomisations: Re-initialised copies in the randomisation test (0: skip it).
        occlusion_samples: Grid samples given occlusion heat maps.
        budget_s: Seconds after which the remaining steps are skipped (and said so).
        target_s: Seconds the explanation should take: samples, steps, permutations, copies
            and occlusion maps are lowered (to floors) until the estimate fits
            (:mod:`guardrail.attribution.budget`); None: as configured.
        seed: Seed of every random draw.
        loss: The loss of a model (the module or a re-initialised copy) on the explained
            samples, for the randomisation test; None: judged on attributions alone.

    Returns:
        ``(result, arrays)``: the JSON-ready result and ``{"ig_maps", "occlusion_maps",
        "time_profiles", "inputs"}`` for the plots.

    """
    start = time.perf_counter()
    wanted = {"samples": int(inputs[0].shape[0]), "n_steps": n_steps,
              "permutations": permutations, "randomisations": randomisations,
              "occlusion_samples": occlusion_samples}
    own_loss, costs = _measure(module, inputs, names, task, loss if randomisations else None)
    settings, reduced = plan(wanted, costs, target_s)
    run = _prepare(module, [x[:settings["samples"]] for x in inputs], reference, names, task,
                   start, budget_s)
    run.result["settings"] = settings
    run.result["budget"] = {
        "target_s": None if target_s is None else round(target_s, 3), "cap_s": budget_s,
        "estimated_s": {"configured": round(estimate(wanted, costs), 3),
                        "planned": round(estimate(settings, costs), 3)},
        "reduced": reduced}
    _predictions(run)
    perm = _permutation(run, settings["permutations"], seed)
    ig, ig_attrs, ig_grads = _integrated_gradients(run, perm, settings["n_steps"], seed)
    _heat_maps(run, ig_attrs, settings["occlusion_samples"])
    run.result["sanity"] = None
    if settings["randomisations"] and not run.over_budget("randomisation test"):
        run.result["sanity"] = _randomisation_test(
            run, _profile(ig_grads, perm), settings["n_steps"], settings["permutations"],
            settings["randomisations"], seed, loss, own_loss)
    run.result["local"] = _local(run.inputs, reference, ig if torch.isfinite(ig).all()
                                 else None, perm, run.features)
    for row, region in zip(run.result["local"], run.top_regions or [], strict=False):
        row["top_region"] = region
    run.result["seconds"] = round(time.perf_counter() - start, 3)
    return run.result, run.arrays


def _measure(module: nn.Module, inputs: Sequence[Tensor], names: Sequence[str] | None,
             task: str | None, loss: Callable[[nn.Module], float] | None,
             ) -> tuple[float | None, Costs]:
    """Unit costs of this model on these inputs (a few passes), and its loss when given."""
    forward = Forward(module, inputs, task)  # its own forward pass warms the model up
    n = max(int(inputs[0].shape[0]), 1)
    tick = time.perf_counter()
    with torch.no_grad():
        forward(*inputs)
    forward_row = (time.perf_counter() - tick) / n
    floats = [x.detach().clone().requires_grad_() if x.is_floating_point() else x
              for x in inputs]
    tick = time.perf_counter()
    if any(x.is_floating_point() for x in inputs):
        out = forward(*floats)
        picked = out.gather(1, forward.target[:, None]) if forward.target is not None else out
        torch.autograd.grad(picked.sum(), [x for x in floats if x.requires_grad],
                            allow_unused=True)
    backward_row = (time.perf_counter() - tick) / n if \
        any(x.is_floating_point() for x in inputs) else 3 * forward_row
    own_loss, loss_s = None, 0.0
    if loss is not None:
        tick = time.perf_counter()
        with torch.no_grad():
            own_loss = loss(module)
        loss_s = time.perf_counter() - tick
    grids = [x for x in inputs if input_kind(x) == "grid"]
    windows = sum(-(-x.shape[2] // _window(x)) * -(-x.shape[3] // _window(x)) for x in grids)
    return own_loss, Costs(forward_row=forward_row, backward_row=backward_row,
                           features=len(describe(inputs, names)), windows=windows,
                           loss_s=loss_s, grads=any(x.is_floating_point() for x in inputs))


def _window(grid: Tensor) -> int:
    """The occlusion window's side: 8 windows across the grid's shorter side."""
    return max(2, min(grid.shape[2], grid.shape[3]) // 8)


def _prepare(module: nn.Module, inputs: Sequence[Tensor], reference: Sequence[Tensor],
             names: Sequence[str] | None, task: str | None, start: float,
             budget_s: float) -> _Run:
    """Features, masks, the model as one number per sample, baselines and the result's head."""
    features = describe(inputs, names)
    result: dict[str, Any] = {
        "schema": SCHEMA, "samples": int(inputs[0].shape[0]),
        "reference_samples": int(reference[0].shape[0]),
        "inputs": [{"kind": input_kind(x), "shape": list(x.shape[1:]), "dtype": str(x.dtype)}
                   for x in inputs],
        "features": [{"name": f.name, "input": f.input, "index": f.index, "kind": f.kind}
                     for f in features],
        "methods": {}, "skipped": [],
    }
    grids = {str(i): _grid(r) for i, r in enumerate(reference) if input_kind(r) == "grid"}
    if grids:
        result["grids"] = grids
    baselines = tuple(r.float().mean(0, keepdim=True) if r.is_floating_point()
                      else r.mode(0, keepdim=True).values for r in reference)  # mean, or mode
    return _Run(module, inputs, reference, task, features, feature_masks(inputs, features),
                Forward(module, inputs, task), baselines, result,
                {"inputs": inputs, "ig_maps": {}, "occlusion_maps": {}, "time_profiles": {}},
                start, budget_s)


def _grid(reference: Tensor) -> dict[str, Any]:
    """A grid input's shape, and the extent that carries information (padding trimmed)."""
    top, bottom, left, right = grid_extent(reference)
    h, w = reference.shape[2], reference.shape[3]
    return {"shape": [int(h), int(w)], "rows": [top, bottom - 1], "columns": [left, right - 1],
            "trimmed": {"top": top, "bottom": int(h) - bottom, "left": left,
                        "right": int(w) - right}}


def _predictions(run: _Run) -> None:
    with torch.no_grad():
        preds = run.forward(*run.inputs)
        out = _raw_output(run.module, run.inputs) if run.task == "reconstruction" else None
    run.result["predictions"] = _floats(preds if preds.ndim == 1 else preds.max(1).values)
    if run.task == "binary" and preds.ndim == 1:  # scores outside [0, 1] are logits
        outside = bool(((preds < 0) | (preds > 1)).any())
        run.result["probabilities"] = _floats(preds.sigmoid() if outside else preds)
    if run.forward.multiclass:
        probs = preds.softmax(1) if bool(((preds < 0) | (preds > 1)).any()) else preds
        run.result["classes"] = preds.argmax(1).tolist()
        run.result["probabilities"] = _floats(probs.max(1).values)
    same = [i for i, x in enumerate(run.inputs)
            if out is not None and x.is_floating_point() and x.shape == out.shape]
    if same:  # an autoencoder's prediction is its input again: what it gets wrong is the news
        run.result["reconstruction_errors"] = _floats(reconstruction_error(
            out, run.inputs[same[0]], run.reference[same[0]]))


def _raw_output(module: nn.Module, inputs: Sequence[Tensor]) -> Tensor | None:
    found = first_tensor(module(*inputs))
    return found.detach().float() if isinstance(found, Tensor) else None


def reconstruction_error(output: Tensor, target: Tensor, reference: Tensor) -> Tensor:
    """``[N]``: each sample's root-mean-square reconstruction error, in the input's units.

    On a grid, only pixels that vary across the reference samples count: padding and masked
    pixels filled with one value (land in a sea-surface field) are not data.

    Example:
        >>> ref = torch.zeros(3, 1, 2, 2)
        >>> ref[:, :, 0] = torch.randn(3, 1, 2)  # the bottom row is padding
        >>> x = ref.clone()
        >>> out = x + torch.tensor([[[[1.0, 1.0], [9.0, 9.0]]]])
        >>> reconstruction_error(out, x, ref).tolist()
        [1.0, 1.0, 1.0]

    """
    err = (output.float() - target.float()).pow(2)
    if target.ndim == 4:
        keep = informative_pixels(reference).to(err.device)
        if keep.any():
            return err[:, :, keep].mean((1, 2)).sqrt().cpu()
    return err.reshape(len(err), -1).mean(1).sqrt().cpu()


def _permutation(run: _Run, permutations: int, seed: int) -> Tensor:
    """Permutation importance ``[N, F]``: the global ranking and its intervals."""
    perm = permutation_importance(run.forward, run.inputs, run.masks, run.features,
                                  permutations, seed)
    run.result["methods"]["permutation"] = _global(perm, seed)
    order = perm.nanmean(0).argsort(descending=True)
    run.result["ranking"] = [run.features[i].name for i in order.tolist()]
    return perm


def _integrated_gradients(run: _Run, perm: Tensor, n_steps: int, seed: int,
                          ) -> tuple[Tensor, list[Tensor | None], list[Tensor | None]]:
    """IG per feature ``[N, F]`` (NaN where none), its raw attributions and path gradients.

    Also the agreement of IG's ranking with permutation's, over the features both cover.
    """
    ig_attrs, ig_grads, completeness = integrated_gradients(run.forward, run.inputs,
                                                            run.baselines, n_steps)
    n = len(run.inputs[0])
    ig = per_feature(ig_attrs, run.masks, run.features) if completeness is not None \
        else torch.full((n, len(run.features)), float("nan"))
    for k, values in embedding_gradients(run.forward, run.module, run.inputs, run.baselines,
                                         run.features, n_steps).items():
        ig[:, k] = values
    if not torch.isfinite(ig[0]).any():
        run.result["skipped"].append("Integrated Gradients: no floating-point input and no "
                                     "embedding reading an integer one; the ranking is by "
                                     "permutation alone")
        run.result["agreement"] = {"features": None, "features_compared": 0}
        return ig, ig_attrs, ig_grads
    run.result["methods"]["integrated_gradients"] = {
        **_global(ig, seed),
        # the shortfall of the float inputs' attributions against what they should add up
        # to (layer IG of embeddings is a second integral: not included)
        "completeness_error": None if completeness is None else round(float(
            completeness[:, 0].sum() / completeness[:, 1].sum().clamp_min(1e-12)), 6)}
    covered = torch.isfinite(ig[0])
    run.result["agreement"] = {"features": spearman(perm.nanmean(0)[covered],
                                                    ig.abs().nanmean(0)[covered]),
                               "features_compared": int(covered.sum())}
    return ig, ig_attrs, ig_grads


def _heat_maps(run: _Run, ig_attrs: Sequence[Tensor | None], occlusion_samples: int) -> None:
    """IG and occlusion heat maps of grids (and their pixel agreement); time profiles."""
    for i, x in enumerate(run.inputs):
        attr = ig_attrs[i]
        if attr is not None and input_kind(x) == "grid":
            run.arrays["ig_maps"][i] = attr.abs().sum(1).cpu()
            _regions(run, i)
            if occlusion_samples and not run.over_budget("occlusion"):
                _occlusion(run, i, occlusion_samples)
        if attr is not None and input_kind(x) == "sequence":
            profile = attr.sum(2).abs().mean(0).cpu()
            run.arrays["time_profiles"][i] = profile
            run.result.setdefault("time_profiles", {})[str(i)] = _floats(profile)


def _regions(run: _Run, i: int) -> None:
    """Where in grid input ``i`` the attribution lies: per region, overall and per sample.

    A region's ``share`` is the mean over samples of its share of each sample's |IG|;
    ``area`` its share of the extent's pixels. The top region has the largest share per
    area (the largest mean |attribution| per pixel).
    """
    grid = run.result["grids"][str(i)]
    extent = (grid["rows"][0], grid["rows"][1] + 1, grid["columns"][0], grid["columns"][1] + 1)
    regions = grid_regions(extent)
    shares = region_shares(run.arrays["ig_maps"][i], regions)  # [N, R]
    pixels = (extent[1] - extent[0]) * (extent[3] - extent[2])
    area = torch.tensor([(r["rows"][1] - r["rows"][0] + 1) * (r["columns"][1] - r["columns"][0]
                          + 1) / pixels for r in regions])  # type: ignore[index]
    for region, share, part in zip(regions, shares.mean(0).tolist(), area.tolist(),
                                   strict=True):
        region.update(share=round(share, 4), area=round(part, 4))
    grid["regions"] = regions
    grid["top_region"] = regions[int((shares.mean(0) / area).argmax())]["name"]
    if run.top_regions is None:
        run.top_regions = [regions[int(k)]["name"] for k in (shares / area).argmax(1)]


def _occlusion(run: _Run, i: int, samples: int) -> None:
    few = [t[:samples] for t in run.inputs]
    occ = occlusion(Forward(run.module, few, run.task), few[i], run.baselines[i],
                    [t for j, t in enumerate(few) if j != i], i, _window(few[i]))
    run.arrays["occlusion_maps"][i] = occ
    rhos = [spearman(occ[s], run.arrays["ig_maps"][i][s]) for s in range(len(occ))]
    rhos = [r for r in rhos if r is not None]
    run.result["agreement"]["pixels"] = (
        round(float(torch.tensor(rhos).median()), 6) if rhos else None)


def _profile(grads: Sequence[Tensor | None], perm: Tensor) -> Tensor:
    """What the weights make of the inputs: mean |path-averaged gradient| per input element.

    Gradients without the factor ``x - baseline``, so that inputs far from their mean do not
    look important under any weights; permutation importance per feature when no input is
    floating point.
    """
    parts = [g.abs().mean(0).flatten().cpu() for g in grads if g is not None]
    return torch.cat(parts) if parts else perm.nanmean(0)


def _randomisation_test(run: _Run, trained: Tensor, n_steps: int, permutations: int,
                        randomisations: int, seed: int,
                        loss: Callable[[nn.Module], float] | None,
                        own_loss: float | None) -> dict[str, Any]:
    """Trained against re-initialised copies: profile similarity and, with ``loss``, its ratio."""
    copies = [randomised_copy(run.module, seed + 1 + r).eval() for r in range(randomisations)]
    randomised = []
    for copy in copies:
        forward = Forward(copy, run.inputs, run.task)
        _, grads, _ = integrated_gradients(forward, run.inputs, run.baselines, n_steps)
        perm = permutation_importance(forward, run.inputs, run.masks, run.features,
                                      permutations, seed) \
            if all(g is None for g in grads) else torch.empty(0)
        randomised.append(_profile(grads, perm))
    out: dict[str, Any] = {
        "method": "gradients" if any(x.is_floating_point() for x in run.inputs)
        else "permutation",
        "randomisations": randomisations,
        "elements": len(trained),
        "similarity_to_randomised": _mean([spearman(trained, r) for r in randomised]),
        "similarity_between_randomised": _mean(
            [spearman(a, b) for k, a in enumerate(randomised) for b in randomised[k + 1:]]),
        "loss_ratio": None,
    }
    if loss is not None:
        # Forward passes only, so the error is averaged over more copies than are explained:
        # one random network can rank a weak model's samples as well as it does by chance
        # (RET: validation AUROC 0.62 against one copy's 0.635; a budget cut to one copy).
        judged = copies + [randomised_copy(run.module, seed + 1 + r).eval()
                           for r in range(len(copies), LOSS_COPIES)]
        with torch.no_grad():
            own = own_loss if own_loss is not None else loss(run.module)
            random_losses = [loss(c) for c in judged]
        out["loss_ratio"] = round(own / max(sum(random_losses) / len(judged), 1e-12), 6)
        out["loss_copies"] = len(judged)
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(sum(kept) / len(kept), 6) if kept else None


def _local(inputs: Sequence[Tensor], reference: Sequence[Tensor], ig: Tensor | None,
           perm: Tensor, features: Sequence[Feature], top: int = 3) -> list[dict[str, Any]]:
    """Per explained sample: data support and its top features."""
    n = inputs[0].shape[0]
    floats = [(x, r) for x, r in zip(inputs, reference, strict=True) if x.is_floating_point()]
    ratio = percentile = None
    if floats:
        x = torch.cat([a.reshape(n, -1).float().cpu() for a, _ in floats], 1)
        ref = torch.cat([b.reshape(b.shape[0], -1).float().cpu() for _, b in floats], 1)
        ratio, percentile = support(x, ref)
    unseen = torch.zeros(n, dtype=torch.long)
    for f in features:
        x, r = inputs[f.input], reference[f.input]
        if x.is_floating_point() or isinstance(f.index, tuple):
            continue
        col = x if f.index is None else x.select(-1, f.index)
        ref_col = r if f.index is None else r.select(-1, f.index)
        known = torch.isin(col.reshape(n, -1).cpu(), ref_col.flatten().cpu())
        unseen += (~known).any(1).long()
    scores = (ig if ig is not None else perm).abs()
    out = []
    for s in range(n):
        row: dict[str, Any] = {"sample": s, "unseen_values": int(unseen[s])}
        if ratio is not None and percentile is not None:
            row["distance_ratio"] = round(float(ratio[s]), 4)
            row["percentile"] = round(float(percentile[s]), 2)
        row["supported"] = bool(unseen[s] == 0 and (percentile is None or percentile[s] <= 99))
        ranked = scores[s].nan_to_num(-1).argsort(descending=True)[:top]
        row["top_features"] = [features[i].name for i in ranked.tolist()]
        out.append(row)
    return out
