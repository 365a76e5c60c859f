"""Which loss a plain module computes, read from one training step.

A ``GuardrailModule`` declares its task and loss; a plain ``LightningModule`` computes its loss
inside ``training_step`` and says nothing. From what one step shows (the model's prediction,
the batch's tensors and the loss value ``training_step`` produced) these functions infer the
task (integer targets and C output columns: classes; 0/1 targets and one column: binary;
float targets: regression) and identify the loss function among the common ones, by
recomputing each candidate on the same tensors: the one that reproduces the value exactly
is the one the module uses. That identification tells:

- the loss of the best constant prediction in the module's own units (``loss.plateau``);
- whether probabilities reach a loss that applies softmax or sigmoid again
  (``loss.double_softmax``: ``cross_entropy`` of a softmax output, or
  ``binary_cross_entropy_with_logits`` of a sigmoid output), while probabilities fed to
  ``nll_loss(log(p))`` or ``binary_cross_entropy`` are recognised as correct.

A loss that matches no candidate (label smoothing, class weights, an added penalty) or
several with different meanings is not identified, and nothing is judged from it.

Example:
    >>> import torch
    >>> logits, y = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]]), torch.tensor([0, 2])
    >>> loss = float(torch.nn.functional.cross_entropy(logits.softmax(1), y))  # a double softmax
    >>> match = identify_loss(logits.softmax(1), [y], loss)
    >>> match.name, match.double_activation
    ('cross_entropy', 'softmax')
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

Layout = tuple[str, Tensor, Tensor]  # (task, prediction rows, target rows)


@dataclasses.dataclass(frozen=True)
class LossMatch:
    """An identified loss.

    Attributes:
        name: The candidate (``cross_entropy``, ``nll``, ``nll_of_log``,
            ``cross_entropy_of_softmax``, ``bce_with_logits``, ``bce``, ``mse``, ``l1``,
            ``smooth_l1``).
        task: ``multiclass``, ``binary`` or ``regression``.
        target: Index of the target among the candidate tensors.
        reduction: ``mean``, ``sample_sum`` (summed per sample, averaged over the batch) or
            ``sum``.
        per_sample: Loss terms per sample (classes excluded), for ``sample_sum``.
        classes: Number of classes (multiclass).
        double_activation: ``softmax`` or ``sigmoid`` when probabilities reach a loss that
            applies it again, else None.
    """

    name: str
    task: str
    target: int
    reduction: str = "mean"
    per_sample: float = 1.0
    classes: int | None = None
    double_activation: str | None = None


def probability_rows(z: Tensor, atol: float = 1e-3) -> bool:
    """Every row is non-negative and sums to 1 (a softmax output)."""
    return bool(z.numel()) and bool((z >= 0).all()) and \
        bool(torch.allclose(z.sum(1), torch.ones(len(z), dtype=z.dtype), atol=atol))


def log_probability_rows(z: Tensor, atol: float = 1e-3) -> bool:
    """Every row's exponentials sum to 1 (a log_softmax output)."""
    return bool(z.numel()) and bool((z <= atol).all()) and \
        bool(torch.allclose(z.logsumexp(1), torch.zeros(len(z), dtype=z.dtype), atol=atol))


def in_unit_interval(p: Tensor) -> bool:
    """All values in [0, 1], at least two distinct (a sigmoid output)."""
    return p.numel() >= 2 and bool(((p >= 0) & (p <= 1)).all())


def layouts(pred: Tensor, target: Tensor) -> list[Layout]:
    """The ways ``pred`` and ``target`` line up, as (task, prediction rows, target rows).

    Multiclass: integer targets, classes on dim 1 (``[N, C, ...]`` against ``[N, ...]``), on
    the last dim (``[B, T, C]`` against ``[B, T]``), or flattened rows (``[B*T, C]`` against
    ``[B, T]``). Binary: 0/1 targets with as many predictions. Regression: float targets with
    as many predictions.

    Example:
        >>> [task for task, _, _ in layouts(torch.zeros(4, 3), torch.tensor([0, 1, 2, 0]))]
        ['multiclass']
    """
    pred, out = pred.detach().float(), []
    if not target.ndim or not pred.ndim or pred.shape[0] == 0:
        return out
    if not target.is_floating_point() and target.dtype != torch.bool and target.numel():
        rows = []
        if pred.ndim >= 2 and pred.shape[0] == target.shape[0] and \
                pred.shape[2:] == target.shape[1:]:
            rows.append(pred.movedim(1, -1).reshape(-1, pred.shape[1]))
        if pred.ndim >= 3 and pred.shape[:-1] == target.shape:
            rows.append(pred.reshape(-1, pred.shape[-1]))
        if pred.ndim == 2 and target.ndim >= 2 and pred.shape[0] == target.numel():
            rows.append(pred)
        y = target.reshape(-1).long()
        for z in rows:
            if z.shape[1] >= 2 and int(y.min()) >= 0 and int(y.max()) < z.shape[1]:
                out.append(("multiclass", z, y))
    if pred.numel() == target.numel():
        y = target.reshape(-1).float()
        binary = bool(((y == 0) | (y == 1)).all())
        out.append(("binary" if binary else "regression", pred.reshape(-1), y))
    return out


def _bce(p: Tensor, y: Tensor) -> Tensor:
    return F.binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), y)


Candidate = tuple[str, Callable[[Tensor, Tensor], Tensor], str | None]


def _candidates(task: str, z: Tensor) -> list[Candidate]:
    """(name, mean loss of z and y, double activation) that apply to these predictions."""
    if task == "multiclass":
        probs = probability_rows(z)
        out: list[Candidate] = [
            ("cross_entropy", F.cross_entropy, "softmax" if probs else None),
            ("nll", F.nll_loss, None)]
        if probs:
            out.append(("nll_of_log", lambda z, y: F.nll_loss(z.clamp_min(1e-12).log(), y), None))
        else:
            out.append(("cross_entropy_of_softmax",
                        lambda z, y: F.cross_entropy(z.softmax(1), y), "softmax"))
        return out
    elementwise: list[Candidate] = [("mse", F.mse_loss, None), ("l1", F.l1_loss, None),
                                    ("smooth_l1", F.smooth_l1_loss, None)]
    if task == "binary":
        unit = in_unit_interval(z)
        out = [("bce_with_logits", F.binary_cross_entropy_with_logits,
                "sigmoid" if unit else None)]
        if unit:
            out.append(("bce", _bce, None))
        return out + elementwise[:1]
    return elementwise


def _loss_fn(task: str, z: Tensor, name: str) -> Callable[[Tensor, Tensor], Tensor]:
    return next(fn for candidate, fn, _ in _candidates(task, z) if candidate == name)


def identify_loss(pred: Tensor, targets: Sequence[Tensor], loss: float, batch: int | None = None,
                  rtol: float = 2e-3) -> LossMatch | None:
    """The loss function that reproduces ``loss`` from ``pred`` and one of ``targets``.

    Args:
        pred: The model's output on the step's batch.
        targets: Candidate targets: the batch's tensors.
        loss: The value ``training_step`` returned for that batch.
        batch: Samples in the batch (for per-sample sums); default ``pred.shape[0]``.
        rtol: Relative tolerance of a match (the same arithmetic on the same tensors agrees
            far closer; reduced precision needs some room).

    Returns:
        The match, or None when no candidate, or several with different meanings, match.

    Example:
        >>> pred, y = torch.tensor([0.5, 2.0, -1.0]), torch.tensor([1.0, 1.5, 0.0])
        >>> identify_loss(pred, [y], float(((pred - y) ** 2).sum())).reduction
        'sum'
    """
    if not math.isfinite(loss) or not isinstance(pred, Tensor) or not pred.is_floating_point():
        return None
    batch = batch or (int(pred.shape[0]) if pred.ndim else 1)
    matches: list[tuple[float, LossMatch]] = []  # (relative error, match)
    with torch.no_grad():
        for index, target in enumerate(targets):
            if not isinstance(target, Tensor):
                continue
            for task, z, y in layouts(pred, target.to(pred.device)):
                rows = len(y)
                for name, fn, double in _candidates(task, z):
                    value = float(fn(z, y))
                    for reduction, scale in (("mean", 1.0), ("sample_sum", rows / batch),
                                             ("sum", float(rows))):
                        error = abs(scale * value - loss) / max(abs(loss), 1e-12)
                        if error <= rtol or abs(scale * value - loss) <= 1e-7:
                            matches.append((error, LossMatch(
                                name, task, index, reduction, rows / batch,
                                z.shape[1] if task == "multiclass" else None, double)))
                            break
    if not matches:
        return None
    matches.sort(key=lambda em: em[0])
    best_error, best = matches[0]
    # Another meaning that fits about as well leaves it open (outputs near uniform make
    # cross-entropy of probabilities and log-likelihood nearly equal); the module's own
    # arithmetic reproduces to ~1e-7, so a rival ten times further off is ruled out.
    rivals = [e for e, m in matches[1:] if _meaning(m) != _meaning(best)]
    if rivals and rivals[0] <= max(10 * best_error, 1e-5):
        return None
    return best


def _meaning(m: LossMatch) -> tuple[str, int, str | None, str]:
    return m.task, m.target, m.double_activation, m.reduction


def initial_loss(pred: Tensor, target: Tensor, task: str | None = None
                 ) -> tuple[str, float, float] | None:
    """(task, the prediction's loss, an uninformed model's loss) for ``loss.initial``.

    The loss is the standard one of the task, measured on the prediction, whatever loss the
    module uses: cross-entropy against ln C (negative log-likelihood where the rows are
    already probabilities or log-probabilities), binary cross-entropy against ln 2, mean
    squared error against the mean squared target. None when they do not line up.

    Example:
        >>> task, value, expected = initial_loss(200 * torch.randn(64, 10), torch.arange(64) % 10)
        >>> task, value > 3 * expected + 1
        ('multiclass', True)
    """
    options = [lay for lay in layouts(pred, target) if task is None or lay[0] == task]
    if not options:
        return None
    task, z, y = options[0]
    with torch.no_grad():
        if task == "multiclass":
            if probability_rows(z):
                value = F.nll_loss(z.clamp_min(1e-12).log(), y)
            elif log_probability_rows(z):
                value = F.nll_loss(z, y)
            else:
                value = F.cross_entropy(z, y)
            return task, float(value), math.log(z.shape[1])
        if task == "binary":
            value = _bce(z, y) if in_unit_interval(z) else \
                F.binary_cross_entropy_with_logits(z, y)
            return task, float(value), math.log(2)
        return task, float(F.mse_loss(z, y)), float(y.pow(2).mean())


def constant_loss(match: LossMatch, train: Tensor, other: Tensor | None = None) -> float | None:
    """The loss, in the module's units, of the best constant prediction fitted on ``train``.

    Measured on ``other`` (e.g. validation targets) where given, else on ``train``. The
    constant is the class frequencies, the base rate, or the mean or median (whichever is
    better); a double activation, or a plain sum over a batch, has no fixed constant level.

    Example:
        >>> match = LossMatch("cross_entropy", "multiclass", 0, classes=2)
        >>> round(constant_loss(match, torch.tensor([0, 1, 1, 1])), 3)
        0.568
    """
    if match.double_activation or match.reduction == "sum":
        return None
    y_fit = train.reshape(-1)
    y = (other if other is not None else train).reshape(-1)
    with torch.no_grad():
        if match.task == "multiclass":
            freq = torch.bincount(y_fit.long(), minlength=match.classes or 0).float() + 0.5
            p = freq / freq.sum()
            const = p.log() if match.name != "nll_of_log" else p
            rows = const.expand(len(y), -1)
            value = _loss_fn("multiclass", rows, match.name)(rows, y.long())
        elif match.name in ("bce_with_logits", "bce"):
            rate = y_fit.float().mean().clamp(1e-4, 1 - 1e-4)
            const = torch.logit(rate) if match.name == "bce_with_logits" else rate
            fn = F.binary_cross_entropy_with_logits if match.name == "bce_with_logits" else _bce
            value = fn(const.expand(len(y)), y.float())
        else:
            fn = _loss_fn("regression", y.float(), match.name)
            value = min(fn(c.expand(len(y)), y.float())
                        for c in (y_fit.float().mean(), y_fit.float().median()))
    scale = match.per_sample if match.reduction == "sample_sum" else 1.0
    return float(value) * scale


def declared_references(compute: Callable[[Tensor, Tensor], Tensor], task: str | None,
                        train: Tensor, val: Tensor | None, classes: int = 0,
                        ) -> tuple[float | None, float | None, float | None]:
    """(expected initial loss, trivial train loss, trivial val loss) of a declared module.

    A module that declares its task and loss (a ``GuardrailModule``); :func:`constant_loss`
    is the plain-module twin. The trivial losses are ``compute`` (the module's own loss) of
    the best constant prediction fitted on the training targets (class frequencies, base
    rate, mean), on each split.

    Example:
        >>> y = torch.tensor([0.0, 1.0, 2.0, 3.0])
        >>> expected, train, val = declared_references(F.mse_loss, "regression", y, None)
        >>> expected, train, val
        (3.5, 1.25, None)
    """
    try:
        with torch.no_grad():
            if task == "multiclass":
                freq = torch.bincount(train.long().flatten(), minlength=classes).float() + 0.5
                log_freq = (freq / freq.sum()).log()
                expected = math.log(len(freq))

                def const(t: Tensor) -> Tensor:
                    return log_freq.expand(len(t), -1)
            elif task == "binary":
                logit = float(torch.logit(train.float().mean().clamp(1e-4, 1 - 1e-4)))
                expected = math.log(2)

                def const(t: Tensor) -> Tensor:
                    return torch.full(t.shape, logit)
            elif task in ("regression", "reconstruction"):
                mean = float(train.float().mean())
                expected = float(train.float().pow(2).mean())

                def const(t: Tensor) -> Tensor:
                    return torch.full(t.shape, mean)
            else:
                return None, None, None
            trivial = [float(compute(const(t), t if task != "binary" else t.float()))
                       if t is not None else None for t in (train, val)]
    except Exception:  # a custom loss the probe does not understand: skip what needs it
        return None, None, None
    return expected, trivial[0], trivial[1]
