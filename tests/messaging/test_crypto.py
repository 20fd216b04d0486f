"""Key derivation, AEAD and the replay window."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hakeeper.messaging.crypto import (
    KEY_SIZE,
    ReplayVerdict,
    ReplayWindow,
    SenderCipher,
    cluster_id_hash,
    derive_sender_key,
)
from hakeeper.messaging.keys import KeyFileError, read_key_file, write_key_file

KEY = bytes(range(32))
CLUSTER = cluster_id_hash("test")


def test_keys_differ_per_sender_and_boot() -> None:
    keys = {derive_sender_key(KEY, CLUSTER, s, b) for s in (1, 2) for b in (10, 11)}
    assert len(keys) == 4
    assert derive_sender_key(KEY, CLUSTER, 1, 10) == derive_sender_key(KEY, CLUSTER, 1, 10)


def test_keys_differ_per_cluster() -> None:
    a = derive_sender_key(KEY, cluster_id_hash("a"), 1, 1)
    assert a != derive_sender_key(KEY, cluster_id_hash("b"), 1, 1)


def test_short_cluster_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        derive_sender_key(b"short", CLUSTER, 1, 1)


def test_cipher_round_trip_and_tamper() -> None:
    cipher = SenderCipher(KEY, CLUSTER, 1, 5)
    sealed = cipher.seal(2, 7, b"hello", b"header")
    assert cipher.open(2, 7, sealed, b"header") == b"hello"
    assert cipher.open(2, 8, sealed, b"header") is None  # other nonce
    assert cipher.open(2, 7, sealed, b"headeR") is None  # other associated data
    assert cipher.open(2, 7, sealed[:-1] + bytes([sealed[-1] ^ 1]), b"header") is None
    assert SenderCipher(KEY, CLUSTER, 1, 6).open(2, 7, sealed, b"header") is None  # other boot


def test_window_accepts_each_sequence_once() -> None:
    w = ReplayWindow(64)
    assert w.check(1, 5) is ReplayVerdict.NEW_BOOT
    w.accept(1, 5)
    assert w.check(1, 5) is ReplayVerdict.REPLAYED
    assert w.check(1, 3) is ReplayVerdict.FRESH  # reordered, within the window
    w.accept(1, 3)
    assert w.check(1, 3) is ReplayVerdict.REPLAYED
    w.accept(1, 100)
    assert w.check(1, 36) is ReplayVerdict.REPLAYED  # 64 below the highest: out of the window
    assert w.check(1, 37) is ReplayVerdict.FRESH
    assert w.check(1, 100) is ReplayVerdict.REPLAYED


def test_window_boots() -> None:
    w = ReplayWindow()
    w.accept(10, 500)
    assert w.check(9, 1) is ReplayVerdict.OLD_BOOT
    assert w.check(11, 1) is ReplayVerdict.NEW_BOOT
    w.accept(11, 1)
    assert w.check(10, 501) is ReplayVerdict.OLD_BOOT
    assert w.check(11, 2) is ReplayVerdict.FRESH


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=300), max_size=200))
def test_window_never_accepts_a_duplicate(seqs: list[int]) -> None:
    w = ReplayWindow(32)
    accepted: set[int] = set()
    for seq in seqs:
        if w.check(1, seq) is not ReplayVerdict.REPLAYED:
            assert seq not in accepted
            w.accept(1, seq)
            accepted.add(seq)


def test_key_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "authkey"
    write_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = read_key_file(path)
    assert len(key) == KEY_SIZE


def test_key_file_not_overwritten_without_force(tmp_path: Path) -> None:
    path = tmp_path / "authkey"
    write_key_file(path)
    first = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(path)
    write_key_file(path, force=True)
    assert path.read_bytes() != first


def test_key_file_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        read_key_file(tmp_path / "missing")
    short = tmp_path / "short"
    short.write_bytes(b"x" * 10)
    os.chmod(short, 0o600)
    with pytest.raises(KeyFileError, match="holds 10 bytes"):
        read_key_file(short)
    loose = tmp_path / "loose"
    loose.write_bytes(b"x" * 32)
    os.chmod(loose, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_key_file(loose)
