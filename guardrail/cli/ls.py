"""``guardrail ls``: list the recipes on the config search path (the package's and yours).

Example:
    >>> import argparse
    >>> run(argparse.Namespace(config_dir=[]))  # doctest: +ELLIPSIS
    bot  Poker-bot detection — ...
    0

"""

from __future__ import annotations

import argparse
from typing import Any

from guardrail.recipe import discover_recipes, make_importable, project_sources

HELP = "list the recipes: the seven case studies and your own"
EPILOG = """examples:
  guardrail ls
  guardrail ls --config-dir ~/myproj/configs     # recipes of another folder too
  python -m guardrail.train recipe=est           # train one of them

A recipe of your own is `configs/recipe/<name>.yaml` in the folder you run from (or in a
`--config-dir`); its first lines `# title: ...` and `# description: ...` are shown here.
`guardrail new <name>` writes a working one.
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``ls`` on the subparsers ``sub``."""
    parser = sub.add_parser("ls", help=HELP, description="List the recipes on the config "
                            "search path: the package's case studies, then your own.",
                            epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-dir", action="append", default=[], metavar="DIR",
                        help="a config folder to search too (repeatable), as the training "
                             "app's --config-dir")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print one line per recipe: name, title, description (and where a user's recipe is)."""
    sources = project_sources(args.config_dir)
    make_importable(sources)
    recipes = discover_recipes(sources)
    width = max(4, *(len(r.name) for r in recipes))
    for recipe in recipes:
        where = f" [{recipe.source}]" if recipe.source else ""
        print(f"{recipe.name:<{width}} {recipe.title} — {recipe.description}{where}")
    return 0
