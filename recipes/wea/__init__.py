"""WEA recipe: a weather-field autoencoder; ``model.pool=8`` replays the pooling incident."""

from guardrail.recipes.wea.data import WeatherDataModule
from guardrail.recipes.wea.model import MaskedRMSE, WeatherAutoencoder, WeatherAutoencoderModule
from guardrail.recipes.wea.preprocess import WeatherPreprocessor
from guardrail.recipes.wea.sources import synthetic_fields

__all__ = [
    "MaskedRMSE",
    "WeatherAutoencoder",
    "WeatherAutoencoderModule",
    "WeatherDataModule",
    "WeatherPreprocessor",
    "synthetic_fields",
]
