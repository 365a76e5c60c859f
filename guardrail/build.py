"""Instantiate a recipe's objects from a composed config: one path for training and approval.

The datamodule comes first because the network and the module take data-derived arguments
(``datamodule.net_kwargs()``, ``datamodule.module_kwargs()``: input widths, vocabularies,
feature names).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig


@dataclasses.dataclass
class Built:
    """A recipe's datamodule, network and LightningModule."""

    datamodule: pl.LightningDataModule
    net: Any
    module: pl.LightningModule


def _call(obj: Any, method: str) -> dict[str, Any]:
    fn = getattr(obj, method, None)
    return dict(fn()) if callable(fn) else {}


def build(cfg: DictConfig) -> Built:
    """Datamodule, network and module of ``cfg`` (keys ``data``, ``model``, ``module``)."""
    # Plain lists and dicts, not ListConfig: hparams land in checkpoints, which load with
    # torch.load(weights_only=True) and refuse OmegaConf types.
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    net = hydra.utils.instantiate(cfg.model, _convert_="all", **_call(datamodule, "net_kwargs"))
    module = hydra.utils.instantiate(cfg.module, _convert_="all", net=net,
                                     **_call(datamodule, "module_kwargs"))
    return Built(datamodule, net, module)
