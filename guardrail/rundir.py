"""A finished run directory read back: its config, its data, its model and its files.

``guardrail records``, ``guardrail export`` and ``guardrail serve`` start from a run directory
of ``python -m guardrail.train``: the composed config Hydra saved (``.hydra/config.yaml``), the
checkpoints, and what the guardrails wrote (``contract.json``, ``preprocessor.json``).

Example:
    >>> import tempfile
    >>> run_config(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    guardrail.errors.ConfigError: ... is not a run directory of `python -m guardrail.train` ...

"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardrail.errors import ConfigError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from guardrail.build import Built


def run_config(run_dir: str | Path) -> DictConfig:
    """The composed config the run trained with (``RUN_DIR/.hydra/config.yaml``).

    Raises:
        ConfigError: There is no such file: not a run directory of the app.
    """
    from omegaconf import OmegaConf

    path = Path(run_dir) / ".hydra" / "config.yaml"
    if not path.is_file():
        raise ConfigError(
            f"{run_dir} is not a run directory of `python -m guardrail.train` (it has no "
            ".hydra/config.yaml); give the folder a run was written to, e.g. "
            "outputs/est/2026-01-01_12-00-00.")
    cfg = OmegaConf.load(path)
    _project_importable(Path(run_dir))
    return cfg  # type: ignore[return-value]


def run_datamodule(run_dir: str | Path) -> Any:
    """The run's datamodule, rebuilt from its config and set up (its splits built)."""
    import hydra

    cfg = run_config(run_dir)
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    datamodule.setup()
    return datamodule


def run_built(run_dir: str | Path) -> Built:
    """The run's datamodule, network and module, rebuilt from its config (untrained)."""
    from guardrail.build import build

    return build(run_config(run_dir))


def checkpoint_path(run_dir: str | Path, which: str = "best") -> Path:
    """The run's ``best`` (else ``last``) checkpoint, or the one named.

    Raises:
        ConfigError: The run has no checkpoint.
    """
    folder = Path(run_dir) / "checkpoints"
    if which not in ("best", "last"):
        path = Path(which)
        if not path.is_file():
            raise ConfigError(f"checkpoint {which} does not exist; give a .ckpt file of the run "
                              f"or `best`/`last`.")
        return path
    found = sorted(p for p in folder.glob("*.ckpt")) if folder.is_dir() else []
    last = [p for p in found if p.name.startswith("last")]
    best = [p for p in found if not p.name.startswith("last")]
    ordered = (best + last) if which == "best" else (last + best)
    if not ordered:
        raise ConfigError(
            f"{run_dir} has no checkpoint under checkpoints/ (the run stopped before saving "
            "one, or checkpointing was off); train again with `checkpoint` on.")
    return ordered[0]


def _project_importable(run_dir: Path) -> None:
    """A recipe of the user's own imports from its project folder, as at training time."""
    import yaml

    from guardrail.recipe import make_importable

    hydra_yaml = run_dir / ".hydra" / "hydra.yaml"
    sources: list[str] = []
    if hydra_yaml.is_file():
        runtime = ((yaml.safe_load(hydra_yaml.read_text()) or {}).get("hydra") or {}).get(
            "runtime") or {}
        sources = [f"file://{s['path']}" for s in runtime.get("config_sources", [])
                   if s.get("schema") == "file" and s.get("provider") != "main"]
        cwd = runtime.get("cwd")
        if cwd:
            make_importable(sources, cwd=cwd)
            return
    make_importable(sources)
