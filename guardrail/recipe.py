"""What a recipe is: the datamodule contract, and the recipes found on the config search path.

A recipe is a config ``recipe/<name>.yaml`` on Hydra's search path plus the code its
``_target_``s name. The search path holds the package's own configs (the seven case studies),
then a ``--config-dir``, then ``hydra.searchpath`` entries, where the app also puts the
``configs/`` folder of the directory it is started from. The first folder that has a name wins,
as in Hydra. So a team's recipe lives in its own folder::

    myproj/                   # run the app and `guardrail` from here
      configs/recipe/myproj.yaml
      myproj/data.py          # importable: the folder is put on sys.path
      myproj/model.py

(``guardrail new myproj`` writes such a folder.) A recipe's title and description are the
first comment lines of its YAML, after ``# @package _global_``; a description may go on over
lines that start with ``#`` and two or more spaces::

    # @package _global_
    # title: Real-estate valuation
    # description: Ames housing sales (2930, real): MLP with categorical embeddings predicts
    #   log price; chronological split.

They stay out of the composed config, so they are not part of the config lock.

Example:
    >>> lines = ["# @package _global_", "# title: Demo", "# description: One", "#   line.", "x: 1"]
    >>> read_header(chr(10).join(lines))
    {'title': 'Demo', 'description': 'One line.'}
    >>> [r.name for r in discover_recipes()][:3]
    ['bot', 'ccf', 'est']

"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

PACKAGE_CONFIGS = "pkg://guardrail.configs"
PROJECT_CONFIG_DIR = "configs"
_HEADER_KEY = re.compile(r"^#\s?(title|description):\s*(.*)$")
_CONTINUATION = re.compile(r"^#\s{2,}(\S.*)$")
_PLAIN = re.compile(r"[\w./:~+-]+")


# ------------------------------------------------------------------------- the contract
@runtime_checkable
class ProvidesNetKwargs(Protocol):
    """A datamodule that gives the network data-derived arguments (input widths, vocabularies)."""

    def net_kwargs(self) -> Mapping[str, Any]:
        """Keyword arguments added to the ``model:`` config when the network is built."""
        ...


@runtime_checkable
class ProvidesModuleKwargs(Protocol):
    """A datamodule that gives the LightningModule data-derived arguments."""

    def module_kwargs(self) -> Mapping[str, Any]:
        """Keyword arguments added to the ``module:`` config (e.g. ``feature_names``)."""
        ...


@runtime_checkable
class ProvidesBaselines(Protocol):
    """A datamodule that scores trivial rules the model must beat (``BaselineCheck``)."""

    def baselines(self) -> Mapping[str, Mapping[str, float]]:
        """Baseline name -> test metric short name (``rmse``, not ``test/rmse``) -> value."""
        ...


@runtime_checkable
class ProvidesFeatureNames(Protocol):
    """A datamodule whose inputs are named columns."""

    @property
    def feature_names(self) -> Sequence[str]:
        """One name per input column, in order."""
        ...


class RecipeContract(Protocol):
    """The contract between a recipe's datamodule and ``python -m guardrail.train``.

    Must: be a ``LightningDataModule`` with ``train_dataloader``, ``val_dataloader`` and
    ``test_dataloader`` (the app fits, then tests with the best checkpoint).

    May (each is optional; :func:`guardrail.build.build` calls what is there):

    - ``net_kwargs()``: a dict merged into the ``model:`` config, for what only the data
      knows (input width, vocabulary sizes, target mean).
    - ``module_kwargs()``: a dict merged into the ``module:`` config (``feature_names``,
      class weights).
    - ``feature_names``: one name per input column; passed to the module as
      ``feature_names=`` when ``module_kwargs()`` does not give them and the module takes
      that argument (``GuardrailModule`` does). Findings and attributions then name columns.
    - ``baselines()``: ``{baseline: {metric: test value}}`` of trivial rules (training mean,
      majority class, popularity); ``BaselineCheck`` fires ``baseline.not_beaten`` when the
      model does not beat one. Without it the run records ``baseline.missing``.

    Example:
        >>> class Data:
        ...     def net_kwargs(self) -> dict: return {"n_features": 3}
        >>> isinstance(Data(), ProvidesNetKwargs), isinstance(Data(), ProvidesBaselines)
        (True, False)

    """

    def train_dataloader(self) -> Any:
        """Training batches."""
        ...

    def val_dataloader(self) -> Any:
        """Validation batches."""
        ...

    def test_dataloader(self) -> Any:
        """Test batches."""
        ...

    def net_kwargs(self) -> Mapping[str, Any]:
        """Optional: see :class:`ProvidesNetKwargs`."""
        ...

    def module_kwargs(self) -> Mapping[str, Any]:
        """Optional: see :class:`ProvidesModuleKwargs`."""
        ...

    def baselines(self) -> Mapping[str, Mapping[str, float]]:
        """Optional: see :class:`ProvidesBaselines`."""
        ...


# --------------------------------------------------------------------------- the registry
@dataclasses.dataclass(frozen=True)
class RecipeInfo:
    """One recipe found on the config search path.

    Attributes:
        name: Short name used as ``recipe=<name>``.
        title: A few words (``# title:``; the name when the YAML has none).
        description: One line: data, model, what the recipe demonstrates.
        source: The YAML's path for a recipe of the user's, ``""`` for the package's own.
    """

    name: str
    title: str
    description: str
    source: str = ""


def read_header(text: str) -> dict[str, str]:
    """``title`` and ``description`` from the leading comment lines of a recipe YAML."""
    found: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        match, more = _HEADER_KEY.match(line), _CONTINUATION.match(line)
        if match:
            key = match.group(1)
            found[key] = match.group(2).strip()
        elif more and key:
            found[key] = f"{found[key]} {more.group(1).strip()}".strip()
        else:
            key = None
    return found


def _source_root(source: str) -> Any:
    """The folder (a ``Path`` or an importlib ``Traversable``) of a search-path entry."""
    scheme, sep, rest = source.partition("://")
    if not sep:
        scheme, rest = "file", source
    if scheme == "pkg":
        module, _, sub = rest.partition("/")
        try:
            root = importlib.resources.files(module)
        except ModuleNotFoundError:
            return None
        return root / sub if sub else root
    return Path(rest) if scheme == "file" else None


def _recipes_in(source: str) -> list[RecipeInfo]:
    root = _source_root(source)
    folder = root / "recipe" if root is not None else None
    if folder is None or not folder.is_dir():
        return []
    builtin = source == PACKAGE_CONFIGS
    out = []
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".yaml"):
            continue
        name = item.name[: -len(".yaml")]
        header = read_header(item.read_text(encoding="utf-8"))
        where = "" if builtin else str(item)
        description = header.get("description") or (
            f"(no description: start {item} with `# title: ...` and `# description: ...` "
            "lines)")
        out.append(RecipeInfo(name, header.get("title") or name, description, where))
    return out


def discover_recipes(sources: Iterable[str] = ()) -> tuple[RecipeInfo, ...]:
    """Every recipe on the search path: the package's, then those of ``sources`` in order.

    Args:
        sources: Search-path entries after the package's (``file:///abs/configs``,
            ``pkg://module``, or a plain folder); see :func:`search_path`.

    A name found twice is the first one's, as Hydra resolves it.
    """
    seen: dict[str, RecipeInfo] = {}
    for source in (PACKAGE_CONFIGS, *sources):
        for recipe in _recipes_in(source):
            seen.setdefault(recipe.name, recipe)
    return tuple(seen.values())


def unknown_recipe_message(name: str, recipes: Sequence[RecipeInfo], run: str) -> str:
    """The error for a misspelt ``recipe=``: every available recipe, and how to run one.

    Example:
        >>> print(unknown_recipe_message("x", [RecipeInfo("a", "A", "Demo.")], "run it"))
        Unknown recipe 'x'. Available recipes:
          a      A: Demo.
        run it

    """
    listing = "\n".join(f"  {r.name:<6} {r.title}: {r.description}"
                        + (f" [{r.source}]" if r.source else "") for r in recipes)
    return f"Unknown recipe {name!r}. Available recipes:\n{listing}\n{run}"


# ------------------------------------------------------------------ the user's project folder
def project_config_dir(cwd: str | Path | None = None) -> Path | None:
    """``<cwd>/configs`` when it exists and is not the package's own config folder."""
    folder = Path(cwd or os.getcwd()).absolute() / PROJECT_CONFIG_DIR
    if not folder.is_dir():
        return None
    package = _source_root(PACKAGE_CONFIGS)
    if isinstance(package, Path) and package.resolve() == folder.resolve():
        return None
    return folder


def as_source(folder: str | Path) -> str:
    """A folder as a Hydra search-path entry (``file://`` and an absolute path)."""
    return f"file://{Path(folder).expanduser().absolute()}"


def searchpath_entries(overrides: Iterable[str]) -> list[str]:
    """The values of a ``hydra.searchpath=[...]`` override among ``overrides``, else ``[]``.

    Example:
        >>> searchpath_entries(["recipe=a", "hydra.searchpath=[file:///x,pkg://y]"])
        ['file:///x', 'pkg://y']

    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in overrides:
        if override.partition("=")[0].lstrip("+") == "hydra.searchpath":
            value = OverridesParser.create().parse_override(override).value()
            return [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return []


def search_path(config_dir: str | Path | None, overrides: Iterable[str] = ()) -> list[str]:
    """The search path after the package's: ``--config-dir``, then ``hydra.searchpath``."""
    extra = [as_source(config_dir)] if config_dir else []
    return [*extra, *(s for s in searchpath_entries(overrides) if s not in extra)]


def with_project_configs(overrides: list[str], cwd: str | Path | None = None,
                         config_dir: str | Path | None = None) -> list[str]:
    """``overrides`` with ``<cwd>/configs`` appended to ``hydra.searchpath`` (if it exists).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "configs").mkdir()
        >>> with_project_configs(["recipe=a"], folder)[-1] == f"hydra.searchpath=[file://{folder}/configs]"
        True

    """
    folder = project_config_dir(cwd)
    if folder is None:
        return list(overrides)
    source = as_source(folder)
    entries = searchpath_entries(overrides)
    if source in entries or (config_dir and as_source(config_dir) == source):
        return list(overrides)
    kept = [o for o in overrides if o.partition("=")[0].lstrip("+") != "hydra.searchpath"]
    return [*kept, searchpath_override([*entries, source])]


def searchpath_override(entries: Iterable[str]) -> str:
    """A ``hydra.searchpath=[...]`` override, quoting entries Hydra's grammar would split.

    Example:
        >>> searchpath_override(["file:///a/configs", "file:///my dir/configs"])
        "hydra.searchpath=[file:///a/configs,'file:///my dir/configs']"

    """
    quoted = [e if _PLAIN.fullmatch(e) else "'" + e.replace("\\", "\\\\").replace("'", "\\'") + "'"
              for e in entries]
    return f"hydra.searchpath=[{','.join(quoted)}]"


def make_importable(sources: Iterable[str], cwd: str | Path | None = None) -> None:
    """Put the project folders on ``sys.path``: ``cwd`` and the folder above each config dir.

    A recipe's ``_target_: myproj.MyData`` then imports from the project, as
    ``python -m`` does for the current directory.
    """
    folders = [Path(cwd or os.getcwd()).absolute()]
    for source in sources:
        root = _source_root(source)
        if isinstance(root, Path):
            folders.append(root.expanduser().absolute().parent)
    for folder in folders:
        if str(folder) not in sys.path and folder.is_dir():
            sys.path.append(str(folder))


def project_sources(config_dirs: Iterable[str | Path] = (),
                    cwd: str | Path | None = None) -> list[str]:
    """Search-path entries of the ``guardrail`` commands: ``config_dirs``, then ``cwd/configs``.

    Example:
        >>> project_sources(["/x/configs"], cwd="/nonexistent")
        ['file:///x/configs']

    """
    folder = project_config_dir(cwd)
    sources = [as_source(d) for d in config_dirs]
    sources += [as_source(folder)] if folder is not None else []
    return list(dict.fromkeys(sources))
