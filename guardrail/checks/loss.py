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

from guardrail.findings import Finding, Severity


def initial_findings(loss0: float, task: str | None, expected: float | None,
                     factor: float = 3.0, margin: float = 1.0) -> list[Finding]:
    """``loss.initial`` when the first loss is far above what an untrained model gives.

    Args:
        loss0: The loss of the first training batch.
        task: The module's task, for the message.
        expected: The loss of an uninformed model: ln C for C classes (uniform logits), the
            mean squared target for regression (outputs near zero).
        factor: Fire above ``factor * expected + margin``.
        margin: Absolute slack, so tiny expected losses do not make noise alarms.
    """
    if expected is None or not math.isfinite(loss0) or loss0 <= factor * expected + margin:
        return []
    return [Finding(
        "loss.initial", Severity.ERROR,
        f"The first training loss {loss0:.4g} is far above what an untrained {task or ''} "
        f"model gives ({expected:.4g}): the initialisation or the output layer is off.",
        where="loss", evidence={"initial_loss": loss0, "expected": expected},
        hint="Check the last layer's scale and activation (logits, not probabilities, into "
             "cross-entropy), the weight initialisation, and the target's units.")]


def divergence_findings(losses: Sequence[float], window: int = 10,
                        factor: float = 10.0) -> list[Finding]:
    """``loss.divergence`` when the recent loss is an order of magnitude above its best.

    Example:
        >>> [f.check for f in divergence_findings([1.0] * 20 + [50.0] * 10)]
        ['loss.divergence']
    """
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
                     min_epochs: int = 4, min_gain: float = 0.02) -> list[Finding]:
    """``loss.plateau``: after ``min_epochs``, the loss is no better than it should be.

    With a known ``trivial`` loss, it fires when the best epoch is not ``min_gain`` below it:
    the model predicts no better than a constant (labels misaligned with inputs look like
    this, even while the loss falls at first as the model learns the mean). Without one, it
    fires when the best epoch is not ``min_gain`` below the first.

    Example:
        >>> [f.check for f in plateau_findings([1.3, 1.01, 1.0, 1.0], 1.0, "val")]
        ['loss.plateau']
        >>> plateau_findings([1.3, 0.9, 0.8, 0.7], 1.0, "val")
        []
    """
    losses = [x for x in epoch_losses if math.isfinite(x)]
    if len(losses) < min_epochs:
        return []
    first, best = losses[0], min(losses)
    reference = trivial if trivial is not None else first
    gain = min_gain
    if best < (1 - gain) * reference:
        return []
    level = f", at the level of a constant prediction ({trivial:.4g})" if trivial else ""
    return [Finding(
        "loss.plateau", Severity.WARNING,
        f"The {split} loss has not improved in {len(losses)} epochs (first {first:.4g}, best "
        f"{best:.4g}){level}: the model is not learning.", where=f"{split}/loss",
        evidence={"first": first, "best": best, "epochs": len(losses), "trivial": trivial},
        hint="Check that targets line up with their inputs (a shuffled or misaligned label "
             "column), that the optimiser gets the parameters, and the learning rate.")]


def oscillation_findings(epoch_losses: Sequence[float], split: str, min_epochs: int = 6,
                         swing: float = 0.1, share: float = 0.3) -> list[Finding]:
    """``loss.oscillation`` when the epoch loss keeps reversing by large steps.

    A reversal counts when both steps exceed ``swing`` of the current loss *and* of the first
    epoch's: after a tenfold drop, small wiggles of an already small loss are not swings (on
    the fault suite's healthy models this took the false alarms from 4 of 39 runs to 1).

    Example:
        >>> [f.check for f in oscillation_findings([1, 2, 1, 2, 1, 2, 1], "val")]
        ['loss.oscillation']
        >>> oscillation_findings([1, .9, .8, .75, .7, .68, .66], "val")
        []
    """
    losses = [x for x in epoch_losses if math.isfinite(x)]
    if len(losses) < min_epochs:
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
        f"{len(deltas) - 1} epochs.", where=f"{split}/loss",
        evidence={"reversals": reversals, "epochs": len(losses)},
        hint="Lower the learning rate or raise the batch size.")]
