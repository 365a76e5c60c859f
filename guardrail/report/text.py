"""Text for report.html: every value from a run is escaped before it reaches the page.

Example:
    >>> escape("<b>x</b>"), number(0.123456), number(None), number(float("nan"))
    ('&lt;b&gt;x&lt;/b&gt;', '0.1235', '', 'nan')

"""

from __future__ import annotations

import html
import math
from typing import Any


def escape(value: Any) -> str:
    """``value`` as HTML text: markup in it shows as characters."""
    return html.escape(str(value), quote=True)


def number(value: Any) -> str:
    """Numbers to 4 significant digits, None as '', anything else escaped."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return escape(f"{value:.4g}") if math.isfinite(value) else escape(value)
    return escape("" if value is None else value)
