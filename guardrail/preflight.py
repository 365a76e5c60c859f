"""Check a training command line before Hydra runs it, and say what is wrong in plain words.

Hydra's own errors for a typo suggest appending the misspelt key (``+model.poool=8``); ours
name the key, suggest the close ones, list the valid options, and every problem at once.
Recipes are looked up on the same search path Hydra will use: the package's configs, a
``--config-dir`` and ``hydra.searchpath`` (:mod:`guardrail.recipe`).

The values are checked too, before any object is built: every key of a ``_target_`` node
(the trainer, the recipe's data, model and module, callbacks, logger) against the type its
target declares in its signature (``int``, ``float``, ``bool``, ``str``, ``Optional``,
``Literal``, lists and tuples of those), and the trainer's counts against their ranges
(:func:`check_values`). An annotation the check does not understand is never a refusal.

Example:
    >>> check_argv(["recipe=wea", "model.pool=2"]) is None
    True
    >>> print(check_argv(["recipe=nope"]).splitlines()[0])
    Unknown recipe 'nope'. Available recipes:
    >>> print(check_argv(["recipe=wea", "trainer.max_epochs=abc"]))  # doctest: +ELLIPSIS
    `trainer.max_epochs` is 'abc' (a string, from the command line), but ...Trainer takes \
max_epochs as an int or null. Give an int or null, e.g. `trainer.max_epochs=120`.

"""

from __future__ import annotations

import difflib
import importlib.resources
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_module
from hydra.errors import HydraException
from omegaconf import OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from guardrail.config_values import check_values
from guardrail.recipe import (
    RecipeInfo,
    discover_recipes,
    search_path,
    searchpath_override,
    unknown_recipe_message,
)

CONFIG_MODULE = "guardrail.configs"
GROUPS = ("recipe", "trainer", "guardrails", "logger")
# Flags that Hydra handles alone: nothing to check.
_PASS_THROUGH = {"-h", "--help", "--hydra-help", "--version", "--info", "-i",
                 "--shell-completion", "-sc", "--experimental-rerun"}
_TAKES_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name",
                "-cn", "--config-dir", "-cd", "--resolve"}


def group_options(group: str) -> list[str]:
    """The config names available in a config group, e.g. ``trainer`` -> ``['cpu', ...]``.

    Example:
        >>> "ddp_cpu" in group_options("trainer")
        True

    """
    folder = importlib.resources.files(CONFIG_MODULE) / group
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def config_dir_of(argv: list[str]) -> str | None:
    """The ``--config-dir`` (``-cd``) of a command line, or None.

    Example:
        >>> config_dir_of(["recipe=a", "--config-dir", "my_configs"])
        'my_configs'

    """
    found = None
    for arg, following in zip(argv, [*argv[1:], None], strict=True):
        if arg in ("--config-dir", "-cd"):
            found = following
        elif arg.startswith("--config-dir="):
            found = arg.partition("=")[2]
    return found


def check_argv(argv: list[str]) -> str | None:
    """Every problem of a ``guardrail.train`` command line in one message, or None if fine."""
    if any(a.split("=")[0] in _PASS_THROUGH for a in argv):
        return None
    overrides, multirun = _overrides(argv)
    config_dir = config_dir_of(argv)
    if config_dir and not Path(config_dir).expanduser().is_dir():
        return (f"The config folder '--config-dir {config_dir}' does not exist "
                f"(looked for {Path(config_dir).expanduser().absolute()}). Give the folder "
                "that holds your `recipe/<name>.yaml`, e.g. `--config-dir configs`.")
    sources = search_path(config_dir, overrides)
    problems = _group_problems(overrides, discover_recipes(sources))
    if problems:
        return "\n\n".join(problems)
    groups = [o for o in overrides if _key(o) in GROUPS]
    hydra_overrides = [o for o in overrides
                       if _key(o).startswith("hydra.") and _key(o) != "hydra.searchpath"]
    if sources:
        hydra_overrides.append(searchpath_override(sources))
    try:
        with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
            cfg = compose("train", overrides=groups + hydra_overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        first = str(err).strip().splitlines()[0]
        return (f"The command line {' '.join(overrides)!r} does not compose into a config: "
                f"{first} Check the override syntax (`key=value`, `group=option`); "
                "`python -m guardrail.train --help` shows the groups and their options.")
    tree = OmegaConf.to_container(cfg, resolve=False)
    problems = [p for o in overrides if (p := _key_problem(o, tree))]
    if not problems and not multirun:
        problems = _value_problems(overrides, groups + hydra_overrides, tree)
    if not problems and not multirun:
        run_dir = OmegaConf.select(cfg, "hydra.run.dir", throw_on_resolution_failure=False)
        problems = [p for p in [_dir_problem(str(run_dir))] if p and run_dir]
    return "\n\n".join(problems) or None


def _value_problems(overrides: list[str], base: list[str], tree: dict[str, Any]) -> list[str]:
    """:func:`check_values` of the config composed with every override."""
    values = [o for o in overrides if _key(o) not in GROUPS and not _key(o).startswith("hydra.")]
    given = {_key(o): o for o in values if not o.startswith("~")}
    try:
        with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
            cfg = compose("train", overrides=base + values, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as err:
        first = str(err).strip().splitlines()[0]
        return [f"The command line {' '.join(overrides)!r} does not compose into a config: "
                f"{first} Check the override syntax (`key=value`, `+key=value` to add one); "
                "`python -m guardrail.train --cfg job` prints every key."]
    with open_dict(cfg):
        cfg.hydra = None  # Hydra's own settings: checked by Hydra
    return check_values(cfg, given, defaults=tree)


def _overrides(argv: list[str]) -> tuple[list[str], bool]:
    out, multirun, skip = [], False, False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-m", "--multirun"):
            multirun = True
        elif arg in _TAKES_VALUE:
            skip = True
        elif not arg.startswith("-"):
            out.append(arg)
    return out, multirun


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _group_problems(overrides: list[str], recipes: tuple[RecipeInfo, ...]) -> list[str]:
    problems = []
    for override in overrides:
        key, _, value = override.partition("=")
        group = key.lstrip("+")
        if group not in GROUPS or not value:
            continue
        options = [r.name for r in recipes] if group == "recipe" else group_options(group)
        for choice in value.split(","):  # a multirun sweep lists several
            if choice in options:
                continue
            if group == "recipe":
                problems.append(unknown_recipe_message(
                    choice, recipes, "Run one with `python -m guardrail.train recipe=wea` "
                    "(`guardrail ls` lists them too). A recipe of your own is "
                    "`configs/recipe/<name>.yaml` in the folder you run from, or in a "
                    "`--config-dir`; `guardrail new <name>` writes a working one."))
            else:
                problems.append(f"Unknown {group} {choice!r}; available: {', '.join(options)}. "
                                f"Choose one with `{group}={options[0]}`.")
    return problems


def _walk(tree: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield f"{prefix}{k}"
            yield from _walk(v, f"{prefix}{k}.")


def _key_problem(override: str, tree: dict[str, Any]) -> str | None:
    raw_key, sep, value = override.partition("=")
    if not sep or raw_key.startswith(("+", "~")) or raw_key.lstrip("+") in GROUPS:
        return None  # `+key` adds and `~key` deletes on purpose; Hydra checks those.
    key = raw_key.lstrip("+")
    node: Any = tree
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            break
    else:
        return None
    parent = key.rpartition(".")[0]
    siblings = tree
    for part in parent.split(".") if parent else []:
        siblings = siblings.get(part, {}) if isinstance(siblings, dict) else {}
    close = difflib.get_close_matches(key, list(_walk(tree)), n=3, cutoff=0.75)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listing = (f" Keys under '{parent}': {', '.join(sorted(siblings))}."
               if parent and isinstance(siblings, dict) and siblings else "")
    return (f"Unknown config key {key!r} (from `{override}`).{hint}{listing} "
            f"Fix the spelling, or add a new key on purpose with `+{key}={value}`; "
            "`python -m guardrail.train --cfg job` prints every key.")


def _dir_problem(run_dir: str) -> str | None:
    """Why the run directory cannot be created or written, or None."""
    path = Path(run_dir).expanduser().absolute()
    existing = path
    while not existing.exists():
        existing = existing.parent
    fix = "Choose another with `hydra.run.dir=/path/to/runs/name`."
    if not existing.is_dir():
        return (f"The output directory '{path}' cannot be created: '{existing}' is a file, "
                f"not a folder. {fix}")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        reason = f"{err.strerror} ({existing})"
        return f"The output directory '{path}' cannot be written: {reason}. {fix}"
    if not os.access(existing, os.W_OK | os.X_OK):
        reason = f"no permission on {existing}"
        return f"The output directory '{path}' cannot be written: {reason}. {fix}"
    return None


# --------------------------------------------------------------------- value checks
# Trainer arguments that count something: the smallest value Lightning accepts, and what the
# smallest means. Lightning's annotations say `int`; the ranges are in its docs.
