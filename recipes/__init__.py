"""The case-study recipes: one per project of Arpteg et al. (2018), each a config + code.

Each has a config ``configs/recipe/<name>.yaml`` (installed as ``guardrail.configs.recipe``),
whose first comment lines give its title and description, and a subpackage
``guardrail.recipes.<name>``. ``RECIPES`` lists the package's own; a team's recipes, found on
the config search path, come from :func:`guardrail.recipe.discover_recipes`.

Example:
    >>> [r.name for r in RECIPES]
    ['bot', 'ccf', 'est', 'oil', 'rec', 'ret', 'wea']
    >>> get_recipe("wea").title
    'Weather-field autoencoder'
"""

from __future__ import annotations

from collections.abc import Iterable

from guardrail.recipe import RecipeInfo, discover_recipes

RECIPES: tuple[RecipeInfo, ...] = discover_recipes()

__all__ = ["RECIPES", "RecipeInfo", "get_recipe"]


def get_recipe(name: str, sources: Iterable[str] = ()) -> RecipeInfo:
    """The recipe called ``name`` (also among ``sources``); ``KeyError`` lists the known ones."""
    recipes = discover_recipes(sources) if sources else RECIPES
    for recipe in recipes:
        if recipe.name == name:
            return recipe
    raise KeyError(f"unknown recipe {name!r}; known: {', '.join(r.name for r in recipes)}")
