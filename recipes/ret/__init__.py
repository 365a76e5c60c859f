"""RET: first-week activity -> active in week 2 (CDNOW purchases or synthetic app events)."""

from guardrail.recipes.ret.data import RetentionDataModule
from guardrail.recipes.ret.generator import synthetic_app_events
from guardrail.recipes.ret.model import RetentionModule, RetentionNet

__all__ = ["RetentionDataModule", "RetentionModule", "RetentionNet", "synthetic_app_events"]
