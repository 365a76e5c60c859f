"""Thresholds of the checks: one frozen, validated dataclass per check module.

Every number a rule compares against lives in a :class:`Thresholds` subclass next to the rule
(``GradientThresholds`` in ``guardrail.checks.gradients``, ...). Each field is declared with
:func:`limit`, which records the check it belongs to, a one-line meaning and its valid range;
construction validates every field at once and raises one :class:`~guardrail.errors.ConfigError`
naming each bad value. Callbacks take an instance, or a mapping of the fields to change (what
Hydra passes from YAML), through :meth:`Thresholds.coerce`. The README's threshold table is
generated from these classes (``python scripts/thresholds_table.py``) and a test keeps it equal.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Demo(Thresholds):
    ...     share: float = limit(0.5, "demo.check", "share of units", low=0, high=1)
    >>> Demo.coerce({"share": 0.7}).share
    0.7
    >>> Demo(share=2.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    guardrail.errors.ConfigError: Demo: share=2.0 must be in [0, 1]. Fix the value where ...

"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from guardrail.errors import ConfigError

T = TypeVar("T", bound="Thresholds")


def limit(default: float, check: str, doc: str, *, low: float | None = None,
          high: float | None = None, open_low: bool = False, integer: bool = False,
          shown: str | None = None) -> Any:
    """A threshold field: its default, the check it belongs to, its meaning and valid range.

    Args:
        default: The default value.
        check: The check id whose rule uses it (``grad.vanishing``).
        doc: What it means, one line, for the README table and error messages.
        low: Smallest valid value (inclusive unless ``open_low``).
        high: Largest valid value (inclusive).
        open_low: ``low`` itself is invalid (a strictly positive ratio).
        integer: The value must be a whole number (a count of steps or epochs).
        shown: How the README's check table writes the default (``"70%"``, ``"10^-4.5"``);
            ``None`` when the rule's prose does not state it.

    """
    return dataclasses.field(default=default, metadata={
        "check": check, "doc": doc, "low": low, "high": high, "open_low": open_low,
        "integer": integer, "shown": shown})


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Base of the check modules' threshold dataclasses: validated when built, immutable."""

    def __post_init__(self) -> None:
        problems = [p for f in dataclasses.fields(self)
                    if (p := _problem(f, getattr(self, f.name))) is not None]
        if problems:
            raise ConfigError(
                f"{type(self).__name__}: {'; '.join(problems)}. Fix the value where it is set "
                "(a callback's `thresholds=` or `guardrails.callbacks.<name>.thresholds.<field>`).")

    @classmethod
    def coerce(cls: type[T], value: T | Mapping[str, Any] | None) -> T:
        """An instance from ``None`` (the defaults), a mapping of fields to change, or itself.

        Example:
            >>> from guardrail.checks.gradients import GradientThresholds
            >>> GradientThresholds.coerce(None) == GradientThresholds()
            True
            >>> GradientThresholds.coerce({"exploding_growth": 1e4}).exploding_growth
            10000.0
            >>> GradientThresholds.coerce({"exploding": 1e4})  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            guardrail.errors.ConfigError: GradientThresholds has no threshold 'exploding'; ...

        """
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{cls.__name__}: expected a {cls.__name__} or a mapping of its "
                              f"fields, got {type(value).__name__}.")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ConfigError(
                f"{cls.__name__} has no threshold {', '.join(repr(k) for k in unknown)}; "
                f"its thresholds: {', '.join(names)}.")
        integer = {f.name: f.metadata["integer"] for f in dataclasses.fields(cls)}
        return cls(**{k: _number(v, integer[k]) for k, v in value.items()})

    @classmethod
    def rows(cls) -> Iterator[tuple[str, str, Any, str]]:
        """``(check, field, default, meaning)`` for every threshold, in declaration order."""
        for f in dataclasses.fields(cls):
            yield f.metadata["check"], f.name, f.default, f.metadata["doc"]


def _number(value: Any, integer: bool) -> Any:
    """YAML's ``4`` for a float field, ``4.0`` for a count: the field's own type."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value  # reported by validation
    if integer:
        return int(value) if float(value).is_integer() else value
    return float(value)


def _problem(f: dataclasses.Field[Any], value: Any) -> str | None:
    meta = f.metadata
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{f.name}={value!r} must be a number"
    if meta["integer"] and value != int(value):
        return f"{f.name}={value!r} must be a whole number"
    low, high = meta["low"], meta["high"]
    if not math.isfinite(value) or (low is not None and (value < low or (
            meta["open_low"] and value == low))) or (high is not None and value > high):
        left = "(" if meta["open_low"] else "["
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        return f"{f.name}={value!r} must be in {left}{lo}, {hi}{']' if high is not None else ')'}"
    return None


def all_thresholds() -> list[type[Thresholds]]:
    """Every check module's thresholds class, in the README's order."""
    from guardrail.checks.activations import ActivationThresholds
    from guardrail.checks.attribution import AttributionThresholds
    from guardrail.checks.baseline import BaselineThresholds
    from guardrail.checks.contract import ContractThresholds
    from guardrail.checks.data import DataThresholds
    from guardrail.checks.dependency import DependencyThresholds
    from guardrail.checks.drift import DriftThresholds
    from guardrail.checks.effort import EffortThresholds
    from guardrail.checks.feedback import FeedbackThresholds
    from guardrail.checks.gradients import GradientThresholds
    from guardrail.checks.loss import LossThresholds
    from guardrail.checks.resolution import ResolutionThresholds
    from guardrail.checks.resources import ResourceThresholds
    from guardrail.privacy.audit import MembershipThresholds

    return [ResolutionThresholds, ActivationThresholds, GradientThresholds, LossThresholds,
            DataThresholds, ContractThresholds, BaselineThresholds, ResourceThresholds,
            AttributionThresholds, EffortThresholds, DriftThresholds, DependencyThresholds,
            FeedbackThresholds, MembershipThresholds]


def assignments(items: list[str]) -> dict[str, float]:
    """A command's ``--threshold NAME=VALUE`` flags as a mapping for :meth:`Thresholds.coerce`.

    The commands' counterpart of a callback's ``thresholds=``.

    Example:
        >>> assignments(["psi_warning=0.3", "min_records=50"])
        {'psi_warning': 0.3, 'min_records': 50.0}

    Raises:
        ConfigError: An item is not ``NAME=NUMBER``.
    """
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ConfigError(f"--threshold {item!r}: give NAME=NUMBER, e.g. "
                              "--threshold psi_warning=0.3.")
    return out


def markdown() -> str:
    """The README's threshold table, generated from the classes.

    Example:
        >>> markdown().splitlines()[0]
        '| check | threshold | default | meaning |'

    """
    lines = ["| check | threshold | default | meaning |", "|---|---|---|---|"]
    for cls in all_thresholds():
        for check, name, default, doc in cls.rows():
            lines.append(f"| `{check}` | `{cls.__name__}.{name}` | {default:g} | {doc} |")
    return "\n".join(lines)
