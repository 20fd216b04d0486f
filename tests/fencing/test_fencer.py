"""The sans-I/O fencing core: plans, executors, levels, retries, delays, the 2-node race, history."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from hakeeper.cib.model import FencingLevel
from hakeeper.fencing.devices import FenceDevice, FencingOptions
from hakeeper.fencing.fencer import (
    Backoff,
    DeviceHealthChanged,
    DeviceMonitor,
    DynamicListChanged,
    Fencer,
    FencingFinished,
    FencingPlanned,
    Output,
    PriorityInfo,
    RecordEvent,
    RunCheck,
    RunDevice,
    device_delay_s,
    node_priority,
    priority_delay_s,
)

NODES = ("node1", "node2", "node3")


def dev(dev_id: str, hosts: Sequence[str] = NODES, **kw: object) -> FenceDevice:
    return FenceDevice(id=dev_id, agent="fence_x", host_list=tuple(hosts), **kw)  # type: ignore[arg-type]


def fencer(
    *devices: FenceDevice, topology: Sequence[FencingLevel] = (), seed: int = 1, **opts: Any
) -> Fencer:
    f = Fencer({d.id: d for d in devices}, topology, FencingOptions(**opts), rng=random.Random(seed))
    f.set_members(NODES, 0.0)
    return f


def runs(out: list[Output]) -> list[RunDevice]:
    return [o for o in out if isinstance(o, RunDevice)]


def events(out: list[Output]) -> list[tuple[str, str | None, str | None]]:
    return [(o.event.state, o.event.device, o.event.delegate) for o in out if isinstance(o, RecordEvent)]


def reasons(out: list[Output]) -> list[str]:
    return [o.event.reason or "" for o in out if isinstance(o, RecordEvent)]


def finished(out: list[Output]) -> FencingFinished | None:
    return next((o for o in out if isinstance(o, FencingFinished)), None)


def test_simple_fence_runs_on_the_origin_and_records_history() -> None:
    f = fencer(dev("ipmi", retries={"reboot": 0}))
    out = f.request("node2", "reboot", "node1", 100.0, wall=1_700_000_000.5)
    assert events(out) == [("pending", None, None)]
    planned = next(o for o in out if isinstance(o, FencingPlanned))
    assert planned.delay_s == 0 and [lv.devices for lv in planned.plan.levels] == [("ipmi",)]
    [run] = runs(out)
    assert (run.device, run.target, run.action, run.executor, run.timeout_s) == (
        "ipmi",
        "node2",
        "reboot",
        "node1",
        60,
    )
    done = f.result(run.attempt_id, True, 101.0, wall=1_700_000_003.0)
    assert events(done) == [("done", "ipmi", "node1")]
    event = next(o.event for o in done if isinstance(o, RecordEvent))
    assert (event.origin, event.client, event.requested, event.completed) == (
        "node1",
        "controller",
        1_700_000_000,
        1_700_000_003,
    )
    result = finished(done)
    assert result is not None and result.ok and result.attempts == 1
    assert f.next_deadline() is None and not f.in_progress("node2")


@given(
    members=st.lists(st.sampled_from(NODES), min_size=1, max_size=3, unique=True),
    target=st.sampled_from(NODES),
    origin=st.sampled_from(NODES),
    failures=st.integers(min_value=0, max_value=6),
)
def test_the_target_never_runs_its_own_fencing(
    members: list[str], target: str, origin: str, failures: int
) -> None:
    f = Fencer({"d": dev("d")}, (), FencingOptions(max_attempts=3), rng=random.Random(0))
    f.set_members(members, 0.0)
    now = 0.0
    out = f.request(target, "off", origin, now)
    for _ in range(failures + 1):
        for run in runs(out):
            assert run.executor != target
            assert run.executor in members
            out = f.result(run.attempt_id, False, now, reason="boom")
        deadline = f.next_deadline()
        if deadline is None:
            break
        now = max(now, deadline)
        out = f.tick(now)
    for run in runs(out):
        assert run.executor != target


def test_no_other_node_fails_the_attempt_and_retries_when_one_joins() -> None:
    f = fencer(dev("ipmi"))
    f.set_members(["node2"], 0.0)
    out = f.request("node2", "off", "node2", 0.0)
    assert runs(out) == []
    assert events(out)[-1] == ("failed", "ipmi", None)
    reason = [o.event.reason for o in out if isinstance(o, RecordEvent)][-1]
    assert reason == "no node other than node2 is available to run fencing device ipmi"
    f.set_members(["node2", "node3"], 0.5)
    [run] = runs(f.tick(1.0))  # the backoff of the first retry is 1 s
    assert run.executor == "node3"


def test_topology_every_device_of_a_level_must_succeed_else_next_level() -> None:
    topo = [
        FencingLevel(id="l1", index=1, devices=["pdu1", "pdu2"], target="node2"),
        FencingLevel(id="l2", index=2, devices=["ipmi"], target="node2"),
    ]
    f = fencer(dev("pdu1"), dev("pdu2", retries={"off": 0}), dev("ipmi"), topology=topo)
    [first] = runs(f.request("node2", "off", "node1", 0.0))
    assert first.device == "pdu1"
    out = f.result(first.attempt_id, True, 1.0)
    assert events(out) == [("pending", "pdu1", "node1")]  # not fenced yet: pdu2 must succeed too
    assert finished(out) is None
    [second] = runs(out)
    assert second.device == "pdu2"
    out = f.result(second.attempt_id, False, 2.0, reason="outlet stuck")
    assert events(out)[0] == ("failed", "pdu2", "node1")
    [third] = runs(out)
    assert third.device == "ipmi"
    out = f.result(third.attempt_id, True, 3.0)
    assert events(out) == [("done", "ipmi", "node1")]
    result = finished(out)
    assert result is not None and result.ok and result.devices == ("ipmi",) and result.attempts == 3


def test_a_whole_level_succeeding_is_recorded_done_with_all_its_devices() -> None:
    topo = [FencingLevel(id="l1", index=1, devices=["pdu1", "pdu2"], target="node2")]
    f = fencer(dev("pdu1"), dev("pdu2"), topology=topo)
    [a] = runs(f.request("node2", "off", "node1", 0.0))
    [b] = runs(f.result(a.attempt_id, True, 0.0))
    out = f.result(b.attempt_id, True, 0.0)
    assert events(out) == [("done", "pdu1,pdu2", "node1")]


def test_retries_back_off_rotate_executors_then_rounds_then_give_up() -> None:
    f = fencer(dev("ipmi", retries={"off": 2}), max_attempts=2)
    f._backoff = Backoff(base_s=1.0, factor=2.0, cap_s=30.0)
    out = f.request("node3", "off", "node1", 0.0)
    executors, starts = [], []
    now = 0.0
    while True:
        for run in runs(out):
            executors.append(run.executor)
            starts.append(now)
            out = f.result(run.attempt_id, False, now, reason="login refused")
            break
        else:
            deadline = f.next_deadline()
            if deadline is None:
                break
            now = deadline
            out = f.tick(now)
            continue
        if finished(out) is not None:
            break
    result = finished(out)
    assert result is not None and not result.ok
    assert "every fencing level failed in 2 round(s)" in result.reason and "login refused" in result.reason
    assert len(executors) == 6  # (1 + 2 retries) x 2 rounds
    assert executors[:3] == ["node1", "node2", "node1"]  # origin first, then rotate
    assert starts == [0.0, 1.0, 3.0, 4.0, 5.0, 7.0]  # backoff 1, 2; round backoff 1; again 1, 2


def test_lost_result_and_departed_executor_fail_the_attempt() -> None:
    f = fencer(dev("ipmi", timeouts_ms={"off": 5000}, retries={"off": 1}))
    [run] = runs(f.request("node3", "off", "node1", 0.0))
    deadline = f.next_deadline()
    assert deadline == 15.0  # the 5 s timeout plus the grace for the result to arrive
    out = f.tick(deadline)
    assert events(out) == [("failed", "ipmi", "node1")]
    [retry] = runs(f.tick(deadline + 1.0))
    assert retry.executor == "node2"
    out = f.set_members(["node1", "node3"], deadline + 2.0)
    assert events(out)[0] == ("failed", "ipmi", "node2")
    assert "node2 left the cluster" in reasons(out)[0]
    assert f.result(run.attempt_id, True, 100.0) == []  # a stale result changes nothing


def test_static_and_random_delays_with_a_seeded_rng() -> None:
    f = fencer(dev("ipmi", delay_base_ms=2000))
    out = f.request("node2", "off", "node1", 10.0)
    assert runs(out) == [] and next(o for o in out if isinstance(o, FencingPlanned)).first_attempt_at == 12.0
    assert runs(f.tick(11.999)) == []
    assert len(runs(f.tick(12.0))) == 1
    rnd = dev("ipmi", delay_base_ms=1000, delay_max_ms=4000)
    draws = [device_delay_s(rnd, "node2", random.Random(seed)) for seed in range(200)]
    assert all(1.0 <= d <= 4.0 for d in draws) and len(set(draws)) > 50
    assert draws == [device_delay_s(rnd, "node2", random.Random(seed)) for seed in range(200)]
    assert device_delay_s(dev("x", delay_base_ms=9000, delay_max_ms=3000), "n", random.Random(1)) <= 3.0


def test_priority_fencing_delay_rules() -> None:
    info = PriorityInfo(node_priorities={"node1": 10, "node2": 0}, partition_size=1, cluster_size=2)
    assert priority_delay_s("node1", info, 15_000) == 15.0
    assert priority_delay_s("node2", info, 15_000) == 0.0
    equal = PriorityInfo(node_priorities={"node1": 5, "node2": 5}, partition_size=1, cluster_size=2)
    assert priority_delay_s("node1", equal, 15_000) == 0.0
    majority = PriorityInfo(
        node_priorities={"node1": 10, "node2": 0, "node3": 0}, partition_size=2, cluster_size=3
    )
    assert priority_delay_s("node1", majority, 15_000) == 0.0
    assert node_priority([(10, False), (5, True), (0, True)]) == 16


def race(seed: int, *, priorities: dict[str, int], delay_base: dict[str, int] | None = None) -> str:
    """Partition a 2-node cluster: each side's fencer shoots the other. Returns the survivor."""
    base = delay_base or {}
    devices = {
        "fence-node1": dev(
            "fence-node1", hosts=["node1"], delay_max_ms=5000, delay_base_ms=base.get("node1", 0)
        ),
        "fence-node2": dev(
            "fence-node2", hosts=["node2"], delay_max_ms=5000, delay_base_ms=base.get("node2", 0)
        ),
    }
    options = FencingOptions(priority_delay_ms=15_000)
    sides: dict[str, Fencer] = {}
    for me, peer in (("node1", "node2"), ("node2", "node1")):
        side = Fencer(devices, (), options, rng=random.Random(f"{seed}-{me}"))
        side.set_members([me], 0.0)
        info = PriorityInfo(node_priorities=priorities, partition_size=1, cluster_size=2)
        side.request(peer, "reboot", me, 0.0, priority=info)
        sides[me] = side
    alive = dict(sides)
    while len(alive) == 2:
        now = min(d for f in alive.values() if (d := f.next_deadline()) is not None)
        for me, side in sorted(alive.items()):
            if me not in alive:
                continue  # shot a moment ago, in the same instant
            for run in runs(side.tick(now)):
                assert run.executor == me
                del alive[run.target]  # the device powers the target off: its fencer dies with it
    [survivor] = alive
    return survivor


def test_two_node_race_is_won_by_the_node_running_the_important_resources() -> None:
    survivors = {race(seed, priorities={"node1": 10, "node2": 0}) for seed in range(300)}
    assert survivors == {"node1"}
    survivors = {race(seed, priorities={"node1": 0, "node2": 3}) for seed in range(300)}
    assert survivors == {"node2"}
    # the control: with equal priorities only the random delays decide, and either node may win
    assert {race(seed, priorities={"node1": 1, "node2": 1}) for seed in range(300)} == {"node1", "node2"}


def test_two_node_race_with_a_static_delay_protects_the_delayed_target() -> None:
    # fence-node1 waits 10 s more than pcmk_delay_max allows the other side: node1 is never shot first
    survivors = {race(seed, priorities={}, delay_base={"node1": 10_000}) for seed in range(100)}
    assert survivors == {"node1"}


def test_requests_for_a_node_being_fenced_are_merged() -> None:
    f = fencer(dev("ipmi"))
    assert len(runs(f.request("node2", "reboot", "node1", 0.0))) == 1
    assert f.request("node2", "off", "node3", 0.0) == []
    assert f.in_progress("node2")


def test_no_capable_device_fails_at_once_saying_why() -> None:
    f = fencer(dev("ipmi", hosts=["node1"]))
    out = f.request("node3", "off", "node1", 0.0)
    result = finished(out)
    assert result is not None and not result.ok
    assert result.reason == "no fencing device can fence node3"
    assert events(out) == [("pending", None, None), ("failed", None, None)]
    topo = [FencingLevel(id="l1", index=1, devices=["gone"], target="node3")]
    result = finished(fencer(dev("ipmi"), topology=topo).request("node3", "off", "node1", 0.0))
    assert (
        result is not None
        and result.reason == "no fencing level for node3 can work: device gone is not configured"
    )


def test_dynamic_list_decides_capability_once_known() -> None:
    f = fencer(
        FenceDevice(id="virsh", agent="fence_virsh", host_map={"node2": "vm-2"}, host_check="dynamic-list")
    )
    f.set_dynamic_list("virsh", frozenset({"vm-1"}))
    assert finished(f.request("node2", "off", "node1", 0.0)) is not None
    f.set_dynamic_list("virsh", frozenset({"vm-1", "vm-2"}))
    assert len(runs(f.request("node2", "off", "node1", 1.0))) == 1


def test_operator_confirmation_ends_the_request() -> None:
    f = fencer(dev("ipmi"))
    [run] = runs(f.request("node2", "off", "node1", 0.0))
    out = f.confirm("node2", "node1", 5.0)
    assert events(out) == [("done", "manual", "node1")]
    result = finished(out)
    assert result is not None and result.ok and result.reason == "confirmed by an operator"
    assert f.result(run.attempt_id, False, 6.0) == []


def test_device_monitor_checks_recurringly_and_reports_changes_only() -> None:
    devices = {
        "ipmi": dev("ipmi", monitor_interval_ms=10_000),
        "virsh": FenceDevice(id="virsh", agent="fence_virsh", monitor_interval_ms=30_000),
        "quiet": dev("quiet", monitor_interval_ms=0),
        "off": dev("off", enabled=False),
    }
    mon = DeviceMonitor(devices, 0.0, dynamic=["virsh"])
    first = mon.tick(0.0)
    assert first == [
        RunCheck(device="ipmi", action="monitor"),
        RunCheck(device="virsh", action="list"),
        RunCheck(device="virsh", action="monitor"),
    ]
    assert mon.tick(0.0) == []  # running checks are not started twice
    assert mon.checked("ipmi", "monitor", True, 1.0) == [DeviceHealthChanged(device="ipmi", ok=True)]
    assert mon.checked("virsh", "list", True, 1.0, ports=frozenset({"vm1"})) == [
        DynamicListChanged(device="virsh", ports=frozenset({"vm1"}))
    ]
    assert mon.checked("virsh", "monitor", True, 2.0) == [DeviceHealthChanged(device="virsh", ok=True)]
    assert mon.next_deadline() == 11.0  # ten seconds after the ipmi monitor finished
    assert mon.tick(10.9) == []
    assert mon.tick(11.0) == [RunCheck(device="ipmi", action="monitor")]
    assert mon.checked("ipmi", "monitor", True, 12.0) == []  # unchanged: nothing to report
    mon.tick(22.0)
    assert mon.checked("ipmi", "monitor", False, 22.5, reason="login refused") == [
        DeviceHealthChanged(device="ipmi", ok=False, reason="login refused")
    ]
    mon.tick(31.0)
    assert mon.checked("virsh", "list", True, 31.0, ports=frozenset({"vm1"})) == []
    mon.reconfigure({"ipmi": devices["ipmi"]}, 40.0)
    assert mon.checked("virsh", "monitor", False, 41.0) == []  # removed meanwhile: ignored


def test_monitor_interval_comes_from_the_monitor_operation() -> None:
    from hakeeper.cib.model import Operation
    from hakeeper.fencing.devices import device_from_primitive
    from tests.fencing.helpers import stonith

    prim = stonith("d", pcmk_host_list="n")
    assert device_from_primitive(prim).monitor_interval_ms == 60_000
    with_op = msgspec.structs.replace(prim, operations=[Operation(id="m", name="monitor", interval=15_000)])
    assert device_from_primitive(with_op).monitor_interval_ms == 15_000
    disabled = msgspec.structs.replace(
        prim, operations=[Operation(id="m", name="monitor", interval=15_000, enabled=False)]
    )
    assert device_from_primitive(disabled).monitor_interval_ms == 0


def test_history_confirms_only_completed_power_off_after_the_loss() -> None:
    from hakeeper.cib.model import FenceEvent
    from hakeeper.fencing.fencer import fenced_since, latest_event

    history = [
        FenceEvent(target="node2", action="reboot", state="done", completed=100),
        FenceEvent(target="node2", action="off", state="pending", requested=200),
        FenceEvent(target="node2", action="off", state="failed", completed=210),
        FenceEvent(target="node2", action="on", state="done", completed=220),
        FenceEvent(target="node3", action="off", state="done", completed=230),
    ]
    assert not fenced_since(history, "node2", 150)  # the old fence predates the loss; on does not count
    assert fenced_since(history, "node2", 100)
    assert fenced_since(history, "node3", 230)
    assert latest_event(history, "node2") == history[3]
    assert latest_event(history, "node9") is None
    f = fencer(dev("ipmi"))
    [run] = runs(f.request("node2", "off", "node1", 300.0))
    done = [o.event for o in f.result(run.attempt_id, True, 301.0) if isinstance(o, RecordEvent)]
    assert fenced_since([*history, *done], "node2", 300)


@given(
    levels=st.lists(
        st.lists(st.sampled_from(["d1", "d2", "d3", "d4"]), min_size=1, max_size=3, unique=True),
        min_size=1,
        max_size=3,
    ),
    outcomes=st.lists(st.booleans(), max_size=80),
    retries=st.integers(min_value=0, max_value=2),
    rounds=st.integers(min_value=1, max_value=3),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_any_topology_and_outcomes_end_properly(
    levels: list[list[str]], outcomes: list[bool], retries: int, rounds: int, seed: int
) -> None:
    topo = [
        FencingLevel(id=f"l{i}", index=i, devices=devs, target="node2") for i, devs in enumerate(levels, 1)
    ]
    devices = [dev(d, retries={"off": retries}, delay_max_ms=3000) for d in ("d1", "d2", "d3", "d4")]
    f = fencer(*devices, topology=topo, seed=seed, max_attempts=rounds)
    results = iter(outcomes)
    now = 0.0
    out = f.request("node2", "off", "node1", now)
    succeeded_in_level: set[str] = set()
    current_level: tuple[str, ...] | None = None
    current_key = (0, 0)
    attempts = 0
    bound = rounds * sum(len(devs) * (1 + retries) for devs in levels)
    while (done := finished(out)) is None:
        assert not any(state == "done" for state, _, _ in events(out))  # "done" only at the very end
        [*started] = runs(out)
        if started:
            [run] = started  # one attempt at a time
            assert run.executor != "node2"
            attempts += 1
            assert attempts <= bound
            ok = next(results, True)
            level = tuple(levels[run.level - 1])
            assert run.device in level
            if (run.level, run.round) != current_key:
                current_key = (run.level, run.round)
                current_level, succeeded_in_level = level, set()
            if ok:
                succeeded_in_level.add(run.device)
            out = f.result(run.attempt_id, ok, now, reason="x")
        else:
            deadline = f.next_deadline()
            assert deadline is not None and deadline >= now  # never stalls, never goes back in time
            now = deadline
            out = f.tick(now)
    assert done.attempts == attempts
    if done.ok:
        assert set(done.devices) == succeeded_in_level == set(current_level or ())
        assert events(out)[-1][0] == "done"
    else:
        assert events(out)[-1][0] == "failed"
    assert f.next_deadline() is None


def test_fencer_from_configuration() -> None:
    from tests.fencing.helpers import config, stonith

    cfg = config(
        stonith("pdu", pcmk_host_check="none"),
        stonith("ipmi", pcmk_host_list="node1 node2", pcmk_delay_base="1s"),
        stonith("broken", pcmk_delay_max="never"),
        levels=(
            FencingLevel(id="rack", index=1, devices=["pdu"], target_attribute="rack", target_value="r1"),
        ),
        node_attrs={"node2": {"rack": "r1"}},
        props={"stonith-max-attempts": "4"},
    )
    f, errors = Fencer.from_config(cfg, rng=random.Random(1))
    assert list(errors) == ["broken"]
    assert [lv.devices for lv in f.plan("node2").levels] == [("pdu",)]  # by the node's rack attribute
    assert [lv.devices for lv in f.plan("node1").levels] == [("pdu",), ("ipmi",)]
    assert f._options.max_attempts == 4
    assert f.reconfigure_from(config(stonith("ipmi", pcmk_host_list="node1"))) == {}
    assert [lv.devices for lv in f.plan("node1").levels] == [("ipmi",)]


def test_watchdog_fencing_when_no_device_can_fence() -> None:
    f = fencer(dev("ipmi", hosts=["node1"]), watchdog_timeout_ms=10_000)
    f.set_members(["node1", "node2"], 0.0)  # node3 was lost
    out = f.request("node3", "reboot", "node1", 100.0)
    assert runs(out) == [] and finished(out) is None
    assert next(o for o in out if isinstance(o, FencingPlanned)).first_attempt_at == 110.0
    assert finished(f.tick(109.9)) is None
    out = f.tick(110.0)
    result = finished(out)
    assert result is not None and result.ok and result.devices == ("watchdog",) and result.delegate == "node3"
    assert events(out) == [("done", "watchdog", "node3")]
    # a node some device covers is fenced by the device, not by waiting
    assert len(runs(f.request("node1", "off", "node2", 200.0))) == 1


def test_watchdog_wait_counts_only_quorate_time_and_can_be_cancelled() -> None:
    f = fencer(dev("ipmi", hosts=["node1"]), watchdog_timeout_ms=10_000)
    f.set_members(["node1"], 0.0)
    f.request("node3", "off", "node1", 0.0)
    assert f.set_quorate(False, 5.0) == [] and f.next_deadline() is None
    assert finished(f.tick(50.0)) is None
    f.set_quorate(True, 60.0)
    assert f.next_deadline() == 70.0
    assert finished(f.tick(69.0)) is None
    assert finished(f.tick(70.0)) is not None
    f.request("node2", "off", "node1", 100.0)
    out = f.cancel("node2", 101.0, reason="node2 rejoined")
    result = finished(out)
    assert result is not None and not result.ok and result.reason == "cancelled: node2 rejoined"
    assert f.tick(200.0) == []


def test_watchdog_fencing_refuses_a_member_that_would_not_reset_itself() -> None:
    f = fencer(dev("ipmi", hosts=["node1"]), watchdog_timeout_ms=10_000)  # node3 is still a member
    out = f.request("node3", "off", "node1", 0.0)
    result = finished(out)
    assert result is not None and not result.ok and "is a member of the cluster" in result.reason
    assert events(out)[-1][0] == "failed" and not f.in_progress("node3")


def test_without_watchdog_timeout_no_device_still_fails() -> None:
    f = fencer(dev("ipmi", hosts=["node1"]))
    result = finished(f.request("node3", "off", "node1", 0.0))
    assert result is not None and not result.ok


def test_finished_carries_the_final_record_for_the_controller() -> None:
    f = fencer(dev("ipmi", retries={"off": 0}), dev("pdu"))
    out = f.request("node2", "off", "node1", 0.0, client="transition-7:fence-node2")
    [run] = runs(out)
    out = f.result(run.attempt_id, False, 1.0, reason="bmc unreachable")
    assert finished(out) is None  # an attempt failed, the request goes on: nothing final yet
    [run] = runs(out)
    out = f.result(run.attempt_id, True, 2.0)
    result = finished(out)
    assert result is not None and result.event is not None
    assert result.event == [o.event for o in out if isinstance(o, RecordEvent)][-1]
    assert (result.event.state, result.event.client, result.event.device) == (
        "done",
        "transition-7:fence-node2",
        "pdu",
    )


def test_confirm_without_a_request_still_finishes() -> None:
    f = fencer(dev("ipmi"))
    out = f.confirm("node3", "node1", 9.0)
    result = finished(out)
    assert result is not None and result.ok and result.request_id == 0
    assert result.event is not None and result.event.device == "manual"
