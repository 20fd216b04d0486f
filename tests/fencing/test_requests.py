"""Operator fencing requests carried by the CIB, and the fencer's answer to a confirmation."""

from __future__ import annotations

import random

import msgspec

from hakeeper.cib.model import FenceEvent
from hakeeper.fencing.devices import FenceDevice
from hakeeper.fencing.fencer import Fencer, FencingFinished
from hakeeper.fencing.requests import (
    CONFIRM_CLIENT,
    FENCE_CLIENT,
    answer_to,
    new_operator_requests,
    request_event,
)


def fence_request(target: str = "n2", rid: str = "r1") -> FenceEvent:
    return request_event(target, "off", origin="n1", actor="alice", request_id=rid, now=100)


def test_a_request_is_a_pending_record_naming_who_asked() -> None:
    event = fence_request()
    assert event.state == "pending" and event.action == "off" and event.origin == "n1"
    assert event.client == f"{FENCE_CLIENT}alice:r1" and event.reason == "off requested by alice"
    confirm = request_event("n2", "reboot", origin="n1", actor="bob", request_id="r2", now=5, confirm=True)
    assert confirm.action == "off" and confirm.device == "manual"
    assert confirm.client is not None and confirm.client.startswith(CONFIRM_CLIENT)


def test_only_new_operator_requests_are_acted_on() -> None:
    old = [fence_request(rid="r1"), FenceEvent(target="n3", action="reboot", state="pending", client="t:1")]
    confirm = request_event("n3", "off", origin="n2", actor="bob", request_id="r3", now=5, confirm=True)
    new = [*old, fence_request(rid="r2"), FenceEvent(target="n2", action="off", state="done"), confirm]
    found = new_operator_requests(old, new)
    assert [(r.target, r.confirm, r.client) for r in found] == [
        ("n2", False, f"{FENCE_CLIENT}alice:r2"),
        ("n3", True, f"{CONFIRM_CLIENT}bob:r3"),
    ]
    assert new_operator_requests(new, new) == []


def test_the_answer_is_the_record_with_the_same_client() -> None:
    request = fence_request()
    assert request.client is not None
    history = [request]
    assert answer_to(history, request.client) is None
    other = FenceEvent(target="n3", action="off", state="done", client="x")
    mine = msgspec.structs.replace(request, state="failed", completed=101, reason="device timed out")
    assert answer_to([*history, other, mine], request.client) == mine


def test_a_request_merged_into_a_running_one_is_answered_by_that_ones_result() -> None:
    request = fence_request()
    assert request.client is not None
    earlier = FenceEvent(target="n2", action="reboot", state="done", client="transition", completed=50)
    later = FenceEvent(target="n2", action="reboot", state="done", client="transition", completed=102)
    assert answer_to([earlier, request], request.client) is None  # before the request: not its answer
    assert answer_to([earlier, request, later], request.client) == later
    assert answer_to([], "nobody") is None


def test_a_confirmation_answers_requests_in_progress_under_their_own_client() -> None:
    device = FenceDevice(id="d", agent="fence_dummy", host_list=("n2",))
    fencer = Fencer({"d": device}, rng=random.Random(1))
    fencer.set_members(["n1", "n3"], 0.0)
    fencer.request("n2", "reboot", "n1", 0.0, client="transition-key")
    out = fencer.confirm("n2", "n3", 1.0, client="operator-confirm:bob:r9")
    finished = [o for o in out if isinstance(o, FencingFinished)]
    assert [(f.request_id != 0, f.ok, f.event.client if f.event else None) for f in finished] == [
        (True, True, "transition-key"),
        (False, True, "operator-confirm:bob:r9"),
    ]
    assert all(f.event is not None and f.event.device == "manual" for f in finished)
    assert not fencer.in_progress("n2")
