"""Atomic file writes: a reader never sees half a file, a crash never truncates a good one.

Example:
    >>> import json, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_json(d / "a.json", {"x": 1})
    >>> json.loads((d / "a.json").read_text())
    {'x': 1}

"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def to_jsonable(value: Any) -> Any:
    """``value`` with tensors, numpy scalars, paths and non-finite floats made JSON-safe.

    Non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"`` (valid JSON).

    Example:
        >>> to_jsonable({"a": float("nan"), "b": (1, 2)})
        {'a': 'nan', 'b': [1, 2]}

    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    write_text(path, json.dumps(to_jsonable(data), indent=2) + "\n")


def write_jsonl(path: str | os.PathLike[str], rows: list[Any]) -> None:
    """Write one JSON object per line, atomically."""
    write_text(path, "".join(json.dumps(to_jsonable(r)) + "\n" for r in rows))


def utc_now() -> str:
    """The time now, in UTC, as ISO 8601 to the second: what run files record.

    Example:
        >>> utc_now().endswith("+00:00")
        True
    """
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
