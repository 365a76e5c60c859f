"""guardrail: checks that run while a PyTorch Lightning model trains.

Three ways in: ``python -m guardrail.train recipe=wea`` (the Hydra app), subclassing
:class:`GuardrailModule`, or ``Trainer(callbacks=guardrail.default_callbacks())``.

Example:
    >>> import guardrail
    >>> [type(cb).__name__ for cb in guardrail.default_callbacks()][:3]
    ['RunManifest', 'DeterminismGuard', 'ArchitectureCheck']

"""

from guardrail.callbacks import collect_findings, default_callbacks
from guardrail.errors import ConfigError, DataError, GuardrailError, MissingDependencyError
from guardrail.findings import Finding, Severity
from guardrail.module import GuardrailModule

__all__ = [
    "ConfigError",
    "DataError",
    "Finding",
    "GuardrailError",
    "GuardrailModule",
    "MissingDependencyError",
    "Severity",
    "collect_findings",
    "default_callbacks",
]

__version__ = "0.1.0"
