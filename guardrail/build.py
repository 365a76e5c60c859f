"""Instantiate a recipe's objects from a composed config: one path for training and approval.

The datamodule comes first because the network and the module take data-derived arguments
from it, under the recipe contract :class:`guardrail.recipe.RecipeContract`
(``net_kwargs()``, ``module_kwargs()``, ``feature_names``: input widths, vocabularies,
column names). Each is optional; one that is there must give a dict.

Example:
    >>> from omegaconf import OmegaConf
    >>> cfg = OmegaConf.create({
    ...     "data": {"_target_": "lightning.pytorch.demos.boring_classes.BoringDataModule"},
    ...     "model": {"_target_": "torch.nn.Linear", "in_features": 32, "out_features": 1},
    ...     "module": {"_target_": "guardrail.GuardrailModule"}})
    >>> type(build(cfg).module).__name__
    'GuardrailModule'

"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig

from guardrail.errors import ConfigError
from guardrail.recipe import ProvidesFeatureNames, ProvidesModuleKwargs, ProvidesNetKwargs


@dataclasses.dataclass
class Built:
    """A recipe's datamodule, network and LightningModule."""

    datamodule: pl.LightningDataModule
    net: Any
    module: pl.LightningModule


def data_kwargs(datamodule: Any, method: str) -> dict[str, Any]:
    """What ``datamodule.<method>()`` gives (``{}`` without one), checked to be a dict.

    Raises:
        ConfigError: The method returns something other than a mapping.

    Example:
        >>> class Data:
        ...     def net_kwargs(self) -> list: return [3]
        >>> data_kwargs(object(), "net_kwargs")
        {}
        >>> data_kwargs(Data(), "net_kwargs")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        guardrail.errors.ConfigError: Data.net_kwargs() returned a list, ...

    """
    protocol = {"net_kwargs": ProvidesNetKwargs, "module_kwargs": ProvidesModuleKwargs}[method]
    if not isinstance(datamodule, protocol):
        return {}
    kwargs = getattr(datamodule, method)()
    if not isinstance(kwargs, Mapping):
        target = "model" if method == "net_kwargs" else "module"
        raise ConfigError(
            f"{type(datamodule).__name__}.{method}() returned a {type(kwargs).__name__}, not a "
            f"dict of keyword arguments for the `{target}:` config (the recipe contract, "
            f"guardrail.recipe.RecipeContract). Return e.g. {{'n_features': 8}}, or drop "
            "the method.")
    return dict(kwargs)


def _takes(target: Any, name: str) -> bool:
    try:
        params = inspect.signature(hydra.utils.get_object(str(target))).parameters
    except (ValueError, TypeError, ImportError, AttributeError, hydra.errors.HydraException):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def build(cfg: DictConfig) -> Built:
    """Datamodule, network and module of ``cfg`` (keys ``data``, ``model``, ``module``)."""
    # Plain lists and dicts, not ListConfig: hparams land in checkpoints, which load with
    # torch.load(weights_only=True) and refuse OmegaConf types.
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    net = hydra.utils.instantiate(cfg.model, _convert_="all",
                                  **data_kwargs(datamodule, "net_kwargs"))
    module_kwargs = data_kwargs(datamodule, "module_kwargs")
    if ("feature_names" not in module_kwargs and "feature_names" not in cfg.module
            and isinstance(datamodule, ProvidesFeatureNames)
            and getattr(datamodule, "feature_names", None) is not None
            and _takes(cfg.module.get("_target_"), "feature_names")):
        module_kwargs["feature_names"] = list(datamodule.feature_names)
    module = hydra.utils.instantiate(cfg.module, _convert_="all", net=net, **module_kwargs)
    return Built(datamodule, net, module)
