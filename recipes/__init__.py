"""The case-study recipes: one per project of Arpteg et al. (2018), each a config + code.

The registry below feeds ``guardrail ls`` and the check for unknown recipe names; each entry
has a config ``configs/recipe/<name>.yaml`` and a subpackage ``guardrail.recipes.<name>``.

Example:
    >>> [r.name for r in RECIPES]
    ['bot', 'ccf', 'est', 'oil', 'rec', 'ret', 'wea']
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
        "bot",
        "Poker-bot detection",
        "Synthetic per-player action sequences (humans, bots, humanised bots; 1-5% bots): "
        "sequence model vs a timing-variance rule; the project cancelled for want of an estimate.",
    ),
    RecipeInfo(
        "ccf",
        "Payment fraud",
        "Lending Club loans (real, positives cut to ~1%; ULB card fraud when installed): MLP with "
        "class weighting vs logistic regression under extreme class imbalance; split by time.",
    ),
    RecipeInfo(
        "est",
        "Real-estate valuation",
        "Ames housing sales (2930, real): MLP with categorical embeddings predicts log price; "
        "chronological split; `data.shuffle_before_split=true` replays the shuffle-flag incident.",
    ),
    RecipeInfo(
        "oil",
        "Oil and gas recovery",
        "Synthetic geological maps and wells (rock-calibrated permeability): CNN on the map "
        "patch predicts log EUR, split by field; a decision-support predict path.",
    ),
    RecipeInfo(
        "rec",
        "Hybrid recommendation",
        "MovieLens latest-small (real): collaborative ids plus content (genres, year, title) "
        "so cold items still get scores; recall@10 and NDCG@10 on warm and cold items.",
    ),
    RecipeInfo(
        "ret",
        "User retention",
        "CDNOW purchase log (real; synthetic app events with quasi-identifiers): GRU over the "
        "first week's daily events predicts activity in days 7-13; split by customer.",
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
