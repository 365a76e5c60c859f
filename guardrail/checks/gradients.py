"""Gradient checks: vanishing, exploding, not updated, update-to-weight ratio (``grad.*``).

Inputs are per-layer numbers a callback measured on sampled steps (layers in the module's
registration order, input side first).

Example:
    >>> norms = [{"l0": 1e-9, "l1": 1e-4, "l2": 1.0}] * 3
    >>> [(f.check, f.where) for f in vanishing_findings(norms)]
    [('grad.vanishing', 'l0')]
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from guardrail.findings import Finding, Severity
from guardrail.thresholds import Thresholds, limit


@dataclass(frozen=True)
class GradientThresholds(Thresholds):
    """What the ``grad.*`` rules compare against; ``GradientProbe(thresholds=...)`` takes it.

    Example:
        >>> GradientThresholds(exploding_growth=1e4).exploding_growth
        10000.0
    """

    vanishing_ratio: float = limit(
        1e-3, "grad.vanishing", "the first layer's gradient norm, as a share of the last's, "
        "below which gradients vanish", low=0, open_low=True, shown="1e-3")
    vanishing_floor: float = limit(
        1e-4, "grad.vanishing", "largest first-layer gradient norm that can count as "
        "vanished", low=0, open_low=True, shown="1e-4")
    vanishing_persist: int = limit(
        3, "grad.vanishing", "sampled steps in a row it must hold", low=1, integer=True,
        shown="3")
    exploding_growth: float = limit(
        1e3, "grad.exploding", "a layer's gradient norm, as a multiple of the network's "
        "starting scale, that counts as exploded", low=1, open_low=True, shown="1000")
    exploding_floor: float = limit(
        1e-3, "grad.exploding", "smallest starting scale (so that a network starting near "
        "zero does not make every later norm an explosion)", low=0)
    exploding_persist: int = limit(
        2, "grad.exploding", "samples in a row it must hold", low=1, integer=True, shown="2")
    not_updated_steps: int = limit(
        5, "grad.not_updated", "first optimiser steps in which a parameter must receive a "
        "gradient", low=1, integer=True, shown="5")
    not_zeroed_ratio: float = limit(
        1e-6, "grad.not_zeroed", "gradient left over from earlier steps, as a share of the "
        "step's, that still counts as reset", low=0, open_low=True)
    update_low: float = limit(
        10 ** -4.5, "grad.update_ratio", "median layer's |dw|/|w| below which updates are "
        "too small", low=0, open_low=True, shown="10^-4.5")
    update_high: float = limit(
        1.0, "grad.update_ratio", "median layer's |dw|/|w| above which updates are too large",
        low=0, open_low=True, shown="1")
    update_persist: int = limit(
        4, "grad.update_ratio", "first sampled steps on which updates must all be too small",
        low=1, integer=True, shown="4")


DEFAULTS = GradientThresholds()


def vanishing_findings(samples: Sequence[Mapping[str, float]],
                       limits: GradientThresholds = DEFAULTS) -> list[Finding]:
    """``grad.vanishing``: gradients die out towards the input.

    Fires when the first layer's gradient norm is below ``vanishing_floor`` and below
    ``vanishing_ratio`` times the last layer's, on ``vanishing_persist`` sampled steps in a
    row (AUTOTRAINER's rule).
    """
    ratio, floor, persist = limits.vanishing_ratio, limits.vanishing_floor, \
        limits.vanishing_persist
    if len(samples) < persist:
        return []
    recent = samples[-persist:]
    names = list(recent[0])
    if len(names) < 2:
        return []
    first, last = names[0], names[-1]
    # the last layer must still learn: all-zero gradients (a loss of exactly 0) are not vanishing
    if not all(s[first] <= floor and s[first] <= ratio * s[last] and s[last] > ratio * floor
               for s in recent):
        return []
    worst = min(names[:-1], key=lambda n: recent[-1][n])
    return [Finding(
        "grad.vanishing", Severity.WARNING,
        f"Gradients vanish towards the input: '{first}' gets {recent[-1][first]:.2e}, "
        f"'{last}' {recent[-1][last]:.2e} ({persist} sampled steps).", where=first,
        evidence={"first_norm": recent[-1][first], "last_norm": recent[-1][last],
                  "smallest": worst},
        hint="Use ReLU-family activations instead of saturating ones, a better init "
             "(Kaiming), normalisation layers or residual connections.")]


def exploding_findings(samples: Sequence[Mapping[str, float]],
                       limits: GradientThresholds = DEFAULTS) -> list[Finding]:
    """``grad.exploding``: a non-finite gradient, or a layer's norm grown explosively.

    Fires on a non-finite gradient norm, or when a layer's norm is ``exploding_growth`` times
    the network's starting scale on ``exploding_persist`` samples in a row. The starting
    scale is the largest layer norm of the first sample (at least ``exploding_floor``), not
    the layer's own: a
    layer whose gradient starts tiny because the layers after it start near zero (WEA's
    encoder: 1e-5 at step 0, about 1 later, while its decoder's started at 0.1-1) has grown
    to a normal size, which is not an explosion.

    Example:
        >>> [f.where for f in exploding_findings([{"a": 1.0}, {"a": float("inf")}])]
        ['a']
        >>> exploding_findings([{"enc": 1e-5, "dec": 0.5}] + [{"enc": 1.3, "dec": 0.4}] * 2)
        []
    """
    growth, persist, floor = limits.exploding_growth, limits.exploding_persist, \
        limits.exploding_floor
    if not samples:
        return []
    for name, value in samples[-1].items():
        if not math.isfinite(value):
            return [Finding(
                "grad.exploding", Severity.ERROR,
                f"The gradient of '{name}' is not finite ({value}).", where=name,
                evidence={"norm": str(value)},
                hint="Lower the learning rate, clip gradients (trainer.gradient_clip_val), or "
                     "look for log(0) or division by zero in the loss.")]
    if len(samples) < persist + 1:
        return []
    start = [v for v in samples[0].values() if math.isfinite(v)]
    base = max([*start, floor])
    for name in samples[0]:
        if all(s.get(name, 0.0) >= growth * base for s in samples[-persist:]):
            return [Finding(
                "grad.exploding", Severity.ERROR,
                f"The gradient of '{name}' grew to {samples[-1][name]:.2e}, "
                f"{samples[-1][name] / base:.0f}x the largest layer gradient at the start "
                f"({base:.2e}).", where=name,
                evidence={"start_scale": base, "first_norm": samples[0][name],
                          "norm": samples[-1][name]},
                hint="Lower the learning rate or clip gradients (trainer.gradient_clip_val).")]
    return []


def not_updated_findings(orphans: Sequence[str], never: Sequence[str] = (),
                         steps: int = 0) -> list[Finding]:
    """``grad.not_updated``: parameters that never change, in either direction.

    ``orphans`` receive a gradient but are in no optimiser param group; ``never`` are in an
    optimiser and require a gradient but received none in the first ``steps`` optimiser
    steps (a ``.detach()`` or ``torch.no_grad()`` in ``forward`` cut them off from the loss,
    or they are never used). Deliberately frozen parameters (``requires_grad=False``) are in
    neither list.

    Example:
        >>> [f.where for f in not_updated_findings(["head.weight"])]
        ['head.weight']
        >>> [f.where for f in not_updated_findings([], ["body.0.weight"], steps=5)]
        ['body.0.weight']
    """
    out = []
    if orphans:
        out.append(Finding(
            "grad.not_updated", Severity.ERROR,
            f"{len(orphans)} parameter(s) receive gradients but are in no optimiser param "
            f"group, so they never change: {_listed(orphans)}.",
            where=orphans[0], evidence={"parameters": list(orphans), "direction": "orphan"},
            hint="Build the optimiser from self.parameters() after every layer exists, or "
                 "freeze them on purpose with requires_grad_(False)."))
    if never:
        out.append(Finding(
            "grad.not_updated", Severity.ERROR,
            f"{len(never)} parameter(s) in the optimiser got no gradient in {steps} steps, so "
            f"they never change: {_listed(never)}.",
            where=never[0], evidence={"parameters": list(never), "steps": steps,
                                      "direction": "no_gradient"},
            hint="Look for a .detach(), .item(), .numpy() or torch.no_grad() between these "
                 "layers and the loss, or a layer forward() never calls; freeze parameters "
                 "you do not train with requires_grad_(False)."))
    return out


def _listed(names: Sequence[str]) -> str:
    return f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"


def not_zeroed_findings(leftover: float, total: float, where: str,
                        limits: GradientThresholds = DEFAULTS) -> list[Finding]:
    """``grad.not_zeroed``: gradients carried over from one optimiser step into the next.

    Args:
        leftover: Norm, over the optimiser's parameters, of what each ``.grad`` held before
            every gradient it received between two of the optimiser's steps: zero for a
            parameter whose gradient was reset (``zero_grad``) at any point in between.
        total: Norm of the gradients the second step applied.
        where: The code to fix (``training_step`` under manual optimisation).
        limits: A leftover below ``not_zeroed_ratio`` times ``total`` counts as reset.

    Example:
        >>> [f.check for f in not_zeroed_findings(3.0, 1.0, "training_step")]
        ['grad.not_zeroed']
        >>> not_zeroed_findings(0.0, 1.0, "training_step")
        []
        >>> not_zeroed_findings(0.0, float("nan"), "training_step")
        []
    """
    if not (math.isfinite(leftover) and math.isfinite(total)) or \
            leftover <= limits.not_zeroed_ratio * max(total, 1e-12):
        return []  # a non-finite step is grad.exploding's to report
    return [Finding(
        "grad.not_zeroed", Severity.ERROR,
        f"Gradients are never reset between optimiser steps: of the gradient norm {total:.3g} "
        f"this step applied, {leftover:.3g} was left over from earlier steps, so every step "
        "applies the sum of all past gradients.", where=where,
        evidence={"leftover_norm": leftover, "total_norm": total},
        hint="Call optimizer.zero_grad() once per optimiser step (with manual optimisation: "
             "before manual_backward in training_step).")]


def update_ratio_findings(samples: Sequence[Mapping[str, float]],
                          limits: GradientThresholds = DEFAULTS) -> list[Finding]:
    """``grad.update_ratio``: weight updates far too large or too small for the weights.

    Fires when the median layer's ``|dw| / |w|`` is above ``update_high`` on the first sampled
    step, or below ``update_low`` on each of the first ``update_persist`` sampled steps.
    Healthy SGD sits around
    1e-3 (Karpathy, DeepDiagnosis), but Adam moves every weight by about ``lr`` per step,
    so healthy Adam at lr=1e-2 on a small layer (weights of rms ~0.1) reaches ~0.1: the
    published upper bound 10^-1.5 would fire on healthy recipes, hence ``update_high`` = 1
    (an update as large as the weight itself).
    """
    low, high, persist = limits.update_low, limits.update_high, limits.update_persist
    medians = [statistics.median(s.values()) for s in samples[:persist] if s]
    if not medians:
        return []
    # Too large is judged on the first step: after it, the weights have grown to the step's
    # scale and the ratio falls (Adam at lr=10: 71-90 on step one, 0.26-0.97 on the next).
    if medians[0] > high:
        side, fix, sample = "too large", "Lower the learning rate (by 10x to start).", samples[0]
        layer = max(sample, key=sample.get)
    elif len(medians) == persist and all(m < low for m in medians):
        side, fix, sample = ("too small", "Raise the learning rate, or check the scheduler's "
                             "start value.", samples[persist - 1])
        layer = min(sample, key=sample.get)
    else:
        return []
    return [Finding(
        "grad.update_ratio", Severity.WARNING,
        f"Updates are {side} for the weights: the median layer changes by "
        f"{statistics.median(sample.values()):.1e} of its norm per step (healthy: about 1e-3).",
        where=layer, evidence={"median_ratios": medians, "low": low, "high": high}, hint=fix)]
