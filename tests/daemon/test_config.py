"""The daemon configuration: a good file loads, and every mistake is named with its place."""

from __future__ import annotations

import pytest

from hakeeper.daemon.config import Address, ConfigError, load_daemon_config

GOOD = """
[cluster]
name = "demo"
key_file = "/etc/hakeeper/cluster.key"
data_dir = "/var/lib/hakeeper"

[quorum]
two_node = true

[timers]
heartbeat_interval = "50ms"
failure_timeout = "300ms"

[[nodes]]
name = "node1"
id = 1
addresses = ["127.0.0.11:5405", "127.0.1.11:5405"]

[[nodes]]
name = "node2"
id = 2
addresses = ["127.0.0.12:5405", "[::1]:5406"]
"""


def test_a_good_file_loads_with_defaults_filled_in() -> None:
    cfg = load_daemon_config(GOOD)
    assert cfg.cluster_name == "demo"
    assert [n.name for n in cfg.nodes] == ["node1", "node2"]
    assert cfg.node("node2").links == [Address("127.0.0.12", 5405), Address("::1", 5406)]
    assert str(cfg.node("node2").links[1]) == "[::1]:5406"
    assert (cfg.two_node, cfg.wait_for_all) == (True, True), "two_node implies wait_for_all"
    assert (cfg.heartbeat_interval_ms, cfg.failure_timeout_ms, cfg.election_timeout_ms) == (50, 300, 1000)
    assert str(cfg.api_socket) == "/var/lib/hakeeper/api.sock"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("id = 2", "id = 1"), "nodes[1].id: 1 must be a positive number used by one node only"),
        (('name = "node2"', 'name = "node1"'), "nodes[1].name: 'node1' is used twice"),
        (("127.0.0.12:5405", "127.0.0.12"), "nodes[1].addresses[0]: '127.0.0.12' is not host:port"),
        (("127.0.0.12:5405", "db-host:5405"), "nodes[1].addresses[0]: 'db-host' is not an IP address"),
        (("127.0.0.12:5405", "127.0.0.12:99999"), "port '99999' must be a number from 1 to 65535"),
        ((', "[::1]:5406"', ""), "nodes[1].addresses: every node needs the same number of links (2)"),
        (('"300ms"', '"3 fortnights"'), 'timers.failure_timeout: "3 fortnights" is not a duration'),
        (('"300ms"', '"10ms"'), "timers.failure_timeout: must be longer than timers.heartbeat_interval"),
        (("two_node = true", "two_node = true\nwitnes = '1.2.3.4:5'"), "unknown field `witnes`"),
        (('name = "demo"', "name = 5"), "Expected `str`, got `int`"),
        (("[cluster]", "[cluster"), "not valid TOML"),
    ],
)
def test_mistakes_are_named(change: tuple[str, str], message: str) -> None:
    text = GOOD.replace(*change, 1)
    with pytest.raises(ConfigError) as info:
        load_daemon_config(text, "cluster.toml")
    assert any(message in p for p in info.value.problems), info.value.problems
    assert str(info.value).startswith("cluster.toml: ")


def test_two_node_needs_two_nodes() -> None:
    three = GOOD + '\n[[nodes]]\nname = "node3"\nid = 3\naddresses = ["127.0.0.13:5405", "127.0.1.13:5405"]\n'
    with pytest.raises(ConfigError, match="only for clusters of exactly two nodes"):
        load_daemon_config(three)


def test_two_node_and_witness_are_alternatives() -> None:
    both = GOOD.replace("two_node = true", 'two_node = true\nwitness = "127.0.0.9:5403"')
    with pytest.raises(ConfigError, match="two_node and witness are two alternative ways"):
        load_daemon_config(both)
    witness_only = GOOD.replace("two_node = true", 'witness = "127.0.0.9:5403"')
    assert load_daemon_config(witness_only).witness == Address("127.0.0.9", 5403)


def test_unknown_local_node_is_explained() -> None:
    with pytest.raises(ConfigError, match="'node9' is not in the configuration"):
        load_daemon_config(GOOD).node("node9")
