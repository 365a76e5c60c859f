"""``ArchitectureCheck``: a static shape walk before training, with the resolution-loss rule."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor, nn

from guardrail.batches import example_inputs, model_inputs, peek_batches, peekable
from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.checks.resolution import resolution_findings
from guardrail.findings import Finding, Severity
from guardrail.shapes import Layer, first_tensor, shape_walk


class ArchitectureCheck(GuardrailCallback):
    """Walk the network's shapes with its example input and flag lost resolution.

    At fit start, one no-grad forward pass of ``example_input_array`` records every leaf
    module's input and output shapes. In a field-to-field network (output as large as the
    input: autoencoders, denoisers) a pooling layer, or a strided convolution that adds no
    capacity, that keeps fewer numbers per sample than the network's own code is a
    ``probe.resolution_loss`` error (the paper's WEA incident). For evidence, the share of
    that layer input's variance which down- then up-sampling removes is measured on the first
    training batch. A module without ``example_input_array`` gets an ``info`` finding.

    Args:
        policy: ``record`` or ``strict``.
        dense_fraction: The output must hold at least this share of the input's numbers for
            the network to be judged as field-to-field.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> import lightning.pytorch as pl
        >>> from guardrail import GuardrailModule
        >>> net = nn.Sequential(nn.AvgPool2d(8), nn.Conv2d(1, 8, 3, padding=1), nn.Flatten(),
        ...                     nn.Linear(8 * 64, 128), nn.Linear(128, 64 * 64),
        ...                     nn.Unflatten(1, (1, 64, 64)))
        >>> module = GuardrailModule(net, task="reconstruction")
        >>> module.example_input_array = torch.zeros(1, 1, 64, 64)
        >>> check = ArchitectureCheck()
        >>> trainer = pl.Trainer(callbacks=[check], fast_dev_run=True, logger=False,
        ...                      enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(module, torch.utils.data.DataLoader(torch.randn(8, 1, 64, 64), 4))
        >>> [(f.check, f.where) for f in check.findings]
        [('probe.resolution_loss', 'net.0')]
    """

    def __init__(self, policy: Policy = "record", dense_fraction: float = 0.5) -> None:
        super().__init__(policy)
        self.dense_fraction = dense_fraction
        self.layers: list[Layer] = []

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Shape walk, the resolution rule, and the variance lost on the first batch."""
        inputs = example_inputs(pl_module)
        if inputs is None:
            self.emit(trainer, Finding(
                "probe.skipped", Severity.INFO,
                "The architecture pass was skipped: the module has no example_input_array.",
                where=type(pl_module).__name__,
                hint="Set self.example_input_array to a (small) input batch in __init__."))
            return
        try:
            inputs = tuple(x.to(pl_module.device) if isinstance(x, Tensor) else x
                           for x in inputs)
            self.layers = shape_walk(pl_module, inputs)
            out = first_tensor(pl_module(*inputs))
        except Exception as err:  # a guardrail never breaks training
            self.emit(trainer, Finding(
                "probe.skipped", Severity.INFO,
                f"The architecture pass could not run the example input: {err}",
                where=type(pl_module).__name__,
                hint="Check that example_input_array matches forward()'s arguments."))
            return
        first = first_tensor(inputs)
        if first is None or out is None or first.ndim == 0 or out.ndim == 0:
            return
        in_numbers, out_numbers = first[0].numel(), out[0].numel()
        findings = resolution_findings(self.layers, in_numbers, out_numbers,
                                       dense_fraction=self.dense_fraction)
        if findings:
            lost = self._variance_lost(trainer, pl_module, [f.where for f in findings])
            findings = resolution_findings(self.layers, in_numbers, out_numbers, lost,
                                           self.dense_fraction)
        for finding in findings:
            self.emit(trainer, finding)
        self.enforce(trainer)

    def _variance_lost(self, trainer: Trainer, pl_module: LightningModule,
                       names: list[str | None]) -> dict[str, float]:
        loader = trainer.train_dataloader
        if not peekable(loader):
            return {}
        batch = trainer.strategy.batch_to_device(peek_batches(loader, 1)[0])
        inputs = model_inputs(pl_module, batch)
        if inputs is None:
            return {}
        modules = dict(pl_module.named_modules())
        lost: dict[str, float] = {}

        def hook(module: nn.Module, args: Any, out: Any, name: str) -> None:
            x, y = first_tensor(args), first_tensor(out)
            if x is not None and y is not None and x.ndim >= 3:
                lost[name] = _lost_fraction(x, y)

        handles = [modules[n].register_forward_hook(lambda m, a, o, n=n: hook(m, a, o, n))
                   for n in names if n in modules]
        try:
            with torch.no_grad():
                pl_module(*inputs)
        except Exception:  # evidence is optional; the static finding stands
            return {}
        finally:
            for h in handles:
                h.remove()
        return lost


def _lost_fraction(x: Tensor, y: Tensor) -> float:
    """Share of ``x``'s variance that pooling it to ``y``'s grid and back removes."""
    pooled = nn.functional.interpolate(x.float(), size=y.shape[2:], mode="area")
    back = nn.functional.interpolate(pooled, size=x.shape[2:], mode="nearest")
    var = x.float().var()
    return float(((x.float() - back) ** 2).mean() / var) if var > 0 else 0.0
