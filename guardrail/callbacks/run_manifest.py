"""``RunManifest``: the six things a result depends on, written to manifest.json."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from omegaconf import OmegaConf

from guardrail.callbacks.base import best_effort
from guardrail.distributed import gather_objects
from guardrail.effective import run_settings, sampler_record
from guardrail.environment import determinism_settings, hardware, platform_info, source_info
from guardrail.fingerprint import (
    MAX_SAMPLES,
    OrderFingerprint,
    dataset_fingerprint,
    file_hash,
    state_hash,
)
from guardrail.fingerprint import tensor_hash as config_hash
from guardrail.io import utc_now, write_json, write_text

MANIFEST = "manifest.json"
PATCH = "source.patch"
DEFAULT_STEPS = tuple(2**i for i in range(16))  # 1, 2, 4, ... 32768


class RunManifest(Callback):
    """Record hardware, platform, source, configuration, training data and model state.

    manifest.json is written on global rank zero when training starts (status ``running``)
    and completed at the end (``completed``, ``interrupted`` or ``failed``) with the final
    hashes. Data fingerprints: per split an order-independent content hash over every sample,
    the count and the schema; and a data-order hash over the first ``order_batches`` batches
    of each epoch, so a shuffle change shows as an order change while content stays equal.
    Under DDP the order hash covers every rank's batches (gathered when fitting ends) and the
    train sampler is recorded (a ``DistributedSampler``: replicas, shuffle, seed, drop_last).
    Model state: initial-weights hash, parameter count, a parameter-hash trajectory after the
    optimiser steps in ``trajectory_steps``, the final weights' and checkpoint's hashes.
    Uncommitted source changes are stored next to it as ``source.patch``.

    Args:
        dirpath: Folder for manifest.json; default: the trainer's ``default_root_dir``.
        config: The run's resolved config; default: read from Hydra's ``.hydra/config.yaml``
            inside a Hydra app, else the module's hparams.
        overrides: The command-line overrides; default: Hydra's, else none.
        order_batches: Batches per epoch in the data-order fingerprint.
        trajectory_steps: Global steps after which the parameters are hashed.
        fingerprint_data: Hash the content of every split (linear in data size; under DDP
            every rank hashes a shard and the shards' sums are combined).
        max_samples: Samples of a map-style split hashed one by one; a larger split is
            hashed on a seeded sample of this many, recorded under the split's ``sampled``
            (in-memory ``TensorDataset`` splits are always hashed whole, in bulk).

    Example:
        >>> import json, pathlib, tempfile
        >>> import lightning.pytorch as pl
        >>> from lightning.pytorch.demos.boring_classes import BoringModel
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> trainer = pl.Trainer(callbacks=[RunManifest(d)], max_steps=4, logger=False,
        ...                      default_root_dir=d,
        ...                      enable_progress_bar=False, enable_model_summary=False)
        >>> trainer.fit(BoringModel())
        >>> m = json.loads((d / "manifest.json").read_text())
        >>> m["status"], [t["step"] for t in m["model"]["trajectory"]]
        ('completed', [1, 2, 4])

    """

    def __init__(self, dirpath: str | Path | None = None, config: dict[str, Any] | None = None,
                 overrides: Sequence[str] | None = None, order_batches: int = 4,
                 trajectory_steps: Sequence[int] = DEFAULT_STEPS,
                 fingerprint_data: bool = True, max_samples: int = MAX_SAMPLES) -> None:
        self.max_samples = max_samples
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.config = config
        self.overrides = list(overrides) if overrides is not None else None
        self.order = OrderFingerprint(order_batches)
        self.trajectory_steps = set(trajectory_steps)
        self.fingerprint_data = fingerprint_data
        self.manifest: dict[str, Any] = {}
        self.trajectory: list[dict[str, Any]] = []
        self._ranks_order: list[dict[int, str]] | None = None
        self._sampler: dict[str, Any] = {}

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Collect what is known before training: environment, source, configuration."""
        if stage != "fit" or self.manifest:
            return
        self.dirpath = self.dirpath or Path(trainer.default_root_dir)
        config, overrides = self._config(pl_module)
        self.manifest = {
            "schema": 1, "status": "running",
            "started_at": utc_now(), "finished_at": None,
            "hardware": hardware(), "platform": platform_info(),
            "source": source_info(_source_file(pl_module)),
            "configuration": {"resolved": config, "overrides": overrides,
                              "hash": config_hash(config)},
            "determinism": {},
            "data": {}, "model": {},
        }

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Fingerprint the train and validation data and the initial weights; first write."""
        self.manifest["determinism"] = determinism_settings()
        # How many processes share the work: under DDP the global batch is world_size times
        # the loader's, so `guardrail diff` must see a 1-GPU run and an 8-GPU run apart.
        self.manifest["hardware"].update(processes=trainer.world_size, nodes=trainer.num_nodes,
                                         strategy=type(trainer.strategy).__name__)
        self.manifest["configuration"]["effective"] = run_settings(trainer, pl_module)
        self._sampler = sampler_record(trainer.train_dataloader)
        if self.fingerprint_data:  # a collective: every rank hashes a shard
            self._fingerprint(trainer, trainer.train_dataloader, "train")
            self._fingerprint(trainer, trainer.val_dataloaders, "val")
        params = list(pl_module.parameters())
        self.manifest["model"] = {
            "initial_hash": state_hash(pl_module),
            "parameters": sum(p.numel() for p in params),
            "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
        }
        self._write(trainer)

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                             batch_idx: int) -> None:
        """Feed the data-order fingerprint (the first batches of each epoch only)."""
        self.order.update(trainer.current_epoch, batch_idx, batch)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        """Hash the parameters after the fixed trajectory steps."""
        step = trainer.global_step
        if not trainer.is_global_zero:
            return  # DDP keeps the weights equal on every rank; rank zero hashes them
        if step in self.trajectory_steps and (not self.trajectory
                                              or self.trajectory[-1]["step"] != step):
            self.trajectory.append({"step": step, "hash": state_hash(pl_module)})

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Final weights and checkpoint hashes; status ``completed``."""
        # A collective under DDP (every rank runs on_fit_end): each rank saw its own batches.
        self._ranks_order = gather_objects(dict(self.order.per_epoch))
        self._finish(trainer, pl_module, "interrupted" if trainer.interrupted else "completed")

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Fingerprint the test split, once."""
        if self.manifest and self.fingerprint_data and "test" not in self.manifest["data"]:
            self._fingerprint(trainer, trainer.test_dataloaders, "test")  # on every rank
            self._write(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule,
                     exception: BaseException) -> None:
        """Status ``interrupted`` (Ctrl-C) or ``failed``."""
        if self.manifest:
            with best_effort("complete manifest.json"):
                self._finish(trainer, pl_module, "interrupted"
                             if isinstance(exception, KeyboardInterrupt) else "failed")

    def state_dict(self) -> dict[str, Any]:
        """The trajectory and order hashes so far (a resumed run continues them)."""
        return {"trajectory": self.trajectory, "order": self.order.per_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the trajectory and order hashes, keeping those recorded since.

        Testing the best checkpoint after fit restores its (earlier) state into this callback,
        which saw the whole run: replacing the hashes would drop every epoch after the best
        one, and two runs whose best epochs differ would seem to have seen different batches.
        Tolerant of older checkpoints.
        """
        steps = {t["step"] for t in self.trajectory}
        self.trajectory = sorted([*self.trajectory, *(
            t for t in state_dict.get("trajectory", []) if t["step"] not in steps)],
            key=lambda t: t["step"])
        self.order.per_epoch = {**dict(state_dict.get("order", {})), **self.order.per_epoch}

    def _config(self, pl_module: LightningModule) -> tuple[dict[str, Any], list[str]]:
        from hydra.core.hydra_config import HydraConfig

        if self.config is not None:
            return self.config, self.overrides or []
        if HydraConfig.initialized():
            hydra_cfg = HydraConfig.get()
            saved = Path(hydra_cfg.runtime.output_dir) / (hydra_cfg.output_subdir or ".hydra") \
                / "config.yaml"
            if saved.is_file():
                cfg = OmegaConf.load(saved)
                try:
                    resolved = OmegaConf.to_container(cfg, resolve=True)
                except Exception:  # an interpolation that only resolves elsewhere
                    resolved = OmegaConf.to_container(cfg, resolve=False)
                return resolved, self.overrides or list(hydra_cfg.overrides.task)
        return {"hparams": dict(getattr(pl_module, "hparams", {}))}, self.overrides or []

    def _fingerprint(self, trainer: Trainer, loaders: Any, split: str) -> None:
        loaders = loaders if isinstance(loaders, list | tuple) else [loaders]
        world = trainer.world_size
        prints = [dataset_fingerprint(getattr(loader, "dataset", loader),
                                      max_samples=self.max_samples, rank=trainer.global_rank,
                                      world=world, gather=gather_objects if world > 1 else None)
                  for loader in loaders if loader is not None]
        if prints:
            self.manifest["data"][split] = prints[0] if len(prints) == 1 else prints

    def _finish(self, trainer: Trainer, pl_module: LightningModule, status: str) -> None:
        checkpoint = getattr(trainer.checkpoint_callback, "best_model_path", "") or ""
        self.manifest["model"].update({
            "trajectory": self.trajectory,
            "final_hash": state_hash(pl_module),
            "checkpoint": {"path": checkpoint, "hash": file_hash(checkpoint)
                           if checkpoint and Path(checkpoint).is_file() else None},
        })
        self.manifest.update(status=status, finished_at=utc_now())
        self._write(trainer)

    def _write(self, trainer: Trainer) -> None:
        if not trainer.is_global_zero or self.dirpath is None:
            return
        self.manifest["data"]["order"] = self._order()
        source = dict(self.manifest["source"])
        if source.get("patch"):
            write_text(self.dirpath / PATCH, source["patch"])
            source["patch"] = {"file": PATCH, "hash": config_hash(source["patch"])}
        write_json(self.dirpath / MANIFEST, {**self.manifest, "source": source})


    def _order(self) -> dict[str, Any]:
        """The data-order fingerprint; under DDP one hash over every rank's, per epoch."""
        order: dict[str, Any] = {"batches": self.order.batches, "sampler": self._sampler}
        ranks = self._ranks_order
        if not ranks or len(ranks) == 1:
            return {**order, "per_epoch": self.order.per_epoch, "digest": self.order.digest()}
        epochs = sorted({e for r in ranks for e in r})
        per_epoch = {e: config_hash([r.get(e) for r in ranks]) for e in epochs}
        return {**order, "ranks": len(ranks), "per_epoch": per_epoch,
                "per_rank": [self._rank_digest(r) for r in ranks],
                "digest": config_hash([per_epoch[e] for e in epochs])}

    @staticmethod
    def _rank_digest(per_epoch: dict[int, str]) -> str:
        return config_hash([per_epoch[e] for e in sorted(per_epoch)])


def _source_file(obj: Any) -> str | None:
    """The file defining ``obj``'s class; None for classes made in a notebook or exec()."""
    try:
        return inspect.getfile(type(obj))
    except (TypeError, OSError):
        return None

