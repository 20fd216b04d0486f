"""`hakeeper keygen` through click's CliRunner."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner

from hakeeper.cli.messaging_cmd import keygen
from hakeeper.messaging.keys import read_key_file


def test_keygen_writes_a_private_32_byte_key(tmp_path: Path) -> None:
    path = tmp_path / "authkey"
    result = CliRunner().invoke(keygen, ["-o", str(path)])
    assert result.exit_code == 0, result.output
    assert "wrote a new 32-byte cluster key" in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(read_key_file(path)) == 32


def test_keygen_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "authkey"
    runner = CliRunner()
    assert runner.invoke(keygen, ["-o", str(path)]).exit_code == 0
    first = path.read_bytes()
    again = runner.invoke(keygen, ["-o", str(path)])
    assert again.exit_code == 1 and "already exists" in again.output and "--force" in again.output
    assert path.read_bytes() == first
    forced = runner.invoke(keygen, ["-o", str(path), "--force"])
    assert forced.exit_code == 0 and path.read_bytes() != first


def test_keygen_reports_unwritable_place(tmp_path: Path) -> None:
    result = CliRunner().invoke(keygen, ["-o", str(tmp_path / "missing-dir" / "authkey")])
    assert result.exit_code == 1 and "cannot create key file" in result.output


def test_keygen_is_registered() -> None:
    from hakeeper.cli.commands import ALL

    assert {"keygen", "witness"} <= {c.name for c in ALL}
