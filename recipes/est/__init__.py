"""EST recipe: Ames house prices, chronological split, and the shuffle-before-split incident."""

from guardrail.preprocess import Encoding
from guardrail.recipes.est.baselines import neighbourhood_median
from guardrail.recipes.est.data import AmesDataModule
from guardrail.recipes.est.model import ValuationModule, ValuationNet

__all__ = ["AmesDataModule", "Encoding", "ValuationModule", "ValuationNet", "neighbourhood_median"]
