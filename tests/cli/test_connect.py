"""The shared connection options and the sentences shown when the API refuses or cannot be reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from hakeeper.api.client import ApiRequestError
from hakeeper.cli.connect import Target, explain_failure
from tests.cli.served import Served, served

__all__ = ["served"]
pytestmark = pytest.mark.timeout(60)


def test_missing_token_says_how_to_give_one(tmp_path: Path) -> None:
    text = explain_failure(ApiRequestError(401, "this request needs a token"), Target(tmp_path, None, None))
    assert text == "this request needs a token (give it with --token or HAKEEPER_TOKEN)"


def test_stale_write_names_the_current_version(tmp_path: Path) -> None:
    err = ApiRequestError(409, "the CIB changed", current_version="0.9.1")
    text = explain_failure(err, Target(tmp_path, None, None))
    assert text.startswith("the CIB changed") and "0.9.1" in text and "try again" in text


def test_unreachable_url_names_it(tmp_path: Path) -> None:
    err = ApiRequestError(0, "cannot reach the hakeeper API at https://10.0.0.1:7443 (refused)")
    text = explain_failure(err, Target(tmp_path / "x.sock", "https://10.0.0.1:7443", None))
    assert text == err.message


def test_other_refusals_pass_the_api_sentence_through(tmp_path: Path) -> None:
    text = explain_failure(
        ApiRequestError(403, "role read may not move resources"), Target(tmp_path, None, None)
    )
    assert text == "role read may not move resources"


def test_environment_and_options_choose_the_socket(served: Served, tmp_path: Path) -> None:
    # --socket wins over HAKEEPER_SOCKET (the fixture sets the latter to the served socket)
    wrong = served.run("status", "--socket", str(tmp_path / "other.sock"))
    assert wrong.exit_code == 1 and "other.sock" in wrong.output
    assert served.run("status").exit_code == 0


def test_cluster_maintenance_mode(served: Served) -> None:
    result = served.run("cluster", "maintenance", "on")
    assert result.exit_code == 0 and "Committed" in result.output
    assert "MAINTENANCE MODE" in served.run("status").output
    assert served.run("cluster", "maintenance", "off").exit_code == 0
    assert "MAINTENANCE MODE" not in served.run("status").output
