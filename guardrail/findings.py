"""The one record every guardrail emits, and the error that stops training.

Example:
    >>> f = Finding("baseline.not_beaten", Severity.WARNING, "test/rmse 3.1 is worse than 2.0.",
    ...             where="test/rmse", evidence={"model": 3.1, "baseline": 2.0},
    ...             hint="Train longer or revisit the model.")
    >>> Finding.from_dict(f.to_dict()) == f
    True
    >>> Severity.ERROR > Severity.WARNING > Severity.INFO
    True

"""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any


class Severity(str, enum.Enum):
    """How much a finding matters: ``info`` < ``warning`` < ``error``."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """0 for info, 1 for warning, 2 for error."""
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank

    def __str__(self) -> str:
        return self.value


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One observation of a guardrail.

    Attributes:
        check: Stable dotted id, e.g. ``probe.dead_units``; part of the public API.
        severity: ``info``, ``warning`` or ``error``.
        message: One plain sentence saying what was seen.
        where: Module path, config key, feature or column it concerns, or ``None``.
        evidence: Numbers and strings that justify it.
        hint: What to change.
        step: Global step at which it was seen, if during training.
        epoch: Epoch at which it was seen, if during training.
        rank: Global rank of the process that saw it.

    """

    check: str
    severity: Severity
    message: str
    where: str | None = None
    evidence: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    hint: str = ""
    step: int | None = None
    epoch: int | None = None
    rank: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (one line of ``findings.jsonl``)."""
        d = dataclasses.asdict(self)
        d["severity"] = self.severity.value
        d["evidence"] = dict(self.evidence)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """Inverse of :meth:`to_dict`; unknown keys are ignored so old files stay readable."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def describe(self) -> str:
        """One paragraph: check, place, message and hint.

        Example:
            >>> Finding("data.leakage", "error", "12 rows in train and val.",
            ...         where="val", hint="Deduplicate first.").describe()
            '[data.leakage] at val: 12 rows in train and val. Hint: Deduplicate first.'

        """
        place = f" at {self.where}" if self.where else ""
        hint = f" Hint: {self.hint}" if self.hint else ""
        return f"[{self.check}]{place}: {self.message}{hint}"


def count_findings(findings: Iterable[Finding]) -> dict[str, dict[str, int]]:
    """Count findings by severity (all three always present) and by check.

    Example:
        >>> count_findings([Finding("a.b", "info", "x"), Finding("a.b", "error", "y")])
        {'by_severity': {'error': 1, 'warning': 0, 'info': 1}, 'by_check': {'a.b': 2}}

    """
    findings = list(findings)
    by_severity = Counter(f.severity.value for f in findings)
    return {
        "by_severity": {s.value: by_severity.get(s.value, 0) for s in reversed(Severity)},
        "by_check": dict(sorted(Counter(f.check for f in findings).items())),
    }
