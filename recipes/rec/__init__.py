"""REC recipe: hybrid recommendation; content scores new movies, `model.content=false` cannot."""

from guardrail.recipes.rec.data import MovieLensDataModule, genre_popularity, popularity
from guardrail.recipes.rec.model import (
    HybridRecommender,
    HybridRecommenderModule,
    UserMean,
    expected_ranking_at_k,
    ranking_at_k,
)

__all__ = [
    "HybridRecommender",
    "HybridRecommenderModule",
    "MovieLensDataModule",
    "UserMean",
    "expected_ranking_at_k",
    "genre_popularity",
    "popularity",
    "ranking_at_k",
]
