"""``hakeeper fence NODE|node|history|confirm`` against the real API over the fake cluster."""

from __future__ import annotations

import pytest

from tests.cli.served import Served, served

__all__ = ["served"]

pytestmark = pytest.mark.timeout(60)


def requests(served: Served, node: str) -> list[str]:
    """The actions of the operator requests about ``node`` in the fencing history."""
    history = served.fake.cib().status.fencing_history
    return [e.action for e in history if e.target == node and e.state == "pending"]


def test_fence_node_reboots_by_default_and_prints_the_result(served: Served) -> None:
    result = served.run("fence", "n2")
    assert result.exit_code == 0, result.output
    assert "Fencing n2 (reboot)" in result.output
    assert "n2 reboot fenced by n1 with fake" in result.output
    assert requests(served, "n2") == ["reboot"]


def test_fence_node_off_through_the_long_form(served: Served) -> None:
    result = served.run("fence", "node", "n3", "--off")
    assert result.exit_code == 0, result.output
    assert "n3 off fenced" in result.output
    assert requests(served, "n3") == ["off"]


def test_a_failed_fencing_exits_non_zero_with_what_to_do(served: Served) -> None:
    served.call(lambda: setattr(served.fake, "fence_outcome", "failed"))
    result = served.run("fence", "n2", "--off")
    assert result.exit_code == 1
    assert "n2 was NOT fenced" in result.output and "hakeeper fence confirm n2" in result.output


def test_fencing_an_unknown_node_says_so(served: Served) -> None:
    result = served.run("fence", "n9")
    assert result.exit_code == 1 and "no node 'n9'" in result.output


def test_a_bad_timeout_is_a_usage_error(served: Served) -> None:
    result = served.run("fence", "n2", "--timeout", "0")
    assert result.exit_code == 2
    assert requests(served, "n2") == []


def test_history_lists_every_record_or_one_nodes(served: Served) -> None:
    assert served.run("fence", "history").output.strip() == "No fencing recorded."
    served.run("fence", "n2", "--off")
    served.run("fence", "n3")
    everything = served.run("fence", "history").output.splitlines()
    assert len(everything) == 4  # a request and its answer for each
    only = served.run("fence", "history", "n3").output.splitlines()
    assert len(only) == 2 and all(" n3 reboot " in line for line in only)
    assert "requested" in only[0] and "fenced" in only[1]
    assert served.run("fence", "history", "n1").output.strip() == "No fencing recorded for n1."


def test_confirm_warns_and_needs_a_yes(served: Served) -> None:
    served.call(lambda: served.fake.set_member("n3", online=False))
    refused = served.run("fence", "confirm", "n3", input="n\n")
    assert refused.exit_code == 1
    assert "WARNING" in refused.output and "run twice at once" in refused.output
    assert "nothing was recorded about n3" in refused.output
    assert requests(served, "n3") == []
    accepted = served.run("fence", "confirm", "n3", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "n3 off fenced" in accepted.output and "with manual" in accepted.output


def test_confirm_with_yes_does_not_ask(served: Served) -> None:
    served.call(lambda: served.fake.set_member("n3", online=False))
    result = served.run("fence", "confirm", "n3", "--yes")
    assert result.exit_code == 0, result.output
    assert "Is n3 powered off?" not in result.output and "with manual" in result.output


def test_confirm_of_an_online_node_is_refused(served: Served) -> None:
    result = served.run("fence", "confirm", "n2", "--yes")
    assert result.exit_code == 1 and "n2 is online" in result.output
    assert requests(served, "n2") == []


def test_check_is_still_a_subcommand(served: Served, tmp_path: object) -> None:
    result = served.run("fence", "check", "/nonexistent/cib.xml")
    assert result.exit_code == 1 and "cannot read /nonexistent/cib.xml" in result.output
