"""Guardrail callbacks: drop them into any Lightning ``Trainer``.

Example:
    >>> from guardrail.callbacks import BaselineCheck, RunReport
    >>> sorted(__all__)[:2]
    ['BaselineCheck', 'GuardrailCallback']
"""

from __future__ import annotations

from lightning.pytorch import Callback

from guardrail.callbacks.base import GuardrailCallback, Policy, collect_findings
from guardrail.callbacks.baseline_check import BaselineCheck
from guardrail.callbacks.run_report import RunReport

__all__ = [
    "BaselineCheck",
    "GuardrailCallback",
    "RunReport",
    "collect_findings",
    "default_callbacks",
]


def default_callbacks(policy: Policy = "record") -> list[Callback]:
    """Every guardrail with its default settings, and the run report.

    Args:
        policy: ``record`` (default) or ``strict`` for every guardrail.

    Example:
        >>> [type(cb).__name__ for cb in default_callbacks()]
        ['BaselineCheck', 'RunReport']
    """
    return [BaselineCheck(policy=policy), RunReport()]
