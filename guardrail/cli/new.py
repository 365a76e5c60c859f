"""``guardrail new NAME``: write a minimal working recipe of your own into the current folder.

The files (``NAME/`` package, ``configs/recipe/NAME.yaml``, ``tests/test_NAME.py``) come from
the templates in ``guardrail/templates/``. Out of the box the recipe trains in well under a
minute on a CPU and passes every guardrail: a seeded synthetic table that a small MLP
clearly learns, and a training-mean baseline it beats. Existing files are never overwritten.

Example:
    >>> import argparse, os, tempfile
    >>> os.chdir(tempfile.mkdtemp())
    >>> run(argparse.Namespace(name="demo_proj"))  # doctest: +ELLIPSIS
    wrote demo_proj/__init__.py
    ...
    0
    >>> sorted(os.listdir("demo_proj"))
    ['__init__.py', 'data.py', 'model.py']

"""

from __future__ import annotations

import argparse
import importlib.resources
import importlib.util
import keyword
import re
import sys
from pathlib import Path
from typing import Any

from guardrail.errors import ConfigError
from guardrail.recipe import discover_recipes

HELP = "write a minimal working recipe of your own (data, model, config, test) here"
EPILOG = """examples:
  mkdir myproj && cd myproj && guardrail new myproj
  python -m guardrail.train recipe=myproj      # from this folder: trains in seconds on a CPU
  pytest tests                                 # the recipe's own tests
  guardrail ls                                 # lists myproj beside the case studies

Then replace the synthetic table in myproj/data.py with your data and the MLP in
myproj/model.py with your network; keep net_kwargs(), module_kwargs() and baselines()
(the recipe contract, guardrail.recipe.RecipeContract).
"""
# Template file -> where it goes; NAME is the recipe's name.
FILES = {
    "init.py.tmpl": "{name}/__init__.py",
    "data.py.tmpl": "{name}/data.py",
    "model.py.tmpl": "{name}/model.py",
    "recipe.yaml.tmpl": "configs/recipe/{name}.yaml",
    "test.py.tmpl": "tests/test_{name}.py",
}
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``new`` on the subparsers ``sub``."""
    parser = sub.add_parser("new", help=HELP, description=HELP + ".", epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", metavar="NAME",
                        help="the recipe's name: lower case, a Python package name")
    parser.set_defaults(run=run)
    return parser


def class_prefix(name: str) -> str:
    """``my_proj`` -> ``MyProj``: the prefix of the generated class names.

    Example:
        >>> class_prefix("my_proj"), class_prefix("myproj")
        ('MyProj', 'Myproj')

    """
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def check_name(name: str, folder: Path) -> None:
    """Raise a :class:`ConfigError` when ``name`` cannot be a recipe and package here."""
    fix = "Choose another, e.g. `guardrail new my_model`."
    if not _NAME.fullmatch(name) or keyword.iskeyword(name):
        raise ConfigError(f"Recipe name {name!r} is not a lower-case Python package name "
                          f"(letters, digits, underscores; a letter first). {fix}")
    if name in {r.name for r in discover_recipes()}:
        raise ConfigError(f"Recipe name {name!r} is taken by a case-study recipe of the "
                          f"package, which would shadow yours on the search path. {fix}")
    shadowed = name in sys.stdlib_module_names
    if not shadowed and not (folder / name).exists():
        shadowed = importlib.util.find_spec(name) is not None
    if shadowed:
        raise ConfigError(f"Recipe name {name!r} is already an importable module (standard "
                          f"library or installed package); a package of that name here would "
                          f"shadow it. {fix}")


def render(template: str, name: str) -> str:
    """A template's text with the recipe's name and class prefix filled in."""
    text = (importlib.resources.files("guardrail.templates") / template).read_text("utf-8")
    return text.replace("{{name}}", name).replace("{{Name}}", class_prefix(name))


def write_recipe(name: str, folder: str | Path = ".") -> list[Path]:
    """Write the recipe's files under ``folder``; returns their paths (relative).

    Raises:
        ConfigError: A bad name, or a file that exists already (nothing is written then).

    """
    folder = Path(folder)
    check_name(name, folder)
    targets = {template: Path(dest.format(name=name)) for template, dest in FILES.items()}
    existing = [str(p) for p in targets.values() if (folder / p).exists()]
    if existing:
        raise ConfigError(f"`guardrail new {name}` would overwrite {', '.join(existing)} in "
                          f"{folder.absolute()}; nothing was written. Run it in an empty "
                          "folder, or move those files away first.")
    for template, path in targets.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(render(template, name), encoding="utf-8")
    return list(targets.values())


def run(args: argparse.Namespace) -> int:
    """Write the files and say what to run next."""
    for path in write_recipe(args.name):
        print(f"wrote {path}")
    print(f"next, from this folder:\n"
          f"  python -m guardrail.train recipe={args.name}\n"
          f"  pytest tests/test_{args.name}.py\n"
          f"  guardrail ls")
    return 0
