"""A resource whose parameters or agent changed since it started is restarted, or reloaded when it can be."""

from __future__ import annotations

import msgspec

from hakeeper.cib import model as m
from hakeeper.policy.digests import params_digest
from hakeeper.policy.schedule import schedule
from tests.policy.builders import cib, lines, node_state, op

NOW = 1_700_000_000


def _web(params: dict[str, str], op_params: dict[str, str] | None = None) -> m.Primitive:
    ops = []
    if op_params is not None:
        ops = [
            m.Operation(
                id="web-start",
                name="start",
                instance_attributes=[m.NvSet(id="web-start-params", values=op_params)],
            )
        ]
    return m.Primitive(
        id="web",
        klass="ocf",
        provider="heartbeat",
        type="Dummy",
        instance_attributes=[m.NvSet(id="web-params", values=params)],
        operations=ops,
    )


def _started_with(
    params: dict[str, str],
    *,
    force_restart: str | None = None,
    agent: str = "Dummy",
    secure: str | None = None,
) -> m.ResourceHistory:
    """A start recorded the way Pacemaker records it: digests of the parameters it ran with."""
    start = op("web", "start", 2)
    fields: dict[str, str | None] = {"op_digest": params_digest(params)}
    if force_restart is not None:
        forcing = {k: v for k, v in params.items() if k in force_restart.split()}
        fields |= {"op_force_restart": f" {force_restart} ", "op_restart_digest": params_digest(forcing)}
    if secure is not None:
        public = {k: v for k, v in params.items() if k not in secure.split()}
        fields |= {"op_secure_params": f" {secure} ", "op_secure_digest": params_digest(public)}
    start = msgspec.structs.replace(start, **fields)
    return m.ResourceHistory(id="web", klass="ocf", provider="heartbeat", type=agent, ops=[start])


def _plan(config: m.Primitive, history: m.ResourceHistory) -> set[str]:
    return lines(schedule(cib([config], [node_state("n1", history), node_state("n2")]), NOW).summary)


def test_the_digest_is_pacemakers_sorted_parameters_element() -> None:
    # the digest Pacemaker records for an agent started without parameters (as in its own test CIBs)
    assert params_digest({}) == "f2317cad3d54cec5d7d7aa7d0bf35cf8"
    assert params_digest({"b": "2", "a": "1"}) == params_digest({"a": "1", "b": "2"})
    assert params_digest({"a": 'say "hi" & <go>'}) != params_digest({"a": "say hi"})


def test_unchanged_parameters_leave_the_resource_alone() -> None:
    assert _plan(_web({"port": "80"}), _started_with({"port": "80"})) == set()


def test_changed_parameters_restart_the_resource_in_place() -> None:
    assert _plan(_web({"port": "8080"}), _started_with({"port": "80"})) == {
        "* Restart web (n1) due to resource definition change"
    }


def test_a_reloadable_change_is_a_reload() -> None:
    # only "state" forces a restart; "port" changed, which the agent can take on a reload
    before = {"port": "80", "state": "/run/web"}
    after = {"port": "8080", "state": "/run/web"}
    assert _plan(_web(after), _started_with(before, force_restart="state")) == {"* Reload web (n1)"}


def test_a_change_to_a_restart_forcing_parameter_restarts() -> None:
    before = {"port": "80", "state": "/run/web"}
    after = {"port": "80", "state": "/run/other"}
    assert _plan(_web(after), _started_with(before, force_restart="state")) == {
        "* Restart web (n1) due to resource definition change"
    }


def test_parameters_of_the_start_operation_itself_count() -> None:
    assert _plan(_web({}, op_params={"delay": "5"}), _started_with({})) == {
        "* Restart web (n1) due to resource definition change"
    }


def test_masked_secrets_are_not_a_change() -> None:
    # a sanitized CIB shows passwords as ****: only the digest without secrets can be compared
    history = _started_with({"user": "admin", "passwd": "s3cret"}, secure="passwd")
    assert _plan(_web({"user": "admin", "passwd": "****"}), history) == set()


def test_a_changed_agent_restarts_without_a_reason() -> None:
    assert _plan(_web({}), _started_with({}, agent="Stateful")) == {"* Restart web (n1)"}


def test_history_without_digests_is_taken_as_unchanged() -> None:
    history = m.ResourceHistory(
        id="web", klass="ocf", provider="heartbeat", type="Dummy", ops=[op("web", "start", 2)]
    )
    assert _plan(_web({"port": "8080"}), history) == set()


def test_a_resource_moving_anyway_just_moves() -> None:
    away = m.Location(id="away", rsc="web", node="n1", score=-1_000_000)
    states = [node_state("n1", _started_with({"port": "80"})), node_state("n2")]
    config = cib([_web({"port": "8080"})], states, constraints=[away])
    assert lines(schedule(config, NOW).summary) == {"* Move web (n1 -> n2)"}
