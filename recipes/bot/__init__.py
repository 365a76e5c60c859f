"""BOT recipe: poker-bot detection from per-player action sequences (synthetic, 1-5 % bots)."""

from guardrail.recipes.bot.data import BotDataModule, action_features, timing_variance_score
from guardrail.recipes.bot.generator import PokerLogs, generate_logs
from guardrail.recipes.bot.model import BotDetectorModule, BotSequenceNet

__all__ = [
    "BotDataModule",
    "BotDetectorModule",
    "BotSequenceNet",
    "PokerLogs",
    "action_features",
    "generate_logs",
    "timing_variance_score",
]
