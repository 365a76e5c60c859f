"""The config lock file: what a recipe trains with, approved by a person and committed.

One human-readable YAML file per recipe, ``<lock dir>/<recipe>.lock.yaml``, with flat sorted
``key: value`` lines, so that its diff in review reads ``data.shuffle_before_split: false →
true``. ``config`` holds the recipe's config composed *without* command-line overrides
(unresolved: interpolations stay as written); ``effective`` the settings read from the live
objects (samplers, optimiser, trainer, hyperparameters).

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.lock.yaml"
    >>> write_lock(path, "demo", {"data.shuffle": False}, {"optimizer.class": "AdamW"})
    >>> read_lock(path)["config"]
    {'data.shuffle': False}

"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from guardrail.effective import Scalar, flatten
from guardrail.errors import GuardrailError
from guardrail.fingerprint import tensor_hash
from guardrail.io import write_text

SUFFIX = ".lock.yaml"
CONFIG_MODULE = "guardrail.configs"


def lock_path(lock_dir: str | Path, name: str) -> Path:
    """Where the lock of ``name`` lives."""
    return Path(lock_dir) / f"{name}{SUFFIX}"


def lock_hash(config: dict[str, Scalar], effective: dict[str, Scalar]) -> str:
    """One hash over both halves of a lock."""
    return tensor_hash({"config": config, "effective": effective})


def read_lock(path: str | Path) -> dict[str, Any] | None:
    """The lock at ``path`` (``None`` if there is none).

    Raises:
        GuardrailError: The file exists but is not a lock guardrail wrote.

    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not {"config", "effective"} <= set(data):
            raise ValueError("missing the 'config' or 'effective' section")
    except (yaml.YAMLError, ValueError) as err:
        raise GuardrailError(
            f"The config lock '{path}' is not readable ({err}). Restore it from version control "
            f"(`git checkout -- {path}`) or write a fresh one with `guardrail approve "
            f"recipe={path.name.removesuffix(SUFFIX)}`."
        ) from err
    data["config"] = dict(data["config"] or {})
    data["effective"] = dict(data["effective"] or {})
    return data


def write_lock(path: str | Path, name: str, config: dict[str, Scalar],
               effective: dict[str, Scalar]) -> None:
    """Write the lock atomically, keys sorted, with a header saying how to change it."""
    body = yaml.safe_dump(
        {"name": name, "hash": lock_hash(config, effective),
         "config": dict(sorted(config.items())), "effective": dict(sorted(effective.items()))},
        sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)
    header = (f"# guardrail config lock for '{name}': what `recipe={name}` trains with.\n"
              "# Review a change here like a code change. Written by "
              f"`guardrail approve recipe={name}`.\n")
    write_text(path, header + body)


def composed_config(recipe: str, config_name: str = "train") -> dict[str, Scalar]:
    """The recipe's config composed without any other override, flat and unresolved.

    Uses the running Hydra app's search path when called inside one.
    """
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    overrides = [f"recipe={recipe}"]
    if GlobalHydra.instance().is_initialized():
        cfg = compose(config_name=config_name, overrides=overrides)
    else:
        with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=overrides)
    return flatten(OmegaConf.to_container(cfg, resolve=False))


def compose_recipe(recipe: str, config_dir: str | Path | None = None,
                   config_name: str = "train") -> Any:
    """The recipe's DictConfig without other overrides, from the package or ``config_dir``."""
    from hydra import compose, initialize_config_dir, initialize_config_module

    init = initialize_config_dir(str(Path(config_dir).absolute()), version_base="1.3") \
        if config_dir else initialize_config_module(CONFIG_MODULE, version_base="1.3")
    with init:
        return compose(config_name=config_name, overrides=[f"recipe={recipe}"])


def approve_recipe(recipe: str, lock_dir: str | Path, config_dir: str | Path | None,
                   scratch: str | Path) -> tuple[Path, list[Any]]:
    """Rewrite ``recipe``'s lock from its config and the objects it builds.

    Returns:
        The lock's path and the changes from the previous lock (empty for a new one).

    """
    import lightning.pytorch as pl
    from hydra.utils import instantiate
    from omegaconf import open_dict

    from guardrail.build import build
    from guardrail.checks.config_lock import diff_settings
    from guardrail.effective import effective_settings, optimizers_of, trainer_settings

    cfg = compose_recipe(recipe, config_dir)
    config = flatten(OmegaConf.to_container(cfg, resolve=False))
    with open_dict(cfg):
        cfg.paths.output_dir = str(scratch)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    built = build(cfg)
    datamodule = built.datamodule
    datamodule.prepare_data()
    datamodule.setup("fit")
    trainer = instantiate(cfg.trainer, logger=False, enable_progress_bar=False)
    effective = effective_settings(
        {"train": datamodule.train_dataloader(), "val": datamodule.val_dataloader()},
        optimizers_of(built.module.configure_optimizers()), trainer_settings(trainer),
        built.module.hparams, getattr(datamodule, "hparams", None))
    path = lock_path(lock_dir, recipe)
    old = read_lock(path) if path.is_file() else None
    changes = [] if old is None else (diff_settings(old["config"], config, "config")
                                      + diff_settings(old["effective"], effective, "effective"))
    write_lock(path, recipe, config, effective)
    return path, changes
