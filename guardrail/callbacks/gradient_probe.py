"""``GradientProbe``: per-layer gradient and update statistics on sampled steps."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor

from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.checks.gradients import (
    exploding_findings,
    not_updated_findings,
    update_ratio_findings,
    vanishing_findings,
)


def _layer(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name


class GradientProbe(GuardrailCallback):
    """Vanishing and exploding gradients per layer, orphaned parameters, update ratios.

    Every ``every_n_steps`` optimiser steps, in ``on_before_optimizer_step`` (after
    accumulation and AMP unscaling), the gradient norm of each layer is computed on the device
    and read in one transfer; the weights are snapshotted and, after the step, each layer's
    ``|dw| / |w|`` is read the same way. Checks: ``grad.vanishing``, ``grad.exploding``,
    ``grad.update_ratio`` (judged on the first sampled steps, before schedulers decay the
    rate) and, at the first step, ``grad.not_updated`` for parameters that get a gradient but
    are in no optimiser group (frozen ``requires_grad=False`` parameters are fine). Each check
    fires at most once per run.

    Args:
        policy: ``record`` or ``strict``.
        every_n_steps: Sampling interval in optimiser steps.

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

    def __init__(self, policy: Policy = "record", every_n_steps: int = 25) -> None:
        super().__init__(policy)
        if every_n_steps < 1:
            from guardrail.errors import ConfigError

            raise ConfigError(f"GradientProbe: every_n_steps={every_n_steps} must be >= 1.")
        self.every_n_steps = every_n_steps
        self.norms: list[dict[str, float]] = []
        self.ratios: list[dict[str, float]] = []
        self._snapshot: dict[str, Tensor] = {}
        self._checked_orphans = False
        self._seen = 0

    def _sampled(self, trainer: Trainer) -> bool:
        return trainer.global_step % self.every_n_steps == 0

    def on_before_optimizer_step(self, trainer: Trainer, pl_module: LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        """Orphans (first step); gradient norms and a weight snapshot (sampled steps)."""
        if self._checked_orphans and not self._sampled(trainer):
            return  # the common step: nothing to do
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
        self.emit_once(trainer, vanishing_findings(self.norms))
        self.emit_once(trainer, exploding_findings(self.norms))

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
            self.emit_once(trainer, update_ratio_findings(self.ratios))
        self._seen += 1
        if self._seen % self.every_n_steps == 0 or self._seen == 1:  # same steps on all ranks
            self.enforce(trainer)
