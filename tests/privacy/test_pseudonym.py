"""Keyed pseudonyms: stable under one key, refused without one, the key never leaves."""

from __future__ import annotations

import pickle

import pytest

from guardrail.errors import ConfigError
from guardrail.privacy.pseudonym import KEY_ENV, Pseudonymiser, pseudonymiser

KEY = "k3y-that-is-long-enough-0123456789"


def test_same_key_same_pseudonym_other_key_other(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    a, b = pseudonymiser("key"), pseudonymiser("key")
    assert a("00042") == b("00042") and a("00042").startswith("ps_")
    assert a.many(["1", "2", "1"]) == [a("1"), a("2"), a("1")]
    assert Pseudonymiser(b"another key of 16+ bytes")("00042") != a("00042")
    assert a.linkable


def test_no_key_is_refused_with_the_fix(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match=KEY_ENV) as err:
        pseudonymiser("key")
    assert "privacy.pseudonymise=random" in str(err.value)


def test_random_mode_is_not_linkable(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    a, b = pseudonymiser("random"), pseudonymiser("random")
    assert a("x") != b("x") and not a.linkable
    assert pseudonymiser("off") is None
    with pytest.raises(ConfigError, match=r"privacy\.pseudonymise"):
        pseudonymiser("hash")


def test_key_file_outside_the_run_only(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    run = tmp_path / "run"
    run.mkdir()
    inside = run / "key"
    inside.write_text(KEY)
    with pytest.raises(ConfigError, match="inside the run directory"):
        pseudonymiser("key", inside, run_dir=run)
    outside = tmp_path / "key"
    outside.write_text(KEY + "\n")
    assert pseudonymiser("key", outside, run_dir=run)("u") == Pseudonymiser(KEY.encode())("u")
    with pytest.raises(ConfigError, match="cannot be read"):
        pseudonymiser("key", tmp_path / "missing", run_dir=run)


def test_the_key_does_not_print_or_pickle():
    p = Pseudonymiser(KEY.encode())
    assert KEY not in repr(p) and KEY not in str(vars(p))
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(p)
    with pytest.raises(ConfigError, match="16"):
        Pseudonymiser(b"short")
