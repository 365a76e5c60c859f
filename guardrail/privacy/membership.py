"""The membership audit's measurements: per-example losses, reference models to calibrate them.

:func:`per_example_losses` scores every example of a dataset with a module: its
``per_example_loss(batch)`` where it has one (a ``[B]`` tensor), else the task's loss per
example (binary cross-entropy with logits, cross-entropy, squared error averaged per example),
with the inputs and target taken as :func:`guardrail.batches.model_inputs` and the module's
``split_batch`` take them. :func:`reference_statistics` trains ``K`` copies of the module,
re-initialised, each on a random half of a pool of members and non-members, with a plain
Trainer of the same length, and returns each copy's LiRA statistic on every pool example;
:func:`audit` puts both attacks together (:mod:`guardrail.privacy.audit` judges them).

Example:
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> from lightning.pytorch.demos.boring_classes import BoringModel
    >>> data = TensorDataset(torch.randn(8, 32), torch.randn(8, 2))
    >>> per_example_losses(BoringModel(), data, batch_size=4, task="regression").shape
    (8,)

"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from guardrail.attribution.task import infer_task
from guardrail.batches import default_target, model_inputs
from guardrail.privacy.audit import attack_metrics, confidence, lira_scores
from guardrail.shapes import first_tensor

__all__ = ["AuditSkipped", "audit", "per_example_losses", "reference_statistics"]

TASKS = ("binary", "multiclass", "regression", "reconstruction")


class AuditSkipped(Exception):
    """The audit cannot measure this model or data; the message says why."""


def _split(module: nn.Module, batch: Any) -> tuple[tuple[Any, ...], Any]:
    split = getattr(module, "split_batch", None)
    if callable(split):
        inputs, target = split(batch)
        return tuple(inputs), target
    inputs = model_inputs(module, batch)
    if inputs is None:
        raise AuditSkipped("the batches are neither tensors, (inputs, target) tuples nor dicts "
                           "of tensors")
    return inputs, default_target(batch)


def _batch_losses(module: nn.Module, batch: Any, task: str | None) -> tuple[Tensor, str]:
    hook = getattr(module, "per_example_loss", None)
    if callable(hook):
        return hook(batch).detach().float().flatten(), task or "declared"
    inputs, target = _split(module, batch)
    out = first_tensor(module(*inputs))
    if out is None or not isinstance(target, Tensor):
        raise AuditSkipped("the model's output or the batch's target is not a tensor; give "
                           "the module a per_example_loss(batch) method returning [B] losses")
    task = task or getattr(module, "task", None) or infer_task(out, target)
    if task not in TASKS:
        raise AuditSkipped(f"the per-example loss of a {task or 'unrecognised'} task is not "
                           "known; give the module a per_example_loss(batch) method")
    n = out.shape[0]
    if task == "binary":
        loss = nn.functional.binary_cross_entropy_with_logits(
            out.reshape(n, -1)[:, 0].float(), target.reshape(n, -1)[:, 0].float(),
            reduction="none")
    elif task == "multiclass":
        loss = nn.functional.cross_entropy(out.float(), target.long(), reduction="none")
    else:
        goal = inputs[0] if task == "reconstruction" and target is None else target
        loss = (out.float() - goal.float()).pow(2).reshape(n, -1).mean(1)
    return loss.detach(), task


def per_example_losses(module: nn.Module, dataset: Dataset, batch_size: int = 256,
                       collate_fn: Callable[..., Any] | None = None,
                       task: str | None = None) -> np.ndarray:
    """The module's loss on every example of ``dataset``, in order (eval mode, no gradients).

    Raises:
        AuditSkipped: The batches or outputs are of a kind whose loss is not known.

    """
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_fn)
    was_training = module.training
    module.eval()
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    out: list[Tensor] = []
    try:
        with torch.no_grad():
            for batch in loader:
                batch = pl.utilities.move_data_to_device(batch, device)
                losses, _ = _batch_losses(module, batch, task)
                out.append(losses.cpu())
    finally:
        module.train(was_training)
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros(0)


def task_of(module: nn.Module, dataset: Dataset, collate_fn: Callable[..., Any] | None,
            task: str | None) -> str:
    """The task the audit scores losses by (declared, the module's, or inferred from a batch)."""
    batch = next(iter(DataLoader(dataset, batch_size=8, collate_fn=collate_fn)))
    with torch.no_grad():
        return _batch_losses(module, batch, task)[1]


def _reinitialise(module: nn.Module, seed: int) -> nn.Module:
    copy_ = copy.deepcopy(module)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for sub in copy_.modules():
            reset = getattr(sub, "reset_parameters", None)
            if callable(reset) and sub is not copy_:
                reset()
    return copy_


def train_copy(module: pl.LightningModule, data: Dataset, batch_size: int,
               collate_fn: Callable[..., Any] | None, max_epochs: int, seed: int,
               callback: Callable[[], pl.Callback] | None = None) -> pl.LightningModule:
    """A re-initialised copy of ``module`` trained on ``data`` with a plain Trainer.

    No validation, no checkpoints, no guardrails; the one callback ``callback()`` makes (e.g.
    DP-SGD's) if given; ``max_epochs`` over ``data``, shuffled, everything seeded by ``seed``.
    """
    twin = _reinitialise(module, seed + 1)
    twin.train()  # a copy made in the test loop is in eval mode, which Lightning keeps
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, collate_fn=collate_fn,
                        generator=torch.Generator().manual_seed(seed))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        pl.Trainer(max_epochs=max_epochs, logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False,
                   limit_val_batches=0, num_sanity_val_steps=0, accelerator="cpu",
                   devices=1, callbacks=[callback()] if callback else None,
                   ).fit(twin, train_dataloaders=loader)
    return twin


def reference_statistics(module: pl.LightningModule, pool: Dataset, batch_size: int,
                         collate_fn: Callable[..., Any] | None, references: int, max_epochs: int,
                         task: str, seed: int = 0,
                         callback: Callable[[], pl.Callback] | None = None,
                         ) -> tuple[np.ndarray, np.ndarray]:
    """``(statistics [K, N], inside [K, N])``: K re-initialised copies, each on half the pool.

    Each copy trains on its half (:func:`train_copy`); then its LiRA statistic
    (:func:`~guardrail.privacy.audit.confidence`) is read on every pool example.
    """
    n = len(pool)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    inside = np.zeros((references, n), bool)
    stats = np.zeros((references, n))
    for k in range(references):
        # Balanced halves: every example is in exactly half of each pair of references.
        if k % 2 == 0:
            half = rng.permutation(n) < n // 2
        inside[k] = half if k % 2 == 0 else ~inside[k - 1]
        twin = train_copy(module, Subset(pool, np.flatnonzero(inside[k]).tolist()),
                          batch_size, collate_fn, max_epochs, seed + k, callback)
        stats[k] = confidence(per_example_losses(twin, pool, batch_size, collate_fn, task), task)
    return stats, inside


def _sample(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, limit, replace=False)) if n > limit else np.arange(n)


def audit(module: pl.LightningModule, members: Dataset, nonmembers: Dataset, *,
          batch_size: int, collate_fn: Callable[..., Any] | None = None, max_epochs: int = 1,
          references: int = 8, max_records: int = 5000, task: str | None = None,
          callback: Callable[[], pl.Callback] | None = None, seed: int = 0) -> dict[str, Any]:
    """Both attacks on the module: members against non-members, equal numbers of each.

    Args:
        module: The trained model.
        members: The training split.
        nonmembers: Records it never trained on (the test split).
        batch_size: Batch size for scoring and for the reference models' training.
        collate_fn: The loaders' collate function.
        max_epochs: Epochs each reference model trains.
        references: Reference models for the calibrated attack (0: the loss attack alone).
        max_records: Members and non-members sampled at most, each.
        task: ``binary``, ``multiclass``, ``regression`` or ``reconstruction``; None: the
            module's ``task``, else inferred from its outputs and targets.
        callback: Makes the callback each reference model trains with (a
            :class:`~guardrail.callbacks.DifferentialPrivacy` twin: references train as the
            target did); None: plain training.
        seed: Seed of the samples, halves and initialisations.

    Returns:
        ``attacks`` (``loss`` and ``lira``: :func:`~guardrail.privacy.audit.attack_metrics`),
        the mean losses of both groups (their gap is the generalisation gap), the task, the
        seconds the reference models took and, where ``callback`` trains privately, the
        ``utility`` cost: the unseen records' mean loss under the private model and under
        the same model trained on the same members without privacy.

    """
    rng = np.random.default_rng(seed)
    size = min(len(members), len(nonmembers), max_records)  # type: ignore[arg-type]
    if size < 50:
        raise AuditSkipped(f"{size} members or non-members are too few to audit (50 at least)")
    rows_in = _sample(len(members), size, rng)  # type: ignore[arg-type]
    rows_out = _sample(len(nonmembers), size, rng)  # type: ignore[arg-type]
    pool = ConcatDataset([Subset(members, rows_in.tolist()), Subset(nonmembers, rows_out.tolist())])
    task = task_of(module, pool, collate_fn, task)
    losses = per_example_losses(module, pool, batch_size, collate_fn, task)
    member = np.r_[np.ones(size, bool), np.zeros(size, bool)]
    attacks = {"loss": attack_metrics(-losses[member], -losses[~member], seed=seed)}
    seconds = 0.0
    if references:
        start = time.perf_counter()
        # Lightning's test loop runs in inference mode: training the references needs autograd
        with torch.inference_mode(False), torch.enable_grad():
            stats, inside = reference_statistics(module, pool, batch_size, collate_fn,
                                                 references, max_epochs, task, seed, callback)
        seconds = time.perf_counter() - start
        scores = lira_scores(confidence(losses, task), stats, inside)
        attacks["lira"] = attack_metrics(scores[member], scores[~member], seed=seed)
    finite = np.isfinite(losses)
    result = {"attacks": attacks, "task": task, "references": references,
              "reference_epochs": max_epochs, "reference_seconds": round(seconds, 2),
              "member_loss": float(losses[member & finite].mean()),
              "nonmember_loss": float(losses[~member & finite].mean()),
              "records": size}
    if callback is not None and references:
        # What the privacy costs: the same model trained on the same members without it,
        # scored on the same unseen records.
        with torch.inference_mode(False), torch.enable_grad():
            # item by item, as the pool is read (a dataset's batched __getitems__ is not what
            # the loaders' collate function expects)
            everyone = ConcatDataset([members])
            plain = train_copy(module, everyone, batch_size, collate_fn, max_epochs, seed)
        unseen = per_example_losses(plain, Subset(nonmembers, rows_out.tolist()), batch_size,
                                    collate_fn, task)
        result["utility"] = {"private_loss": result["nonmember_loss"],
                             "nonprivate_loss": float(unseen[np.isfinite(unseen)].mean())}
    return result
