"""Cryptography for the wire: cluster identity, per-sender keys, AEAD and the anti-replay window.

Key schedule. Every node holds the same 32-byte cluster key (``hakeeper keygen``). A sender never encrypts
with it directly: each (sender node id, boot id) pair gets its own AES-256-GCM key, derived with
HKDF-SHA256 from the cluster key, salted with the cluster id hash. The 96-bit GCM nonce is the destination
node id (32 bits) followed by a per-destination sequence number (64 bits) that starts at 1 on every boot.
Together the key and the nonce therefore encode sender id + boot id + destination + sequence, so a
(key, nonce) pair is never used twice as long as a node never reuses a boot id (see ``new_boot_id`` in
``transport``) -- GCM's one hard requirement.

Pure functions and plain objects only: no files, sockets or clocks here (``keys`` reads key files).
"""

from __future__ import annotations

import hashlib
import struct
from enum import Enum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_SIZE = 32
"""Bytes in a cluster key (AES-256)."""

TAG_SIZE = 16
"""Bytes of the GCM authentication tag appended to every ciphertext."""

CLUSTER_ID_SIZE = 8

_KEY_INFO = b"hakeeper wire v1 sender key"
_SENDER_BOOT = struct.Struct("!IQ")
_NONCE = struct.Struct("!IQ")


def cluster_id_hash(cluster_name: str) -> bytes:
    """The 8-byte cluster id carried in every header: two clusters on one network never mix packets."""
    digest = hashlib.blake2b(cluster_name.encode(), digest_size=CLUSTER_ID_SIZE, person=b"hakeeper-clust")
    return digest.digest()


def derive_sender_key(cluster_key: bytes, cluster_id: bytes, sender: int, boot: int) -> bytes:
    """The AEAD key one sender uses during one boot, derived from the shared cluster key."""
    if len(cluster_key) != KEY_SIZE:
        raise ValueError(f"a cluster key must be {KEY_SIZE} bytes, this one has {len(cluster_key)}")
    info = _KEY_INFO + _SENDER_BOOT.pack(sender, boot)
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=cluster_id, info=info)
    return hkdf.derive(cluster_key)


def make_nonce(dest: int, seq: int) -> bytes:
    """The 12-byte GCM nonce: destination node id + sequence number (the key already binds sender + boot)."""
    return _NONCE.pack(dest, seq)


class SenderCipher:
    """AES-256-GCM for one (sender, boot): seals what that sender sends, opens what it sent."""

    __slots__ = ("_aead",)

    def __init__(self, cluster_key: bytes, cluster_id: bytes, sender: int, boot: int) -> None:
        self._aead = AESGCM(derive_sender_key(cluster_key, cluster_id, sender, boot))

    def seal(self, dest: int, seq: int, plaintext: bytes, associated: bytes) -> bytes:
        return self._aead.encrypt(make_nonce(dest, seq), plaintext, associated)

    def open(self, dest: int, seq: int, ciphertext: bytes, associated: bytes) -> bytes | None:
        """The plaintext, or None when the packet was not sealed with this key or was altered."""
        try:
            return self._aead.decrypt(make_nonce(dest, seq), ciphertext, associated)
        except InvalidTag:
            return None


class ReplayVerdict(Enum):
    FRESH = "fresh"
    NEW_BOOT = "new_boot"
    REPLAYED = "replayed"
    OLD_BOOT = "old_boot"


class ReplayWindow:
    """Sliding-window replay protection for one sender (the IPsec/WireGuard scheme), aware of boots.

    ``check`` only looks; ``accept`` records, and must be called only after the packet authenticated, so a
    forged packet can never move the window. A sequence number more than ``size`` below the highest one
    seen is treated as replayed. A newer boot id resets the window; an older one is refused.
    """

    __slots__ = ("_bits", "_highest", "boot", "size")

    def __init__(self, size: int = 1024) -> None:
        if size < 1:
            raise ValueError("a replay window must hold at least one sequence number")
        self.size = size
        self.boot: int | None = None
        self._highest = 0
        self._bits = 0  # bit i set: sequence number (highest - i) was seen

    def check(self, boot: int, seq: int) -> ReplayVerdict:
        if self.boot is None or boot > self.boot:
            return ReplayVerdict.NEW_BOOT
        if boot < self.boot:
            return ReplayVerdict.OLD_BOOT
        if seq > self._highest:
            return ReplayVerdict.FRESH
        offset = self._highest - seq
        if offset >= self.size or (self._bits >> offset) & 1:
            return ReplayVerdict.REPLAYED
        return ReplayVerdict.FRESH

    def accept(self, boot: int, seq: int) -> None:
        if self.boot is None or boot > self.boot:
            self.boot, self._highest, self._bits = boot, seq, 1
            return
        if seq > self._highest:
            shift = seq - self._highest
            self._bits = ((self._bits << shift) | 1) & ((1 << self.size) - 1)
            self._highest = seq
        else:
            self._bits |= 1 << (self._highest - seq)
