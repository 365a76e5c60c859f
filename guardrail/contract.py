"""The data contract: what a trained model expects of each raw record, inferred from training.

A *record* is one JSON object of the fields a client has (an Ames sale, a loan application, a
customer's event log). :func:`infer_contract` reads the training split's records and writes, per
field, its kind, dtype and shape, the observed range and central quantiles, the share of missing
and non-finite values, the vocabulary of categories and ids with their counts, and the length
range of sequences (with the contract of their items, recursively). The result is a plain,
JSON-serialisable dict with a ``version``, stored as ``contract.json`` in the run directory and
in the checkpoint; :func:`guardrail.checks.contract.check_records` judges records against it.

Kinds (``KINDS``): ``numeric`` (numbers), ``categorical`` (strings, booleans, or numbers a
preprocessor declares categorical), ``id`` (a categorical whose values are nearly all distinct:
user ids, account numbers), ``sequence`` (a list of scalars, of lists or of objects: an event
log), ``grid`` (a rectangular nested list of numbers: a 2-D temperature field) and ``object``
(a nested JSON object; also the element of a sequence of objects).

Example:
    >>> records = [{"amount": 1000 * (i + 1), "state": "CA" if i % 3 else "NY",
    ...             "events": [{"day": d, "type": "login"} for d in range(i % 4 + 1)]}
    ...            for i in range(40)]
    >>> contract = infer_contract(records)
    >>> {name: spec["kind"] for name, spec in contract["fields"].items()}
    {'amount': 'numeric', 'state': 'categorical', 'events': 'sequence'}
    >>> contract["fields"]["amount"]["min"], contract["fields"]["amount"]["max"]
    (1000, 40000)
    >>> contract["fields"]["state"]["vocabulary"]
    [['CA', 26], ['NY', 14]]
    >>> events = contract["fields"]["events"]
    >>> events["length"]["min"], events["length"]["max"], events["element"]["kind"]
    (1, 4, 'object')
    >>> sorted(events["element"]["fields"])
    ['day', 'type']
    >>> print(contract_summary(contract).splitlines()[0])
    amount  numeric int  [1,000 .. 40,000], median 20,500, missing 0%

"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from guardrail.errors import ConfigError, DataError

__all__ = ["CONTRACT_VERSION", "KINDS", "QUANTILES", "Record", "contract_summary",
           "infer_contract"]

Record = Mapping[str, Any]
CONTRACT_VERSION = 1
KINDS = ("numeric", "categorical", "id", "sequence", "grid", "object")
QUANTILES = (1, 5, 25, 50, 75, 95, 99)  # percent; stored under the keys "1", "5", ...
ID_MIN_VALUES = 20  # fewer values than this never look like ids
ID_UNIQUE_SHARE = 0.9  # strings with at least this share of distinct values are ids
MAX_VOCABULARY = 50_000  # most frequent values kept per categorical/id field

_ABSENT = object()  # a key the record does not have (distinct from a JSON null)


def infer_contract(records: Sequence[Record], kinds: Mapping[str, str] | None = None, *,
                   lengths: Mapping[str, tuple[int | None, int | None]] | None = None,
                   max_vocabulary: int = MAX_VOCABULARY,
                   private: Sequence[str] = ()) -> dict[str, Any]:
    """The contract of the training records: ``{"version": 1, "records": n, "fields": {...}}``.

    Args:
        records: The training split's raw records (JSON objects).
        kinds: Declared kinds of some fields (a preprocessor knows them), by name; nested
            fields by dotted path with ``[]`` for sequence elements (``"events[].type"``).
            Other fields are inferred from their values: numbers are ``numeric``; strings and
            booleans ``categorical``, or ``id`` when nearly every value is distinct; lists of
            rectangular lists of numbers ``grid``; other lists ``sequence``; objects ``object``.
        lengths: Declared length range ``(min, max)`` a sequence field's model accepts (``None``
            for no bound), by the same names. Undeclared: exactly the training length when every
            training sequence had the same length, else at least 1 (0 when training had empty
            sequences) with no upper bound.
        max_vocabulary: Most frequent values kept per categorical or id field; a field with
            more distinct values says ``"capped": true``.
        private: Fields (and everything nested in them) whose values hold personal data
            (direct identifiers, free text with e-mail addresses): the contract keeps their
            kind, type and counts but no value (``"private": true``, no vocabulary), so that
            the contract, the checkpoint and findings about them never show one.

    Returns:
        The contract; per field: ``kind``, ``dtype``, ``count`` (values present and not null),
        ``missing`` (share null or absent), ``absent`` (share of records without the key) and
        the kind's statistics (see the module docstring and :func:`contract_summary`).

    Raises:
        ConfigError: A declared kind is unknown, names no field, or does not fit the values.
        DataError: There are no records, a record is not a JSON object, or a field mixes
            values no kind holds (lists and numbers).

    """
    if isinstance(records, Mapping) or not isinstance(records, Sequence) or not records:
        raise DataError("infer_contract needs a non-empty list of training records (JSON "
                        f"objects), got {_show(records)}; pass the training split's raw "
                        "records.")
    bad = next((i for i, r in enumerate(records) if not isinstance(r, Mapping)), None)
    if bad is not None:
        raise DataError(f"Training record {bad} is {_show(records[bad])}, not a JSON object; "
                        "every record must be a mapping of field names to values.")
    declared = dict(kinds or {})
    unknown = {k: v for k, v in declared.items() if v not in KINDS}
    if unknown:
        raise ConfigError(f"Unknown kind(s) {unknown} in `kinds`; valid kinds: "
                          f"{', '.join(KINDS)}.")
    context = _Context(declared, dict(lengths or {}), int(max_vocabulary), tuple(private))
    fields = _infer_object(list(records), "", context)
    never = sorted(set(declared) - context.used)
    if never:
        raise ConfigError(f"`kinds` declares {never}, which no training record has; the "
                          f"fields are: {', '.join(fields)}. Fix the names (nested: "
                          "'events[].type').")
    return {"version": CONTRACT_VERSION, "records": len(records), "fields": fields}


class _Context:
    """What every level of the recursive inference shares."""

    def __init__(self, kinds: dict[str, str], lengths: dict[str, Any], cap: int,
                 private: tuple[str, ...] = ()) -> None:
        self.kinds, self.lengths, self.cap = kinds, lengths, cap
        self.private = private
        self.used: set[str] = set()

    def is_private(self, path: str) -> bool:
        return any(path == p or path.startswith((f"{p}.", f"{p}[]")) for p in self.private)


def _infer_object(items: list[Mapping[str, Any]], prefix: str,
                  context: _Context) -> dict[str, dict[str, Any]]:
    names: dict[str, None] = {}
    for item in items:
        for key in item:
            names.setdefault(str(key), None)
    return {name: _infer_field([item.get(name, _ABSENT) for item in items],
                               f"{prefix}{name}", context) for name in names}


def _infer_field(values: list[Any], path: str, context: _Context) -> dict[str, Any]:
    n = len(values)
    absent = sum(v is _ABSENT for v in values)
    present = [v for v in values if v is not _ABSENT and v is not None]
    spec: dict[str, Any] = {"kind": "", "dtype": "", "count": len(present),
                            "missing": _share(n - len(present), n), "absent": _share(absent, n)}
    declared = context.kinds.get(path)
    if declared is not None:
        context.used.add(path)
    kind = declared or _guess_kind(present, path)
    spec["kind"] = kind
    if kind == "numeric":
        spec.update(_numeric(present, path))
    elif kind in ("categorical", "id") and context.is_private(path):
        spec.update(_vocabulary(present, path, 0), private=True)  # counts, never a value
    elif kind in ("categorical", "id"):
        spec.update(_vocabulary(present, path, context.cap))
    elif kind == "grid":
        spec.update(_grid(present, path))
    elif kind == "sequence":
        spec.update(_sequence(present, path, context))
    else:
        if not all(isinstance(v, Mapping) for v in present):
            raise ConfigError(f"Field '{path}' is declared 'object' but holds "
                              f"{_show(_first(present, Mapping))}; declare its real kind.")
        spec["dtype"] = "object"
        spec["fields"] = _infer_object(present, f"{path}.", context)
    return spec


def _guess_kind(present: list[Any], path: str) -> str:
    kinds = {_scalar_type(v) for v in present}
    if not kinds or kinds <= {"bool"}:
        return "categorical"
    if kinds <= {"int", "float"}:
        return "numeric"
    if kinds <= {"int", "float", "str", "bool"}:
        strings = [v for v in present if isinstance(v, str)]
        unique = len(set(strings))
        if kinds == {"str"} and len(strings) >= ID_MIN_VALUES and \
                unique >= ID_UNIQUE_SHARE * len(strings):
            return "id"
        return "categorical"
    if kinds == {"list"}:
        return "grid" if all(_grid_shape(v) is not None for v in present) else "sequence"
    if kinds == {"object"}:
        return "object"
    raise DataError(f"Field '{path}' mixes {' and '.join(sorted(kinds))} values in the "
                    "training records, which no kind of the data contract holds; clean the "
                    "field or declare its kind in the preprocessor.")


def _scalar_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _numeric(present: list[Any], path: str) -> dict[str, Any]:
    wrong = _first(present, int | float, bool)
    if wrong is not None:
        raise ConfigError(f"Field '{path}' is declared 'numeric' but holds {_show(wrong)}; "
                          "declare it 'categorical' or send numbers.")
    dtype = "int" if all(isinstance(v, int) for v in present) else "float"
    values = np.array([_to_float(v) for v in present], dtype=np.float64)
    finite = values[np.isfinite(values)]
    out: dict[str, Any] = {"dtype": dtype, "non_finite": _share(len(values) - len(finite),
                                                                len(values))}
    out.update(_range(finite, dtype))
    return out


def _range(finite: np.ndarray, dtype: str) -> dict[str, Any]:
    if not len(finite):
        return {"min": None, "max": None, "quantiles": None}
    cast = int if dtype == "int" else float
    qs = np.percentile(finite, QUANTILES)
    return {"min": cast(finite.min()), "max": cast(finite.max()),
            "quantiles": {str(q): float(v) for q, v in zip(QUANTILES, qs, strict=True)}}


def _vocabulary(present: list[Any], path: str, cap: int) -> dict[str, Any]:
    wrong = _first(present, str | int | float | bool)
    if wrong is not None:
        raise ConfigError(f"Field '{path}' is categorical but holds {_show(wrong)}; only "
                          "strings, numbers and booleans can be categories.")
    types = sorted({_scalar_type(v) for v in present})
    # Key by type too: in Python 1 == True == 1.0, in the contract they are different values.
    counts = Counter((_scalar_type(v), v) for v in present)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0], str(kv[0][1])))
    return {"dtype": "|".join(types) or "null", "distinct": len(counts),
            "vocabulary": [[value, c] for (_, value), c in ranked[:cap]],
            "capped": len(counts) > cap}


def _grid_shape(value: Any, min_ndim: int = 2) -> tuple[int, ...] | None:
    """The shape of a rectangular nested list of numbers of depth >= ``min_ndim``, else None.

    Inference calls lists of lists grids; a declared grid may be a vector or a single number
    (a tensor's row: ``[B, 3]`` gives records of 3 numbers, ``[B]`` of one).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | list | tuple):
        return None
    try:
        array = np.asarray(value)
    except Exception:  # ragged, too deep, huge ints: not a grid
        return None
    if array.ndim < min_ndim or array.dtype.kind not in "iuf" or (array.ndim and not
                                                                   array.size):
        return None
    return tuple(int(s) for s in array.shape)


def _grid(present: list[Any], path: str) -> dict[str, Any]:
    shapes = [_grid_shape(v, 0) for v in present]
    bad = next((v for v, s in zip(present, shapes, strict=True) if s is None), None)
    if bad is not None or len({len(s) for s in shapes if s is not None}) > 1:
        raise ConfigError(f"Field '{path}' is a grid but holds {_show(bad)} (grids are "
                          "rectangular nested lists of numbers with the same number of "
                          "dimensions in every record); declare it 'sequence'.")
    ndim = len(shapes[0]) if shapes else 0
    shape = [shapes[0][d] if len({s[d] for s in shapes}) == 1 else None  # type: ignore[index]
             for d in range(ndim)]
    arrays = [np.asarray(v, dtype=np.float64).ravel() for v in present]
    values = np.concatenate(arrays) if arrays else np.zeros(0)
    finite = values[np.isfinite(values)]
    dtype = "int" if all(np.asarray(v).dtype.kind in "iu" for v in present) else "float"
    out: dict[str, Any] = {"dtype": dtype, "shape": shape,
                           "non_finite": _share(len(values) - len(finite), len(values))}
    out.update(_range(finite, dtype))
    return out


def _sequence(present: list[Any], path: str, context: _Context) -> dict[str, Any]:
    wrong = _first(present, list | tuple)
    if wrong is not None:
        raise ConfigError(f"Field '{path}' is declared 'sequence' but holds {_show(wrong)}; "
                          "sequences are JSON lists.")
    sizes = np.array([len(v) for v in present], dtype=np.float64)
    length = _range(sizes, "int") if len(sizes) else {"min": None, "max": None,
                                                      "quantiles": None}
    declared = context.lengths.get(path)
    if declared is not None:
        accepts = [declared[0], declared[1]]
    elif length["min"] is not None and length["min"] == length["max"]:
        accepts = [length["min"], length["max"]]
    else:
        accepts = [0 if not length["min"] else 1, None]
    element = _infer_field([e for v in present for e in v], f"{path}[]", context)
    return {"dtype": "list", "length": length, "accepts": {"min_length": accepts[0],
                                                           "max_length": accepts[1]},
            "element": element}


def _first(values: list[Any], allowed: Any, excluded: Any = ()) -> Any:
    """The first value not an instance of ``allowed`` (or an instance of ``excluded``)."""
    for v in values:
        if not isinstance(v, allowed) or (excluded and isinstance(v, excluded)):
            return v
    return None


def _to_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return math.inf if value > 0 else -math.inf


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _show(value: Any, width: int = 60) -> str:
    """A short description of any JSON value, bounded however deep or long it is.

    Example:
        >>> _show("abc"), _show([[1, 2]] * 5), _show({"a": 1}), _show(None)
        ("the string 'abc'", 'a list of 5 items', 'an object with 1 key', 'null')

    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= width else value[:width] + "..."
        return f"the string {text!r}"
    if isinstance(value, int):
        text = str(value) if value.bit_length() < 200 else f"an integer of {len(str(value))}" \
            " digits"
        return text
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item{'s' * (len(value) != 1)}"
    if isinstance(value, Mapping):
        return f"an object with {len(value)} key{'s' * (len(value) != 1)}"
    return f"a {type(value).__name__}"


def _number(value: Any) -> str:
    """``1,000`` for integers, 4 significant digits otherwise.

    Example:
        >>> _number(40000), _number(13.99), _number(0.000123), _number(None)
        ('40,000', '13.99', '0.000123', '-')

    """
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


def declare_vocabulary(contract: dict[str, Any], known: Mapping[str, Sequence[Any]]) -> None:
    """Add values the model knows beyond the training records to fields' vocabularies.

    Each value not yet in a field's vocabulary joins it with count 0 (the counts stay those
    of the training records); ``declared`` says how many were added. Fields the contract
    does not have, or that hold no vocabulary, are left alone.

    Example:
        >>> c = infer_contract([{"movie": "a"}, {"movie": "b"}], kinds={"movie": "id"})
        >>> declare_vocabulary(c, {"movie": ["b", "c"]})
        >>> c["fields"]["movie"]["vocabulary"], c["fields"]["movie"]["declared"]
        ([['a', 1], ['b', 1], ['c', 0]], 1)

    """
    for field, values in known.items():
        spec = contract.get("fields", {}).get(field)
        if not isinstance(spec, dict) or "vocabulary" not in spec:
            continue
        seen = {(_scalar_type(v), v) for v, _ in spec["vocabulary"]}
        added = [v for v in dict.fromkeys(values) if (_scalar_type(v), v) not in seen]
        spec["vocabulary"] = spec["vocabulary"] + [[v, 0] for v in added]
        spec["distinct"] = spec.get("distinct", 0) + len(added)
        spec["declared"] = len(added)


def contract_summary(contract: Mapping[str, Any]) -> str:
    """One line per field for the CLI: name, kind, dtype and the statistics that matter.

    Example:
        >>> c = infer_contract([{"amount": 1000.0 + i, "grade": "AB"[i % 2]} for i in range(9)])
        >>> print(contract_summary(c))
        amount  numeric float  [1,000 .. 1,008], median 1,004, missing 0%
        grade   categorical str  2 values: A (5), B (4), missing 0%

    """
    fields = contract.get("fields", {})
    width = max((len(n) for n in fields), default=0)
    return "\n".join(f"{name.ljust(width)}  {_describe(spec)}" for name, spec in fields.items())


def _describe(spec: Mapping[str, Any]) -> str:
    kind, dtype = spec.get("kind", "?"), spec.get("dtype", "?")
    missing = f"missing {spec.get('missing', 0):.0%}"
    if kind in ("numeric", "grid"):
        shape = f" {'x'.join('*' if s is None else str(s) for s in spec['shape'])}" \
            if kind == "grid" else ""
        q = spec.get("quantiles") or {}
        middle = f"[{_number(spec.get('min'))} .. {_number(spec.get('max'))}], median " \
                 f"{_number(q.get('50'))}"
        bad = f", non-finite {spec['non_finite']:.1%}" if spec.get("non_finite") else ""
        return f"{kind} {dtype}{shape}  {middle}{bad}, {missing}"
    if kind in ("categorical", "id"):
        vocab = spec.get("vocabulary", [])
        top = ", ".join(f"{v} ({c:,})" for v, c in vocab[:5])
        more = ", ..." if spec.get("distinct", 0) > 5 else ""
        capped = " (vocabulary capped)" if spec.get("capped") else ""
        return f"{kind} {dtype}  {spec.get('distinct', 0):,} values{capped}: {top}{more}, " \
               f"{missing}"
    if kind == "sequence":
        length = spec.get("length", {})
        element = spec.get("element", {})
        inner = element.get("kind", "?") if element.get("kind") != "object" else \
            "objects {" + ", ".join(element.get("fields", {})) + "}"
        return f"sequence of {inner}  length [{_number(length.get('min'))} .. " \
               f"{_number(length.get('max'))}], {missing}"
    if kind == "object":
        return f"object {{{', '.join(spec.get('fields', {}))}}}, {missing}"
    return f"{kind} {dtype}, {missing}"
