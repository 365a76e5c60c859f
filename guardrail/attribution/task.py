"""What a model predicts, for the explanation: its task, and its error on held-out samples.

:func:`infer_task` reads a plain module's task from its outputs and targets (a
``GuardrailModule`` declares it); :func:`model_error` gives the randomisation test's error of a
model (the trained one or a re-initialised copy), lower is better.

Example:
    >>> import torch
    >>> x, y = torch.randn(200, 3), torch.randint(2, (200,)).float()
    >>> net = torch.nn.Linear(3, 1)
    >>> infer_task(net(x), y)
    'binary'
    >>> error = model_error(net, [x], y, "binary")
    >>> 0.0 <= error(net) <= 1.0
    True

"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics.functional.classification import binary_auroc

from guardrail.shapes import first_tensor


def infer_task(out: Tensor | None, targets: Any) -> str | None:
    """The task a plain module's outputs and targets suggest; None when they do not tell.

    Example:
        >>> infer_task(torch.randn(8, 4), torch.randint(4, (8,)))
        'multiclass'
        >>> infer_task(torch.randn(8, 1), torch.tensor([0., 1.] * 4))
        'binary'
        >>> infer_task(torch.randn(8), torch.randn(8))
        'regression'
        >>> infer_task(torch.randn(8, 4), None)  # several scores per sample: a classifier
        'multiclass'

    """
    if out is None:
        return None
    columns = out.shape[1] if out.ndim == 2 else (1 if out.ndim == 1 else 0)
    t = targets if isinstance(targets, Tensor) else None
    if columns > 1 and (t is None or (not t.is_floating_point() and t.ndim == 1)):
        return "multiclass"
    if columns == 1 and t is not None and t.numel() and \
            bool(((t == 0) | (t == 1)).all()) and len(torch.unique(t)) == 2:
        return "binary"
    if t is not None and t.is_floating_point() and t.numel() == out.numel():
        return "regression"
    return None


def model_error(module: nn.Module, inputs: list[Tensor], targets: Any,
                task: str | None = None) -> Callable[[nn.Module], float] | None:
    """``model -> error on held-out samples``, lower is better, for the randomisation test.

    Classifiers are judged by how they rank or pick, not by their loss: an overconfident
    model can rank almost perfectly while its weighted cross-entropy is above a random
    copy's (BOT: AUROC 0.95, loss 1.3-1.6x its random copies'). So the error is 1 - AUROC for
    a binary task (with both classes among the samples), the error rate for multiclass, and
    the module's own ``compute_loss`` otherwise (the mean squared error for a regression
    module without one).
    """
    compute = getattr(module, "compute_loss", None)
    task = task if task is not None else getattr(module, "task", None)
    if targets is None:
        return None
    if not callable(compute):
        compute = _mse if task == "regression" else None
    if task == "binary" and isinstance(targets, torch.Tensor) and \
            len(torch.unique(targets.flatten())) == 2:
        def error(model: nn.Module) -> float:
            with torch.no_grad():
                scores = first_tensor(model(*inputs)).flatten().float()
                return 1.0 - float(binary_auroc(scores, targets.flatten().long()))
    elif task == "multiclass" and isinstance(targets, torch.Tensor):
        def error(model: nn.Module) -> float:
            with torch.no_grad():
                picked = first_tensor(model(*inputs)).argmax(1)
                return float((picked != targets.long()).float().mean())
    elif compute is not None:
        def error(model: nn.Module) -> float:
            with torch.no_grad():
                return float(compute(model(*inputs), targets))
    else:
        return None

    try:
        error(module)
    except Exception:  # a loss that needs more than (predictions, targets): judged without
        return None
    return error



def _mse(out: Any, y: Tensor) -> Tensor:
    """The mean squared error of a plain regression module's prediction."""
    return nn.functional.mse_loss(first_tensor(out).reshape(y.shape).float(), y.float())
