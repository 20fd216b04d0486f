"""The node daemon's own configuration file (``/etc/hakeeper/cluster.toml``).

This is the corosync.conf of hakeeper: who the nodes are, how to reach them (one address per link, up to 8),
the cluster key, timers, quorum options and where state lives. The *cluster* configuration (resources,
constraints) is not here: it lives in the CIB and changes through the replicated log.

```toml
[cluster]
name = "demo"
key_file = "/etc/hakeeper/cluster.key"
data_dir = "/var/lib/hakeeper"

[quorum]
two_node = false
wait_for_all = false
witness = "10.0.0.9:5403"        # optional

[timers]
heartbeat_interval = "100ms"
failure_timeout = "400ms"

[[nodes]]
name = "node1"
id = 1
addresses = ["10.0.0.1:5405", "192.168.1.1:5405"]   # link 0, link 1

[api]
http_listen = "127.0.0.1:8080"   # optional: the web dashboard (and API) for a browser on this machine

[fencing]
watchdog = "/dev/watchdog"       # optional: watchdog self-fencing (the sbd role)
watchdog_timeout = "5s"
```
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

import msgspec

from hakeeper.cib.values import parse_duration_ms

MAX_LINKS = 8


class ConfigError(ValueError):
    """The daemon configuration is wrong; ``problems`` lists every ``path: message``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class ClusterSection(_Section, frozen=True):
    name: str
    key_file: str
    data_dir: str = "/var/lib/hakeeper"
    api_socket: str = ""
    """The local API's Unix socket; defaults to ``<data_dir>/api.sock``."""


class QuorumSection(_Section, frozen=True):
    two_node: bool = False
    wait_for_all: bool | None = None
    """Defaults to ``two_node``: a two-node cluster waits for both nodes once, as corosync does."""
    witness: str | None = None


class TimersSection(_Section, frozen=True):
    heartbeat_interval: str = "100ms"
    failure_timeout: str = "400ms"
    election_timeout: str = "1s"
    """How long followers wait for a silent leader before electing another (they campaign after a random
    half to all of it, so a dead leader is replaced within about this long)."""
    shutdown_timeout: str = "2min"


class ApiSection(_Section, frozen=True):
    http_listen: str = ""
    """A loopback ``host:port`` serving the API and the web dashboard over plain HTTP, tokens required
    (``hakeeper token create``). Off when empty; only loopback addresses, so tokens never cross a network
    in clear text (reach it from elsewhere through an SSH tunnel)."""


class FencingSection(_Section, frozen=True):
    watchdog: str = ""
    """The watchdog device (``/dev/watchdog``) for self-fencing: a node that loses quorum and cannot stop
    its resources within ``watchdog_timeout``, or whose daemon hangs, is reset by it. Off when empty."""
    simulated_watchdog: str = ""
    """For tests and labs instead of ``watchdog``: the pet file of a ``hakeeper.fencing.simwatchdog``
    process, which kills the node's processes when not petted in time."""
    watchdog_timeout: str = "5s"


class NodeSection(_Section, frozen=True):
    name: str
    id: int
    addresses: list[str]


class _File(_Section, frozen=True):
    cluster: ClusterSection
    nodes: list[NodeSection]
    quorum: QuorumSection = QuorumSection()
    timers: TimersSection = TimersSection()
    api: ApiSection = ApiSection()
    fencing: FencingSection = FencingSection()


class Address(msgspec.Struct, frozen=True):
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class NodeConfig(msgspec.Struct, frozen=True):
    name: str
    id: int
    links: list[Address]


class DaemonConfig(msgspec.Struct, frozen=True, kw_only=True):
    cluster_name: str
    key_file: Path
    data_dir: Path
    api_socket: Path
    nodes: list[NodeConfig]
    two_node: bool
    wait_for_all: bool
    witness: Address | None
    heartbeat_interval_ms: int
    failure_timeout_ms: int
    election_timeout_ms: int
    shutdown_timeout_ms: int
    http_listen: Address | None = None
    watchdog_device: Path | None = None
    simulated_watchdog: Path | None = None
    watchdog_timeout_ms: int = 5000

    @property
    def watchdog_enabled(self) -> bool:
        return self.watchdog_device is not None or self.simulated_watchdog is not None

    def node(self, name: str) -> NodeConfig:
        for n in self.nodes:
            if n.name == name:
                return n
        known = ", ".join(n.name for n in self.nodes)
        raise ConfigError("node", [f"this node {name!r} is not in the configuration (nodes: {known})"])


def parse_address(text: str) -> Address:
    """``host:port`` or ``[v6]:port``; the host must be an IP address (no name lookups in the cluster)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not host:port")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError as err:
        raise ValueError(f"{host!r} is not an IP address") from err
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"port {port!r} must be a number from 1 to 65535")
    return Address(host, int(port))


def _duration(text: str, path: str, problems: list[str]) -> int:
    try:
        return parse_duration_ms(text)
    except ValueError as err:
        problems.append(f"{path}: {err}")
        return 0


def _http_listen(text: str, problems: list[str]) -> Address | None:
    if not text:
        return None
    try:
        address = parse_address(text)
    except ValueError as err:
        problems.append(f"api.http_listen: {err}")
        return None
    if not ipaddress.ip_address(address.host).is_loopback:
        problems.append(
            f"api.http_listen: {address.host} is not a loopback address; this plain-HTTP listener only "
            "serves this machine (127.0.0.1 or ::1), so tokens never cross a network in clear text: "
            "reach it through an SSH tunnel"
        )
        return None
    return address


def _fencing(section: FencingSection, problems: list[str]) -> tuple[Path | None, Path | None, int]:
    """The watchdog (device, simulated pet file) and its timeout in ms."""
    known = len(problems)
    timeout = _duration(section.watchdog_timeout, "fencing.watchdog_timeout", problems)
    parsed = len(problems) == known
    if section.watchdog and section.simulated_watchdog:
        problems.append(
            "fencing: give either watchdog (a real device) or simulated_watchdog (tests and labs), not both"
        )
    if parsed and timeout <= 0:
        problems.append("fencing.watchdog_timeout: must be longer than 0")
    elif parsed and section.watchdog and timeout % 1000:
        problems.append(
            f"fencing.watchdog_timeout: a watchdog device counts in whole seconds "
            f"({section.watchdog_timeout} is not)"
        )
    device = Path(section.watchdog) if section.watchdog else None
    simulated = Path(section.simulated_watchdog) if section.simulated_watchdog else None
    return device, simulated, timeout


def _check_nodes(nodes: list[NodeSection], problems: list[str]) -> list[NodeConfig]:
    out: list[NodeConfig] = []
    names: set[str] = set()
    ids: set[int] = set()
    links: int | None = None
    for i, node in enumerate(nodes):
        where = f"nodes[{i}]"
        if node.name in names:
            problems.append(f"{where}.name: {node.name!r} is used twice")
        if node.id in ids or node.id <= 0:
            problems.append(f"{where}.id: {node.id} must be a positive number used by one node only")
        names.add(node.name)
        ids.add(node.id)
        if not 1 <= len(node.addresses) <= MAX_LINKS:
            problems.append(f"{where}.addresses: give 1 to {MAX_LINKS} addresses (one per link)")
        if links is not None and len(node.addresses) != links:
            problems.append(f"{where}.addresses: every node needs the same number of links ({links})")
        links = len(node.addresses) if links is None else links
        addrs: list[Address] = []
        for j, text in enumerate(node.addresses):
            try:
                addrs.append(parse_address(text))
            except ValueError as err:
                problems.append(f"{where}.addresses[{j}]: {err}")
        out.append(NodeConfig(node.name, node.id, addrs))
    if not nodes:
        problems.append("nodes: at least one [[nodes]] entry is needed")
    return out


def load_daemon_config(text: str, source: str = "cluster.toml") -> DaemonConfig:
    """Parse and check the daemon configuration; every problem is reported at once."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(source, [f"not valid TOML: {err}"]) from err
    try:
        doc = msgspec.convert(raw, _File)
    except msgspec.ValidationError as err:
        raise ConfigError(source, [str(err).replace("Object", "section")]) from err
    problems: list[str] = []
    nodes = _check_nodes(doc.nodes, problems)
    witness = None
    if doc.quorum.witness:
        try:
            witness = parse_address(doc.quorum.witness)
        except ValueError as err:
            problems.append(f"quorum.witness: {err}")
    if doc.quorum.two_node and doc.quorum.witness:
        problems.append(
            "quorum: two_node and witness are two alternative ways to run a two-node cluster; "
            "keep the witness (safer: it needs no fencing confirmation) and remove two_node, or the reverse"
        )
    if doc.quorum.two_node and len(nodes) != 2:
        problems.append(
            f"quorum.two_node: only for clusters of exactly two nodes (this one has {len(nodes)})"
        )
    timers = doc.timers
    hb = _duration(timers.heartbeat_interval, "timers.heartbeat_interval", problems)
    fail = _duration(timers.failure_timeout, "timers.failure_timeout", problems)
    election = _duration(timers.election_timeout, "timers.election_timeout", problems)
    shutdown = _duration(timers.shutdown_timeout, "timers.shutdown_timeout", problems)
    if hb and fail and fail <= hb:
        problems.append("timers.failure_timeout: must be longer than timers.heartbeat_interval")
    http_listen = _http_listen(doc.api.http_listen, problems)
    watchdog, simulated, watchdog_ms = _fencing(doc.fencing, problems)
    if problems:
        raise ConfigError(source, problems)
    data_dir = Path(doc.cluster.data_dir)
    return DaemonConfig(
        cluster_name=doc.cluster.name,
        key_file=Path(doc.cluster.key_file),
        data_dir=data_dir,
        api_socket=Path(doc.cluster.api_socket) if doc.cluster.api_socket else data_dir / "api.sock",
        nodes=nodes,
        two_node=doc.quorum.two_node,
        wait_for_all=doc.quorum.two_node if doc.quorum.wait_for_all is None else doc.quorum.wait_for_all,
        witness=witness,
        heartbeat_interval_ms=hb,
        failure_timeout_ms=fail,
        election_timeout_ms=election,
        shutdown_timeout_ms=shutdown,
        http_listen=http_listen,
        watchdog_device=watchdog,
        simulated_watchdog=simulated,
        watchdog_timeout_ms=watchdog_ms,
    )
