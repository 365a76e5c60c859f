"""Activation checks: non-finite values, dead ReLU units, saturated sigmoid/tanh (``probe.*``).

Example:
    >>> calls = [("net.0", True, True), ("net.1", True, False), ("net.2", False, False)]
    >>> nonfinite_finding(calls).where
    'net.1'
    >>> [f.where for f in dead_unit_findings([{"net.1": 0.9}] * 3)]
    ['net.1']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from guardrail.findings import Finding, Severity
from guardrail.thresholds import Thresholds, limit


@dataclass(frozen=True)
class ActivationThresholds(Thresholds):
    """What the ``probe.dead_units`` and ``probe.saturation`` rules compare against.

    ``ActivationProbe(thresholds=...)`` takes it.

    Example:
        >>> ActivationThresholds(dead_fraction=0.9).dead_fraction
        0.9
    """

    dead_fraction: float = limit(
        0.7, "probe.dead_units", "share of a ReLU layer's units never positive over the batch "
        "above which the layer counts as dead", low=0, high=1, shown="70%")
    dead_persist: int = limit(
        3, "probe.dead_units", "sampled steps in a row it must hold", low=1, integer=True,
        shown="3")
    saturated_fraction: float = limit(
        0.5, "probe.saturation", "share of a sigmoid/tanh layer's outputs in the flat tails "
        "above which the layer counts as saturated", low=0, high=1, shown="50%")
    saturated_persist: int = limit(
        3, "probe.saturation", "sampled steps in a row it must hold", low=1, integer=True,
        shown="3")


DEFAULTS = ActivationThresholds()


def nonfinite_finding(calls: Sequence[tuple[str, bool, bool]], step: int | None = None,
                      inputs_finite: bool = True) -> Finding:
    """``probe.nonfinite`` naming the first module whose output went NaN/Inf from finite inputs.

    Args:
        calls: ``(module, inputs finite, output finite)`` per module call, in execution order,
            from a replay of the offending batch.
        step: The global step of the batch.
        inputs_finite: Whether the batch itself was finite.
    """
    if not inputs_finite:
        return Finding(
            "probe.nonfinite", Severity.ERROR,
            "The training batch itself holds NaN or Inf values.", where="input",
            evidence={"step": step},
            hint="Clean the data: impute or drop missing values before training (a DataError "
                 "at load time is better than a NaN loss).")
    for name, finite_in, finite_out in calls:
        if finite_in and not finite_out:
            return Finding(
                "probe.nonfinite", Severity.ERROR,
                f"'{name}' produced NaN/Inf from finite inputs at step {step}.", where=name,
                evidence={"step": step, "calls_before": [c[0] for c in calls][:20]},
                hint=f"Look at '{name}': log/sqrt/division of values that can reach zero or "
                     "below, exp overflow, or a learning rate large enough to blow up its "
                     "weights; clamp or add an epsilon.")
    return Finding(
        "probe.nonfinite", Severity.ERROR,
        f"The loss became NaN/Inf at step {step} although every module output was finite.",
        where="loss", evidence={"step": step},
        hint="The loss function itself overflows: use the logits versions (e.g. "
             "binary_cross_entropy_with_logits) or clamp its inputs.")


def dead_unit_findings(samples: Sequence[Mapping[str, float]],
                       limits: ActivationThresholds = DEFAULTS) -> list[Finding]:
    """``probe.dead_units``: a ReLU layer whose units are mostly dead.

    Fires when more than ``dead_fraction`` of the layer's units are never positive on any
    sample of the batch, on ``dead_persist`` sampled steps in a row (units, not elements:
    about half the elements of a healthy ReLU are zero).
    """
    threshold, persist = limits.dead_fraction, limits.dead_persist
    if len(samples) < persist:
        return []
    recent = samples[-persist:]
    out = []
    for name in recent[-1]:
        if all(s.get(name, 0.0) > threshold for s in recent):
            out.append(Finding(
                "probe.dead_units", Severity.WARNING,
                f"{recent[-1][name]:.0%} of the units of '{name}' are dead: never positive on "
                f"any sample of the batch ({persist} sampled steps).", where=name,
                evidence={"dead_fraction": recent[-1][name]},
                hint="Lower the learning rate, check the bias init (large negative biases "
                     "kill units), or use LeakyReLU/GELU."))
    return out


def saturation_findings(samples: Sequence[Mapping[str, float]],
                        limits: ActivationThresholds = DEFAULTS) -> list[Finding]:
    """``probe.saturation``: a sigmoid/tanh layer stuck in its flat tails.

    Fires when more than ``saturated_fraction`` of the layer's outputs have a pre-activation
    beyond +-5, on ``saturated_persist`` sampled steps in a row.

    Example:
        >>> [f.check for f in saturation_findings([{"net.3": 0.8}] * 3)]
        ['probe.saturation']
    """
    threshold, persist = limits.saturated_fraction, limits.saturated_persist
    if len(samples) < persist:
        return []
    recent = samples[-persist:]
    return [Finding(
        "probe.saturation", Severity.WARNING,
        f"{recent[-1][name]:.0%} of the outputs of '{name}' are saturated (their gradient is "
        "almost zero).", where=name, evidence={"saturated_fraction": recent[-1][name]},
        hint="Normalise the layer's inputs, lower the init scale or learning rate, or use a "
             "non-saturating activation.")
        for name in recent[-1] if all(s.get(name, 0.0) > threshold for s in recent)]


def merge_ranks(per_rank: Sequence[Mapping[str, Mapping[str, Sequence[float]]]]
                ) -> dict[str, dict[str, float]]:
    """One sampled step's statistics of every rank as the fractions the rules judge.

    Each rank reports ``{"alive": {layer: [0/1 per unit]}, "saturated": {layer: [fraction]}}``:
    a unit is dead only if it was never positive on any rank's batch, and a layer's saturated
    share is the mean over the ranks that ran it.

    Example:
        >>> rank0 = {"alive": {"relu": [1.0, 0.0, 0.0]}, "saturated": {"tanh": [0.2]}}
        >>> rank1 = {"alive": {"relu": [0.0, 1.0, 0.0]}, "saturated": {"tanh": [0.4]}}
        >>> out = merge_ranks([rank0, rank1])
        >>> round(out["dead"]["relu"], 3), round(out["saturated"]["tanh"], 3)
        (0.333, 0.3)

    """
    alive: dict[str, list[float]] = {}
    saturated: dict[str, list[float]] = {}
    for stats in per_rank:
        for name, units in stats.get("alive", {}).items():
            seen = alive.setdefault(name, [0.0] * len(units))
            if len(seen) == len(units):
                alive[name] = [max(a, b) for a, b in zip(seen, units, strict=True)]
        for name, value in stats.get("saturated", {}).items():
            saturated.setdefault(name, []).extend(value)
    return {
        "dead": {n: 1.0 - sum(u) / len(u) for n, u in alive.items() if u},
        "saturated": {n: sum(v) / len(v) for n, v in saturated.items() if v},
    }
