"""OIL recipe: a CNN on geological-map patches predicts well EUR (split by field) for drilling."""

from guardrail.recipes.oil.data import OilDataModule, mean_baseline
from guardrail.recipes.oil.generator import Field, OilFields, generate_fields
from guardrail.recipes.oil.model import OilModule, OilNet
from guardrail.recipes.oil.predict import EURPrediction, load_module, predict_eur
from guardrail.recipes.oil.preprocess import OilPreprocessor

__all__ = [
    "EURPrediction",
    "Field",
    "OilDataModule",
    "OilFields",
    "OilModule",
    "OilNet",
    "OilPreprocessor",
    "generate_fields",
    "load_module",
    "mean_baseline",
    "predict_eur",
]
