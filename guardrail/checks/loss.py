"""Loss checks: initial loss, divergence, plateau, oscillation (``loss.*``).

``trivial`` below is the loss of the best constant prediction (the class frequencies, the
target mean), measured with the module's own loss function where it has one: a model that
stays there has learned nothing from the inputs.

Example:
    >>> [f.check for f in initial_findings(40.0, "multiclass", expected=2.3026)]
    ['loss.initial']
    >>> initial_findings(2.35, "multiclass", expected=2.3026)
    []
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from guardrail.checks.loss_function import LossMatch
from guardrail.findings import Finding, Severity
from guardrail.thresholds import Thresholds, limit


@dataclass(frozen=True)
class LossThresholds(Thresholds):
    """What the ``loss.*`` rules compare against; ``LossProbe(thresholds=...)`` takes it.

    Example:
        >>> LossThresholds(plateau_min_epochs=8).plateau_min_epochs
        8
    """

    initial_factor: float = limit(
        3.0, "loss.initial", "the first loss fires above this multiple of an untrained "
        "model's loss (plus `initial_margin`)", low=1, shown="3×")  # noqa: RUF001
    initial_margin: float = limit(
        1.0, "loss.initial", "absolute slack added, so tiny expected losses make no alarms",
        low=0, shown="+1")
    divergence_window: int = limit(
        10, "loss.divergence", "steps in each running median", low=1, integer=True)
    divergence_factor: float = limit(
        10.0, "loss.divergence", "the recent median fires above this multiple of the best "
        "median", low=1, open_low=True, shown="10×")  # noqa: RUF001
    plateau_min_epochs: int = limit(
        4, "loss.plateau", "epochs before a plateau is judged", low=1, integer=True,
        shown="4 epochs")
    plateau_min_steps: int = limit(
        200, "loss.plateau", "optimiser steps for which a run too short in epochs is judged "
        "at its end", low=1, integer=True, shown="200 steps")
    plateau_min_gain: float = limit(
        0.02, "loss.plateau", "relative improvement over a constant prediction (or the first "
        "epoch) that counts as learning", low=0, high=1, shown="2%")
    oscillation_min_epochs: int = limit(
        6, "loss.oscillation", "epochs before oscillation is judged", low=3, integer=True)
    oscillation_swing: float = limit(
        0.1, "loss.oscillation", "a reversal counts when both steps exceed this share of the "
        "loss", low=0, open_low=True, shown="10%")
    oscillation_share: float = limit(
        0.3, "loss.oscillation", "share of epochs that must reverse", low=0, high=1,
        open_low=True, shown="30%")


DEFAULTS = LossThresholds()


def initial_findings(loss0: float, task: str | None, expected: float | None,
                     limits: LossThresholds = DEFAULTS) -> list[Finding]:
    """``loss.initial`` when the first loss is far above what an untrained model gives.

    Args:
        loss0: The loss of the first training batch.
        task: The module's task, for the message.
        expected: The loss of an uninformed model: ln C for C classes (uniform logits), the
            mean squared target for regression (outputs near zero).
        limits: Fire above ``initial_factor * expected + initial_margin`` (the margin keeps
            tiny expected losses from making noise alarms).
    """
    if expected is None or not math.isfinite(loss0) or \
            loss0 <= limits.initial_factor * expected + limits.initial_margin:
        return []
    return [Finding(
        "loss.initial", Severity.ERROR,
        f"The first training loss {loss0:.4g} is far above what an untrained {task or ''} "
        f"model gives ({expected:.4g}): the initialisation or the output layer is off.",
        where="loss", evidence={"initial_loss": loss0, "expected": expected},
        hint="Check the last layer's scale and activation (logits, not probabilities, into "
             "cross-entropy), the weight initialisation, and the target's units.")]


def divergence_findings(losses: Sequence[float],
                        limits: LossThresholds = DEFAULTS) -> list[Finding]:
    """``loss.divergence`` when the recent loss is an order of magnitude above its best.

    Example:
        >>> [f.check for f in divergence_findings([1.0] * 20 + [50.0] * 10)]
        ['loss.divergence']
    """
    window, factor = limits.divergence_window, limits.divergence_factor
    finite = [x for x in losses if math.isfinite(x)]
    if len(finite) < 2 * window:
        return []
    medians = [statistics.median(finite[i:i + window]) for i in range(len(finite) - window + 1)]
    best, now = max(min(medians), 1e-12), medians[-1]  # a loss can reach exactly 0
    if now <= factor * best or now <= medians[0]:
        return []
    return [Finding(
        "loss.divergence", Severity.ERROR,
        f"The training loss diverged: its recent median {now:.4g} is {now / best:.0f}x its "
        f"best {best:.4g}.", where="loss",
        evidence={"recent_median": now, "best_median": best, "steps": len(finite)},
        hint="Lower the learning rate (or add warm-up / gradient clipping).")]


def plateau_findings(epoch_losses: Sequence[float], trivial: float | None, split: str,
                     where: str | None = None, steps: int | None = None,
                     limits: LossThresholds = DEFAULTS,
                     min_epochs: int | None = None) -> list[Finding]:
    """``loss.plateau``: after ``plateau_min_epochs``, the loss is no better than it should be.

    With a known ``trivial`` loss, it fires when the best epoch is not ``plateau_min_gain``
    below it:
    the model predicts no better than a constant (labels misaligned with inputs look like
    this, even while the loss falls at first as the model learns the mean). Without one, it
    fires when the best epoch is not ``plateau_min_gain`` below the first (never on one
    epoch).
    A short run is judged at its end on however many epochs it had, with ``steps`` (its
    optimiser steps) in the message.

    Args:
        epoch_losses: Epoch means of the judged loss.
        trivial: The constant prediction's loss, in the same units, if known.
        split: ``val`` or ``train``.
        where: The logged key (default ``{split}/loss``).
        steps: Optimiser steps so far, for short runs judged by steps.
        limits: The thresholds.
        min_epochs: Epochs needed before judging, where not ``limits.plateau_min_epochs``
            (a short run judged at its end).

    Example:
        >>> [f.check for f in plateau_findings([1.3, 1.01, 1.0, 1.0], 1.0, "val")]
        ['loss.plateau']
        >>> plateau_findings([1.3, 0.9, 0.8, 0.7], 1.0, "val")
        []
    """
    min_gain = limits.plateau_min_gain
    need = limits.plateau_min_epochs if min_epochs is None else min_epochs
    losses = [x for x in epoch_losses if math.isfinite(x)]
    if len(losses) < max(need, 1 if trivial is not None else 2):
        return []
    first, best = losses[0], min(losses)
    reference = trivial if trivial is not None else first
    if best < (1 - min_gain) * reference:
        return []
    level = f", at the level of a constant prediction ({trivial:.4g})" if trivial else ""
    span = f"{len(losses)} epoch(s)" + (f" ({steps} steps)" if steps else "")
    return [Finding(
        "loss.plateau", Severity.WARNING,
        f"The {split} loss has not improved in {span} (first {first:.4g}, best "
        f"{best:.4g}){level}: the model is not learning.", where=where or f"{split}/loss",
        evidence={"first": first, "best": best, "epochs": len(losses), "trivial": trivial,
                  "steps": steps},
        hint="Check that targets line up with their inputs (a shuffled or misaligned label "
             "column), that the optimiser gets the parameters, and the learning rate.")]


def oscillation_findings(epoch_losses: Sequence[float], split: str, where: str | None = None,
                         limits: LossThresholds = DEFAULTS) -> list[Finding]:
    """``loss.oscillation`` when the epoch loss keeps reversing by large steps.

    The callback gives it the training loss: epoch means over many batches swing only when
    optimisation does, while a small validation set's loss swings by itself.

    A reversal counts when both steps exceed ``oscillation_swing`` of the current loss *and*
    of the first
    epoch's: after a tenfold drop, small wiggles of an already small loss are not swings (on
    the fault suite's healthy models this took the false alarms from 4 of 39 runs to 1).

    Example:
        >>> [f.check for f in oscillation_findings([1, 2, 1, 2, 1, 2, 1], "val")]
        ['loss.oscillation']
        >>> oscillation_findings([1, .9, .8, .75, .7, .68, .66], "val")
        []
    """
    swing, share = limits.oscillation_swing, limits.oscillation_share
    losses = [x for x in epoch_losses if math.isfinite(x)]
    if len(losses) < limits.oscillation_min_epochs:
        return []
    deltas = [b - a for a, b in itertools.pairwise(losses)]
    reversals = sum(
        1 for d0, d1, base in zip(deltas, deltas[1:], losses[1:], strict=False)
        if d0 * d1 < 0 and min(abs(d0), abs(d1)) >= swing * max(abs(base), abs(losses[0])))
    if reversals < share * (len(deltas) - 1):
        return []
    return [Finding(
        "loss.oscillation", Severity.WARNING,
        f"The {split} loss swung up and down by more than {swing:.0%} in {reversals} of "
        f"{len(deltas) - 1} epochs.", where=where or f"{split}/loss",
        evidence={"reversals": reversals, "epochs": len(losses)},
        hint="Lower the learning rate or raise the batch size.")]


def double_softmax_findings(match: LossMatch | None, where: str) -> list[Finding]:
    """``loss.double_softmax``: probabilities reach a loss that applies softmax/sigmoid again.

    ``cross_entropy`` applies log-softmax to what it is given, and
    ``binary_cross_entropy_with_logits`` a sigmoid: fed probabilities, their gradients shrink
    by the squashing a second time and training crawls (the loss of a softmax output cannot
    go below ``-1 + log(e + C - 1)``). Probabilities into ``nll_loss(log(p))`` or
    ``binary_cross_entropy`` are correct and stay silent.

    Example:
        >>> match = LossMatch("cross_entropy", "multiclass", 1, classes=10,
        ...                   double_activation="softmax")
        >>> [(f.check, f.where) for f in double_softmax_findings(match, "net.3")]
        [('loss.double_softmax', 'net.3')]
    """
    if match is None or match.double_activation is None:
        return []
    activation = match.double_activation
    loss = "binary_cross_entropy_with_logits" if activation == "sigmoid" else "cross_entropy"
    if match.name == "cross_entropy_of_softmax":
        what = ("training_step turns the model's outputs into softmax probabilities and "
                "cross_entropy applies softmax to them again")
        fix = "pass the logits to cross_entropy"
    else:
        what = f"the model's outputs are already {activation} probabilities and {loss} " \
               f"applies {activation} to them again"
        fix = f"remove the final {activation} at '{where}' so that {loss} gets logits" + (
            " (or keep it and use nll_loss(log(p)))" if activation == "softmax" else
            " (or keep it and use binary_cross_entropy)")
    return [Finding(
        "loss.double_softmax", Severity.ERROR,
        f"The loss double-counts an activation: {what}, so gradients shrink and training "
        "crawls.", where=where,
        evidence={"loss": match.name, "task": match.task, "classes": match.classes},
        hint=fix[0].upper() + fix[1:] + ".")]
