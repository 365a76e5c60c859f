"""Personal data in raw records: e-mail addresses, phone numbers, card numbers, IBANs, IPs.

:func:`scan_records` walks every string of every record (nested lists and objects too: a
field inside a list of events is ``events[].note``), matches the patterns of :data:`PATTERNS`
and validates each candidate where the pattern has a checksum (Luhn for payment cards and
Swedish personal identity numbers, ISO 13616 mod-97 for IBANs, :mod:`ipaddress` for IPv6).
Each distinct string is matched once, so a categorical field of a few values costs nothing.
:func:`pii_findings` turns the matches into ``privacy.pii`` errors for fields not declared as
direct identifiers; examples are redacted (:func:`redact`), never shown raw.

No dependency beyond the standard library: the patterns are the cheap, documented floor. They
find what has a shape; names and street addresses in free text need an NER model (Presidio).

Example:
    >>> records = [{"note": "mail me at jane.doe@example.com"}, {"note": "thanks"},
    ...            {"note": "card 4111 1111 1111 1111"}, {"note": "order 4111 1111 1111 1112"}]
    >>> scan = scan_records(records)
    >>> [(m.field, m.pattern, m.records) for m in scan.matches]
    [('note', 'email', 1), ('note', 'payment_card', 1)]
    >>> scan.matches[0].example
    'j*******@e******.com'
    >>> [f.check for f in pii_findings(scan)], pii_findings(scan, direct_identifiers=["note"])
    (['privacy.pii'], [])

"""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from guardrail.findings import Finding, Severity

__all__ = ["PATTERNS", "PiiMatch", "PiiScan", "iban_valid", "luhn_valid", "pii_findings",
           "redact", "scan_records", "string_fields"]


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string (payment cards, Swedish personal numbers).

    Example:
        >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
        (True, False)

    """
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """ISO 13616: the country code and check digits moved to the end, mod 97 is 1.

    Example:
        >>> iban_valid("GB82 WEST 1234 5698 7654 32"), iban_valid("GB82 WEST 1234 5698 7654 33")
        (True, False)

    """
    s = re.sub(r"\s", "", text).upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _card(text: str) -> bool:
    d = _digits(text)
    # Issuer prefixes: Amex 34/37, Visa 4, Mastercard 51-55 and 2221-2720, Discover/UnionPay 6.
    return 13 <= len(d) <= 19 and d[0] in "23456" and luhn_valid(d)


def _phone(text: str) -> bool:
    d = _digits(text)
    if not 9 <= len(d) <= 15 or _DATE.search(text):
        return False
    return text.lstrip().startswith(("+", "(", "0")) or len(re.findall(r"\d+", text)) >= 3


def _ipv4(text: str) -> bool:
    return max(len(octet) for octet in text.split(".")) >= 2  # not a version: 1.2.3.4


def _personal_number(text: str) -> bool:
    d = _digits(text)
    return luhn_valid(d[-10:]) and 1 <= int(d[-8:-6]) <= 12 and 1 <= int(d[-6:-4]) <= 91


def _ipv6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False


_DATE = re.compile(r"\d{4}[-./]\d{2}[-./]\d{2}|\d{2}[-./]\d{2}[-./]\d{4}")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"

#: name -> (regular expression, validator of a candidate or None). Order matters where two
#: patterns can match one string: each string is attributed to every pattern that validates.
PATTERNS: dict[str, tuple[re.Pattern[str], Callable[[str], bool] | None]] = {
    "email": (re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
              None),
    "payment_card": (re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"), _card),
    "iban": (re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
             iban_valid),
    "personal_number": (re.compile(r"(?<!\d)(?:19|20)?\d{6}[-+]\d{4}(?!\d)"), _personal_number),
    "ipv4": (re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w.])"), _ipv4),
    "phone": (re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}"
                         r"(?:[ .-]\d{2,4}){1,4}(?![\w:])"), _phone),
    "ipv6": (re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])"), _ipv6),
}
# A match of these is also a match of a looser pattern further down: not counted twice.
_SHADOWS = {"payment_card": ("phone",), "personal_number": ("phone",), "iban": ("phone",),
            "ipv4": ("phone",)}


def redact(text: str) -> str:
    """``text`` with every letter and digit but the first starred (an e-mail keeps its TLD).

    Example:
        >>> redact("jane.doe@example.com"), redact("+46 70 123 45 67")
        ('j*******@e******.com', '+4* ** *** ** **')

    """
    if "@" in text:
        user, _, domain = text.partition("@")
        host, _, tld = domain.rpartition(".")
        return f"{user[:1]}{'*' * (len(user) - 1)}@{host[:1]}{'*' * (len(host) - 1)}.{tld}"
    first = next((i for i, c in enumerate(text) if c.isalnum()), -1)
    return "".join(c if i == first or not c.isalnum() else "*" for i, c in enumerate(text))


@dataclasses.dataclass(frozen=True)
class PiiMatch:
    """One pattern found in one field.

    Attributes:
        field: The field's path (``note``, ``events[].note``).
        pattern: A name of :data:`PATTERNS`.
        records: Scanned records with at least one match in the field.
        example: One match, redacted.

    """

    field: str
    pattern: str
    records: int
    example: str


@dataclasses.dataclass(frozen=True)
class PiiScan:
    """What :func:`scan_records` found, and what it looked at.

    Attributes:
        matches: One per (field, pattern) found, in field then pattern order.
        scanned: Records scanned.
        total: Records there were (more than ``scanned`` when sampled).
        fields: Every string field's path, with the records that had it.
        flagged: Per field with a match, the records with any pattern in it.

    """

    matches: list[PiiMatch]
    scanned: int
    total: int
    fields: dict[str, int]
    flagged: dict[str, int] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"scanned": self.scanned, "total": self.total, "fields": self.fields,
                "flagged": self.flagged, "matches": [dataclasses.asdict(m) for m in self.matches]}


def string_fields(record: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(path, text)`` of every string in a record, lists written as ``[]``.

    Example:
        >>> list(string_fields({"a": "x", "b": [{"c": "y"}, {"c": 3}], "d": ["z"]}))
        [('a', 'x'), ('b[].c', 'y'), ('d[]', 'z')]

    """
    if isinstance(record, str):
        yield prefix, record
    elif isinstance(record, Mapping):
        for key, value in record.items():
            yield from string_fields(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(record, (list, tuple)):
        for item in record:
            yield from string_fields(item, f"{prefix}[]")


def _find(text: str) -> dict[str, str]:
    """Pattern name -> first validated match in ``text``."""
    found: dict[str, str] = {}
    spans: list[tuple[str, tuple[int, int]]] = []
    for name, (regex, valid) in PATTERNS.items():
        shadowed = [span for owner, span in spans if name in _SHADOWS.get(owner, ())]
        for m in regex.finditer(text):
            if any(a <= m.start() and m.end() <= b for a, b in shadowed):
                continue
            if valid is None or valid(m.group()):
                found[name] = m.group()
                spans.append((name, m.span()))
                break
    return found


_CACHE = 200_000  # distinct strings remembered (free text rarely repeats; categories do)


def scan_records(records: Sequence[Any], max_records: int = 20_000, seed: int = 0) -> PiiScan:
    """Every string of ``records`` (a seeded sample beyond ``max_records``) against the patterns.

    Args:
        records: Raw records (JSON objects); anything else is skipped.
        max_records: Records scanned at most.
        seed: Seed of the sample.

    Returns:
        The matches per field and pattern, counted in records.

    """
    rows: Sequence[Any] = records
    if len(records) > max_records:
        rows = [records[i] for i in sorted(random.Random(seed).sample(range(len(records)),
                                                                      max_records))]
    cache: dict[str, dict[str, str]] = {}
    counts: dict[tuple[str, str], int] = {}
    examples: dict[tuple[str, str], str] = {}
    fields: dict[str, int] = {}
    flagged: dict[str, int] = {}
    for record in rows:
        seen: set[tuple[str, str]] = set()
        present: set[str] = set()
        for path, text in string_fields(record):
            present.add(path)
            found = cache.get(text)
            if found is None:
                found = _find(text)
                if len(cache) < _CACHE:
                    cache[text] = found
            for name, match in found.items():
                seen.add((path, name))
                examples.setdefault((path, name), match)
        for key in seen:
            counts[key] = counts.get(key, 0) + 1
        for path in {path for path, _ in seen}:
            flagged[path] = flagged.get(path, 0) + 1
        for path in present:
            fields[path] = fields.get(path, 0) + 1
    order = list(PATTERNS)
    matches = [PiiMatch(f, p, counts[f, p], redact(examples[f, p]))
               for f, p in sorted(counts, key=lambda k: (k[0], order.index(k[1])))]
    return PiiScan(matches, len(rows), len(records), dict(sorted(fields.items())),
                   dict(sorted(flagged.items())))


def _root(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def pii_findings(scan: PiiScan, direct_identifiers: Sequence[str] = ()) -> list[Finding]:
    """``privacy.pii`` (error) per field holding personal data it was not declared to hold.

    A field declared as a direct identifier (``privacy.direct_identifiers``; by its path or
    its top-level name) may hold what it holds: pseudonymise it instead.
    """
    declared = set(direct_identifiers)
    findings = []
    for field in dict.fromkeys(m.field for m in scan.matches):
        if field in declared or _root(field) in declared:
            continue
        found = [m for m in scan.matches if m.field == field]
        share = scan.flagged.get(field, max(m.records for m in found)) / max(scan.scanned, 1)
        kinds = ", ".join(f"{m.pattern.replace('_', ' ')} ({m.records} records, e.g. "
                          f"{m.example})" for m in found)
        findings.append(Finding(
            "privacy.pii", Severity.ERROR,
            f"Field '{field}' holds personal data: {kinds}, in {share:.1%} of "
            f"{scan.scanned:,} records scanned.",
            where=field,
            evidence={"patterns": {m.pattern: m.records for m in found},
                      "examples": {m.pattern: m.example for m in found},
                      "share": round(share, 6), "scanned": scan.scanned, "total": scan.total},
            hint=f"Drop '{field}' before the data reaches training, scrub it at the source, or "
                 f"if it is an identifier the model needs, declare it "
                 f"(`privacy.direct_identifiers=[{_root(field)}]`) and pseudonymise it."))
    return findings
