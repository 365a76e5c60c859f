"""Text for report.html: every value from a run is escaped before it reaches the page.

Example:
    >>> escape("<b>x</b>"), number(0.123456), number(None), number(float("nan"))
    ('&lt;b&gt;x&lt;/b&gt;', '0.1235', '', 'nan')
    >>> number(12843.7), number(0.000123)
    ('12,844', '0.000123')
    >>> tidy("Not 5% better.; see report.html")
    'Not 5% better; see this page'

"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from typing import Any


def escape(value: Any) -> str:
    """``value`` as HTML text: markup in it shows as characters."""
    return html.escape(str(value), quote=True)


def number(value: Any) -> str:
    """Numbers as :func:`plain_number` writes them, None as '', anything else escaped."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return escape(plain_number(value))
    return escape("" if value is None else value)


def plain_number(value: float) -> str:
    """4 significant digits; from 1,000 up, whole and with thousands separators (money, counts).

    Example:
        >>> plain_number(12843.7), plain_number(0.25912), plain_number(2.5e7), plain_number(-1e-9)
        ('12,844', '0.2591', '25,000,000', '-1e-09')
    """
    if not math.isfinite(value):
        return str(value)
    return f"{round(value):,}" if 1000 <= abs(value) < 1e15 else f"{value:.4g}"


_SELF = ((re.compile(r"\b(in|on) report\.html\b"), "on this page"),
         (re.compile(r"\breport\.html\b"), "this page"))


def tidy(text: str) -> str:
    """A recorded sentence as the page shows it: joins of sentences mended, no self-reference.

    A message made by joining sentences that end in '.' with '; ' reads ``.;``; a hint written
    for the terminal says ``report.html``, which on report.html itself means this page.

    Example:
        >>> tidy("See the table in report.html, e.g., the first. Joined.; here")
        'See the table on this page, e.g., the first. Joined; here'

    """
    text = re.sub(r"(?<!\.)\.;", ";", text)
    for pattern, replacement in _SELF:
        text = pattern.sub(replacement, text)
    return text


_CODE = re.compile(r"`([^`\n]+)`")


def with_code(text: str) -> str:
    """``text`` escaped, with each pair of backticks (an override, a call) shown as code.

    Example:
        >>> with_code("Pass `model.pool=2` <now>; a lone ` stays")
        'Pass <code>model.pool=2</code> &lt;now&gt;; a lone ` stays'

    """
    return _CODE.sub(lambda m: f"<code>{m.group(1)}</code>", escape(text))



def table(head: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table: numbers as :func:`number` writes them, right-aligned; the rest escaped.

    Example:
        >>> table(["k", "<v>"], [["a", 1234], ["b", None]])  # doctest: +NORMALIZE_WHITESPACE
        "<table><tr><th>k</th><th>&lt;v&gt;</th></tr><tr><td>a</td><td class='num'>1,234</td>\
</tr><tr><td>b</td><td>None</td></tr></table>"

    """
    cells = "".join("<tr>" + "".join(
        f"<td class='num'>{number(v)}</td>" if isinstance(v, int | float) and
        not isinstance(v, bool) else f"<td>{escape(v)}</td>" for v in row) + "</tr>"
        for row in rows)
    return "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + f"</tr>{cells}</table>"
