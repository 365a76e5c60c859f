"""WEA recipe: a weather-field autoencoder; ``model.pool=8`` replays the pooling incident."""

from guardrail.recipes.wea.data import WeatherDataModule, synthetic_fields
from guardrail.recipes.wea.model import MaskedRMSE, WeatherAutoencoder, WeatherAutoencoderModule

__all__ = [
    "MaskedRMSE",
    "WeatherAutoencoder",
    "WeatherAutoencoderModule",
    "WeatherDataModule",
    "synthetic_fields",
]
