"""``ProgressLog``: plain progress lines for runs whose output is not a terminal."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from guardrail.shapes import batch_size

log = logging.getLogger("guardrail.progress")


class ProgressLog(Callback):
    """One line per training epoch, and one every ``every_s`` seconds within a long epoch.

    A progress bar redraws one line of a terminal; written to a file or a CI log it is either
    garbled or silent. This callback writes plain lines instead (epoch, step, training loss,
    samples per second, time left), on rank zero, to stdout, or through the
    ``guardrail.progress`` logger (``use_logging``: in the training app, whose logging goes
    to stdout and the run directory's ``train.log``). The app uses it in place of Lightning's
    bar whenever stdout is not a terminal.

    Args:
        every_s: Seconds between lines within an epoch.
        use_logging: Write through the ``guardrail.progress`` logger instead of printing.

    Example:
        >>> import io, contextlib, torch
        >>> import lightning.pytorch as pl
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from guardrail import GuardrailModule
        >>> data = DataLoader(TensorDataset(torch.randn(64, 4), torch.randn(64)), batch_size=16)
        >>> out = io.StringIO()
        >>> trainer = pl.Trainer(callbacks=[ProgressLog()], max_epochs=2, logger=False,
        ...                      enable_progress_bar=False, enable_model_summary=False,
        ...                      enable_checkpointing=False)
        >>> with contextlib.redirect_stdout(out):
        ...     trainer.fit(GuardrailModule(torch.nn.Linear(4, 1)), data)
        >>> [line.split(" loss")[0] for line in out.getvalue().splitlines()]
        ['epoch 1/2 step 4/8', 'epoch 2/2 step 8/8']

    """

    def __init__(self, every_s: float = 30.0, use_logging: bool = False) -> None:
        super().__init__()
        if not every_s > 0:
            from guardrail.errors import ConfigError

            raise ConfigError(f"ProgressLog: every_s={every_s!r} must be > 0.")
        self.every_s = every_s
        self.use_logging = use_logging
        self._start = self._last = 0.0
        self._samples = 0
        self._steps_at_start = 0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start the clocks (after the start-up work: the replay, the shape walk)."""
        self._start = self._last = time.perf_counter()
        self._samples, self._steps_at_start = 0, trainer.global_step

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        """Count samples; write a line when ``every_s`` has passed since the last one."""
        self._samples += batch_size(batch) or 0
        if time.perf_counter() - self._last >= self.every_s:
            self._write(trainer, outputs)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """A line at every epoch's end."""
        self._write(trainer, None)

    def _write(self, trainer: Trainer, outputs: Any) -> None:
        self._last = now = time.perf_counter()
        if not trainer.is_global_zero:
            return
        elapsed = max(now - self._start, 1e-9)
        done = trainer.global_step - self._steps_at_start
        total = _total_steps(trainer)
        line = f"epoch {trainer.current_epoch + 1}" + (
            f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else "")
        line += f" step {trainer.global_step}" + (f"/{total}" if total else "")
        loss = _loss(trainer, outputs)
        line += f" loss {loss:.4g}" if loss is not None else ""
        line += f" {self._samples / elapsed:.0f} samples/s"
        if total and done > 0:
            line += f" ETA {_duration(elapsed / done * max(total - trainer.global_step, 0))}"
        if self.use_logging:
            log.info(line)
        else:
            print(line, flush=True)


def _total_steps(trainer: Trainer) -> int | None:
    try:
        total = trainer.estimated_stepping_batches
    except Exception:  # an iterable loader of unknown length
        return None
    return int(total) if isinstance(total, int | float) and math.isfinite(total) else None


def _loss(trainer: Trainer, outputs: Any) -> float | None:
    value = outputs.get("loss") if isinstance(outputs, dict) else outputs
    if value is None:
        metrics = trainer.callback_metrics
        value = next((metrics[k] for k in ("train/loss_epoch", "train/loss", "train_loss",
                                            "loss") if k in metrics), None)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _duration(seconds: float) -> str:
    """``1h02m``, ``4m05s`` or ``12s``.

    Example:
        >>> _duration(3725), _duration(245), _duration(12.4)
        ('1h02m', '4m05s', '12s')
    """
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
