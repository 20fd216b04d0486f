"""The transition engine fires ready actions, waits for results, and aborts cleanly."""

from __future__ import annotations

import pytest

from hakeeper.controller.engine import Execute, TransitionEngine, TransitionFinished
from hakeeper.controller.graph import GraphAction, TransitionGraph


def rsc(aid: int, task: str, node: str, *inputs: int, rsc_id: str = "web") -> GraphAction:
    return GraphAction(id=aid, kind="resource", task=task, node=node, rsc=rsc_id, inputs=list(inputs))


def pseudo(aid: int, task: str, *inputs: int) -> GraphAction:
    return GraphAction(id=aid, kind="pseudo", task=task, inputs=list(inputs))


def fired(outputs: list[object]) -> list[int]:
    return [o.action.id for o in outputs if isinstance(o, Execute)]


def finished(outputs: list[object]) -> list[TransitionFinished]:
    return [o for o in outputs if isinstance(o, TransitionFinished)]


def move_graph() -> TransitionGraph:
    # stop web on n1, then (via a pseudo "stopped" marker) start it on n2, then monitor it there
    return TransitionGraph(
        id=7,
        actions=[
            rsc(1, "stop", "n1"),
            pseudo(2, "web_stopped", 1),
            rsc(3, "start", "n2", 2),
            GraphAction(
                id=4, kind="resource", task="monitor", node="n2", rsc="web", interval_ms=10_000, inputs=[3]
            ),
        ],
    )


def test_a_move_runs_in_order() -> None:
    engine = TransitionEngine(move_graph())
    assert fired(engine.start(0)) == [1]
    assert fired(engine.result(1, True, 10)) == [3], "the pseudo action completes by itself"
    assert fired(engine.result(3, True, 20)) == [4]
    out = engine.result(4, True, 30)
    assert finished(out) == [TransitionFinished(7, "complete", "all actions completed")]
    assert engine.finished


def test_independent_actions_fire_together() -> None:
    graph = TransitionGraph(
        id=1, actions=[rsc(1, "start", "n1", rsc_id="a"), rsc(2, "start", "n2", rsc_id="b")]
    )
    assert fired(TransitionEngine(graph).start(0)) == [1, 2]


def test_batch_limit_caps_parallel_actions() -> None:
    graph = TransitionGraph(id=1, actions=[rsc(i, "start", "n1", rsc_id=f"r{i}") for i in range(1, 5)])
    engine = TransitionEngine(graph, batch_limit=2)
    assert fired(engine.start(0)) == [1, 2]
    assert fired(engine.result(1, True, 5)) == [3]


def test_a_failure_aborts_and_waits_for_running_actions() -> None:
    graph = TransitionGraph(
        id=3,
        actions=[
            rsc(1, "start", "n1", rsc_id="a"),
            rsc(2, "start", "n2", rsc_id="b"),
            rsc(3, "start", "n1", 1, rsc_id="c"),
        ],
    )
    engine = TransitionEngine(graph)
    assert fired(engine.start(0)) == [1, 2]
    out = engine.result(1, False, 5, reason="rc=1")
    assert fired(out) == [] and finished(out) == [], "c is never started, b is still running"
    out = engine.result(2, True, 6)
    assert finished(out) == [TransitionFinished(3, "aborted", "a_start_0 on n1 failed: rc=1", (1,))]


def test_an_overdue_result_is_a_failure() -> None:
    graph = TransitionGraph(
        id=4, actions=[GraphAction(id=1, kind="resource", task="start", node="n1", rsc="a", timeout_ms=1000)]
    )
    engine = TransitionEngine(graph, margin_ms=500)
    engine.start(0)
    assert engine.next_deadline() == 1500
    assert engine.tick(1499) == []
    out = engine.tick(1500)
    assert finished(out) == [
        TransitionFinished(4, "aborted", "no result for a_start_0 on n1 within its timeout", (1,))
    ]
    assert engine.result(1, True, 1600) == [] and engine.ignored_results == 1, "a late result changes nothing"


def test_external_abort_stops_new_work() -> None:
    engine = TransitionEngine(move_graph())
    engine.start(0)
    assert engine.abort("node n3 left", 1) == []
    out = engine.result(1, True, 2)
    assert fired(out) == []
    assert finished(out)[0].outcome == "aborted" and finished(out)[0].reason == "node n3 left"


def test_an_empty_graph_completes_at_once() -> None:
    assert finished(TransitionEngine(TransitionGraph(id=9)).start(0))[0].outcome == "complete"


def test_results_for_unknown_actions_are_ignored() -> None:
    engine = TransitionEngine(move_graph())
    engine.start(0)
    assert engine.result(99, True, 1) == [] and engine.ignored_results == 1


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        ([rsc(1, "start", "n1", 5)], "waits for unknown actions"),
        ([rsc(1, "start", "n1", 2), rsc(2, "stop", "n1", 1)], "in a cycle"),
        ([rsc(1, "start", "n1"), rsc(1, "stop", "n1")], "duplicate action ids"),
    ],
)
def test_impossible_graphs_are_refused(actions: list[GraphAction], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TransitionEngine(TransitionGraph(id=1, actions=actions))


def test_actions_on_a_lost_node_fail_at_once() -> None:
    graph = TransitionGraph(
        id=5, actions=[rsc(1, "start", "n1", rsc_id="a"), rsc(2, "start", "n2", rsc_id="b")]
    )
    engine = TransitionEngine(graph)
    engine.start(0)
    assert engine.node_lost("n3", 1) == [], "nothing ran there"
    assert engine.node_lost("n1", 2) == [], "b is still running on n2"
    out = engine.result(2, True, 3)
    assert finished(out) == [
        TransitionFinished(5, "aborted", "node n1 left while running a_start_0 on n1", (1,))
    ]


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_complete_in_dependency_order_under_any_batch_limit(seed: int) -> None:
    import random

    rng = random.Random(seed)
    actions: list[GraphAction] = []
    for aid in range(rng.randint(1, 60)):
        inputs = sorted(rng.sample(range(aid), k=min(aid, rng.randint(0, 3))))
        make = pseudo if rng.random() < 0.3 else (lambda i, t, *ins: rsc(i, t, "n1", *ins))
        actions.append(make(aid, "start", *inputs))
    rng.shuffle(actions)  # graph order need not be dependency order
    engine = TransitionEngine(TransitionGraph(id=1, actions=actions), batch_limit=rng.choice([0, 1, 2, 5]))
    done: set[int] = set()
    running: list[int] = []
    outputs = engine.start(0)
    while True:
        for aid in fired(outputs):
            action = next(a for a in actions if a.id == aid)
            assert set(action.inputs) <= done | {a.id for a in actions if a.kind == "pseudo"} and all(
                engine.state[i].value == "done" for i in action.inputs
            )
            running.append(aid)
        if finished(outputs):
            break
        assert running, "the engine stalled with actions left"
        aid = running.pop(rng.randrange(len(running)))
        done.add(aid)
        outputs = engine.result(aid, True, 0)
    assert finished(outputs)[0].outcome == "complete"
    assert all(state.value == "done" for state in engine.state.values())


def test_a_result_looks_only_at_its_neighbourhood() -> None:
    """A wide graph: each result fires exactly the one action waiting for it, in order."""
    firsts = [rsc(i, "monitor", f"n{i}", rsc_id=f"r{i}") for i in range(500)]
    thens = [rsc(500 + i, "start", "n1", i, rsc_id=f"r{i}") for i in range(500)]
    engine = TransitionEngine(TransitionGraph(id=2, actions=firsts + thens))
    assert fired(engine.start(0)) == list(range(500))
    for i in range(500):
        assert fired(engine.result(i, True, 0)) == [500 + i]
