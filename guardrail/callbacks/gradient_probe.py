"""``GradientProbe``: per-layer gradient and update statistics on sampled steps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor

from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.checks.gradients import (
    GradientThresholds,
    exploding_findings,
    not_updated_findings,
    not_zeroed_findings,
    update_ratio_findings,
    vanishing_findings,
)


def _layer(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name


class GradientProbe(GuardrailCallback):
    """Vanishing and exploding gradients per layer, weights that never change, update ratios.

    Every ``every_n_steps`` optimiser steps, in ``on_before_optimizer_step`` (after
    accumulation and AMP unscaling), the gradient norm of each layer is computed on the device
    and read in one transfer; the weights are snapshotted and, after the step, each layer's
    ``|dw| / |w|`` is read the same way. Checks: ``grad.vanishing``, ``grad.exploding``,
    ``grad.update_ratio`` (judged on the first sampled steps, before schedulers decay the
    rate) and ``grad.not_updated`` in both directions: parameters that get a gradient but are
    in no optimiser group (at the first step), and parameters in an optimiser that get no
    gradient in its first ``not_updated_steps`` steps (frozen ``requires_grad=False`` parameters
    are fine). ``grad.not_zeroed``: after a sampled step, a hook on each of the optimiser's
    parameters sees what ``.grad`` holds before every gradient arriving until the
    optimiser's next step; a parameter never reset in between carries old gradients into
    that step (manual optimisation without ``zero_grad``). Works alike under automatic and
    manual optimisation, with several optimisers. Each check fires at most once per run.

    Args:
        policy: ``record`` or ``strict``.
        every_n_steps: Sampling interval in optimiser steps.
        thresholds: A :class:`~guardrail.checks.gradients.GradientThresholds`, or a mapping of
            the fields to change (``{"exploding_growth": 1e4}``).

    Logged keys: ``guardrail/grad_norm`` (total gradient norm on sampled steps).

    Example:
        >>> import torch
        >>> import lightning.pytorch as pl
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from guardrail import GuardrailModule
        >>> class Orphan(GuardrailModule):
        ...     def configure_optimizers(self):  # forgets the head
        ...         return torch.optim.SGD(self.net[0].parameters(), lr=0.1)
        >>> _ = torch.manual_seed(0)
        >>> module = Orphan(torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 1)))
        >>> data = DataLoader(TensorDataset(torch.randn(64, 4), torch.randn(64)), batch_size=16)
        >>> probe = GradientProbe(every_n_steps=1)
        >>> trainer = pl.Trainer(callbacks=[probe], max_steps=3, logger=False,
        ...                      enable_progress_bar=False, enable_model_summary=False,
        ...                      enable_checkpointing=False)
        >>> trainer.fit(module, data)
        >>> [(f.check, f.where) for f in probe.findings]
        [('grad.not_updated', 'net.1.weight')]
    """

    family = "grad"
    state_fields = ("norms", "ratios", "_seen", "_checked_orphans")

    def __init__(self, policy: Policy = "record", every_n_steps: int = 25,
                 thresholds: GradientThresholds | Mapping[str, Any] | None = None) -> None:
        super().__init__(policy)
        self.require(("every_n_steps", every_n_steps, every_n_steps >= 1, ">= 1"))
        self.every_n_steps = every_n_steps
        self.thresholds = GradientThresholds.coerce(thresholds)
        self.norms: list[dict[str, float]] = []
        self.ratios: list[dict[str, float]] = []
        self._snapshot: dict[str, Tensor] = {}
        self._checked_orphans = False
        self._seen = 0
        self._steps_of: dict[int, int] = {}  # optimiser id -> steps watched for gradients
        self._got_grad: set[int] = set()  # ids of parameters seen with a gradient
        self._leftover: dict[int, dict[int, Tensor]] = {}  # optimiser -> param -> min |grad|^2
        self._handles: list[Any] = []

    def _sampled(self, trainer: Trainer) -> bool:
        return trainer.global_step % self.every_n_steps == 0

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        """Orphans (first step); gradient norms and a weight snapshot (sampled steps)."""
        self._judge_leftover(trainer, pl_module, optimizer)
        if self._steps_of.get(id(optimizer), 0) < self.thresholds.not_updated_steps:
            self._watch_gradients(trainer, pl_module, optimizer)
        if self._sampled(trainer) and not self._leftover and not any(
                f.check == "grad.not_zeroed" for f in self.findings):
            self._hook_leftover(optimizer)
        if self._checked_orphans and not self._sampled(trainer):
            return  # the common step: nothing more to do
        named = [(n, p) for n, p in pl_module.named_parameters() if p.grad is not None]
        if not self._checked_orphans:
            self._checked_orphans = True
            in_optimizer = {id(p) for opt in trainer.optimizers for g in opt.param_groups
                            for p in g["params"]}
            self.emit_once(trainer, not_updated_findings(
                [n for n, p in named if p.requires_grad and id(p) not in in_optimizer]))
        if not self._sampled(trainer) or not named:
            return
        layers: dict[str, list[Tensor]] = {}
        for name, p in named:
            layers.setdefault(_layer(name), []).append(p.grad.detach().float().pow(2).sum())
        norms = torch.stack([torch.stack(v).sum().sqrt() for v in layers.values()]).tolist()
        self.norms.append(dict(zip(layers, norms, strict=True)))
        pl_module.log("guardrail/grad_norm", sum(x * x for x in norms) ** 0.5,
                      on_step=True, on_epoch=False)
        self._snapshot = {n: p.detach().clone() for n, p in named if p.ndim >= 2}
        self.emit_once(trainer, vanishing_findings(self.norms, self.thresholds))
        self.emit_once(trainer, exploding_findings(self.norms, self.thresholds))

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        """Update-to-weight ratios of the sampled step; agree on stopping."""
        if self._snapshot:
            params = dict(pl_module.named_parameters())
            names = [n for n in self._snapshot if n in params]
            ratios = torch.stack([
                (params[n].detach() - self._snapshot[n]).float().norm()
                / self._snapshot[n].float().norm().clamp_min(1e-12) for n in names]).tolist()
            self._snapshot = {}
            self.ratios.append(dict(zip(map(_layer, names), ratios, strict=True)))
            self.emit_once(trainer, update_ratio_findings(self.ratios, self.thresholds))
        self._seen += 1
        if self._seen % self.every_n_steps == 0 or self._seen <= 2:  # same steps on all ranks
            self.enforce(trainer)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Never leave a hook behind."""
        self._unhook()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule,
                     exception: BaseException) -> None:
        """Never leave a hook behind."""
        self._unhook()

    def _watch_gradients(self, trainer: Trainer, pl_module: LightningModule,
                         optimizer: torch.optim.Optimizer) -> None:
        """Note which of the optimiser's parameters got a gradient; judge after its K steps."""
        params = [p for g in optimizer.param_groups for p in g["params"] if p.requires_grad]
        self._got_grad.update(id(p) for p in params if p.grad is not None)
        steps = self._steps_of[id(optimizer)] = self._steps_of.get(id(optimizer), 0) + 1
        if steps == self.thresholds.not_updated_steps:
            ids = {id(p) for p in params} - self._got_grad
            never = [n for n, p in pl_module.named_parameters() if id(p) in ids]
            self.emit_once(trainer, not_updated_findings([], never, steps))

    def _hook_leftover(self, optimizer: torch.optim.Optimizer) -> None:
        """Until the optimiser's next step, keep the smallest |.grad|^2 seen before a gradient."""
        kept = self._leftover[id(optimizer)] = {}

        def before_accumulation(grad: Tensor, p: Tensor) -> None:
            held = p.grad.detach().float().pow(2).sum() if p.grad is not None \
                else grad.new_zeros((), dtype=torch.float32)
            kept[id(p)] = torch.minimum(kept[id(p)], held) if id(p) in kept else held

        self._handles = [p.register_hook(lambda g, p=p: before_accumulation(g, p))
                         for g in optimizer.param_groups for p in g["params"]
                         if p.requires_grad]

    def _judge_leftover(self, trainer: Trainer, pl_module: LightningModule,
                        optimizer: torch.optim.Optimizer) -> None:
        kept = self._leftover.pop(id(optimizer), None)
        if kept is None:
            return
        self._unhook()
        grads = [p.grad.detach().float().pow(2).sum() for g in optimizer.param_groups
                 for p in g["params"] if id(p) in kept and p.grad is not None]
        if not grads:
            return
        leftover, total = torch.stack([torch.stack(list(kept.values())).sum(),
                                       torch.stack(grads).sum()]).sqrt().tolist()
        where = "optimizer_zero_grad" if pl_module.automatic_optimization else "training_step"
        self.emit_once(trainer, not_zeroed_findings(leftover, total, where, self.thresholds))

    def _unhook(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._leftover = {}
