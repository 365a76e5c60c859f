"""``guardrail approve recipe=NAME``: rewrite a recipe's config lock from what it trains with."""

from __future__ import annotations

import argparse
import tempfile
from typing import Any

from guardrail.errors import ConfigError
from guardrail.recipe import (
    discover_recipes,
    make_importable,
    project_sources,
    unknown_recipe_message,
)

HELP = "approve a recipe's current configuration: rewrite its config lock"
EPILOG = """examples:
  guardrail approve recipe=est
  guardrail approve recipe=myproj                # from the folder holding configs/recipe/
  guardrail approve recipe=myproj --config-dir ~/myproj/configs --lock-dir locks
  git diff locks/est.lock.yaml        # what a reviewer sees

The lock holds the recipe's config composed without command-line overrides, and the effective
settings read from the objects it builds (samplers, optimiser, trainer, hyperparameters).
A relative --lock-dir is taken from the project root: the git work tree holding the current
directory, else the current directory (where the training app looks for it too).
"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``approve`` on the subparsers ``sub``."""
    parser = sub.add_parser("approve", help=HELP, description=HELP + ".", epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", metavar="recipe=NAME", help="the recipe whose lock to rewrite")
    parser.add_argument("--lock-dir", default="locks",
                        help="folder of the lock files; relative: from the project root")
    parser.add_argument("--config-dir", action="append", default=[], metavar="DIR",
                        help="a config folder added to the search path (repeatable), as the "
                             "training app's --config-dir; ./configs is searched anyway")
    parser.add_argument("-cp", "--config-path", default=None, metavar="DIR",
                        help="a config folder that replaces the package's, as the training "
                             "app's -cp")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Compose the recipe, build its objects, read their settings, write the lock."""
    from guardrail.lockfile import approve_recipe, lock_path, resolve_lock_dir

    sources = project_sources(args.config_dir)
    make_importable(sources)
    recipes = discover_recipes(sources)
    if args.config_path:  # recipes in a replacing config folder
        recipes = (*recipes, *discover_recipes(project_sources([args.config_path])))
    key, _, name = args.recipe.partition("=")
    if key != "recipe":
        raise ConfigError(f"Expected `recipe=NAME`; got {args.recipe!r}. Example: "
                          "`guardrail approve recipe=est`.")
    if name not in [r.name for r in recipes]:
        raise ConfigError(unknown_recipe_message(
            name, recipes, "Approve one with `guardrail approve recipe=est`; a recipe of your "
            "own is found in ./configs/recipe/ or with `--config-dir DIR`."))
    existed = lock_path(resolve_lock_dir(args.lock_dir), name).is_file()
    with tempfile.TemporaryDirectory() as tmp:
        path, changes = approve_recipe(name, args.lock_dir, None, tmp, searchpath=sources,
                                       config_path=args.config_path)
    print(f"wrote the config lock of '{name}': {path}")
    for change in changes:
        print(f"  {change}")
    if not changes:
        print("  (no change from the previous lock)" if existed else "  (a new lock: review "
              "and commit it)")
    return 0
