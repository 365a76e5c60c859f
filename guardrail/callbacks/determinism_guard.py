"""``DeterminismGuard``: make training deterministic, and prove it by replaying the first steps."""

from __future__ import annotations

import os
import time
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.strategies import DDPStrategy, DeepSpeedStrategy, SingleDeviceStrategy
from torch.utils.data import DataLoader, RandomSampler

from guardrail.batches import no_logging, peek_batches, peekable
from guardrail.callbacks.base import GuardrailCallback, Policy
from guardrail.checks.determinism import compare_replays, settings_findings
from guardrail.environment import determinism_settings
from guardrail.findings import Finding, Severity
from guardrail.replay import replay_steps

CUBLAS = ":4096:8"


class DeterminismGuard(GuardrailCallback):
    """Enforce deterministic training and verify it before the first real step.

    *Enforce* (``enforce=True``), for the fit only: deterministic algorithms on, cuDNN
    benchmark off, cuDNN deterministic on, ``CUBLAS_WORKSPACE_CONFIG`` set (a
    ``determinism.settings`` warning if CUDA was already initialised, when setting it is too
    late). What was set before (by ``Trainer(deterministic=, benchmark=)`` or by hand) is kept
    where it is already deterministic (``Trainer(deterministic=True)`` stays an error on a
    nondeterministic op, not a warning), said in an info where it is overridden
    (``benchmark=True``), and restored at teardown, so torch's global settings are the same
    before and after the fit. Seeds, dataloader workers included, come from
    ``seed_everything(seed, workers=True)``, which the training app calls. A train loader
    that shuffles with torch's global random stream (``shuffle=True``, no ``generator``) gets
    a generator of its own, seeded from that seed: otherwise anything else that draws from
    the global stream (a dropout layer added, a probe, a value-dependent branch) moves the
    order of every later epoch, and two runs that differ only in a hyperparameter see
    different batches.

    *Verify* (``verify_steps=K > 0``): at fit start, replay the first K optimisation steps
    twice from identical model, optimiser, RNG state and batches, and compare the parameters
    bitwise after every step; on a mismatch, replay again hashing every module's output, so
    that the ``determinism.mismatch`` error names the first module that diverged and the step.
    A healthy run pays about 2K steps; the model, optimiser and RNG are restored afterwards.
    Under DDP every rank replays its own first batches on its local module (gradients are
    not synchronised during the replay, so the ranks never wait for each other) and the run
    counts as verified when every rank agrees; a mismatch names the rank that saw it.

    When it switches deterministic algorithms on itself, torch's filling of uninitialised
    memory (``torch.utils.deterministic.fill_uninitialized_memory``, on by default with them)
    is left off: every ``torch.empty`` would be filled with NaN, which made an LSTM's CPU
    training step 10% slower (``scripts/bench_overhead.py``), and it only matters to code
    that reads memory before writing it. ``fill_uninitialized_memory=True`` keeps it.
    Manual optimisation, several optimisers, iterable datasets and sharding strategies (FSDP,
    DeepSpeed) are skipped with an ``info`` finding.

    Also reported: a user ``worker_init_fn`` (it replaces Lightning's worker seeding) with
    workers, and settings that defeat determinism while enforcement is off.

    Args:
        enforce: Switch deterministic algorithms on at setup.
        verify_steps: Steps replayed at fit start (0: no verification).
        fill_uninitialized_memory: Let torch fill uninitialised memory while deterministic
            algorithms are on (see above).
        policy: ``record`` or ``strict`` (a mismatch stops training).

    Logged keys: ``guardrail/determinism_verified`` (1.0 or 0.0) and
    ``guardrail/determinism_replay_s`` (seconds spent replaying).

    Example:
        >>> import lightning.pytorch as pl
        >>> from lightning.pytorch.demos.boring_classes import BoringModel
        >>> guard = DeterminismGuard(verify_steps=2)
        >>> trainer = pl.Trainer(callbacks=[guard], max_steps=2, logger=False,
        ...                      enable_progress_bar=False, enable_checkpointing=False,
        ...                      enable_model_summary=False)
        >>> trainer.fit(BoringModel())
        >>> guard.verified, guard.findings
        (True, [])

    """

    family = "determinism"

    def __init__(self, enforce: bool = True, verify_steps: int = 2,
                 fill_uninitialized_memory: bool = False, policy: Policy = "record") -> None:
        super().__init__(policy)
        if verify_steps < 0:
            from guardrail.errors import ConfigError

            raise ConfigError(f"DeterminismGuard: verify_steps={verify_steps} must be >= 0; "
                              "e.g. `guardrails.callbacks.determinism.verify_steps=2`.")
        self.enforce_settings = enforce
        self.verify_steps = verify_steps
        self.fill_uninitialized_memory = fill_uninitialized_memory
        self.verified: bool | None = None
        self.replay_seconds = 0.0
        self._saved: dict[str, Any] | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Switch deterministic settings on (``enforce``); at fit, report those defeating it."""
        fit = stage == "fit"
        on_cuda = torch.cuda.is_available()
        if self.enforce_settings:
            if fit and on_cuda and torch.cuda.is_initialized() and \
                    os.environ.get("CUBLAS_WORKSPACE_CONFIG") is None:
                self.emit(trainer, Finding(
                    "determinism.settings", Severity.WARNING,
                    "CUDA was initialised before CUBLAS_WORKSPACE_CONFIG was set, so cuBLAS "
                    "may stay nondeterministic.", where="CUBLAS_WORKSPACE_CONFIG",
                    hint=f"export CUBLAS_WORKSPACE_CONFIG={CUBLAS} before starting Python."))
            self._saved = _global_settings()
            if fit and self._saved["benchmark"]:
                self.emit(trainer, Finding(
                    "determinism.settings", Severity.INFO,
                    "cuDNN benchmark was on (Trainer(benchmark=True) or set by hand); it is "
                    "off while this Trainer runs, because it picks kernels by timing, which "
                    "differ between runs. It is restored afterwards.", where="cudnn.benchmark",
                    hint="Keep it on with DeterminismGuard(enforce=False) "
                         "(`guardrails.callbacks.determinism.enforce=false`), and give up "
                         "bitwise reproducibility."))
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS)
            if not self._saved["deterministic"]:  # keep Trainer(deterministic=True)'s errors
                torch.use_deterministic_algorithms(True, warn_only=True)
                torch.utils.deterministic.fill_uninitialized_memory = \
                    self.fill_uninitialized_memory
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        if fit:
            for finding in settings_findings(determinism_settings(), self.enforce_settings,
                                             on_cuda):
                self.emit(trainer, finding)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Put torch's global determinism settings back as they were before ``setup``."""
        if self._saved is not None:
            _restore(self._saved)
            self._saved = None

    def on_exception(self, trainer: Trainer, pl_module: LightningModule,
                     exception: BaseException) -> None:
        """Restore the settings when the fit ends by an exception (Lightning skips teardown)."""
        self.teardown(trainer, pl_module, "fit")

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Check worker seeding, then replay the first steps twice and compare."""
        loader = trainer.train_dataloader
        if self.enforce_settings:
            own_order_generator(loader)
        self._check_workers(trainer, loader)
        if self.verify_steps:
            self._verify(trainer, pl_module, loader)
        self.enforce(trainer)

    def _check_workers(self, trainer: Trainer, loader: Any) -> None:
        if not isinstance(loader, DataLoader) or loader.num_workers == 0:
            return
        fn = loader.worker_init_fn
        if fn is not None and "pl_worker_init_function" not in repr(fn):
            self.emit(trainer, Finding(
                "determinism.worker_seed", Severity.WARNING,
                f"The train dataloader has its own worker_init_fn ({getattr(fn, '__name__', fn)}),"
                " so Lightning does not seed its workers: random augmentations may differ "
                "between runs and repeat across workers.", where="train_dataloader.worker_init_fn",
                hint="Seed numpy and random inside it from torch.initial_seed(), or remove it "
                     "and call seed_everything(seed, workers=True)."))

    def _verify(self, trainer: Trainer, pl_module: LightningModule, loader: Any) -> None:
        reason = _cannot_replay(trainer, pl_module, loader)
        if reason:
            self.emit(trainer, Finding(
                "determinism.skipped", Severity.INFO, f"Replay verification skipped: {reason}.",
                hint="Determinism is still enforced; compare two runs with `guardrail diff`."))
            return
        start = time.perf_counter()
        batches = [trainer.strategy.batch_to_device(b)
                   for b in peek_batches(loader, self.verify_steps)]
        optimizer = trainer.optimizers[0]

        def loss_fn(batch: Any, i: int) -> torch.Tensor:
            with trainer.precision_plugin.train_step_context():
                out = pl_module.training_step(batch, i)
            return out["loss"] if isinstance(out, dict) else out

        with no_logging(pl_module):
            # Cheap first: parameters only. Only on a mismatch, replay again hashing every
            # module's output to name where it started (a healthy run pays 2K steps).
            run_a, run_b = replay_steps(pl_module, optimizer, batches, loss_fn, outputs=False)
            if compare_replays(run_a, run_b) is not None:
                located = replay_steps(pl_module, optimizer, batches, loss_fn, outputs=True)
                if compare_replays(*located) is not None:
                    run_a, run_b = located
        self.replay_seconds = time.perf_counter() - start
        finding = compare_replays(run_a, run_b)
        if finding is not None:
            self.emit(trainer, finding)
        # Under DDP each rank replays its own batches; the run is verified when all agree.
        self.verified = bool(trainer.strategy.reduce_boolean_decision(finding is None, all=True))
        self.log_metrics(trainer, {"guardrail/determinism_verified": float(self.verified),
                                   "guardrail/determinism_replay_s": self.replay_seconds})


def own_order_generator(loader: Any) -> bool:
    """Give a loader that shuffles from the global random stream a generator of its own.

    Seeded from ``torch.initial_seed()`` (what ``seed_everything`` set), so the data order
    depends on the seed alone. Returns whether a generator was given.

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader, RandomSampler
        >>> _ = torch.manual_seed(0)
        >>> loader = DataLoader(list(range(6)), batch_size=2, shuffle=True)
        >>> own_order_generator(loader), own_order_generator(loader)
        (True, False)
        >>> first = [b.tolist() for b in loader]
        >>> _ = torch.rand(5)  # another consumer of the global stream
        >>> _ = loader.sampler.generator.manual_seed(0)  # the same seed: the same order
        >>> [b.tolist() for b in loader] == first
        True
    """
    if not isinstance(loader, DataLoader):
        return False
    batch_sampler = getattr(loader, "batch_sampler", None)
    for sampler in (loader.sampler, getattr(batch_sampler, "sampler", None)):
        if isinstance(sampler, RandomSampler) and sampler.generator is None:
            sampler.generator = torch.Generator().manual_seed(torch.initial_seed())
            return True
    return False


def _global_settings() -> dict[str, Any]:
    """Torch's process-wide determinism settings, to restore after the fit."""
    return {"deterministic": torch.are_deterministic_algorithms_enabled(),
            "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "benchmark": torch.backends.cudnn.benchmark,
            "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "fill_memory": torch.utils.deterministic.fill_uninitialized_memory,
            "cublas": os.environ.get("CUBLAS_WORKSPACE_CONFIG")}


def _restore(saved: dict[str, Any]) -> None:
    torch.use_deterministic_algorithms(saved["deterministic"], warn_only=saved["warn_only"])
    torch.backends.cudnn.benchmark = saved["benchmark"]
    torch.backends.cudnn.deterministic = saved["cudnn_deterministic"]
    torch.utils.deterministic.fill_uninitialized_memory = saved["fill_memory"]
    if saved["cublas"] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved["cublas"]


def _cannot_replay(trainer: Trainer, pl_module: LightningModule, loader: Any) -> str | None:
    strategy = trainer.strategy
    if isinstance(strategy, DeepSpeedStrategy) or \
            not isinstance(strategy, SingleDeviceStrategy | DDPStrategy):
        return (f"the {type(strategy).__name__} strategy shards the parameters, and the "
                "replay needs each rank's full model")
    if not pl_module.automatic_optimization:
        return "the module uses manual optimisation"
    if len(trainer.optimizers) != 1:
        return f"{len(trainer.optimizers)} optimisers (one is supported)"
    if not peekable(loader):
        return "the train dataloader is not a map-style DataLoader"
    return None
