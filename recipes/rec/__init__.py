"""REC recipe: hybrid recommendation; content scores new movies, `model.content=false` cannot."""

from guardrail.recipes.rec.data import MovieLensDataModule
from guardrail.recipes.rec.model import HybridRecommender, HybridRecommenderModule
from guardrail.recipes.rec.preprocess import RecPreprocessor
from guardrail.recipes.rec.ranking import (
    UserMean,
    expected_ranking_at_k,
    genre_popularity,
    popularity,
    ranking_at_k,
)

__all__ = [
    "HybridRecommender",
    "HybridRecommenderModule",
    "MovieLensDataModule",
    "RecPreprocessor",
    "UserMean",
    "expected_ranking_at_k",
    "genre_popularity",
    "popularity",
    "ranking_at_k",
]
