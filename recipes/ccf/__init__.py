"""CCF recipe: payment fraud under extreme class imbalance (about 1 % positives), split by time."""

from guardrail.recipes.ccf.data import FraudDataModule, load_lending_club, load_ulb
from guardrail.recipes.ccf.metrics import RecallAtFPR
from guardrail.recipes.ccf.model import FraudModule, FraudNet, focal_loss

__all__ = [
    "FraudDataModule",
    "FraudModule",
    "FraudNet",
    "RecallAtFPR",
    "focal_loss",
    "load_lending_club",
    "load_ulb",
]
