"""``GuardrailModule``: a LightningModule that declares what the guardrails need.

A subclass states its ``task``, gives an ``example_input_array`` and, for tabular inputs,
``feature_names``; the base supplies one shared step for train/val/test, the task's loss, the
task's torchmetrics logged as ``stage/metric``, and the optimiser.

Example:
    >>> import torch
    >>> from torch import nn
    >>> class Tiny(GuardrailModule):
    ...     task = "regression"
    ...     def __init__(self, lr: float = 1e-2) -> None:
    ...         super().__init__(net=nn.Linear(3, 1), lr=lr, feature_names=["a", "b", "c"])
    ...         self.example_input_array = torch.zeros(2, 3)
    >>> m = Tiny()
    >>> sorted(m.metrics["val_metrics"].keys())
    ['val/mae', 'val/rmse']
    >>> m(torch.zeros(4, 3)).shape
    torch.Size([4])

"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

import lightning.pytorch as pl
import torch
import torchmetrics
from torch import Tensor, nn

from guardrail.errors import ConfigError
from guardrail.shapes import batch_size

if TYPE_CHECKING:
    from guardrail.preprocess import Preprocessor

Task = Literal["regression", "binary", "multiclass", "reconstruction", "ranking"]
Stage = Literal["train", "val", "test"]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], Any]

TASKS: tuple[str, ...] = get_args(Task)
STAGES: tuple[Stage, ...] = ("train", "val", "test")
PREPROCESSOR_KEY = "guardrail_preprocessor"  # the declared preprocessor in a checkpoint


def task_metrics(task: str, num_classes: int | None = None) -> dict[str, torchmetrics.Metric]:
    """The default torchmetrics of a task, keyed by short name.

    Example:
        >>> sorted(task_metrics("binary"))
        ['auroc', 'average_precision']

    """
    if task in ("regression", "reconstruction"):
        return {
            "rmse": torchmetrics.MeanSquaredError(squared=False),
            "mae": torchmetrics.MeanAbsoluteError(),
        }
    if task == "binary":
        return {
            "auroc": torchmetrics.AUROC(task="binary"),
            "average_precision": torchmetrics.AveragePrecision(task="binary"),
        }
    if task == "multiclass":
        if not num_classes:
            raise ConfigError(
                "task 'multiclass' needs num_classes; pass num_classes=C to GuardrailModule "
                "(Hydra: `module.num_classes=C`)."
            )
        return {"accuracy": torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)}
    if task == "ranking":
        return {}  # ranking metrics need query ids; ranking modules define their own.
    raise ConfigError(f"Unknown task {task!r}; choose one of {', '.join(TASKS)}.")


class GuardrailModule(pl.LightningModule):
    """LightningModule base for guardrail-aware models.

    Args:
        net: The network; from Hydra config it is instantiated by ``_target_``.
        task: Overrides the class attribute ``task`` (regression, binary, multiclass,
            reconstruction, ranking); it picks the loss and the metrics.
        lr: Learning rate of the default AdamW optimiser.
        weight_decay: Weight decay of the default AdamW optimiser.
        optimizer: A partial optimiser (``_partial_: true`` in Hydra) taking the parameters;
            replaces the default AdamW.
        scheduler: A partial LR scheduler taking the optimiser; stepped per epoch.
        num_classes: Number of classes, for ``multiclass``.
        feature_names: Names of the input features, where inputs have names.
        preprocessor: The fitted :class:`~guardrail.preprocess.Preprocessor` that turns raw
            records into this module's inputs, for data whose datamodule does not give one
            (``records(split)`` without ``preprocessor()``). The ``DataContract`` guardrail
            writes it beside the contract, checkpoints keep its state, and ``guardrail
            export`` / ``guardrail serve`` answer raw records through it. Subclasses may
            override :meth:`preprocessor` instead.

    Logged keys: ``{train,val,test}/loss`` and ``{stage}/{metric}`` for each metric.

    Subclasses override :meth:`split_batch` for batches other than ``(x, y)`` or dicts with a
    ``target`` key, :meth:`compute_loss` for another loss, and :meth:`build_metrics` /
    :meth:`update_metrics` for domain metrics.

    """

    task: ClassVar[str] = "regression"

    def __init__(
        self,
        net: nn.Module | None = None,
        *,
        task: str | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        num_classes: int | None = None,
        feature_names: Sequence[str] | None = None,
        preprocessor: Preprocessor | None = None,
    ) -> None:
        super().__init__()
        if task is not None:
            self.task = task  # instance attribute shadows the class default
        if self.task not in TASKS:
            raise ConfigError(
                f"Unknown task {self.task!r} for {type(self).__name__}; choose one of "
                f"{', '.join(TASKS)} (Hydra: `module.task=regression`)."
            )
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler", "preprocessor"],
                                  logger=False)
        self.net = net
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self._preprocessor = preprocessor
        metrics = self.build_metrics()
        self.metrics = nn.ModuleDict(
            {
                f"{stage}_metrics": torchmetrics.MetricCollection(metrics,
                                                                  prefix=f"{stage}/").clone()
                for stage in STAGES
            }
        )

    # ----------------------------------------------------------------- what subclasses adapt
    def preprocessor(self) -> Preprocessor | None:
        """The module's fitted preprocessor of raw records (default: its ``preprocessor``)."""
        return self._preprocessor

    def build_metrics(self) -> dict[str, torchmetrics.Metric]:
        """The metrics of this module, keyed by short name; default: the task's."""
        return task_metrics(self.task, self.hparams.get("num_classes"))

    def split_batch(self, batch: Any) -> tuple[tuple[Any, ...], Any]:
        """Split a batch into the forward inputs and the target.

        Understands ``(x, y)``, ``(x1, x2, ..., y)`` and dicts with a ``target`` key (every
        other key, in order, is an input). Reconstruction tasks take ``x`` alone as target.
        """
        if isinstance(batch, dict):
            inputs = tuple(v for k, v in batch.items() if k != "target")
            return inputs, batch.get("target", inputs[0] if self.task == "reconstruction" else None)
        if isinstance(batch, Tensor):
            return (batch,), batch
        *inputs, target = batch
        return tuple(inputs), target

    def compute_loss(self, preds: Tensor, target: Tensor) -> Tensor:
        """The training loss of the task (MSE, BCE with logits, or cross-entropy)."""
        if self.task == "binary":
            return nn.functional.binary_cross_entropy_with_logits(preds, target.float())
        if self.task == "multiclass":
            return nn.functional.cross_entropy(preds, target.long())
        return nn.functional.mse_loss(preds, target)

    def update_metrics(
        self, metrics: torchmetrics.MetricCollection, preds: Tensor, target: Tensor
    ) -> None:
        """Feed one batch to ``metrics``; override to transform (e.g. back to dollars)."""
        if self.task == "binary":
            preds, target = torch.sigmoid(preds), target.long()
        metrics.update(preds.detach(), target)

    # ------------------------------------------------------------------------ Lightning API
    def forward(self, *inputs: Any) -> Tensor:
        """Run the network; a single trailing output dimension of 1 is squeezed."""
        if self.net is None:
            raise ConfigError(
                f"{type(self).__name__} has no network: pass net=... or override forward()."
            )
        out = self.net(*inputs)
        if isinstance(out, Tensor) and out.ndim == 2 and out.shape[-1] == 1:
            out = out.squeeze(-1)
        return out

    def shared_step(self, batch: Any, stage: Stage) -> Tensor:
        """Forward, loss and metrics for one batch of ``stage``; returns the loss."""
        inputs, target = self.split_batch(batch)
        preds = self(*inputs)
        loss = self.compute_loss(preds, target)
        size = batch_size(inputs)
        # sync_dist: under DDP the logged loss is the mean over ranks, not rank zero's share
        # (one scalar all-reduce; torchmetrics metrics below sync themselves).
        self.log(f"{stage}/loss", loss, prog_bar=stage != "test", batch_size=size,
                 on_step=stage == "train", on_epoch=True, sync_dist=True)
        metrics = self.metrics[f"{stage}_metrics"]
        if len(metrics):
            self.update_metrics(metrics, preds, target)
            self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=size)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """One training step."""
        return self.shared_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        """One validation step."""
        return self.shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        """One test step."""
        return self.shared_step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Predictions for a batch (the target, if any, is ignored)."""
        inputs, _ = self.split_batch(batch)
        return self(*inputs)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the declared preprocessor's class and fitted state (JSON data, no pickle)."""
        from guardrail.preprocess import preprocessor_state

        pre = self.preprocessor()
        if pre is not None:
            checkpoint[PREPROCESSOR_KEY] = preprocessor_state(pre)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the checkpoint's preprocessor when the module was built without one."""
        from guardrail.preprocess import restore_preprocessor

        if self._preprocessor is None and PREPROCESSOR_KEY in checkpoint:
            self._preprocessor = restore_preprocessor(checkpoint[PREPROCESSOR_KEY],
                                                      "the checkpoint")

    def configure_optimizers(self) -> Any:
        """AdamW(lr, weight_decay), or the configured partial optimiser and scheduler."""
        params = [p for p in self.parameters() if p.requires_grad]
        if self.optimizer_factory is not None:
            optimizer = self.optimizer_factory(params)
        else:
            optimizer = torch.optim.AdamW(
                params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
            )
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}

