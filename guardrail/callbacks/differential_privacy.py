"""``DifferentialPrivacy``: train any LightningModule with DP-SGD (Opacus) to a privacy budget."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch.utils.data import DataLoader

from guardrail.callbacks.base import GuardrailCallback
from guardrail.distributed import world_size
from guardrail.errors import ConfigError, GuardrailError
from guardrail.findings import Finding, Severity


class DifferentialPrivacy(GuardrailCallback):
    """Train with DP-SGD: per-example clipping, Gaussian noise, Poisson sampling, accounting.

    Through Opacus (``pip install 'guardrail-dl[privacy]'``), inside Lightning's own loop:
    at setup the model's layers are checked (BatchNorm, ``nn.LSTM``/``nn.GRU`` and the like
    are refused with the fix, or replaced in place with ``fix_layers=True``) and the training
    dataloader is replaced by one that samples each example independently with probability
    ``batch_size / n`` (Poisson sampling, which the accounting assumes); when fit starts the
    optimiser is wrapped so that each step clips every example's gradient to
    ``max_grad_norm`` and adds noise calibrated so that the planned ``max_epochs`` spend
    ``target_epsilon`` at ``delta`` (RDP accountant). The ε spent so far is logged as
    ``privacy/epsilon`` after every epoch; ``privacy.dp`` (info) reports the budget when
    training ends, and ``privacy.dp_budget`` (warning) when training ran past the plan and
    spent more than the target.

    Under DDP (``trainer=ddp_cpu``) each rank Poisson-samples its shard, clips its examples'
    gradients, and the sums are averaged with one rank's noise (Opacus'
    ``DistributedDPOptimizer``); evaluation loaders are then not sharded. Other strategies
    (FSDP, DeepSpeed) are refused.

    Other guardrails see the model as usual; the gradient probes read the batch gradient
    before clipping and noise (what the data asks for, not the private update), which the
    ``privacy.dp`` finding says.

    Args:
        target_epsilon: The ε the planned training spends; None: ``noise_multiplier`` is given.
        delta: The δ of the guarantee; None: ``1 / n`` (n training examples).
        max_grad_norm: Each example's gradient is clipped to this L2 norm.
        noise_multiplier: The noise as a multiple of ``max_grad_norm``, instead of a target ε.
        fix_layers: Replace layers Opacus cannot train with its private equivalents.
        enabled: False: the callback does nothing (the app's ``privacy.dp``).
        seed: Seed of the Poisson sampling.
        policy: ``record`` or ``strict`` (this callback raises its refusals either way).

    Example:
        >>> import lightning.pytorch as pl
        >>> from lightning.pytorch.demos.boring_classes import BoringModel, RandomDataset
        >>> dp = DifferentialPrivacy(target_epsilon=8.0, max_grad_norm=1.0)
        >>> pl.Trainer(callbacks=[dp], max_epochs=2, logger=False, enable_progress_bar=False,
        ...            enable_checkpointing=False, enable_model_summary=False).fit(
        ...     BoringModel(), DataLoader(RandomDataset(32, 256), batch_size=32))
        >>> round(dp.spent[-1]["epsilon"], 1) <= 8.0, [f.check for f in dp.findings]
        (True, ['privacy.dp'])

    """

    family = "privacy"
    state_fields = ("spent", "history", "noise")

    def __init__(self, target_epsilon: float | None = 8.0, delta: float | None = None,
                 max_grad_norm: float = 1.0, noise_multiplier: float | None = None,
                 fix_layers: bool = False, enabled: bool = True, seed: int = 0,
                 policy: Any = "record") -> None:
        super().__init__(policy)
        self.require(
            ("target_epsilon", target_epsilon, target_epsilon is None or target_epsilon > 0,
             "> 0 or null"),
            ("delta", delta, delta is None or 0 < delta < 1, "in (0, 1) or null"),
            ("max_grad_norm", max_grad_norm, max_grad_norm > 0, "> 0"),
            ("noise_multiplier", noise_multiplier, (noise_multiplier is None) != (
                target_epsilon is None) and (noise_multiplier is None or noise_multiplier > 0),
             "> 0 where target_epsilon is null, and null where it is set"))
        self.target_epsilon, self.delta, self.max_grad_norm = target_epsilon, delta, max_grad_norm
        self.fix_layers, self.enabled, self.seed = fix_layers, enabled, seed
        self.noise: float | None = noise_multiplier
        self.spent: list[dict[str, float]] = []  # per epoch: epoch, steps, epsilon
        self.history: list[list[float]] = []  # the accountant's (noise, sample rate, steps)
        self.replaced: list[str] = []
        self.sample_rate: float | None = None
        self.examples: int | None = None
        self._accountant: Any = None
        self._optimizer: Any = None
        self._hooks: Any = None
        self._patched: tuple[Any, str, Any] | None = None
        self._trainer: Trainer | None = None
        self._training_step = False
        self._world = 1

    # ------------------------------------------------------------------------------ hooks
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Refuse (or replace) layers DP-SGD cannot train; make the training loader Poisson."""
        if not self.enabled or stage != "fit":
            return
        from guardrail.privacy.dp import fix_layers, layers_error, opacus, unsupported_layers

        opacus()
        self._world = world_size()
        if self._world > 1:
            if type(trainer.strategy).__name__ not in ("DDPStrategy", "DDPSpawnStrategy"):
                raise ConfigError(
                    f"privacy.dp=true runs in one process or under DDP, not under "
                    f"{type(trainer.strategy).__name__}: Opacus' per-example gradients need "
                    "every rank to hold the whole model. Use `trainer=ddp_cpu` (or ddp).")
            # Each rank Poisson-samples its own shard (Opacus' distributed sampler); Lightning
            # must not swap in its DistributedSampler. Evaluation loaders are then not sharded:
            # every rank scores the whole split, and the synchronised metrics are the same.
            trainer._accelerator_connector.use_distributed_sampler = False
        if not pl_module.automatic_optimization:
            raise ConfigError(
                f"{type(pl_module).__name__} optimises manually (automatic_optimization=False); "
                "DP-SGD wraps the optimiser Lightning steps, so it needs automatic optimisation.")
        try:
            layers = unsupported_layers(pl_module)
            if layers and self.fix_layers:
                self.replaced = fix_layers(pl_module)
            elif layers:
                raise layers_error(type(pl_module).__name__, layers)
            self._patch_loader(trainer)
        except ConfigError:
            raise
        except Exception as err:
            raise _not_private(pl_module, err) from err

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Per-example gradients on the module; the optimiser clips, noises and accounts."""
        if not self.enabled:
            return
        from opacus import GradSampleModule
        from opacus.accountants import RDPAccountant
        from opacus.optimizers import DistributedDPOptimizer, DPOptimizer

        if len(trainer.optimizers) != 1:
            raise ConfigError(
                f"{type(pl_module).__name__} configures {len(trainer.optimizers)} optimisers; "
                "DP-SGD here wraps exactly one. Return one from configure_optimizers.")
        try:
            self._hooks = GradSampleModule(pl_module, batch_first=True, loss_reduction="mean")
            self._accountant = RDPAccountant()
            for noise, rate, steps in self.history:  # resumed: the budget spent so far
                self._accountant.history.append((noise, rate, int(steps)))
            # Under DDP the clipped sums are averaged over the ranks, rank zero's with noise.
            kind = DistributedDPOptimizer if self._world > 1 else DPOptimizer
            self._optimizer = kind(
                trainer.optimizers[0], noise_multiplier=self.noise or 0.0,
                max_grad_norm=self.max_grad_norm, expected_batch_size=1, loss_reduction="mean")
            self._optimizer.attach_step_hook(self._account)
            self._configure()
            trainer.strategy.optimizers = [self._optimizer]
        except ConfigError:
            raise
        except Exception as err:
            raise _not_private(pl_module, err) from err

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                             batch_idx: int) -> None:
        """Steps from here to the batch's end are training's, and spend the budget."""
        self._training_step = True

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        """Steps outside a batch (another guardrail replaying, then restoring) spend nothing."""
        self._training_step = False

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Log the ε spent so far (``privacy/epsilon``: the loggers, report.json's history)."""
        if not self.enabled or self._accountant is None or not self._accountant.history:
            return
        epsilon = self.epsilon()
        self.spent.append({"epoch": trainer.current_epoch, "steps": trainer.global_step,
                           "epsilon": epsilon})
        pl_module.log("privacy/epsilon", epsilon)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Remove the per-example hooks; report the budget spent."""
        if not self.enabled or self._hooks is None:
            return
        self._hooks._close()
        self._hooks = None
        self._restore_loader()
        epsilon = self.epsilon() if self._accountant.history else 0.0
        summary = self.summary()
        note = (" Layers replaced for DP: " + ", ".join(self.replaced) + "."
                if self.replaced else "")
        self.emit(trainer, Finding(
            "privacy.dp", Severity.INFO,
            f"Trained with DP-SGD: ε = {epsilon:.2f} at δ = {summary['delta']:.2g} after "
            f"{summary['steps']} steps (noise multiplier {self.noise:.3f}, clipping norm "
            f"{self.max_grad_norm}, sampling rate {self.sample_rate:.4f}).{note} The gradient "
            "probes read the batch gradient before clipping and noise.", where="training",
            evidence=summary))
        if self.target_epsilon is not None and epsilon > self.target_epsilon * 1.01:
            self.emit(trainer, Finding(
                "privacy.dp_budget", Severity.WARNING,
                f"Training spent ε = {epsilon:.2f}, more than the target "
                f"{self.target_epsilon:g}: it ran longer than the planned max_epochs the noise "
                "was calibrated for (a resumed or extended run).", where="training",
                evidence=summary,
                hint="Plan the whole length in trainer.max_epochs before training starts."))

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Leave the module and the data source as they were (after a failure too)."""
        if self._hooks is not None:
            self._hooks._close()
            self._hooks = None
        self._restore_loader()

    def twin(self) -> DifferentialPrivacy:
        """A fresh callback training another model as this one did: same noise and clipping."""
        return DifferentialPrivacy(target_epsilon=None, noise_multiplier=self.noise,
                                   max_grad_norm=self.max_grad_norm, fix_layers=True,
                                   seed=self.seed)

    # ------------------------------------------------------------------------------ budget
    def epsilon(self) -> float:
        """The ε spent so far at this run's δ."""
        from guardrail.privacy.dp import quiet_accountant

        with quiet_accountant():
            return float(self._accountant.get_epsilon(self._delta()))

    def summary(self) -> dict[str, Any]:
        """The guarantee and how it was reached, for report.json and the privacy section."""
        steps = sum(int(s) for _, _, s in self.history)
        spent = self._accountant is not None and bool(self._accountant.history)
        return {"epsilon": self.epsilon() if spent else None,
                "target_epsilon": self.target_epsilon, "delta": self._delta(),
                "max_grad_norm": self.max_grad_norm, "noise_multiplier": self.noise,
                "sample_rate": self.sample_rate, "examples": self.examples, "steps": steps,
                "per_epoch": self.spent, "replaced_layers": self.replaced}

    def _delta(self) -> float:
        return self.delta if self.delta is not None else 1.0 / max(self.examples or 1, 1)

    def _account(self, optimizer: Any) -> None:
        """After each private step of training: one more (noise, sample rate) step accounted."""
        if not self._training_step:
            return
        assert self.sample_rate is not None and self.noise is not None
        self._accountant.step(noise_multiplier=self.noise, sample_rate=self.sample_rate)
        self.history = [list(h) for h in self._accountant.history]

    def _configure(self) -> None:
        """Noise and batch scale once both the optimiser and the Poisson loader exist."""
        if self._optimizer is None or self.sample_rate is None or self.examples is None:
            return
        if self.noise is None:
            from guardrail.privacy.dp import noise_multiplier

            trainer = self._trainer
            assert trainer is not None
            epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
            steps = trainer.max_steps if epochs is None and trainer.max_steps > 0 else None
            if epochs is None and steps is None:
                raise ConfigError(
                    "privacy.target_epsilon needs a planned training length to calibrate the "
                    "noise: set trainer.max_epochs (or trainer.max_steps).")
            assert self.target_epsilon is not None
            self.noise = noise_multiplier(target_epsilon=self.target_epsilon,
                                          delta=self._delta(), sample_rate=self.sample_rate,
                                          epochs=epochs, steps=steps)
        self._optimizer.noise_multiplier = self.noise
        # per rank: each samples its 1/world share of the examples at the same rate
        self._optimizer.expected_batch_size = max(
            round(self.sample_rate * self.examples / self._world), 1)

    # ------------------------------------------------------------------------------ loader
    def _patch_loader(self, trainer: Trainer) -> None:
        """Wrap where the Trainer gets its training loader, so every request is Poisson."""
        source = trainer.fit_loop._data_source
        self._trainer = trainer
        if isinstance(source.instance, DataLoader):
            self._patched = (source, "instance", source.instance)
            source.instance = self._poisson(source.instance)
            return
        owner = source.instance
        original = getattr(owner, source.name)
        self._patched = (owner, source.name, original)
        setattr(owner, source.name, lambda: self._poisson(original()))

    def _restore_loader(self) -> None:
        if self._patched is None:
            return
        owner, name, original = self._patched
        if name == "instance":
            owner.instance = original
        else:
            delattr(owner, name)  # the instance attribute; the class's method shows again
        self._patched = None

    def _poisson(self, loader: Any) -> Any:
        from opacus.data_loader import DPDataLoader

        if not isinstance(loader, DataLoader):
            raise ConfigError(
                f"DP-SGD needs one torch DataLoader for training, got {type(loader).__name__}; "
                "return a DataLoader from train_dataloader().")
        private = DPDataLoader.from_data_loader(
            loader, generator=torch.Generator().manual_seed(self.seed),
            distributed=self._world > 1)
        self.examples = len(loader.dataset)  # type: ignore[arg-type]
        self.sample_rate = private.sample_rate
        self._configure()
        return private


def _not_private(pl_module: LightningModule, err: Exception) -> GuardrailError:
    """Stop the run: a DP guardrail that skipped would train without the privacy asked for."""
    return GuardrailError(
        f"DP-SGD could not be set up on {type(pl_module).__name__}: {type(err).__name__}: "
        f"{err}. Training stopped rather than go on without differential privacy; train "
        "without it (`privacy.dp=false`) or report the error.")
