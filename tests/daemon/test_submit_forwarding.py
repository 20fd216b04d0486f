"""An operator's change made on a node that is not the DC is forwarded to the DC; while the DC it knows
has just left (its election timer has not fired yet) or there is none, it waits for the new one instead of
sending the change into the void and timing out."""

from __future__ import annotations

import asyncio

from hakeeper.cib.patch import Patch
from hakeeper.controller import messages as cmsg
from hakeeper.daemon.cib_state import Applied
from hakeeper.daemon.config import load_daemon_config
from hakeeper.daemon.node import NodeDaemon

CONFIG = """
[cluster]
name = "fwd"
key_file = "/nonexistent/cluster.key"
data_dir = "/nonexistent"

[[nodes]]
name = "n1"
id = 1
addresses = ["127.0.0.11:5405"]

[[nodes]]
name = "n2"
id = 2
addresses = ["127.0.0.12:5405"]

[[nodes]]
name = "n3"
id = 3
addresses = ["127.0.0.13:5405"]
"""


def daemon(sent: list[tuple[str, cmsg.ControllerMessage]]) -> NodeDaemon:
    """n1's daemon, not started: what it sends is recorded, and a forwarded change is answered at once."""
    d = NodeDaemon(load_daemon_config(CONFIG), "n1")
    d.loop = asyncio.get_running_loop()

    def send(node: str, message: cmsg.ControllerMessage) -> None:
        sent.append((node, message))
        if isinstance(message, cmsg.SubmitChange):
            answer = cmsg.SubmitAnswer(
                request_id=message.request_id, outcome="committed", index=7, version="0.3.1"
            )
            asyncio.get_running_loop().call_soon(d._dispatch, answer)

    d._send = send  # type: ignore[method-assign]
    return d


async def test_a_change_waits_for_the_new_dc_when_the_known_one_has_left() -> None:
    sent: list[tuple[str, cmsg.ControllerMessage]] = []
    d = daemon(sent)
    d.leader, d.up = "n3", {"n1", "n2"}  # n3 was the DC and has just left
    task = asyncio.create_task(d.submit_anywhere(Patch(ops=[]), actor="op", why="test", timeout=30))
    await asyncio.sleep(0.3)
    assert sent == [] and not task.done(), "nothing is sent to a DC that is gone"
    d.leader = "n2"  # the election is over
    answer = await task
    assert answer.outcome == "committed" and answer.index == 7
    assert [node for node, _ in sent] == ["n2"]


async def test_with_no_dc_for_the_whole_timeout_the_answer_says_so() -> None:
    sent: list[tuple[str, cmsg.ControllerMessage]] = []
    d = daemon(sent)
    d.leader, d.up = None, {"n1"}
    answer = await d.submit_anywhere(Patch(ops=[]), actor="op", why="test", timeout=0.3)
    assert answer.outcome == "not-leader" and sent == []


async def test_a_live_dc_gets_the_change_at_once() -> None:
    sent: list[tuple[str, cmsg.ControllerMessage]] = []
    d = daemon(sent)
    d.leader, d.up = "n2", {"n1", "n2", "n3"}
    answer = await d.submit_anywhere(Patch(ops=[]), actor="op", why="test", timeout=5)
    assert answer.outcome == "committed" and [node for node, _ in sent] == ["n2"]


async def test_a_change_the_dc_committed_but_never_answered_is_known_from_the_log() -> None:
    """The DC commits a forwarded change and dies before it answers: the entry, which carries the
    forwarder's request id, reaches the forwarder's own log, and that is its answer (not a timeout)."""
    sent: list[tuple[str, cmsg.ControllerMessage]] = []
    d = NodeDaemon(load_daemon_config(CONFIG), "n1")
    d.loop = asyncio.get_running_loop()

    def send(node: str, message: cmsg.ControllerMessage) -> None:
        sent.append((node, message))
        if isinstance(message, cmsg.SubmitChange):  # committed through the log; no answer ever comes
            applied = Applied(index=9, request_id=message.request_id, cib=d.cib, patch=message.patch)
            asyncio.get_running_loop().call_later(0.05, d._on_applied, d.cib, applied)

    d._send = send  # type: ignore[method-assign]
    d.leader, d.up = "n2", {"n1", "n2", "n3"}
    answer = await d.submit_anywhere(Patch(ops=[]), actor="op", why="test", timeout=30)
    assert answer.outcome == "committed" and answer.index == 9
    assert [node for node, _ in sent] == ["n2"] and not d._pending and not d._answers
