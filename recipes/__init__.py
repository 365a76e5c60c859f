"""The case-study recipes: one per project of Arpteg et al. (2018), each a config + code.

The registry below feeds ``guardrail ls`` and the check for unknown recipe names; each entry
has a config ``configs/recipe/<name>.yaml`` and a subpackage ``guardrail.recipes.<name>``.

Example:
    >>> [r.name for r in RECIPES]
    ['est', 'wea']
    >>> get_recipe("wea").title
    'Weather-field autoencoder'
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class RecipeInfo:
    """One registered recipe.

    Attributes:
        name: Short name used as ``recipe=<name>``.
        title: A few words.
        description: One line: data, model, what the recipe demonstrates.
    """

    name: str
    title: str
    description: str


RECIPES: tuple[RecipeInfo, ...] = (
    RecipeInfo(
        "est",
        "Real-estate valuation",
        "Ames housing sales (2930, real): MLP with categorical embeddings predicts log price; "
        "chronological split; `data.shuffle_before_split=true` replays the shuffle-flag incident.",
    ),
    RecipeInfo(
        "wea",
        "Weather-field autoencoder",
        "HadGEM2 air-temperature fields (real): convolutional autoencoder at a fixed "
        "compression ratio; `model.pool=8` replays the too-aggressive-pooling incident.",
    ),
)


def get_recipe(name: str) -> RecipeInfo:
    """The recipe called ``name``; raises ``KeyError`` listing the known ones."""
    for recipe in RECIPES:
        if recipe.name == name:
            return recipe
    raise KeyError(f"unknown recipe {name!r}; known: {', '.join(r.name for r in RECIPES)}")
