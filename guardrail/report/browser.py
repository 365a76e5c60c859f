"""Headless Chromium for report.html: load it, read its console, take a screenshot.

Chromium runs with the flags a closed network needs (no background networking, no sync, no
component updates) and a fresh profile folder, so it never reaches out.

Example:
    >>> console_messages(['[1:2:INFO:CONSOLE:1] "Uncaught ReferenceError: f", source: x (1)',
    ...                   '[1:2:WARNING:gpu_init.cc(1)] no GPU'])
    ['[1:2:INFO:CONSOLE:1] "Uncaught ReferenceError: f", source: x (1)']

"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0")
_CONSOLE = re.compile(r":CONSOLE|console\.cc|Uncaught|Failed to load resource", re.IGNORECASE)


def chromium() -> str | None:
    """Path of a Chromium or Chrome executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(page: Path, profile: Path, *extra: str,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("Chromium is not installed; on Debian: `apt-get install chromium`.")
    return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *extra,
                           Path(page).resolve().as_uri()],
                          capture_output=True, text=True, timeout=timeout, check=False)


def render_dom(page: Path, profile: Path,
               window: tuple[int, int] | None = None) -> tuple[str, list[str]]:
    """The page's DOM after load, and Chromium's log lines; ``window``: (width, height)."""
    size = (f"--window-size={window[0]},{window[1]}",) if window else ()
    done = _run(page, profile, "--dump-dom", *size)
    return done.stdout, done.stderr.splitlines()


def page_size(page: Path, profile: Path, width: int = 1280) -> tuple[int, int]:
    """``(width, height)`` in pixels of ``page`` laid out in a ``width``-pixel-wide window.

    A width over ``width`` means the page scrolls sideways (a table too wide for it). Measured
    on a copy of the page with a one-line script appended; the page itself stays script-free.
    """
    probe = Path(profile).with_name(f"{Path(page).stem}-size.html")
    probe.write_text(Path(page).read_text(encoding="utf-8").replace(
        "</body>", "<script>const e = document.documentElement; document.body.setAttribute("
        "'data-size', e.scrollWidth + 'x' + e.scrollHeight)</script></body>"), encoding="utf-8")
    dom, _ = render_dom(probe, profile, (width, 900))
    found = re.search(r'data-size="(\d+)x(\d+)"', dom)
    if found is None:
        raise RuntimeError(f"Chromium did not lay out {page}.")
    return int(found.group(1)), int(found.group(2))


def scroll_width(page: Path, profile: Path, width: int = 1280) -> int:
    """The laid-out width in pixels of ``page`` in a ``width``-pixel-wide window.

    More than ``width`` means the page scrolls sideways; see :func:`page_size`.
    """
    return page_size(page, profile, width)[0]


def visible_text(dom: str) -> str:
    """The text a reader sees in a page's DOM: tags, styles, scripts and image data dropped.

    Example:
        >>> visible_text("<style>p{}</style><p>a &amp; <b>b</b></p><img alt='x' src='data:'>")
        'a & b'

    """
    text = re.sub(r"<(style|script)\b.*?</\1>", " ", dom, flags=re.DOTALL | re.IGNORECASE)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return " ".join(text.split())


def screenshot(page: Path, out: Path, profile: Path, width: int = 1200,
               height: int = 2400) -> Path:
    """A PNG of the page's first ``width`` x ``height`` pixels."""
    _run(page, profile, f"--screenshot={Path(out).resolve()}", f"--window-size={width},{height}")
    if not Path(out).is_file():
        raise RuntimeError(f"Chromium wrote no screenshot of {page}.")
    return Path(out)


def console_messages(log: Sequence[str]) -> list[str]:
    """The log lines that are the page's console output (errors, warnings, logs)."""
    return [line for line in log if _CONSOLE.search(line)]
