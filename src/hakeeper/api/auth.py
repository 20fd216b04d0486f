"""Bearer tokens and roles.

A token is 32 random bytes (URL-safe base64 text) shown once when created; the tokens file keeps only its
SHA-256, so a leaked file does not leak working tokens (256 random bits need no slow hash). The file is
JSON, mode 0600, replaced atomically on every change.

Roles, each including the one before: ``read`` sees everything except secrets; ``operate`` may also move,
ban, clear, clean up, restart, enable/disable and put nodes in standby; ``admin`` may also change the
configuration and fencing. On the local Unix socket a peer running as root (SO_PEERCRED uid 0) is admin
without a token, as root can read the tokens file anyway.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

import msgspec

TOKEN_BYTES = 32
TOKENS_FILE = "api-tokens.json"


class Role(enum.IntEnum):
    READ = 1
    OPERATE = 2
    ADMIN = 3

    @property
    def text(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"role {text!r} is not one of read, operate, admin") from None


class Identity(msgspec.Struct, frozen=True):
    """Who is asking: a token's name (or the local root user) and the role it holds."""

    actor: str
    role: Role


ROOT = Identity("root (local socket)", Role.ADMIN)


class TokenRecord(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: str
    sha256: str
    created: int


class TokenFile(msgspec.Struct, kw_only=True):
    tokens: list[TokenRecord] = []


class TokenError(ValueError):
    """The tokens file cannot be read or changed; the message says which file and why."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class TokenStore:
    """The tokens file of one node. Re-read when it changes on disk, so new tokens work at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._tokens: list[TokenRecord] = []

    def _load(self) -> list[TokenRecord]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._tokens = None, []
            return self._tokens
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                self._tokens = msgspec.json.decode(self.path.read_bytes(), type=TokenFile).tokens
            except (OSError, msgspec.DecodeError) as err:
                raise TokenError(
                    f"the tokens file {self.path} is unreadable ({err}); fix or remove it"
                ) from err
            self._stamp = stamp
        return self._tokens

    def records(self) -> list[TokenRecord]:
        return list(self._load())

    def verify(self, token: str) -> Identity | None:
        """The identity a presented token stands for, or None (compared in constant time)."""
        digest = token_digest(token)
        found: Identity | None = None
        for rec in self._load():
            if hmac.compare_digest(rec.sha256, digest):
                try:
                    found = Identity(rec.name, Role.parse(rec.role))
                except ValueError:
                    found = None
        return found

    def create(self, name: str, role: Role, now: int) -> str:
        """Create a token and return it; only its digest is stored, so this is the one chance to see it."""
        if not name or any(ch.isspace() for ch in name):
            raise TokenError(f"token name {name!r} must be a word without spaces (say who uses it)")
        tokens = self._load()
        if any(r.name == name for r in tokens):
            raise TokenError(f"a token named {name!r} exists already; revoke it first or pick another name")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        record = TokenRecord(name=name, role=role.text, sha256=token_digest(token), created=now)
        self._write([*tokens, record])
        return token

    def revoke(self, name: str) -> None:
        tokens = self._load()
        if not any(r.name == name for r in tokens):
            raise TokenError(f"there is no token named {name!r}")
        self._write([r for r in tokens if r.name != name])

    def _write(self, tokens: list[TokenRecord]) -> None:
        data = msgspec.json.format(msgspec.json.encode(TokenFile(tokens=tokens)))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data + b"\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = None


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
