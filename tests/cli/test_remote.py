"""The CLI against a remote node's API over TLS: --url, --token and --ca-file; role refusals as sentences."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from hakeeper.api.app import build_app, start_tls
from hakeeper.api.auth import Role, TokenStore
from hakeeper.api.fake import FakeCluster
from hakeeper.api.routing import Services
from hakeeper.cli.main import _register, cli
from tests.api.test_tls import self_signed
from tests.cli.served import NOW, sample_cib

pytestmark = pytest.mark.timeout(60)


class Remote:
    def __init__(self, url: str, ca: Path, tokens: dict[Role, str]) -> None:
        self.url, self.ca, self.tokens = url, ca, tokens

    def run(self, *args: str, role: Role | None = Role.ADMIN, ca: bool = True) -> Result:
        env = {
            "HAKEEPER_URL": self.url,
            "HAKEEPER_TOKEN": self.tokens[role] if role else None,
            "HAKEEPER_CA_FILE": str(self.ca) if ca else None,
            "HAKEEPER_SOCKET": None,
        }
        return CliRunner().invoke(cli, list(args), env=env)


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Remote]:
    if "status" not in cli.commands:
        _register()
    cert, key = self_signed(tmp_path)
    store = TokenStore(tmp_path / "tokens.json")
    tokens = {role: store.create(f"{role.text}-user", role, NOW) for role in Role}
    app = build_app(Services(handle=FakeCluster(sample_cib(), now=NOW), tokens=store))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    running = asyncio.run_coroutine_threadsafe(start_tls(app, "127.0.0.1", 0, cert, key), loop).result(20)
    host, port = running.addresses[0][:2]
    try:
        yield Remote(f"https://{host}:{port}", cert, tokens)
    finally:
        asyncio.run_coroutine_threadsafe(running.stop(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_status_over_tls_with_a_token(remote: Remote) -> None:
    result = remote.run("status", role=Role.READ)
    assert result.exit_code == 0, result.output
    assert "vip (ocf:pacemaker:Dummy): Started on n1" in result.output


def test_no_token_says_how_to_get_one(remote: Remote) -> None:
    result = remote.run("status", role=None)
    assert result.exit_code == 1
    assert "HAKEEPER_TOKEN" in result.output and "hakeeper token create" in result.output  # the API's words


def test_a_read_token_cannot_move(remote: Remote) -> None:
    result = remote.run("resource", "move", "vip", "n2", role=Role.READ)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "read" in result.output
    assert remote.run("resource", "move", "vip", "n2", role=Role.OPERATE).exit_code == 0


def test_an_unknown_certificate_is_refused(remote: Remote) -> None:
    result = remote.run("status", ca=False)
    assert result.exit_code == 1
    assert f"the certificate of {remote.url} is not trusted: give the CA certificate" in result.output


def test_a_bad_ca_file_is_one_sentence(remote: Remote, tmp_path: Path) -> None:
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("hello")
    result = CliRunner().invoke(cli, ["status", "--url", remote.url, "--ca-file", str(bad)])
    assert result.exit_code == 1 and f"cannot use {bad} as a CA certificate" in result.output
