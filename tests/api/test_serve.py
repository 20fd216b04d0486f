"""The API on a real Unix socket: mode 0600, root by peer credentials, the client, the tokens CLI."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hakeeper.api.app import RunningServer, build_app, start_unix
from hakeeper.api.audit import AuditLog
from hakeeper.api.auth import TOKENS_FILE, Role, TokenStore
from hakeeper.api.client import ApiClient, ApiRequestError
from hakeeper.api.fake import FakeCluster
from hakeeper.api.routing import Services
from hakeeper.api.schemas import LocationAdd
from hakeeper.cli.token_cmd import token
from tests.api.helpers import NOW, sample_cib

pytestmark = pytest.mark.timeout(60)
NOBODY = 65534


class Served:
    def __init__(self, path: Path, fake: FakeCluster, store: TokenStore, running: RunningServer) -> None:
        self.path, self.fake, self.store, self.running = path, fake, store, running


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    fake = FakeCluster(sample_cib(), now=NOW)
    store = TokenStore(tmp_path / TOKENS_FILE)
    app = build_app(Services(handle=fake, tokens=store, audit=AuditLog(tmp_path / "audit.jsonl")))
    path = tmp_path / "api.sock"
    running = await start_unix(app, path)
    try:
        yield Served(path, fake, store, running)
    finally:
        await running.stop()


async def test_socket_is_private_and_removed_on_stop(served: Served) -> None:
    mode = served.path.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    await served.running.stop()
    assert not served.path.exists()


async def test_client_over_the_socket(served: Served) -> None:
    def work() -> tuple[str, str, str]:
        token = served.store.create("ops", Role.OPERATE, NOW)
        with ApiClient(socket_path=served.path, token=None if os.getuid() == 0 else token) as client:
            who = client.whoami()
            moved = client.move("vip", "n2")
            try:
                client.move("vip", "nowhere")
            except ApiRequestError as err:
                error = f"{err.status} {err.message}"
            client.add_location(LocationAdd(rsc="vip", node="n3", score="-INFINITY"))
            assert [r.id for r in client.resources().resources][:2] == ["vip", "web"]
            return who.actor, moved.version, error

    actor, version, error = await asyncio.to_thread(work)
    if os.getuid() == 0:
        assert actor == "root (local socket)"
    assert version == "0.8.0"
    assert error.startswith("404") and "nowhere" in error
    assert any(c.id == "location-vip-n3--INFINITY" for c in served.fake.cib().configuration.constraints)


async def test_client_says_when_the_daemon_is_not_there(tmp_path: Path) -> None:
    def work() -> str:
        with ApiClient(socket_path=tmp_path / "missing.sock") as client:
            try:
                client.cluster()
            except ApiRequestError as err:
                return f"{err.status} {err.message}"
        return "no error"

    text = await asyncio.to_thread(work)
    assert text.startswith("0 cannot reach the hakeeper API") and "missing.sock" in text


def as_nobody(path: Path, token: str | None = None) -> str:
    """GET /v1/whoami over the socket from a forked child running as ``nobody``: status line or the error."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: plain system calls only, then _exit
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(path))
            auth = f"Authorization: Bearer {token}\r\n" if token else ""
            sock.sendall(f"GET /v1/whoami HTTP/1.1\r\nHost: h\r\n{auth}Connection: close\r\n\r\n".encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            os.write(write_fd, answer)
        except OSError as err:
            os.write(write_fd, f"refused {err}".encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run a client as another user")
async def test_only_root_is_admin_by_peer_credentials(tmp_path: Path) -> None:
    shared = Path(tempfile.mkdtemp(prefix="hk-api-"))  # reachable by nobody, unlike pytest's 0700 tmp_path
    shared.chmod(0o755)
    store = TokenStore(tmp_path / TOKENS_FILE)
    app = build_app(Services(handle=FakeCluster(sample_cib(), now=NOW), tokens=store))
    running = await start_unix(app, shared / "api.sock")
    try:
        refused = await asyncio.to_thread(as_nobody, running.path)  # type: ignore[arg-type]
        assert refused.startswith("refused") and "Permission denied" in refused
        (shared / "api.sock").chmod(0o666)  # opened on purpose: another uid must now show a token
        no_token = await asyncio.to_thread(as_nobody, shared / "api.sock")
        assert no_token.startswith("HTTP/1.1 401")
        secret = store.create("nobody", Role.READ, NOW)
        with_token = await asyncio.to_thread(as_nobody, shared / "api.sock", secret)
        assert with_token.startswith("HTTP/1.1 200") and '"role":"read"' in with_token
    finally:
        await running.stop()
        shutil.rmtree(shared, ignore_errors=True)


def test_token_cli_create_list_revoke(tmp_path: Path) -> None:
    runner = CliRunner()
    created = runner.invoke(token, ["create", "alice", "--role", "operate", "--data-dir", str(tmp_path)])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[0]
    store = TokenStore(tmp_path / TOKENS_FILE)
    assert store.verify(secret) is not None and store.verify(secret).role == Role.OPERATE  # type: ignore[union-attr]
    assert stat.S_IMODE((tmp_path / TOKENS_FILE).stat().st_mode) == 0o600
    assert secret not in (tmp_path / TOKENS_FILE).read_text()
    listed = runner.invoke(token, ["list", "--data-dir", str(tmp_path)])
    assert "alice\toperate" in listed.output and secret not in listed.output
    again = runner.invoke(token, ["create", "alice", "--role", "read", "--data-dir", str(tmp_path)])
    assert again.exit_code == 1 and "exists already" in again.output
    revoked = runner.invoke(token, ["revoke", "alice", "--data-dir", str(tmp_path)])
    assert revoked.exit_code == 0 and store.verify(secret) is None
    missing = runner.invoke(token, ["revoke", "alice", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1 and "no token named 'alice'" in missing.output


def test_a_broken_tokens_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / TOKENS_FILE).write_text("{not json")
    result = CliRunner().invoke(token, ["list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "unreadable" in result.output and TOKENS_FILE in result.output


async def test_responses_carry_a_date(served: Served) -> None:
    """The embedded server refreshes its Date header on its own once-a-second tick (not uvicorn's ten)."""

    def get() -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(served.path))
            s.sendall(b"GET /api/v1/whoami HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n")
            return b"".join(iter(lambda: s.recv(65536), b""))

    head = (await asyncio.to_thread(get)).split(b"\r\n\r\n", 1)[0].lower()
    assert b"\r\ndate: " in head and b" gmt" in head
