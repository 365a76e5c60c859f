"""``guardrail approve recipe=NAME``: rewrite a recipe's config lock from what it trains with."""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

from guardrail.errors import ConfigError
from guardrail.recipes import RECIPES

HELP = "approve a recipe's current configuration: rewrite its config lock"
EPILOG = """examples:
  guardrail approve recipe=est
  guardrail approve recipe=est --lock-dir locks --config-dir my_configs
  git diff locks/est.lock.yaml        # what a reviewer sees

The lock holds the recipe's config composed without command-line overrides, and the effective
settings read from the objects it builds (samplers, optimiser, trainer, hyperparameters).
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``approve`` on the subparsers ``sub``."""
    parser = sub.add_parser("approve", help=HELP, description=HELP + ".", epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", metavar="recipe=NAME", help="the recipe whose lock to rewrite")
    parser.add_argument("--lock-dir", default="locks", help="folder of the lock files")
    parser.add_argument("--config-dir", default=None,
                        help="a config folder to compose from instead of the installed one")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Compose the recipe, build its objects, read their settings, write the lock."""
    from guardrail.lockfile import approve_recipe

    key, _, name = args.recipe.partition("=")
    names = [r.name for r in RECIPES]
    if key != "recipe" or name not in names:
        raise ConfigError(f"Expected `recipe=NAME` with NAME one of {', '.join(names)}; got "
                          f"{args.recipe!r}. Example: `guardrail approve recipe=est`.")
    with tempfile.TemporaryDirectory() as tmp:
        path, changes = approve_recipe(name, args.lock_dir, args.config_dir, tmp)
    print(f"wrote {path}")
    for change in changes:
        print(f"  {change}")
    if not changes:
        print("  (no change from the previous lock)")
    return 0
