"""Keyed pseudonyms for direct identifiers: HMAC-SHA256 under a key kept outside the run.

A customer or user id the model needs (to split by user, to embed a user) is replaced by
``ps_`` and the first 32 hex digits (128 bits) of HMAC-SHA256(key, id) before the data reaches
the model. The same key gives the same pseudonym in every run, so runs, logs and later labels
still join; without the key nobody can go back from a pseudonym to the id, nor test a guess.

The key comes from the environment variable ``GUARDRAIL_PSEUDONYM_KEY`` or from a file
(``privacy.key_file``) that must lie outside the run directory; it is never stored on the
:class:`Pseudonymiser` in a form that prints, pickles or lands in a checkpoint. Without a key
:func:`pseudonymiser` refuses, unless ``mode="random"``: a fresh key per run, whose pseudonyms
cannot be linked to any other run's.

Example:
    >>> p = Pseudonymiser(b"a key of sixteen bytes or more")
    >>> p("u000123")
    'ps_56c9e3ac533b3a871945117eec981788'
    >>> p("u000123") == p("u000123") != p("u000124"), p
    (True, Pseudonymiser(source='given'))

"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from guardrail.errors import ConfigError

__all__ = ["KEY_ENV", "MODES", "PREFIX", "Pseudonymiser", "pseudonymiser"]

KEY_ENV = "GUARDRAIL_PSEUDONYM_KEY"
MODES = ("key", "random", "off")
PREFIX = "ps_"
MIN_KEY_BYTES = 16


class Pseudonymiser:
    """Maps identifiers to keyed pseudonyms; holds the key, never shows it.

    Args:
        key: The secret, at least 16 bytes.
        source: Where the key came from (``environment``, ``file``, ``random``), for messages.

    """

    def __init__(self, key: bytes, source: str = "given") -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(
                f"The pseudonym key from {source} has {len(key)} bytes; it needs at least "
                f"{MIN_KEY_BYTES}. Make one with `python -c \"import secrets; "
                f"print(secrets.token_hex(32))\"` and keep it outside the run directory.")
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self.source = source

    @property
    def linkable(self) -> bool:
        """Whether another run with the same key gives the same pseudonyms."""
        return self.source != "random"

    def __call__(self, identifier: Any) -> str:
        """The pseudonym of one identifier (its ``str``)."""
        mac = self._mac.copy()
        mac.update(str(identifier).encode())
        return PREFIX + mac.hexdigest()[:32]

    def many(self, identifiers: Iterable[Any]) -> list[str]:
        """Pseudonyms of many identifiers, each distinct one computed once.

        Example:
            >>> Pseudonymiser(b"k" * 16).many([1, 1, 2])[0][:3]
            'ps_'

        """
        memo: dict[Any, str] = {}
        return [memo[i] if i in memo else memo.setdefault(i, self(i)) for i in identifiers]

    def __repr__(self) -> str:
        return f"Pseudonymiser(source={self.source!r})"

    def __reduce__(self) -> Any:
        raise TypeError("A Pseudonymiser is not pickled: its key must not leave the process. "
                        "Build one where it is needed with guardrail.privacy.pseudonymiser().")


def pseudonymiser(mode: str = "key", key_file: str | Path | None = None,
                  run_dir: str | Path | None = None) -> Pseudonymiser | None:
    """The run's pseudonymiser: from the key in the environment or a file, a random key, or none.

    Args:
        mode: ``key`` (``GUARDRAIL_PSEUDONYM_KEY``, else ``key_file``; refuse without one),
            ``random`` (a fresh key: ids are not linkable across runs) or ``off`` (None).
        key_file: A file holding the key (its bytes, surrounding whitespace stripped).
        run_dir: The run directory, which the key file must not be in.

    Raises:
        ConfigError: An unknown mode, no key in ``key`` mode, a missing or short key file, or a
            key file inside the run directory.

    Example:
        >>> pseudonymiser("random").linkable, pseudonymiser("off")
        (False, None)

    """
    if mode not in MODES:
        raise ConfigError(f"privacy.pseudonymise={mode!r} is not one of {', '.join(MODES)}; "
                          "set `privacy.pseudonymise=key` (the default) or `=random`.")
    if mode == "off":
        return None
    if mode == "random":
        return Pseudonymiser(secrets.token_bytes(32), "random")
    if os.environ.get(KEY_ENV):
        return Pseudonymiser(os.environ[KEY_ENV].encode(), f"the environment variable {KEY_ENV}")
    if key_file is None:
        raise ConfigError(
            f"Direct identifiers are pseudonymised, but there is no key: set the environment "
            f"variable {KEY_ENV} (e.g. `export {KEY_ENV}=$(python -c \"import secrets; "
            f"print(secrets.token_hex(32))\")`, kept in your secret store) or "
            f"`privacy.key_file=/path/outside/the/run`. For a one-off run, "
            f"`privacy.pseudonymise=random` uses a fresh key whose pseudonyms no other run "
            f"can link to.")
    path = Path(key_file).expanduser().resolve()
    if run_dir is not None and path.is_relative_to(Path(run_dir).resolve()):
        raise ConfigError(f"privacy.key_file={key_file} lies inside the run directory "
                          f"{run_dir}, which is shared and archived: keep the key elsewhere.")
    try:
        key = path.read_bytes().strip()
    except OSError as err:
        raise ConfigError(f"privacy.key_file={key_file} cannot be read ({err.strerror}); give "
                          f"the path of the file holding the pseudonym key, or set "
                          f"{KEY_ENV}.") from None
    return Pseudonymiser(key, f"the file {key_file}")
