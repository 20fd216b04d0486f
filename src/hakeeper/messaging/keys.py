"""Cluster key files: create one (``hakeeper keygen``) and read one back with operator-friendly errors.

A key file holds exactly 32 random bytes and must be readable by its owner only (mode 0600 or 0400), as
anyone who can read it can join the cluster and forge its messages.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from hakeeper.messaging.crypto import KEY_SIZE


class KeyFileError(Exception):
    """A key file is missing, unreadable, of the wrong size or readable by other users."""


def generate_key() -> bytes:
    return secrets.token_bytes(KEY_SIZE)


def write_key_file(path: Path, *, force: bool = False) -> None:
    """Write a new random cluster key to ``path`` with mode 0600; refuse to overwrite unless ``force``."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"{path} already exists; a new key would lock out every node using the old one. "
            "Use --force to replace it deliberately."
        ) from None
    except OSError as err:
        raise KeyFileError(f"cannot create key file {path}: {err.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply when --force replaces an existing file
        os.write(fd, generate_key())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_key_file(path: Path) -> bytes:
    """The cluster key stored in ``path``; raises KeyFileError with a sentence saying what to fix."""
    try:
        info = path.stat()
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(
            f"key file {path} does not exist; create one with 'hakeeper keygen -o {path}' "
            "and copy it to every node"
        ) from None
    except OSError as err:
        raise KeyFileError(f"cannot read key file {path}: {err.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"key file {path} is accessible to other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"anyone who reads it can join the cluster. Run 'chmod 600 {path}'."
        )
    if len(data) != KEY_SIZE:
        raise KeyFileError(
            f"key file {path} holds {len(data)} bytes, a cluster key is exactly {KEY_SIZE}; "
            "copy the key file from another node or create a new one with 'hakeeper keygen'."
        )
    return data
