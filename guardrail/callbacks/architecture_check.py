"""``ArchitectureCheck``: a shape walk of the network, with the resolution-loss rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor

from guardrail.batches import example_inputs, model_inputs, peek_batches, peekable
from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.checks.resolution import ResolutionThresholds, resolution_findings
from guardrail.findings import Finding, Severity
from guardrail.shapes import Layer, Recorder


class ArchitectureCheck(GuardrailCallback):
    """Walk the network's shapes and flag lost resolution.

    The walk records every leaf module's input and output shapes in one forward pass: of
    ``example_input_array`` before training where the module declares one, else of the first
    real training batch as ``training_step`` runs it (hooks on that one step: the structure
    the module actually receives, dict batches, several inputs and manual optimisation
    included). In a field-to-field network (output as large as the input: autoencoders,
    denoisers) a pooling layer, or a strided convolution that adds no capacity, that keeps
    fewer numbers per sample than the network's own code is a ``probe.resolution_loss``
    error (the paper's WEA incident). For evidence, the share of that layer input's variance
    which down- then up-sampling removes is measured on a training batch. A module whose
    walk records no layer gets a ``probe.skipped`` info.

    Args:
        policy: ``record`` or ``strict``.
        thresholds: A :class:`~guardrail.checks.resolution.ResolutionThresholds`, or a
            mapping of the fields to change (``dense_fraction``: the share of the input's
            numbers the output must hold for the network to be judged as field-to-field).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> import lightning.pytorch as pl
        >>> class AE(pl.LightningModule):  # a plain module: no example input, no task
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net = nn.Sequential(
        ...             nn.AvgPool2d(8), nn.Conv2d(1, 8, 3, padding=1), nn.Flatten(),
        ...             nn.Linear(8 * 64, 128), nn.Linear(128, 64 * 64),
        ...             nn.Unflatten(1, (1, 64, 64)))
        ...     def training_step(self, x, i):
        ...         return nn.functional.mse_loss(self.net(x), x)
        ...     def configure_optimizers(self):
        ...         return torch.optim.Adam(self.parameters())
        >>> check = ArchitectureCheck()
        >>> trainer = pl.Trainer(callbacks=[check], fast_dev_run=True, logger=False,
        ...                      enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(AE(), torch.utils.data.DataLoader(torch.randn(8, 1, 64, 64), 4))
        >>> [(f.check, f.where) for f in check.findings]
        [('probe.resolution_loss', 'net.0')]
    """

    family = "probe"
    state_fields = ("_walked",)

    def __init__(self, policy: Policy = "record",
                 thresholds: ResolutionThresholds | Mapping[str, Any] | None = None) -> None:
        super().__init__(policy)
        self.thresholds = ResolutionThresholds.coerce(thresholds)
        self.layers: list[Layer] = []
        self._recorder: Recorder | None = None
        self._walked = False

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """With a declared example input: the walk and the rule, before any step."""
        inputs = example_inputs(pl_module)
        if inputs is None:
            return  # walked on the first training batch instead
        self._walked = True
        try:
            inputs = tuple(x.to(pl_module.device) if isinstance(x, Tensor) else x
                           for x in inputs)
            was_training = pl_module.training
            pl_module.eval()
            with torch.no_grad(), Recorder(pl_module) as walk:
                pl_module(*inputs)
            pl_module.train(was_training)
        except Exception as err:  # a guardrail never breaks training
            self.emit(trainer, Finding(
                "probe.skipped", Severity.INFO,
                f"The architecture pass could not run the example input: {err}",
                where=type(pl_module).__name__,
                hint="Check that example_input_array matches forward()'s arguments."))
            return
        findings = self._judge(walk)
        if findings:
            lost = self._variance_lost(trainer, pl_module, [f.where for f in findings])
            findings = self._judge(walk, lost)
        for finding in findings:
            self.emit(trainer, finding)
        self.enforce(trainer)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                             batch_idx: int) -> None:
        """Without a declared example input: hook the first training step."""
        if not self._walked:
            self._recorder = Recorder(pl_module, measure_lost=True)
            self._recorder.start()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        """Judge the first training step's walk (every rank walks its own first batch)."""
        if self._recorder is None:
            return
        walk, self._recorder = self._recorder, None
        walk.stop()
        self._walked = True
        if walk.layers:
            for finding in self._judge(walk, walk.lost):
                self.emit(trainer, finding)
        else:
            self.emit(trainer, Finding(
                "probe.skipped", Severity.INFO,
                "The architecture pass was skipped: the first training step called no "
                "module with tensors in and out.", where=type(pl_module).__name__,
                hint="Set self.example_input_array to a small input batch in __init__."))
        self.enforce(trainer)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Never leave a hook behind."""
        self._stop()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule,
                     exception: BaseException) -> None:
        """Never leave a hook behind."""
        self._stop()

    def _stop(self) -> None:
        if self._recorder is not None:
            self._recorder.stop()
            self._recorder = None

    def _judge(self, walk: Recorder, lost: dict[str, float] | None = None) -> list[Finding]:
        self.layers = walk.layers
        in_numbers, out_numbers = walk.in_numbers, walk.out_numbers
        if not in_numbers or not out_numbers:
            return []
        return resolution_findings(walk.layers, in_numbers, out_numbers, lost, self.thresholds)

    def _variance_lost(self, trainer: Trainer, pl_module: LightningModule,
                       names: list[str | None]) -> dict[str, float]:
        """The measured evidence, on the first training batch (none if it cannot be fed)."""
        loader = trainer.train_dataloader
        if not peekable(loader):
            return {}
        batch = trainer.strategy.batch_to_device(peek_batches(loader, 1)[0])
        inputs = model_inputs(pl_module, batch)
        if inputs is None:
            return {}
        try:
            with torch.no_grad(), Recorder(pl_module, measure_lost=True) as walk:
                pl_module(*inputs)
        except Exception:  # evidence is optional; the static finding stands
            return {}
        return {name: value for name, value in walk.lost.items() if name in names}
