"""``LossProbe``: a loss that starts wrong, diverges, never moves, swings, or double-activates."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch import Tensor, nn

from guardrail.batches import batch_tensors, default_target
from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.checks.loss import (
    LossThresholds,
    divergence_findings,
    double_softmax_findings,
    initial_findings,
    oscillation_findings,
    plateau_findings,
)
from guardrail.checks.loss_function import (
    LossMatch,
    constant_loss,
    declared_references,
    identify_loss,
    initial_loss,
)
from guardrail.distributed import mean_across_ranks
from guardrail.errors import ConfigError
from guardrail.findings import Finding, Severity
from guardrail.shapes import Recorder

# Validation-loss keys as people log them, most specific first (``monitor`` overrides).
VAL_LOSS_KEYS = ("val/loss", "val_loss", "valid_loss", "validation_loss", "val/loss_epoch",
                 "val_loss_epoch", "valid/loss", "validation/loss")
_VAL_LOSS = re.compile(r"^(val|valid|validation)[/_.-]?loss(_epoch)?$", re.IGNORECASE)
_ACTIVATIONS = (nn.Softmax, nn.Sigmoid, nn.LogSoftmax)


def val_loss_key(metrics: Mapping[str, Any], monitor: str | None = None) -> str | None:
    """The key under which a module logs its validation loss, or None.

    Example:
        >>> val_loss_key({"train_loss": 1.0, "val_loss": 0.9})
        'val_loss'
        >>> val_loss_key({"val/acc": 0.5}) is None
        True
    """
    if monitor is not None:
        return monitor if monitor in metrics else None
    known = [k for k in VAL_LOSS_KEYS if k in metrics]
    return known[0] if known else next((k for k in metrics if _VAL_LOSS.match(k)), None)


class LossProbe(GuardrailCallback):
    """Watch the training and validation loss for the classic failures, on any module.

    ``loss.initial`` (the first loss far above an untrained model's: ln C for C classes, ln 2
    for binary, the mean squared target for regression), ``loss.divergence`` (the recent loss
    an order of magnitude above its best), ``loss.plateau`` (after ``plateau_min_epochs``
    epochs, or at the end of a run of at least ``plateau_min_steps`` steps however few its
    epochs, the best loss
    is no better than a constant prediction's) and ``loss.oscillation`` (large up-and-down
    swings of the training loss between epochs).

    A ``GuardrailModule`` declares its task and loss. On a plain ``LightningModule`` the
    probe reads the first training steps instead: the model's prediction (its ``forward``
    output, or the last layer's), the batch's tensors and the loss ``training_step`` returned
    (or, under manual optimisation, passed to ``manual_backward``). It infers the task from
    the target and output shapes, and identifies the loss function by recomputing the
    common ones (:mod:`guardrail.checks.loss_function`); that gives the constant-prediction
    level in the module's own units, and ``loss.double_softmax`` when probabilities reach a
    loss that applies softmax or sigmoid again. What it cannot read is said in a
    ``loss.skipped`` info. The validation loss is found under ``monitor`` or the usual keys
    (``val/loss``, ``val_loss``, ``valid_loss``, ...); without one, the plateau is judged on
    the training loss, and an info says so. A ``monitor`` that is never logged is a
    configuration error, raised after the first validation epoch with the keys that are.

    Step losses stay on the device and are read once per epoch; each check fires at most
    once per run. Under DDP the step and validation losses are averaged over ranks (one
    gather per epoch) before they are judged, so every rank judges the loss DDP optimises.

    Args:
        policy: ``record`` or ``strict``.
        monitor: The validation-loss key; None finds it among the usual names.
        identify_steps: First training steps on which a plain module's loss is read.
        thresholds: A :class:`~guardrail.checks.loss.LossThresholds`, or a mapping of the
            fields to change (``{"plateau_min_epochs": 8}``).

    Example:
        >>> import torch
        >>> import lightning.pytorch as pl
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> class Plain(pl.LightningModule):  # softmax output into cross_entropy
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(-1))
        ...     def training_step(self, batch, i):
        ...         x, y = batch
        ...         return torch.nn.functional.cross_entropy(self.net(x), y)
        ...     def configure_optimizers(self):
        ...         return torch.optim.Adam(self.parameters())
        >>> _ = torch.manual_seed(0)
        >>> data = DataLoader(TensorDataset(torch.randn(64, 4), torch.randint(0, 3, (64,))), 16)
        >>> probe = LossProbe()
        >>> trainer = pl.Trainer(callbacks=[probe], max_epochs=1, logger=False,
        ...                      enable_progress_bar=False, enable_model_summary=False,
        ...                      enable_checkpointing=False)
        >>> trainer.fit(Plain(), data)
        >>> [(f.check, f.where) for f in probe.findings if f.severity.value != "info"]
        [('loss.double_softmax', 'net.1')]
    """

    family = "loss"
    state_fields = ("step_losses", "train_epochs", "val_epochs", "expected", "trivial",
                    "val_key", "_attempts", "_batches")

    def __init__(self, policy: Policy = "record", monitor: str | None = None,
                 identify_steps: int = 16,
                 thresholds: LossThresholds | Mapping[str, Any] | None = None) -> None:
        super().__init__(policy)
        self.require(("identify_steps", identify_steps, identify_steps >= 1, ">= 1"),
                     ("monitor", monitor, monitor is None or (isinstance(monitor, str) and
                                                            bool(monitor)),
                      "a logged key such as 'val_loss', or None"))
        self.thresholds = LossThresholds.coerce(thresholds)
        self.monitor = monitor
        self.identify_steps = identify_steps
        self.step_losses: list[float] = []
        self.train_epochs: list[float] = []
        self.val_epochs: list[float] = []
        self.max_targets = 4096
        self.expected: float | None = None
        self.trivial: dict[str, float | None] = {}
        self.val_key: str | None = None
        self.match: LossMatch | None = None
        self._targets: dict[str, list[Tensor]] = {"train": [], "val": []}
        self._buffer: list[Tensor] = []
        self._recorder: Recorder | None = None
        self._attempts = 0
        self._batches = 0
        self._backward_loss: Tensor | None = None

    def state_dict(self) -> dict[str, Any]:
        """The base's state, with the identified loss as plain data."""
        state = super().state_dict()
        state["match"] = None if self.match is None else dataclasses.asdict(self.match)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """The base's state, and the identified loss of a resumed run."""
        fresh = self.match is None and not self.step_losses
        super().load_state_dict(state_dict)
        if fresh and state_dict.get("match") is not None:
            self.match = LossMatch(**state_dict["match"])

    # ------------------------------------------------------------------------ training steps
    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                             batch_idx: int) -> None:
        """On a plain module's first steps, record the prediction."""
        self._backward_loss = None
        if not _declared(pl_module) and self.match is None and \
                self._attempts < self.identify_steps:
            self._recorder = Recorder(pl_module)
            self._recorder.start()

    def on_before_backward(self, trainer: Trainer, pl_module: LightningModule,
                           loss: Tensor) -> None:
        """Under manual optimisation, the step's loss is what reaches backward first."""
        if not pl_module.automatic_optimization and self._backward_loss is None:
            self._backward_loss = loss.detach()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        """Keep the step loss on the device; read a plain module's loss on its first steps."""
        loss = self._step_loss(trainer, pl_module, outputs)
        if loss is not None:
            self._buffer.append(loss)
        if self._recorder is not None:
            self._recorder.stop()
            recorder, self._recorder = self._recorder, None
            self._read_step(trainer, recorder, batch, loss)
        if trainer.current_epoch == 0:
            self._keep_target("train", pl_module, batch)
        self._batches += 1
        if self._batches <= self.identify_steps:  # the same batches on every rank
            self.enforce(trainer)

    def _step_loss(self, trainer: Trainer, pl_module: LightningModule,
                   outputs: Any) -> Tensor | None:
        if not pl_module.automatic_optimization:
            if len(trainer.optimizers) > 1:  # adversarial losses are not meant to fall
                self._skip(trainer, "optimizers", "the module steps several optimisers by hand "
                           "(adversarial losses do not fall), so the loss is not judged")
                return None
            loss = self._backward_loss
        else:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            # Lightning divides the returned loss by the accumulation factor.
            if isinstance(loss, Tensor) and trainer.accumulate_grad_batches != 1:
                loss = loss * trainer.accumulate_grad_batches
        if isinstance(loss, Tensor) and loss.numel() == 1:
            return loss.detach().reshape(()).float()
        return None

    def _read_step(self, trainer: Trainer, recorder: Recorder, batch: Any,
                   loss: Tensor | None) -> None:
        """Identify a plain module's loss; on its first step, judge the initial loss."""
        self._attempts += 1
        pred = recorder.prediction
        if pred is None or not pred.is_floating_point():
            if self._attempts == 1:
                self._skip(trainer, "prediction", "the first training step called no module whose "
                           "output could be read, so loss.initial and the constant-prediction "
                           "level are not judged")
            return
        value = float(loss) if loss is not None else math.nan
        match = identify_loss(pred, batch_tensors(batch), value)
        if self._attempts == 1:
            target = batch_tensors(batch)[match.target] if match else default_target(batch)
            judged = initial_loss(pred, target, match.task if match else None) \
                if isinstance(target, Tensor) else None
            if judged is None:
                self._skip(trainer, "prediction", "the target could not be lined up with the "
                           "prediction, so loss.initial is not judged")
            else:
                task, first, self.expected = judged
                self.emit_once(trainer, initial_findings(first, task, self.expected,
                                                         self.thresholds))
        if match is None:
            if self._attempts == self.identify_steps:
                self._skip(trainer, "loss_function", "the loss function was not recognised "
                           "(a custom loss, or extra terms), so the plateau is judged against "
                           "the first epoch instead of a constant prediction")
            return
        self.match = match
        last = recorder.last_leaf
        where = last[0] if last is not None and last[1] is pred and \
            isinstance(dict(trainer.lightning_module.named_modules()).get(last[0]),
                       _ACTIVATIONS) else \
            "training_step" if match.name == "cross_entropy_of_softmax" else "forward"
        self.emit_once(trainer, double_softmax_findings(match, where))
        if trainer.current_epoch == 0:
            self._targets["train"] = []  # kept from here on, by the identified target

    # ---------------------------------------------------------------------------- validation
    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule,
                                outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        """Keep validation targets of the first epoch, for the constant-prediction level."""
        if not trainer.sanity_checking and trainer.current_epoch == 0 and dataloader_idx == 0:
            self._keep_target("val", pl_module, batch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """The epoch's validation loss, under ``monitor`` or the usual keys."""
        if trainer.sanity_checking:
            return
        key = self.val_key or val_loss_key(trainer.callback_metrics, self.monitor)
        if key is None and self.monitor is not None:
            logged = sorted(k for k in trainer.callback_metrics if not k.startswith("guardrail/"))
            raise ConfigError(
                f"LossProbe(monitor={self.monitor!r}): the module logged no such key after a "
                f"validation epoch; it logged: {', '.join(logged) or 'nothing'}. Set monitor to "
                "the key your validation_step logs with self.log (e.g. 'val_loss'), or leave "
                "it None to find the usual names.")
        value = trainer.callback_metrics.get(key) if key is not None else None
        # The mean over ranks (a collective): each rank validated its own share.
        reduced = mean_across_ranks([] if value is None else [float(value)])
        if reduced:
            self.val_key = key
            self.val_epochs.append(reduced[0])

    def _keep_target(self, split: str, pl_module: LightningModule, batch: Any) -> None:
        kept = self._targets[split]
        if sum(len(t) for t in kept) < self.max_targets:
            target = _target(pl_module, batch, self.match)
            if target is not None:
                kept.append(target)

    # -------------------------------------------------------------------------------- epochs
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Read the epoch's step losses (one host sync) and run the checks."""
        # The mean over ranks, step by step (a collective): the loss DDP optimises.
        losses = mean_across_ranks(torch.stack(self._buffer).tolist() if self._buffer else [])
        self._buffer = []
        if losses:
            first_epoch = not self.step_losses
            self.step_losses += losses
            self.train_epochs.append(sum(losses) / len(losses))
            if first_epoch:
                self._set_references(pl_module)
                if _declared(pl_module):
                    self.emit_once(trainer, initial_findings(
                        losses[0], getattr(pl_module, "task", None), self.expected,
                        self.thresholds))
        if not self.val_epochs and trainer.val_dataloaders is not None and \
                trainer.current_epoch == 0:
            self._skip(trainer, "validation", "no validation loss was logged (looked for "
                       f"{self.monitor or ', '.join(VAL_LOSS_KEYS[:4])}), so the plateau is "
                       "judged on the training loss; set "
                       "LossProbe(monitor=...) to the key you log")
        self.emit_once(trainer, divergence_findings(self.step_losses, self.thresholds))
        split, epochs, where = self._judged()
        self.emit_once(trainer, plateau_findings(epochs, self.trivial.get(split), split, where,
                                                 limits=self.thresholds))
        # Judged on the training loss: a small validation set swings by itself (a healthy
        # 2-layer LSTM's validation loss reversed by over 10% twice in 8 epochs).
        self.emit_once(trainer, oscillation_findings(self.train_epochs, "train", "loss",
                                                     self.thresholds))
        self.enforce(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """A run too short in epochs for the plateau rule, but long in steps, is judged now."""
        split, epochs, where = self._judged()
        limits = self.thresholds
        if len(epochs) < limits.plateau_min_epochs and \
                len(self.step_losses) >= limits.plateau_min_steps:
            trivial = self.trivial.get(split)
            self.emit_once(trainer, plateau_findings(
                epochs, trivial, split, where, len(self.step_losses), limits,
                min_epochs=1 if trivial is not None else 2))

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Never leave a hook behind."""
        if self._recorder is not None:
            self._recorder.stop()
            self._recorder = None

    def on_exception(self, trainer: Trainer, pl_module: LightningModule,
                     exception: BaseException) -> None:
        """Never leave a hook behind."""
        self.teardown(trainer, pl_module, "fit")

    # ------------------------------------------------------------------------------- helpers
    def _judged(self) -> tuple[str, list[float], str]:
        """(split, epoch losses, where): validation where a validation loss was logged."""
        if self.val_epochs:
            return "val", self.val_epochs, self.val_key or "val/loss"
        return "train", self.train_epochs, "train/loss"

    def _skip(self, trainer: Trainer, where: str, why: str) -> None:
        self.emit_once(trainer, [Finding("loss.skipped", Severity.INFO, f"Not judged: {why}.",
                                         where=where, hint="The other loss checks stand.")])

    def _set_references(self, pl_module: LightningModule) -> None:
        train, val = (torch.cat(self._targets[s]) if self._targets[s] else None
                      for s in ("train", "val"))
        self._targets = {"train": [], "val": []}
        if train is None:
            return
        if _declared(pl_module):
            self.expected, trivial_train, trivial_val = declared_references(
                pl_module.compute_loss, getattr(pl_module, "task", None), train, val,
                int(getattr(pl_module, "hparams", {}).get("num_classes") or 0))
        elif self.match is not None:
            trivial_train = constant_loss(self.match, train)
            trivial_val = constant_loss(self.match, train, val) if val is not None else None
        else:
            return
        self.trivial = {"train": trivial_train, "val": trivial_val}


def _declared(pl_module: LightningModule) -> bool:
    """A module that states its task, batch layout and loss (a ``GuardrailModule``)."""
    return getattr(pl_module, "task", None) is not None and \
        callable(getattr(pl_module, "split_batch", None)) and \
        callable(getattr(pl_module, "compute_loss", None))


def _target(pl_module: LightningModule, batch: Any, match: LossMatch | None) -> Tensor | None:
    target: Any = None
    if _declared(pl_module):
        try:
            target = pl_module.split_batch(batch)[1]
        except Exception:  # a batch layout the module's own split does not know
            return None
    elif match is not None:
        tensors = batch_tensors(batch)
        target = tensors[match.target] if match.target < len(tensors) else None
    return target.detach().cpu() if isinstance(target, Tensor) and target.ndim >= 1 else None
