"""Re-identification risk of a table: k-anonymity, l-diversity, unique combinations, remedies.

A record's *equivalence class* is the set of records that share its values of the declared
quasi-identifiers (gender, age band, city): whoever knows those of a person can narrow them down
to that class. The table is k-anonymous for the smallest class size k (Sweeney 2002); a class
of one is a person singled out. l-diversity is the fewest distinct values of a sensitive field
inside one class (Machanavajjhala et al. 2007): l = 1 discloses it for the whole class. Both
agree with pyCANON's ``k_anonymity`` and ``l_diversity`` on the same table (tested).

:func:`generalisations` proposes remedies and the k each reaches: coarser ranges (adjacent age
bands merged, numbers binned), categories mapped through a hierarchy the team supplies
(city -> region), rare categories pooled, or a quasi-identifier dropped; then the smallest set
of steps, taken greedily, that reaches the target k.

Example:
    >>> rows = [{"gender": g, "age_band": a, "city": c} for g, a, c in [
    ...     ("f", "18-24", "A"), ("f", "18-24", "A"), ("m", "25-34", "A"), ("m", "25-34", "B"),
    ...     ("f", "25-34", "B"), ("m", "18-24", "B")]]
    >>> k_anonymity(rows, ["gender", "age_band", "city"])
    1
    >>> k_anonymity(rows, ["gender"])
    3
    >>> best = generalisations(rows, ["gender", "age_band", "city"], k=3)[-1]
    >>> best.changes, best.k
    (['age_band: 18-34', 'drop city'], 3)

"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from guardrail.findings import Finding, Severity

__all__ = [
    "Generalisation",
    "anonymity_findings",
    "equivalence_classes",
    "generalisations",
    "k_anonymity",
    "l_diversity",
    "risk_summary",
    "unique_combinations",
]

Row = Mapping[str, Any]
MISSING = "<missing>"


def _key(row: Row, fields: Sequence[str]) -> tuple[Any, ...]:
    return tuple(_hashable(row.get(f, MISSING)) for f in fields)


def _hashable(value: Any) -> Any:
    if value is None:
        return MISSING
    return repr(value) if isinstance(value, (list, dict)) else value


def equivalence_classes(rows: Sequence[Row], fields: Sequence[str]) -> Counter[tuple[Any, ...]]:
    """Records per combination of ``fields``' values (a missing value is its own value).

    Example:
        >>> equivalence_classes([{"a": 1}, {"a": 1}, {"a": 2}], ["a"])
        Counter({(1,): 2, (2,): 1})

    """
    return Counter(_key(row, fields) for row in rows)


def k_anonymity(rows: Sequence[Row], fields: Sequence[str]) -> int:
    """The smallest equivalence class over ``fields`` (0 for no rows)."""
    return min(equivalence_classes(rows, fields).values(), default=0)


def l_diversity(rows: Sequence[Row], fields: Sequence[str], sensitive: Sequence[str]) -> int:
    """Fewest distinct values of a sensitive field within one equivalence class.

    Over several sensitive fields, the smallest (pyCANON's convention).

    Example:
        >>> l_diversity([{"a": 1, "s": "x"}, {"a": 1, "s": "y"}, {"a": 2, "s": "x"}], ["a"], ["s"])
        1

    """
    if not rows or not sensitive:
        return 0
    values: dict[tuple[Any, ...], list[set[Any]]] = {}
    for row in rows:
        seen = values.setdefault(_key(row, fields), [set() for _ in sensitive])
        for s, field in zip(seen, sensitive, strict=True):
            s.add(_hashable(row.get(field, MISSING)))
    return min(len(s) for sets in values.values() for s in sets)


def unique_combinations(rows: Sequence[Row], fields: Sequence[str],
                        k: int = 2) -> list[dict[str, Any]]:
    """The smallest combinations of ``fields`` that leave records in classes under ``k``.

    A combination is listed only when none of its subsets already does so (``city`` alone
    making records unique hides every combination containing ``city``).

    Example:
        >>> rows = [{"a": 1, "b": 1}, {"a": 1, "b": 2}, {"a": 2, "b": 1}, {"a": 2, "b": 2}]
        >>> unique_combinations(rows, ["a", "b"])
        [{'fields': ['a', 'b'], 'records': 4, 'share': 1.0}]

    """
    found: list[dict[str, Any]] = []
    for size in range(1, len(fields) + 1):
        for combo in itertools.combinations(fields, size):
            if any(set(f["fields"]) <= set(combo) for f in found):
                continue
            classes = equivalence_classes(rows, combo)
            small = sum(n for n in classes.values() if n < k)
            if small:
                found.append({"fields": list(combo), "records": small,
                              "share": round(small / len(rows), 6)})
    return found


@dataclasses.dataclass(frozen=True)
class Generalisation:
    """A remedy: the changes made to the quasi-identifiers and what they reach.

    Attributes:
        changes: Plain-words steps (``age_band: 18-34, 35-54, 55+``, ``drop gender``).
        k: The smallest class after them.
        below_k: Share of records still in classes under the target k.
        classes: Equivalence classes left (fewer: more information lost).

    """

    changes: list[str]
    k: int
    below_k: float
    classes: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dataclasses.asdict(self)


Step = tuple[str, str, Callable[[Any], Any]]  # (field, description, value -> coarser value)
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)|\+)\s*$")


def _range_steps(field: str, values: Sequence[Any]) -> list[Step]:
    """Merge adjacent bands of range labels (``18-24``, ``25-34``, ``55+``) pairwise."""
    parsed = {v: _RANGE.match(str(v)) for v in values}
    if not values or not all(parsed.values()):
        return []
    bands = sorted(values, key=lambda v: int(parsed[v].group(1)))  # type: ignore[union-attr]
    if len(bands) < 2:
        return []

    def label(group: Sequence[Any]) -> str:
        low = parsed[group[0]].group(1)  # type: ignore[union-attr]
        high = parsed[group[-1]].group(2)  # type: ignore[union-attr]
        return f"{low}-{high}" if high else f"{low}+"

    groups = [bands[i:i + 2] for i in range(0, len(bands), 2)]
    if len(groups[-1]) == 1 and len(groups) > 1:  # the open top band joins its neighbour
        groups[-2:] = [groups[-2] + groups[-1]]
    mapping = {v: label(g) for g in groups for v in g}
    return [(field, f"{field}: {', '.join(dict.fromkeys(mapping.values()))}", mapping.get)]


def _number_steps(field: str, values: Sequence[Any]) -> list[Step]:
    """Bin numbers into 5, 10 and 20 units (ages, years)."""
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                             for v in values):
        return []
    steps: list[Step] = []
    for width in (5, 10, 20):
        def coarse(v: Any, w: int = width) -> str:
            low = int(v // w * w)
            return f"{low}-{low + w - 1}"
        steps.append((field, f"{field}: bins of {width}", coarse))
    return steps


def _steps(rows: Sequence[Row], field: str, k: int,
           hierarchies: Mapping[str, Mapping[Any, Any]]) -> list[Step]:
    values = list(dict.fromkeys(_hashable(r.get(field, MISSING)) for r in rows))
    present = [v for v in values if v != MISSING]
    steps: list[Step] = []
    if field in hierarchies:
        mapping = hierarchies[field]
        steps.append((field, f"{field} -> {', '.join(dict.fromkeys(map(str, mapping.values())))}",
                      lambda v, m=mapping: m.get(v, v)))
    steps += _range_steps(field, present) + _number_steps(field, present)
    counts = Counter(_hashable(r.get(field, MISSING)) for r in rows)
    rare = sorted(str(v) for v, n in counts.items() if n < k * 10 and len(counts) > 2)
    if rare and len(rare) < len(counts):
        steps.append((field, f"{field}: {', '.join(rare)} pooled as 'other'",
                      lambda v, r=frozenset(rare): "other" if str(v) in r else v))
    steps.append((field, f"drop {field}", lambda v: "*"))
    return steps


def _apply(rows: Sequence[Row], field: str, fn: Callable[[Any], Any]) -> list[dict[str, Any]]:
    return [{**row, field: fn(_hashable(row.get(field, MISSING)))} for row in rows]


def _measure(rows: Sequence[Row], fields: Sequence[str], k: int) -> tuple[int, float, int]:
    classes = equivalence_classes(rows, fields)
    small = sum(n for n in classes.values() if n < k)
    return min(classes.values(), default=0), small / max(len(rows), 1), len(classes)


def generalisations(rows: Sequence[Row], fields: Sequence[str], k: int = 5,
                    hierarchies: Mapping[str, Mapping[Any, Any]] | None = None,
                    max_steps: int = 6) -> list[Generalisation]:
    """Single steps and the k each reaches, then a greedy sequence of steps up to ``k``.

    Every single step is listed (coarser ranges, a supplied hierarchy, rare values pooled, a
    field dropped), then steps are chained greedily: each time the step that leaves the fewest
    records below ``k``, preferring a step that keeps more classes (less lost), until the
    table is ``k``-anonymous. The last element is that chain (it may fall short of ``k``
    after ``max_steps``).

    Args:
        rows: The table (records with the quasi-identifier fields).
        fields: The quasi-identifiers.
        k: The target.
        hierarchies: Per field, a mapping of values to coarser ones (``{"city": {"Malmo":
            "Gotaland", ...}}``); values not in it stay.
        max_steps: Steps chained at most.

    """
    hierarchies = hierarchies or {}
    singles: list[Generalisation] = []
    for field in fields:
        for _, description, fn in _steps(rows, field, k, hierarchies):
            singles.append(Generalisation([description], *_measure(_apply(rows, field, fn),
                                                                   fields, k)))
    current: list[dict[str, Any]] = [dict(r) for r in rows]
    chain: list[str] = []
    state = _measure(current, fields, k)
    dropped: set[str] = set()
    while state[0] < k and len(chain) < max_steps:
        options = []
        for field in fields:
            if field in dropped:
                continue
            for _, description, fn in _steps(current, field, k, hierarchies):
                moved = _apply(current, field, fn)
                measured = _measure(moved, fields, k)
                if measured[2] < state[2]:  # a step that merges nothing is no step
                    options.append((measured[1], -measured[2], description, field, moved,
                                    measured))
        if not options:
            break
        _, _, description, field, current, state = min(options, key=lambda o: o[:3])
        chain.append(description)
        if description.startswith("drop "):
            dropped.add(field)
    singles.sort(key=lambda g: (-g.k, g.below_k))
    return [*singles, Generalisation(chain, *state)]


def risk_summary(rows: Sequence[Row], fields: Sequence[str], sensitive: Sequence[str] = (),
                 k: int = 5, hierarchies: Mapping[str, Mapping[Any, Any]] | None = None
                 ) -> dict[str, Any]:
    """Everything :func:`anonymity_findings` judges, JSON-ready (``privacy.json``)."""
    classes = equivalence_classes(rows, fields)
    sizes = sorted(classes.values())
    below = sum(n for n in sizes if n < k)
    summary: dict[str, Any] = {
        "quasi_identifiers": list(fields), "records": len(rows), "target_k": k,
        "k": sizes[0] if sizes else 0, "classes": len(sizes),
        "smallest_classes": sizes[:5], "below_k": below, "below_k_share": below / max(len(rows), 1),
        "unique": sum(1 for n in sizes if n == 1),
        "unique_combinations": unique_combinations(rows, fields, k),
    }
    if sensitive:
        summary["sensitive"] = list(sensitive)
        summary["l"] = l_diversity(rows, fields, sensitive)
    if summary["k"] < k:
        options = generalisations(rows, fields, k, hierarchies)
        summary["generalisations"] = [g.to_dict() for g in options]
    return summary


def anonymity_findings(summary: Mapping[str, Any]) -> list[Finding]:
    """``privacy.k_anonymity`` and ``privacy.l_diversity`` (warnings) from :func:`risk_summary`.

    k-anonymity fails when records sit in classes under the target k; l-diversity when a
    class holds a single value of a sensitive field (l = 1): knowing someone's
    quasi-identifiers then tells that value.
    """
    findings = []
    if summary.get("l") == 1:
        findings.append(Finding(
            "privacy.l_diversity", Severity.WARNING,
            f"Some equivalence class over {', '.join(summary['quasi_identifiers'])} holds a "
            f"single value of {', '.join(summary['sensitive'])}: whoever knows a person's "
            "quasi-identifiers learns it.", where=", ".join(summary["sensitive"]),
            evidence={"l": 1, "sensitive": summary["sensitive"]},
            hint="Generalise the quasi-identifiers (see privacy.json) until every class holds "
                 "at least two values of each sensitive field."))
    if not summary["quasi_identifiers"] or summary["k"] >= summary["target_k"]:
        return findings
    fields = ", ".join(summary["quasi_identifiers"])
    reaching = [g for g in summary.get("generalisations", []) if g["k"] >= summary["target_k"]]
    fix = min(reaching, key=lambda g: (len(g["changes"]), -g["classes"]), default=None)
    remedy = (f"{'; '.join(fix['changes'])} reaches k = {fix['k']}" if fix else
              "no generalisation tried reaches it")
    uniques = summary["unique_combinations"]
    unique = f", {summary['unique']:,} of them unique" if summary["unique"] else ""
    first = (f"; {' x '.join(uniques[0]['fields'])} alone already leaves "
             f"{uniques[0]['records']:,} records below k" if uniques else "")
    return [*findings, Finding(
        "privacy.k_anonymity", Severity.WARNING,
        f"The training data is {summary['k']}-anonymous over {fields}: "
        f"{summary['below_k']:,} of {summary['records']:,} records "
        f"({summary['below_k_share']:.1%}) sit in classes smaller than "
        f"k = {summary['target_k']}{unique}{first}.",
        where=fields,
        evidence={k: summary[k] for k in ("k", "target_k", "below_k", "below_k_share",
                                          "classes", "unique", "smallest_classes")}
        | {"unique_combinations": uniques[:5], "generalisation": fix},
        hint=f"Generalise the quasi-identifiers before training: {remedy} (all options in "
             "privacy.json), or drop the ones the model does not need.")]
