"""guardrail: checks that run while a PyTorch Lightning model trains.

Three ways in: ``python -m guardrail.train recipe=wea`` (the Hydra app), subclassing
:class:`GuardrailModule`, or ``Trainer(callbacks=guardrail.default_callbacks())``.

The exports that need torch and Lightning (the module and the callbacks) are imported on
first use (PEP 562), so ``import guardrail`` and the ``guardrail`` command stay fast.

Example:
    >>> import guardrail
    >>> [type(cb).__name__ for cb in guardrail.default_callbacks()][:3]
    ['RunManifest', 'DeterminismGuard', 'ArchitectureCheck']

"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from guardrail.errors import ConfigError, DataError, GuardrailError, MissingDependencyError
from guardrail.findings import Finding, Severity

if TYPE_CHECKING:
    from guardrail.callbacks import collect_findings, default_callbacks
    from guardrail.datamodule import RecipeDataModule
    from guardrail.module import GuardrailModule

__all__ = [
    "ConfigError",
    "DataError",
    "Finding",
    "GuardrailError",
    "GuardrailModule",
    "MissingDependencyError",
    "RecipeDataModule",
    "Severity",
    "collect_findings",
    "default_callbacks",
]

__version__ = "0.1.0"

# Export -> the module that defines it; imported on first access (they import torch).
_LAZY = {
    "GuardrailModule": "guardrail.module",
    "RecipeDataModule": "guardrail.datamodule",
    "collect_findings": "guardrail.callbacks",
    "default_callbacks": "guardrail.callbacks",
}


def __getattr__(name: str) -> Any:
    """Import a heavy export on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'guardrail' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    """The module's names, the lazy exports included."""
    return sorted({*globals(), *__all__})
