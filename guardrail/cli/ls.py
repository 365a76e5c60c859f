"""``guardrail ls``: list the case-study recipes.

Example:
    >>> import argparse
    >>> run(argparse.Namespace())  # doctest: +ELLIPSIS
    bot ...
    0

"""

from __future__ import annotations

import argparse
from typing import Any

from guardrail.recipes import RECIPES

HELP = "list the recipes"
EPILOG = """examples:
  guardrail ls
  python -m guardrail.train recipe=est     # train one of them
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``ls`` on the subparsers ``sub``."""
    parser = sub.add_parser("ls", help=HELP, description="List the case-study recipes.",
                            epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print one line per recipe: name, title, description."""
    for recipe in RECIPES:
        print(f"{recipe.name:<4} {recipe.title} — {recipe.description}")
    return 0
