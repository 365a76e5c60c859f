"""Guardrail callbacks: drop them into any Lightning ``Trainer``.

Example:
    >>> from guardrail.callbacks import BaselineCheck, RunReport
    >>> sorted(__all__)[:3]
    ['ActivationProbe', 'ArchitectureCheck', 'AttributionReport']

"""

from __future__ import annotations

from lightning.pytorch import Callback

from guardrail.callbacks.activation_probe import ActivationProbe
from guardrail.callbacks.architecture_check import ArchitectureCheck
from guardrail.callbacks.attribution_report import AttributionReport
from guardrail.callbacks.base import GuardrailCallback, Policy, collect_findings
from guardrail.callbacks.baseline_check import BaselineCheck
from guardrail.callbacks.config_lock import ConfigLock
from guardrail.callbacks.data_contract import DataContract
from guardrail.callbacks.data_probe import DataProbe
from guardrail.callbacks.determinism_guard import DeterminismGuard
from guardrail.callbacks.differential_privacy import DifferentialPrivacy
from guardrail.callbacks.effort_estimator import EffortEstimator
from guardrail.callbacks.gradient_probe import GradientProbe
from guardrail.callbacks.loss_probe import LossProbe
from guardrail.callbacks.privacy_guard import PrivacyGuard
from guardrail.callbacks.progress import ProgressLog
from guardrail.callbacks.resource_monitor import ResourceMonitor
from guardrail.callbacks.run_manifest import RunManifest
from guardrail.callbacks.run_report import RunReport

__all__ = [
    "ActivationProbe",
    "ArchitectureCheck",
    "AttributionReport",
    "BaselineCheck",
    "ConfigLock",
    "DataContract",
    "DataProbe",
    "DeterminismGuard",
    "DifferentialPrivacy",
    "EffortEstimator",
    "GradientProbe",
    "GuardrailCallback",
    "LossProbe",
    "PrivacyGuard",
    "ProgressLog",
    "ResourceMonitor",
    "RunManifest",
    "RunReport",
    "collect_findings",
    "default_callbacks",
]


def default_callbacks(policy: Policy = "record") -> list[Callback]:
    """Every guardrail with its default settings, and the run report.

    The config lock is left out: it needs a lock folder under version control, so add
    ``ConfigLock(lock_dir=...)`` yourself where you keep one.

    Args:
        policy: ``record`` (default) or ``strict`` for every guardrail.

    Example:
        >>> [type(cb).__name__ for cb in default_callbacks()]  # doctest: +NORMALIZE_WHITESPACE
        ['RunManifest', 'DeterminismGuard', 'ArchitectureCheck', 'DataProbe', 'PrivacyGuard',
         'DataContract', 'ActivationProbe', 'GradientProbe', 'LossProbe', 'BaselineCheck',
         'AttributionReport', 'ResourceMonitor', 'EffortEstimator', 'RunReport']
    """
    return [RunManifest(), DeterminismGuard(policy=policy), ArchitectureCheck(policy=policy),
            DataProbe(policy=policy), PrivacyGuard(policy=policy), DataContract(policy=policy),
            ActivationProbe(policy=policy),
            GradientProbe(policy=policy), LossProbe(policy=policy),
            BaselineCheck(policy=policy), AttributionReport(policy=policy), ResourceMonitor(),
            EffortEstimator(policy=policy), RunReport()]
