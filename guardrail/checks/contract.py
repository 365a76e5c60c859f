"""Data-contract rules: every problem of every raw record against the training contract.

Check id ``data.contract``. :func:`check_records` is what the server calls on each request
(pure, fast, never raises on any JSON value); :func:`contract_findings` turns the problems of a
whole split checked at fit into one finding per field and problem kind. The contract comes from
:func:`guardrail.contract.infer_contract`.

Problems that stop the model from running are errors (the server answers ``422``): ``not_object``
(the record is not a JSON object), ``missing`` (an absent key, or a null where training had
none), ``unknown_field`` (with a did-you-mean), ``wrong_type`` (a string where a number belongs),
``non_finite`` (NaN or infinity where training had none) and ``malformed_sequence`` (wrong
nesting, a wrong element type, a wrong grid shape, a length outside what the model takes).
Problems the model survives are warnings (errors under ``strict=True``): ``unseen_category`` (a
category or id never seen in training), ``out_of_range`` (a number, or a sequence length, far
outside the training range: :class:`ContractThresholds`) and ``not_integer`` (a fraction where
training had only integers; ``3.0`` for an integer field and ``3`` for a float field are fine).

Example:
    >>> from guardrail.contract import infer_contract
    >>> contract = infer_contract([{"amount": 1000.0 * (i + 1), "state": "CA" if i % 2 else "NY"}
    ...                            for i in range(40)])
    >>> check_records(contract, [{"amount": 5000, "state": "NY"}])
    []
    >>> for p in check_records(contract, [{"amount": "5000", "stat": "NY"}, 7]):
    ...     print(p.record, p.field, p.kind, p.severity, "-", p.problem)
    0 amount wrong_type error - expected a number, got the string '5000'
    0 state missing error - missing
    0 stat unknown_field error - unknown field (did you mean 'state'?)
    1  not_object error - the record is 7, not a JSON object
    >>> [(p.field, p.kind) for p in check_records(contract, [{"amount": 4e6, "state": "TX"}])]
    [('amount', 'out_of_range'), ('state', 'unseen_category')]

"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from guardrail.contract import _scalar_type, _show
from guardrail.errors import DataError
from guardrail.findings import Finding, Severity
from guardrail.thresholds import Thresholds, limit

__all__ = ["ERROR_KINDS", "WARNING_KINDS", "ContractThresholds", "Problem", "check_records",
           "compile_contract", "contract_findings"]

ERROR_KINDS = ("not_object", "missing", "unknown_field", "wrong_type", "non_finite",
               "malformed_sequence")
WARNING_KINDS = ("unseen_category", "out_of_range", "not_integer")
MAX_ELEMENT_PROBLEMS = 10  # per sequence, grid or object; the rest are summed up in one more
DID_YOU_MEAN_VOCABULARY = 200  # categories suggested by similarity only in vocabularies this small
_ABSENT = object()


@dataclasses.dataclass(frozen=True)
class ContractThresholds(Thresholds):
    """What ``data.contract`` compares against.

    Example:
        >>> ContractThresholds(range_margin=2).range_margin
        2
        >>> ContractThresholds(range_margin=-1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        guardrail.errors.ConfigError: ContractThresholds: range_margin=-1 must be in [0, inf)...

    """

    # Tuned on the validation splits of EST (Ames, 328 sales) and CCF (Lending Club, 1,479
    # loans): 0.25 warned on 0.9% of healthy EST records, 0.5 on none; 1 keeps a factor of two
    # from that edge and still warns on every CCF test record sent in cents
    # (scripts/contract_evidence.py).
    range_margin: float = limit(
        1.0, "data.contract", "a number (or a sequence length) further below the training "
        "minimum or above the training maximum than this many training ranges (max - min) is "
        "far outside the training range", low=0)
    # EST's test split has one sale of 341 with a kitchen quality training never saw: a fact
    # of real data the model handles (the unknown code), not a fault to warn about.
    warn_share: float = limit(
        0.01, "data.contract", "share of a held-out split's records with an unseen category, a "
        "far-out number or a fraction where training had whole numbers from which it is a "
        "warning; fewer is an info", low=0, high=1, shown="1%")


DEFAULTS = ContractThresholds()


@dataclasses.dataclass(frozen=True)
class Problem:
    """One problem of one record.

    Attributes:
        record: Index of the record in the list checked.
        field: Dotted path of the field (``"events[3].type"``); ``""`` for the whole record.
        problem: One plain sentence (``"missing"``, ``"unknown field (did you mean 'amount'?)"``).
        severity: ``"error"`` (the server answers 422) or ``"warning"`` (answered, warned).
        kind: Stable short code: one of ``ERROR_KINDS`` or ``WARNING_KINDS``.
        value: A short description of the offending value (``"the string '12'"``), if any.

    """

    record: int
    field: str
    problem: str
    severity: str
    kind: str
    value: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON the server answers: record, field, problem, severity and kind.

        Example:
            >>> Problem(0, "amount", "missing", "error", "missing").to_dict()
            {'record': 0, 'field': 'amount', 'problem': 'missing', 'severity': 'error', \
'kind': 'missing'}

        """
        return {"record": self.record, "field": self.field, "problem": self.problem,
                "severity": self.severity, "kind": self.kind}


class _Node:
    """One field of the contract compiled for checking (types, bounds and vocabulary as sets)."""

    __slots__ = ("accepts", "complete", "dtype", "element", "fast", "fields", "hi", "integer",
                 "kind", "length_hi", "length_lo", "lo", "max_length", "min_length", "names",
                 "non_finite_ok", "nullable", "optional", "shape", "spec", "vocabulary")

    def __init__(self, spec: Mapping[str, Any], margin: float) -> None:
        self.spec = spec
        self.kind = spec.get("kind")
        self.dtype = str(spec.get("dtype") or "")
        self.nullable = bool(spec.get("missing", 0)) and spec.get("missing", 0) > spec.get(
            "absent", 0)
        self.optional = bool(spec.get("absent", 0))
        self.non_finite_ok = bool(spec.get("non_finite", 0))
        self.integer = self.dtype == "int"
        self.lo, self.hi = _bounds(spec.get("min"), spec.get("max"), margin, self.integer)
        self.accepts = frozenset(self.dtype.split("|"))
        vocab = spec.get("vocabulary") or []
        self.vocabulary = frozenset(_key(v) for v, _ in vocab)
        self.complete = not spec.get("capped", False)
        # Exact types whose values a quick test can pass (bools are keyed apart: see _key).
        self.fast: frozenset[type] = frozenset(
            {int, float} if self.kind == "numeric" and math.isfinite(self.hi - self.lo) else
            {t for t in (str, int) if t.__name__ in self.accepts}
            if self.kind in ("categorical", "id") else ())
        self.shape = spec.get("shape")
        accepts = spec.get("accepts") or {}
        self.min_length = accepts.get("min_length") or 0
        self.max_length = accepts.get("max_length")
        length = spec.get("length") or {}
        self.length_lo, self.length_hi = _bounds(length.get("min"), length.get("max"), margin,
                                                 True)
        element = spec.get("element")
        self.element = _Node(element, margin) if element else None
        self.fields = {name: _Node(s, margin) for name, s in (spec.get("fields") or {}).items()}
        self.names = list(self.fields)


def _bounds(low: Any, high: Any, margin: float, integer: bool) -> tuple[float, float]:
    """The interval outside which a value is far from the training range ``[low, high]``."""
    if low is None or high is None:
        return -math.inf, math.inf
    # A constant field still has a width: one unit for integers, a hair for floats.
    span = max(high - low, 1.0 if integer else 1e-9 * max(abs(low), abs(high), 1.0))
    return low - margin * span, high + margin * span


def _key(value: Any) -> Any:
    """Hashable identity of a category: ``True`` and ``1`` are different categories."""
    return (True, value) if isinstance(value, bool) else value


class CompiledContract:
    """A contract prepared for checking many records (sets and bounds built once).

    Args:
        contract: A contract from :func:`guardrail.contract.infer_contract`.
        thresholds: ``range_margin`` for ``out_of_range``.

    """

    def __init__(self, contract: Mapping[str, Any],
                 thresholds: ContractThresholds | None = None) -> None:
        if not isinstance(contract, Mapping) or not isinstance(contract.get("fields"), Mapping):
            raise DataError(f"Not a data contract: expected a mapping with 'fields', got "
                            f"{_show(contract)}; pass what guardrail.contract.infer_contract "
                            "returned (RUN_DIR/contract.json).")
        self.contract = contract
        self.thresholds = thresholds or DEFAULTS
        self.root = _Node({"kind": "object", "fields": contract["fields"]},
                          self.thresholds.range_margin)


_CACHE: dict[tuple[int, ContractThresholds], tuple[Mapping[str, Any], CompiledContract]] = {}


def compile_contract(contract: Mapping[str, Any] | CompiledContract,
                     thresholds: ContractThresholds | None = None) -> CompiledContract:
    """``contract`` compiled, cached per contract object (treat a contract as immutable).

    Example:
        >>> from guardrail.contract import infer_contract
        >>> c = infer_contract([{"x": 1.0}, {"x": 2.0}])
        >>> compile_contract(c) is compile_contract(c)
        True

    """
    if isinstance(contract, CompiledContract):
        return contract
    limits = thresholds or DEFAULTS
    key = (id(contract), limits)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is contract:
        return hit[1]
    compiled = CompiledContract(contract, limits)
    if len(_CACHE) >= 16:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = (contract, compiled)  # holds the contract, so its id is not reused
    return compiled


class _Checker:
    """Collects the problems of one record."""

    __slots__ = ("index", "problems", "strict")

    def __init__(self, index: int, strict: bool, problems: list[Problem]) -> None:
        self.index, self.strict, self.problems = index, strict, problems

    def add(self, path: str, kind: str, problem: str, value: Any = _ABSENT) -> None:
        severity = "error" if kind in ERROR_KINDS or self.strict else "warning"
        shown = None if value is _ABSENT else _show(value)
        self.problems.append(Problem(self.index, path, problem, severity, kind, shown))

    def object(self, node: _Node, value: Mapping[str, Any], prefix: str) -> None:
        fields = node.fields
        for name, child in fields.items():
            item = value.get(name, _ABSENT)
            # The common case inline (a known category, a number well inside the range): a
            # served record of 30 fields is checked in tens of microseconds.
            kind = type(item)
            if kind in child.fast:
                if child.kind == "numeric":
                    if child.lo <= item <= child.hi and not (child.integer and kind is float):
                        continue
                elif item in child.vocabulary or not child.complete:
                    continue
            self.value(child, item, prefix + name, False)
        if len(value) > len(fields) or any(k not in fields for k in value):
            unknown = [key for key in value if key not in fields]
            for key in unknown[:MAX_ELEMENT_PROBLEMS]:
                self.unknown(node, key, prefix)
            if len(unknown) > MAX_ELEMENT_PROBLEMS:
                self.add(prefix.rstrip("."), "unknown_field", f"{len(unknown):,} unknown "
                         f"fields in all (first {MAX_ELEMENT_PROBLEMS} listed)")

    def unknown(self, node: _Node, key: Any, prefix: str) -> None:
        name = str(key)
        near = difflib.get_close_matches(name, node.names, n=1, cutoff=0.6) or [
            n for n in node.names if n.lower() == name.lower()][:1]
        mean = f" (did you mean '{near[0]}'?)" if near else ""
        self.add(prefix + name[:100], "unknown_field", f"unknown field{mean}")

    def value(self, node: _Node, value: Any, path: str, element: bool) -> None:
        if value is _ABSENT:
            if not node.optional:
                self.add(path, "missing", "missing")
            return
        if value is None:
            if not node.nullable and not node.optional:
                self.add(path, "missing", "missing (null, and training never had nulls here)",
                         None)
            return
        kind = node.kind
        if kind == "numeric":
            self.number(node, value, path, element)
        elif kind in ("categorical", "id"):
            self.category(node, value, path, element)
        elif kind == "sequence":
            self.sequence(node, value, path, element)
        elif kind == "grid":
            self.grid(node, value, path, element)
        elif kind == "object":
            if isinstance(value, Mapping):
                self.object(node, value, path + ".")
            else:
                self.wrong(path, "an object", value, element)

    def wrong(self, path: str, expected: str, value: Any, element: bool) -> None:
        kind = "malformed_sequence" if element else "wrong_type"
        self.add(path, kind, f"expected {expected}, got {_show(value)}", value)

    def number(self, node: _Node, value: Any, path: str, element: bool) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.wrong(path, "a number", value, element)
            return
        if isinstance(value, float):
            if not math.isfinite(value):
                if not node.non_finite_ok:
                    self.add(path, "non_finite", f"not a finite number ({value!r})", value)
                return
            if node.integer and not value.is_integer():
                self.add(path, "not_integer", f"{value!r} has a fraction, but training had "
                         "only whole numbers here", value)
        if value < node.lo or value > node.hi:
            spec = node.spec
            self.add(path, "out_of_range", f"{_fmt(value)} is far outside the training range "
                     f"[{_fmt(spec.get('min'))} .. {_fmt(spec.get('max'))}]", value)

    def category(self, node: _Node, value: Any, path: str, element: bool) -> None:
        dtype = _scalar_type(value)
        accepts = node.accepts
        if dtype not in accepts and not (
                (dtype == "int" and "float" in accepts)  # 3 for a float category 3.0
                or (dtype == "float" and "int" in accepts and value.is_integer())
                or ("null" in accepts and dtype in ("str", "int", "float", "bool"))):
            self.wrong(path, _expected(accepts), value, element)
            return
        if not node.complete:
            return
        key = _key(value)
        if key not in node.vocabulary:
            what = "id" if node.kind == "id" else "category"
            known = [v for v, _ in (node.spec.get("vocabulary") or [])]
            near = _similar(value, known) if isinstance(value, str) and \
                len(known) <= DID_YOU_MEAN_VOCABULARY else []
            hint = f" (did you mean '{near[0]}'?)" if near else (
                f" (it had: {', '.join(str(v) for v in known[:8])}"
                f"{', ...' if len(known) > 8 else ''})" if known and len(known) <= 50 else "")
            shown = repr(value[:60]) if isinstance(value, str) else _show(value)
            self.add(path, "unseen_category",
                     f"{what} {shown} was never seen in training{hint}", value)

    def sequence(self, node: _Node, value: Any, path: str, element: bool) -> None:
        if not isinstance(value, list | tuple):
            self.wrong(path, "a list", value, element)
            return
        n = len(value)
        if n < node.min_length or (node.max_length is not None and n > node.max_length):
            top = "any number" if node.max_length is None else f"{node.max_length:,}"
            self.add(path, "malformed_sequence", f"has {n:,} items; the model takes "
                     f"{node.min_length:,} to {top}", value)
            return
        if n < node.length_lo or n > node.length_hi:
            length = node.spec.get("length") or {}
            self.add(path, "out_of_range", f"{n:,} items is far outside the training lengths "
                     f"[{_fmt(length.get('min'))} .. {_fmt(length.get('max'))}]", value)
        child = node.element
        if child is None:
            return
        start = len(self.problems)
        for i, item in enumerate(value):
            self.value(child, item, f"{path}[{i}]", True)
            if len(self.problems) - start >= MAX_ELEMENT_PROBLEMS and i + 1 < n:
                self.add(path, "malformed_sequence", f"more problems in items {i + 1} to "
                         f"{n - 1} not listed (first {MAX_ELEMENT_PROBLEMS} shown)")
                return

    def grid(self, node: _Node, value: Any, path: str, element: bool) -> None:
        shape = node.shape or []
        if not shape:  # a declared grid of one number per record
            self.number(node, value, path, element)
            return
        if not isinstance(value, list | tuple):
            self.wrong(path, "a grid (nested lists of numbers)", value, element)
            return
        try:
            array = np.asarray(value)
            ok = array.dtype.kind in "iuf" and array.ndim == len(shape) and all(
                s is None or s == a for s, a in zip(shape, array.shape, strict=True))
        except Exception:  # ragged or junk: the walk below names the place
            ok = False
        if not ok:
            start = len(self.problems)
            self.walk(node, value, path, 0, start)
            if len(self.problems) == start:  # e.g. bools in the grid: report the type
                self.add(path, "malformed_sequence", f"expected a grid of numbers of shape "
                         f"{_shape(shape)}", value)
            return
        finite = np.isfinite(array) if array.dtype.kind == "f" else None
        if finite is not None and not finite.all():
            if not node.non_finite_ok:
                where = tuple(int(i) for i in np.argwhere(~finite)[0])
                self.add(path + "".join(f"[{i}]" for i in where), "non_finite",
                         f"not a finite number ({float(array[where])!r}); "
                         f"{int((~finite).sum()):,} such cells")
            array = array[finite]
        if array.size:
            low, high = array.min(), array.max()
            if low < node.lo or high > node.hi:
                outside = int(((array < node.lo) | (array > node.hi)).sum())
                self.add(path, "out_of_range", f"{outside:,} cells (from {_fmt(low)} to "
                         f"{_fmt(high)}) are far outside the training range "
                         f"[{_fmt(node.spec.get('min'))} .. {_fmt(node.spec.get('max'))}]")

    def walk(self, node: _Node, value: Any, path: str, depth: int, start: int) -> None:
        """Find where a grid is malformed, at most ``len(shape)`` levels deep."""
        shape = node.shape or []
        if len(self.problems) - start >= MAX_ELEMENT_PROBLEMS:
            return
        if depth == len(shape):
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.add(path, "malformed_sequence", f"expected a number, got {_show(value)}",
                         value)
            elif isinstance(value, float) and not math.isfinite(value) and \
                    not node.non_finite_ok:
                self.add(path, "non_finite", f"not a finite number ({value!r})", value)
            return
        if not isinstance(value, list | tuple):
            self.add(path, "malformed_sequence", f"expected a list (level {depth + 1} of a "
                     f"{len(shape)}-dimensional grid of shape {_shape(shape)}), got "
                     f"{_show(value)}", value)
            return
        want = shape[depth]
        if want is not None and len(value) != want:
            self.add(path, "malformed_sequence", f"has {len(value):,} items, expected {want:,} "
                     f"(grid shape {_shape(shape)})", value)
            return
        for i, item in enumerate(value):
            self.walk(node, item, f"{path}[{i}]", depth + 1, start)


def _similar(value: str, known: list[Any]) -> list[str]:
    """Known strings like ``value``: the same but for case first, then by difflib."""
    strings = [v for v in known if isinstance(v, str)]
    same = [v for v in strings if v.lower() == value.lower()]
    return same[:1] or difflib.get_close_matches(value, strings, n=1)


def _expected(accepts: frozenset[str]) -> str:
    words = {"str": "a string", "int": "a whole number", "float": "a number",
             "bool": "true or false"}
    return " or ".join(words.get(a, a) for a in sorted(accepts))


def _shape(shape: Sequence[Any]) -> str:
    return "x".join("*" if s is None else str(s) for s in shape)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    try:
        value = float(value)
    except (OverflowError, TypeError, ValueError):
        return _show(value)
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


def check_records(contract: Mapping[str, Any] | CompiledContract, records: Sequence[Any],
                  strict: bool = False,
                  thresholds: ContractThresholds | None = None) -> list[Problem]:
    """Every problem of every record at once (never stops at the first, never raises).

    Args:
        contract: The training contract (or a :func:`compile_contract` of it).
        records: The records, as parsed from JSON (anything a client can send).
        strict: Warnings (unseen categories, far-out numbers, fractions where training had
            whole numbers) become errors.
        thresholds: ``range_margin`` for ``out_of_range``.

    Returns:
        The problems in record order, each record's fields in contract order, then its unknown
        fields.

    Example:
        >>> from guardrail.contract import infer_contract
        >>> c = infer_contract([{"grade": g} for g in "ABAB"])
        >>> [p.severity for p in check_records(c, [{"grade": "C"}], strict=True)]
        ['error']

    """
    compiled = compile_contract(contract, thresholds)
    problems: list[Problem] = []
    if isinstance(records, Mapping | str | bytes) or not isinstance(records, Sequence):
        return [Problem(0, "", f"expected a list of records, got {_show(records)}", "error",
                        "not_object", _show(records))]
    root = compiled.root
    for index, record in enumerate(records):
        checker = _Checker(index, strict, problems)
        if isinstance(record, Mapping):
            try:
                checker.object(root, record, "")
            except Exception as exc:  # never reached by JSON values; a last line of defence
                checker.add("", "malformed_sequence", f"could not be checked ({exc!r:.100})")
        else:
            checker.add("", "not_object", f"the record is {_show(record)}, not a JSON object",
                        record)
    return problems


def contract_findings(contract: Mapping[str, Any] | CompiledContract, records: Sequence[Any],
                      split: str,
                      thresholds: ContractThresholds | None = None) -> list[Finding]:
    """``data.contract`` findings for a split checked at fit: one per field and problem kind.

    Args:
        contract: The training split's contract.
        records: The split's raw records.
        split: Its name (``"val"``, ``"test"``), for the message.
        thresholds: ``range_margin`` for ``out_of_range``.

    Returns:
        Findings with ``where`` = the field (sequence indices dropped: ``events[].type``),
        the share of records affected, one example record, field and value in ``evidence``;
        ``error`` where the model could not run on the records (missing, unknown, wrong type,
        non-finite, malformed), ``warning`` for what it would only be unsure about, when at
        least ``warn_share`` of the records have it (``info`` below).

    Example:
        >>> from guardrail.contract import infer_contract
        >>> c = infer_contract([{"amount": float(a)} for a in range(1000, 40001, 1000)])
        >>> [finding] = contract_findings(c, [{"amount": 5e5}] * 3, "test")
        >>> finding.severity.value, finding.where, finding.evidence["share"]
        ('warning', 'amount', 1.0)
        >>> print(finding.message)
        3 of 3 test records (100%) have amount far outside the training range, e.g. record 0: \
500,000 is far outside the training range [1,000 .. 40,000].

    """
    limits = thresholds or DEFAULTS
    problems = check_records(contract, records, thresholds=thresholds)
    groups: dict[tuple[str, str], list[Problem]] = {}
    for p in problems:
        groups.setdefault((_generic(p.field), p.kind), []).append(p)
    n = len(records) if isinstance(records, Sequence) and not isinstance(
        records, str | bytes | Mapping) else 1
    findings = []
    for (field, kind), group in groups.items():
        affected = len({p.record for p in group})
        first = group[0]
        error = kind in ERROR_KINDS
        name = field or "the record"
        severity = Severity.ERROR if error else Severity.WARNING \
            if affected / max(n, 1) >= limits.warn_share else Severity.INFO
        findings.append(Finding(
            "data.contract", severity,
            f"{affected:,} of {n:,} {split} records ({affected / max(n, 1):.0%}) have {name} "
            f"{_PHRASE.get(kind, kind)}, e.g. record {first.record}: {first.problem}.",
            where=field or split,
            evidence={"kind": kind, "records": affected, "share": affected / max(n, 1),
                      "problems": len(group), "example_record": first.record,
                      "example_field": first.field, "example_value": first.value,
                      "example_problem": first.problem},
            hint=_HINTS.get(kind, "")))
    return sorted(findings, key=lambda f: (-f.severity.rank, -f.evidence["records"],
                                           f.where or ""))


def _generic(path: str) -> str:
    """``events[3].type`` -> ``events[].type``: one finding for every item of a sequence."""
    out, depth = [], 0
    for ch in path:
        if ch == "[":
            depth += 1
            out.append("[]")
        elif ch == "]":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


_PHRASE = {
    "not_object": "not a JSON object", "missing": "missing", "unknown_field": "not in the "
    "training contract (unknown field)", "wrong_type": "of the wrong type", "non_finite":
    "not finite (NaN or infinity)", "malformed_sequence": "malformed (wrong nesting, element "
    "type, shape or length)", "unseen_category": "a category never seen in training",
    "out_of_range": "far outside the training range", "not_integer": "with a fraction where "
    "training had only whole numbers",
}
_HINTS = {
    "not_object": "Send each record as a JSON object of field names to values.",
    "missing": "Send every field of the contract (`guardrail serve` shows it at GET /contract); "
               "null is accepted only where training had nulls.",
    "unknown_field": "Rename the field to the contract's name or drop it; the contract lists "
                     "the fields the model was trained on.",
    "wrong_type": "Send the field's value with the training type (numbers as JSON numbers, "
                  "not strings).",
    "non_finite": "Replace NaN and infinity before the model sees the record, the way the "
                  "training data was cleaned.",
    "malformed_sequence": "Send lists with the nesting, element types, shape and length the "
                          "training records had.",
    "unseen_category": "Check the spelling and the coding of the category; if it is new, "
                       "retrain with examples of it (the model has no embedding for it).",
    "out_of_range": "Check the unit and the scale (cents instead of dollars, grams instead of "
                    "kilograms); if the values are real, retrain on data that covers them.",
    "not_integer": "Send whole numbers for this field, as in training.",
}
