"""``ActivationProbe``: NaN/Inf at its source, dead ReLU units, saturated sigmoid/tanh."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor, nn

from guardrail.batches import no_logging
from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.checks.activations import (
    ActivationThresholds,
    dead_unit_findings,
    merge_ranks,
    nonfinite_finding,
    saturation_findings,
)
from guardrail.distributed import gather_objects
from guardrail.shapes import first_tensor

_RELUS = (nn.ReLU, nn.ReLU6)
_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
# Output beyond these means a pre-activation beyond +-5.
_SATURATING = {nn.Sigmoid: (0.0067, 0.9933), nn.Tanh: (-0.9999, 0.9999)}


def _all_finite(obj: Any) -> bool:
    if isinstance(obj, Tensor):
        return not obj.is_floating_point() or bool(torch.isfinite(obj).all())
    if isinstance(obj, list | tuple):
        return all(_all_finite(o) for o in obj)
    if isinstance(obj, dict):
        return all(_all_finite(o) for o in obj.values())
    return True


class ActivationProbe(GuardrailCallback):
    """Find where activations go wrong, and name the layer.

    *Non-finite values* (``probe.nonfinite``): a cheap check of every training loss before
    backward; when it is NaN/Inf, the same batch is replayed (no grad, weights not yet
    stepped) with hooks on every module, and the first module whose output is non-finite
    while its inputs were finite is named (or the input batch, or the loss function) —
    autograd's anomaly mode is never left on. *Dead units* (``probe.dead_units``) and
    *saturation* (``probe.saturation``): on every ``every_n_steps``-th step, hooks are
    registered on ``nn.ReLU``/``nn.ReLU6`` and ``nn.Sigmoid``/``nn.Tanh`` modules for that
    step only; the fraction of units never positive over the batch (dims other than the
    batch and the unit dimension 1 are pooled) and the fraction of saturated outputs are
    reduced on the device and read once. A ReLU written as ``F.relu`` between two linear
    or conv layers is seen at the second layer's input and reported under the first. Under
    DDP the sampled statistics are gathered from every rank: a unit counts as dead only if
    it was dead on every rank's batch. A NaN is localised on the rank that met it and
    reported with that rank. Hooks are always removed, also on exceptions.

    Args:
        policy: ``record`` or ``strict``.
        every_n_steps: Sampling interval for the dead-unit and saturation statistics.
        thresholds: An :class:`~guardrail.checks.activations.ActivationThresholds`, or a
            mapping of the fields to change.

    Example:
        >>> import torch
        >>> import lightning.pytorch as pl
        >>> from torch import nn
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from guardrail import GuardrailModule
        >>> class Log(nn.Module):  # log of values that reach zero and below
        ...     def forward(self, x):
        ...         return torch.log(x)
        >>> net = nn.Sequential(nn.Linear(4, 8), Log(), nn.Linear(8, 1))
        >>> _ = torch.manual_seed(0)
        >>> data = DataLoader(TensorDataset(torch.randn(64, 4), torch.randn(64)), batch_size=16)
        >>> probe = ActivationProbe()
        >>> trainer = pl.Trainer(callbacks=[probe], max_steps=2, logger=False,
        ...                      enable_progress_bar=False, enable_model_summary=False,
        ...                      enable_checkpointing=False)
        >>> trainer.fit(GuardrailModule(net), data)
        >>> [(f.check, f.where) for f in probe.findings]
        [('probe.nonfinite', 'net.1')]
    """

    family = "probe"
    state_fields = ("dead", "saturated", "_seen", "_nonfinite_seen")

    def __init__(self, policy: Policy = "record", every_n_steps: int = 25,
                 thresholds: ActivationThresholds | Mapping[str, Any] | None = None) -> None:
        super().__init__(policy)
        self.require(("every_n_steps", every_n_steps, every_n_steps >= 1, ">= 1"))
        self.thresholds = ActivationThresholds.coerce(thresholds)
        self.every_n_steps = every_n_steps
        self.dead: list[dict[str, float]] = []
        self.saturated: list[dict[str, float]] = []
        self._batch: Any = None
        self._batch_idx = 0
        self._stats: dict[str, dict[str, Tensor]] = {}
        self._sampling = False
        self._handles: list[Any] = []
        self._nonfinite_seen = False
        self._seen = 0
        self._last: tuple[str, nn.Module, int] | None = None

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                             batch_idx: int) -> None:
        """Keep a reference to the batch; on sampled steps, hook the activations."""
        self._batch, self._batch_idx = batch, batch_idx
        self._sampling = trainer.global_step % self.every_n_steps == 0  # alike on every rank
        if self._sampling:
            self._hook(pl_module)

    def on_before_backward(self, trainer: Trainer, pl_module: LightningModule,
                           loss: Tensor) -> None:
        """The always-on check: a non-finite loss triggers the localising replay."""
        if self._nonfinite_seen or bool(torch.isfinite(loss.detach()).all()):
            return
        self._nonfinite_seen = True
        self._remove_hooks()
        self.emit(trainer, self._localise(pl_module))

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        """Read the sampled statistics (one transfer), judge them, agree on stopping."""
        self._batch = None
        self._remove_hooks()
        if self._sampling:
            self._sampling = False
            # One transfer of this rank's statistics, then a gather (a collective on the
            # sampled steps, which every rank shares): a unit is dead only if dead everywhere.
            merged = merge_ranks(gather_objects(self._read_stats()))
            self._stats = {}
            for key, target in (("dead", self.dead), ("saturated", self.saturated)):
                if merged[key]:
                    target.append(merged[key])
            self.emit_once(trainer, dead_unit_findings(self.dead, self.thresholds))
            self.emit_once(trainer, saturation_findings(self.saturated, self.thresholds))
        self._seen += 1
        if self._seen % self.every_n_steps == 0:  # the same steps on every rank
            self.enforce(trainer)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Never leave a hook behind."""
        self._remove_hooks()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule,
                     exception: BaseException) -> None:
        """Never leave a hook behind."""
        self._remove_hooks()

    def _hook(self, pl_module: LightningModule) -> None:
        self._last = None  # the last layer that ran, on this step
        for name, module in pl_module.named_modules():
            if isinstance(module, _RELUS):
                self._handles.append(module.register_forward_hook(
                    lambda m, a, out, name=name: self._dead(name, out)))
            bounds = _SATURATING.get(type(module))
            if bounds is not None:
                self._handles.append(module.register_forward_hook(
                    lambda m, a, out, name=name, b=bounds: self._saturation(name, out, b)))
            if isinstance(module, _LAYERS):
                self._handles.append(module.register_forward_hook(
                    lambda m, a, out, name=name: self._layer(name, m, a, out)))
            elif isinstance(module, _RELUS):
                self._handles.append(module.register_forward_hook(
                    lambda m, a, out, name=name: setattr(self, "_last", (name, m, -1))))

    def _layer(self, name: str, module: nn.Module, args: Any, out: Any) -> None:
        """A linear or conv layer fed by another through a functional ReLU (``F.relu``).

        Its input is then non-negative, and a unit that is zero on every sample is dead: it
        is counted under the layer that produced it (the last layer that ran, if its output
        had as many units), unless an ``nn.ReLU`` module in between already counts it.
        """
        x = first_tensor(args)
        last, self._last = self._last, (name, module, out.shape[1] if isinstance(out, Tensor)
                                         and out.ndim >= 2 else -1)
        if last is None or isinstance(last[1], _RELUS) or x is None or x.ndim < 2 or \
                x.shape[0] < 2 or last[2] != x.shape[1] or not x.is_floating_point():
            return
        x = x.detach()
        if bool((x < 0).any()):  # not the output of a ReLU
            return
        self._dead(last[0], x)

    def _dead(self, name: str, out: Any) -> None:
        if not isinstance(out, Tensor) or out.ndim < 2 or out.shape[0] < 2:
            return
        units = out.detach().transpose(0, 1).reshape(out.shape[1], -1)  # [units, batch * ...]
        alive = (units > 0).any(dim=1).float()
        kept = self._stats.setdefault("alive", {})
        kept[name] = torch.maximum(kept[name], alive) if name in kept else alive

    def _saturation(self, name: str, out: Any, bounds: tuple[float, float]) -> None:
        if isinstance(out, Tensor) and out.numel():
            o = out.detach()
            self._stats.setdefault("saturated", {})[name] = \
                ((o <= bounds[0]) | (o >= bounds[1])).float().mean().reshape(1)

    def _read_stats(self) -> dict[str, dict[str, list[float]]]:
        """The sampled statistics of this rank, on the host, in one transfer."""
        names = [(key, name) for key, stats in self._stats.items() for name in stats]
        if not names:
            return {}
        flat = torch.cat([self._stats[k][n].float().reshape(-1) for k, n in names]).tolist()
        out: dict[str, dict[str, list[float]]] = {}
        start = 0
        for key, name in names:
            size = self._stats[key][name].numel()
            out.setdefault(key, {})[name] = flat[start:start + size]
            start += size
        return out

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _localise(self, pl_module: LightningModule) -> Any:
        batch, step = self._batch, getattr(pl_module.trainer, "global_step", None)
        if batch is None:
            return nonfinite_finding([], step)
        if not _all_finite(batch):
            return nonfinite_finding([], step, inputs_finite=False)
        calls: list[tuple[str, bool, bool]] = []
        # Only this rank replays: SyncBatchNorm must not wait for the others (eval: no sync).
        synced = [m for m in pl_module.modules() if isinstance(m, nn.SyncBatchNorm) and m.training]
        try:
            for m in synced:
                m.eval()
            with _replay_hooks(pl_module, calls), no_logging(pl_module), torch.no_grad(), \
                    contextlib.suppress(Exception):
                pl_module.training_step(batch, self._batch_idx)
        finally:
            for m in synced:
                m.train()
        return nonfinite_finding(calls, step)


@contextlib.contextmanager
def _replay_hooks(model: nn.Module, calls: list[tuple[str, bool, bool]]) -> Iterator[None]:
    # The module itself is named "forward": a functional op in its forward() (torch.log of a
    # value that reaches zero) makes it the first call with finite inputs and a NaN output.
    handles = [m.register_forward_hook(
        lambda m, a, o, n=n or "forward": calls.append(
            (n, _all_finite(a), _all_finite(first_tensor(o)))))
        for n, m in model.named_modules()]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
