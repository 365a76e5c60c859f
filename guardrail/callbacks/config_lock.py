"""``ConfigLock``: refuse to train when a locked setting changed without anyone saying so."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch import LightningModule, Trainer

from guardrail.callbacks.base import GuardrailCallback
from guardrail.checks.config_lock import (
    diff_settings,
    distributed_sampler_findings,
    lock_finding,
    overrides_changing_settings,
    split_by_overrides,
)
from guardrail.distributed import on_rank_zero
from guardrail.effective import Scalar, run_settings
from guardrail.errors import ConfigError
from guardrail.findings import Finding, Severity
from guardrail.lockfile import (
    composed_config,
    dependency_versions,
    lock_hash,
    lock_path,
    read_lock,
    resolve_lock_dir,
    write_lock,
)

Mode = Literal["strict", "warn", "off"]
MODES = ("strict", "warn", "off")


class ConfigLock(GuardrailCallback):
    """Lock a recipe's configuration and effective runtime settings; refuse silent changes.

    The lock (``<lock_dir>/<name>.lock.yaml``, committed with the code) holds (a) the recipe's
    config composed *without* command-line overrides and (b) the effective settings read from
    the live objects at fit start: each dataloader's sampler kind, batch size and drop_last;
    the optimiser class and every param group's hyperparameters; precision, gradient clipping
    and accumulation; the module's hparams. A difference from an edited YAML file or a changed
    code default fails ``config.lock`` — in ``strict`` mode before the first optimiser step,
    with a key-by-key diff and the exact approval command. Command-line overrides are
    deliberate experiments: allowed, and recorded as ``config.override``. Resuming a
    checkpoint trained under a different lock is refused the same way. Without a lock file,
    one is written (``config.lock_created``): review and commit it.

    The lock also records the versions of torch, lightning, numpy, the preprocessing and data
    packages, Python, CUDA and cuDNN. A run under other versions is warned
    (``dependency.changed``, never refused) and told to run ``guardrail doctor`` on the last
    good run; a lock without versions (written before they were recorded) stays silent.

    Under DDP rank zero reads the lock and every rank judges the same lock. The
    DistributedSampler Lightning swaps in is no change where it shuffles as the locked sampler
    did (``config.distributed_sampler``, info); where it turns shuffling on for a loader
    locked without it (Lightning issue #10170), ``config.distributed_shuffle`` warns and the
    change is judged like any other.

    Config keys are only locked inside a Hydra app; a plain Lightning project locks the
    effective settings, under the module's class name.

    A relative ``lock_dir`` is taken from the project root: the git work tree holding the
    directory the run was started from, else that directory. Every lock finding names the
    lock file (message and ``evidence["lock_file"]``).

    Args:
        mode: ``strict`` (refuse), ``warn`` (a warning finding, training goes on) or ``off``.
        lock_dir: Folder of the lock files; a relative one is resolved against the project
            root (see :func:`guardrail.lockfile.resolve_lock_dir`).
        name: The lock's name; default: the Hydra ``recipe`` choice, else the module's class.

    Example:
        >>> import tempfile
        >>> import lightning.pytorch as pl
        >>> from lightning.pytorch.demos.boring_classes import BoringModel
        >>> lock = ConfigLock(lock_dir=tempfile.mkdtemp())
        >>> trainer = pl.Trainer(callbacks=[lock], max_steps=1, logger=False,
        ...                      enable_progress_bar=False, enable_checkpointing=False,
        ...                      enable_model_summary=False)
        >>> trainer.fit(BoringModel())
        >>> [f.check for f in lock.findings]
        ['config.lock_created']

    """

    family = "config"

    def __init__(self, mode: Mode = "strict", lock_dir: str | Path = "locks",
                 name: str | None = None) -> None:
        if mode not in MODES:
            raise ConfigError(f"ConfigLock: mode={mode!r} is not one of {', '.join(MODES)}; "
                              "set it with `guardrails.lock.mode=warn`.")
        super().__init__(policy="strict" if mode == "strict" else "record")
        self.mode = mode
        self.lock_dir = Path(lock_dir)
        self.name = name
        self.overrides: list[str] = []
        self.config_dirs: list[str] = []
        self.config_path: str | None = None
        self.config: dict[str, Scalar] | None = None
        self.locked_hash: str | None = None
        self._resumed_hash: str | None = None
        self._run_dir: str | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Resolve the lock's name and compare config keys before any data is loaded."""
        if self.mode == "off" or stage != "fit":
            return
        self._read_hydra(pl_module)
        lock = self._read_lock()
        if lock is not None and self.config is not None:
            refused = diff_settings(lock["config"], self.config, "config")
            self._judge(trainer, refused, [])

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Compare effective settings (and a resumed checkpoint's lock) before the first step."""
        if self.mode == "off":
            return
        effective = run_settings(trainer, pl_module)
        config = self.config or {}
        lock = self._read_lock()
        changing = overrides_changing_settings(self.overrides, effective)
        if lock is None and changing:
            # This run's settings are the overrides', not the recipe's: a lock written from
            # them would refuse the recipe's own next run (and lock an experiment in).
            self.emit(trainer, Finding(
                "config.lock_missing", Severity.INFO,
                f"No config lock exists for '{self.lock_name}' at {self.path}, and this run's "
                f"command-line overrides ({' '.join(changing)}) make its settings differ from "
                "the recipe's, so none was written: this run is not checked against a lock.",
                where=str(self.path), evidence={"lock_file": str(self.path),
                                                "overrides": self.overrides},
                hint=(f"Write the lock from the recipe itself with `{self.approve_command}` "
                      "and commit it." if self.config is not None else "Run once without these "
                      "overrides: that run writes the lock.")))
        elif lock is None:
            if trainer.is_global_zero:
                write_lock(self.path, self.lock_name, config, effective, dependency_versions())
            self.emit(trainer, Finding(
                "config.lock_created", Severity.INFO,
                f"No config lock existed for '{self.lock_name}'; this run's settings were "
                f"written to {self.path}.", where=str(self.path),
                evidence={"lock_file": str(self.path)},
                hint="Review the file and commit it: later changes to it will need approval."))
            self.locked_hash = lock_hash(config, effective)
        else:
            self._check_versions(trainer, lock)
            changes = diff_settings(lock["effective"], effective, "effective")
            changes, notes = distributed_sampler_findings(changes, lock["effective"], effective)
            for note in notes:
                self.emit(trainer, self._with_path(note, in_message=False))
            refused, allowed = split_by_overrides(changes, self.overrides)
            if self._resumed_hash and self._resumed_hash != lock_hash(lock["config"],
                                                                      lock["effective"]):
                refused.insert(0, _resume_change(self._resumed_hash, lock))
            self._judge(trainer, refused, allowed)
            self.locked_hash = lock_hash(lock["config"], lock["effective"])

    def state_dict(self) -> dict[str, Any]:
        """Findings and the hash of the lock this run trained under."""
        return {**super().state_dict(), "lock_hash": self.locked_hash}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Remember the checkpoint's lock hash, compared at ``on_train_start``."""
        super().load_state_dict(state_dict)
        self._resumed_hash = state_dict.get("lock_hash")

    def _check_versions(self, trainer: Trainer, lock: dict[str, Any]) -> None:
        """``dependency.changed`` (warning) when today's versions differ from the lock's."""
        from guardrail.checks.dependency import lock_versions_finding

        locked = lock.get("versions") or {}
        if not locked:
            return  # a lock written before versions were recorded
        last_good = None
        if self._run_dir is not None:
            from guardrail.doctor import last_good_run

            found = last_good_run(self._run_dir)
            last_good = str(found) if found is not None else None
        finding = lock_versions_finding(locked, dependency_versions(), str(self.path),
                                        last_good, self.approve_command)
        if finding is not None:
            self.emit(trainer, finding)

    def _read_lock(self) -> dict[str, Any] | None:
        # Rank zero reads, every rank gets its answer (or its error): ranks never disagree
        # on whether a lock exists, so the collective in `enforce` is reached by all or none.
        return on_rank_zero(lambda: read_lock(self.path))

    @property
    def lock_name(self) -> str:
        """The lock's name (recipe or module class)."""
        return self.name or "default"

    @property
    def path(self) -> Path:
        """The lock file of this run."""
        return lock_path(self.lock_dir, self.lock_name)

    @property
    def approve_command(self) -> str:
        """The exact command that rewrites this lock."""
        if self.config is None:
            return f"rm {shlex.quote(str(self.path))} (a fresh lock is written by the next run)"
        lock_dir = shlex.quote(str(self.lock_dir))
        config_dirs = "".join(f" --config-dir {shlex.quote(d)}" for d in self.config_dirs)
        primary = f" -cp {shlex.quote(self.config_path)}" if self.config_path else ""
        return (f"guardrail approve recipe={self.lock_name} --lock-dir {lock_dir}"
                f"{primary}{config_dirs}")

    def _read_hydra(self, pl_module: LightningModule) -> None:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            self.name = self.name or type(pl_module).__name__
            self.lock_dir = resolve_lock_dir(self.lock_dir)
            return
        hydra_cfg = HydraConfig.get()
        self._run_dir = hydra_cfg.runtime.output_dir
        recipe = hydra_cfg.runtime.choices.get("recipe")
        self.name = self.name or recipe or type(pl_module).__name__
        self.lock_dir = resolve_lock_dir(self.lock_dir, hydra_cfg.runtime.cwd)
        self.overrides = list(hydra_cfg.overrides.task)
        # Folders of the user's configs (`--config-dir`, `hydra.searchpath`): approval
        # composes the recipe from the same search path.
        self.config_dirs = [str(s.path) for s in hydra_cfg.runtime.config_sources
                            if s.provider != "hydra" and s.provider != "main"
                            and s.schema == "file"]
        # A primary config folder given with -cp replaces the package's configs.
        self.config_path = next((str(s.path) for s in hydra_cfg.runtime.config_sources
                                 if s.provider == "main" and s.schema == "file"), None)
        if recipe:
            self.config = composed_config(recipe, hydra_cfg.job.config_name,
                                          [str(s) for s in hydra_cfg.searchpath])

    def _with_path(self, finding: Finding, in_message: bool = True) -> Finding:
        """``finding`` naming the lock file in its evidence (and at the end of its message)."""
        message = f"{finding.message}\nLock file: {self.path}" if in_message else finding.message
        return dataclasses.replace(finding, message=message,
                                   evidence={**finding.evidence, "lock_file": str(self.path)})

    def _judge(self, trainer: Trainer, refused: list[Any], allowed: list[Any]) -> None:
        if allowed:
            self.emit(trainer, Finding(
                "config.override", Severity.INFO,
                f"Command-line overrides changed settings locked in {self.path}: "
                + "; ".join(str(c) for c in allowed),
                where=allowed[0].key,
                evidence={"overrides": self.overrides, "lock_file": str(self.path)},
                hint="Recorded as a deliberate experiment; approve it to make it the default."))
        finding = lock_finding(refused, self.lock_name, self.approve_command)
        if finding is not None and self.mode == "warn":
            finding = dataclasses.replace(finding, severity=Severity.WARNING)
        if finding is not None:
            self.emit(trainer, self._with_path(finding))
        self.enforce(trainer)


def _resume_change(resumed: str, lock: dict[str, Any]) -> Any:
    from guardrail.checks.config_lock import Change

    return Change("checkpoint.lock_hash", resumed, lock_hash(lock["config"], lock["effective"]),
                  "effective")
