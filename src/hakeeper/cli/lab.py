"""A whole cluster in network namespaces: every node a "machine" with its own network stack (root only).

Like :class:`~hakeeper.cli.localcluster.LocalCluster`, but each node runs inside its own network namespace
(``<prefix>-<node>``) with a veth link on a host bridge (one /24 per link), so a virtual IP really moves
between machines and a client in another namespace sees it move. Optionally a second link on a second
bridge (multi-link), a client namespace on the bridges, and a quorum witness in its own namespace.

The host sees every node's directory (configuration, logs, Raft log, agents' state) and reaches each
node's API through the Unix socket in it: Unix sockets live in the file system, not the network stack.

Failures are those of real machines:

- :meth:`LabCluster.power_off`: every process in the namespace killed and its links down (the lab fence
  agent's own functions); :meth:`LabCluster.power_on` is a reboot: runtime state (addresses added by
  agents, ``HA_VARRUN``) is gone, links come up and the daemon starts again from its disk.
- :meth:`LabCluster.cut` / :meth:`LabCluster.heal`: links down/up, processes keep running (isolation).

Every name (namespaces, bridges, host-side veths) starts with the instance's prefix, by default
``hk<pid % 1000>``; the bridge's alias records the owning process. Creating a lab first removes what a
crashed earlier run with the same prefix left behind; :meth:`LabCluster.teardown` always removes
namespaces, bridges and processes. Two labs alive at once in one process need different prefixes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from hakeeper.api.client import ApiClient
from hakeeper.fencing import netns_agent
from hakeeper.messaging.keys import write_key_file

CLIENT = "client"
WITNESS = "witness"
DAEMON_PORT = 5405
WITNESS_PORT = 5403
VIP_HOST = 100
CLIENT_HOST = 200
WITNESS_HOST = 250
FIRST_NODE_HOST = 10
_PREFIX = re.compile(r"[a-z][a-z0-9]{1,6}")
_IP_TIMEOUT_S = 20.0


class LabError(RuntimeError):
    """The lab could not be built or driven; the message says what failed and what to check."""


def sh(*argv: str, check: bool = True, timeout: float = _IP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; a failure raises :class:`LabError` with its stderr."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise LabError(f"'{' '.join(argv)}' could not run: {err}") from err
    if check and done.returncode != 0:
        raise LabError(f"'{' '.join(argv)}' failed: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done


def lab_supported() -> str | None:
    """Why this machine cannot run a lab (not root, no ``ip``), or ``None`` when it can."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, veths and bridges)"
    if shutil.which("ip") is None:
        return "the lab needs iproute2's 'ip' command"
    return None


def default_prefix() -> str:
    """``hk<pid % 1000>``: unique among the labs of concurrently running processes (almost always)."""
    return f"hk{os.getpid() % 1000}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LabCluster:
    """Daemons in network namespaces joined by host bridges; see the module docstring."""

    def __init__(
        self,
        root: Path,
        nodes: Sequence[str],
        *,
        bootstrap: str = "",
        prefix: str | None = None,
        links: int = 1,
        client: bool = True,
        witness: bool = False,
        two_node: bool = False,
        timers: Mapping[str, str] | None = None,
        cluster_name: str = "lab",
    ) -> None:
        self.prefix = prefix or default_prefix()
        if not _PREFIX.fullmatch(self.prefix):
            raise LabError(f"lab prefix {self.prefix!r} must be 2-7 lower-case letters/digits, letter first")
        if not 1 <= links <= 2:
            raise LabError(f"a lab has one or two links per node, not {links}")
        if not nodes or len(nodes) > 60:
            raise LabError("a lab needs 1 to 60 nodes")
        self.root = root
        self.nodes = list(nodes)
        self.links = links
        self.has_client = client
        self.has_witness = witness
        self.cluster_name = cluster_name
        self.two_node = two_node
        self.timers = dict(timers or {})
        self.bootstrap = bootstrap
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.witness_proc: subprocess.Popen[bytes] | None = None
        self._subnet_index = zlib.crc32(self.prefix.encode()) % 250
        self.vip = self._host(0, VIP_HOST)
        """A free address on link 0 for a virtual IP (the bridge's /24)."""

    # --- names and addresses --------------------------------------------------------------------------

    def namespace(self, name: str) -> str:
        """The network namespace of node ``name`` (or of ``client`` / ``witness``)."""
        return f"{self.prefix}-{name}"

    @property
    def client_ns(self) -> str:
        """The client namespace, on the same bridges as the nodes."""
        return self.namespace(CLIENT)

    def bridge(self, link: int) -> str:
        """The host bridge of link ``link``."""
        return f"{self.prefix}-b{link}"

    def subnet(self, link: int) -> ipaddress.IPv4Network:
        """The /24 of link ``link`` (the same inside every namespace of this lab)."""
        return ipaddress.IPv4Network(f"10.{180 + link}.{self._subnet_index}.0/24")

    def _host(self, link: int, host: int) -> str:
        return str(self.subnet(link).network_address + host)

    def _host_number(self, name: str) -> int:
        if name == CLIENT:
            return CLIENT_HOST
        if name == WITNESS:
            return WITNESS_HOST
        return FIRST_NODE_HOST + 1 + self.nodes.index(name)

    def address(self, name: str, link: int = 0) -> str:
        """The address of node ``name`` (or ``client`` / ``witness``) on link ``link``."""
        return self._host(link, self._host_number(name))

    def interface(self, link: int = 0) -> str:
        """The interface name of link ``link`` inside every namespace (``eth0``, ``eth1``)."""
        return f"eth{link}"

    def node_dir(self, name: str) -> Path:
        """The node's directory: configuration, daemon.log, api.sock, Raft log, agents' state."""
        return self.root / name

    def api(self, name: str, timeout_s: float = 10.0) -> ApiClient:
        """An API client on node ``name``'s local socket (use as a context manager)."""
        return ApiClient(socket_path=self.node_dir(name) / "api.sock", timeout_s=timeout_s)

    def _members(self) -> list[str]:
        extra = ([CLIENT] if self.has_client else []) + ([WITNESS] if self.has_witness else [])
        return self.nodes + extra

    # --- building and removing the network ------------------------------------------------------------

    def create(self) -> None:
        """Build bridges and namespaces (removing what a crashed run with this prefix left); start the
        witness if asked. On failure everything built so far is removed again."""
        why = lab_supported()
        if why is not None:
            raise LabError(why)
        self.clean_leftovers()
        self.root.mkdir(parents=True, exist_ok=True)
        write_key_file(self.root / "cluster.key", force=True)
        try:
            for link in range(self.links):
                self._make_bridge(link)
            for name in self._members():
                self._make_namespace(name)
            if self.has_witness:
                self._start_witness()
        except BaseException:
            self.teardown()
            raise

    def _make_bridge(self, link: int) -> None:
        br = self.bridge(link)
        sh("ip", "link", "add", br, "type", "bridge")
        sh("ip", "link", "set", br, "alias", f"hakeeper-lab owner={os.getpid()}")
        sh("ip", "link", "set", br, "up")

    def _make_namespace(self, name: str) -> None:
        ns = self.namespace(name)
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        tag = "c" if name == CLIENT else "w" if name == WITNESS else str(self.nodes.index(name) + 1)
        for link in range(self.links):
            outside, inside = f"{self.prefix}-v{tag}l{link}", self.interface(link)
            sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside, "netns", ns)
            sh("ip", "link", "set", outside, "master", self.bridge(link), "up")
            self._address_link(ns, name, link)

    def _address_link(self, ns: str, name: str, link: int) -> None:
        inside = self.interface(link)
        sh("ip", "-n", ns, "addr", "add", f"{self.address(name, link)}/24", "dev", inside)
        sh("ip", "-n", ns, "link", "set", inside, "up")

    def clean_leftovers(self) -> None:
        """Remove namespaces, links and processes carrying this prefix from an earlier (crashed) run.
        Refuses when a live process other than this one owns the prefix."""
        owner = self._owner()
        if owner is not None and owner != os.getpid() and _pid_alive(owner):
            raise LabError(
                f"the lab prefix {self.prefix} is in use by the running process {owner}; "
                "give this lab another prefix"
            )
        self._remove_everything()

    def _owner(self) -> int | None:
        done = sh("ip", "-o", "link", "show", "dev", self.bridge(0), check=False)
        found = re.search(r"alias hakeeper-lab owner=(\d+)", done.stdout)
        return int(found.group(1)) if found else None

    def _our_namespaces(self) -> list[str]:
        return [ns for ns in netns_agent.namespaces() if ns.startswith(f"{self.prefix}-")]

    def _our_links(self) -> list[str]:
        out = sh("ip", "-o", "link", "show").stdout
        names = [line.split(":", 2)[1].strip().split("@", 1)[0] for line in out.splitlines() if ":" in line]
        return [n for n in names if n.startswith(f"{self.prefix}-")]

    def _remove_everything(self) -> None:
        for ns in self._our_namespaces():
            with contextlib.suppress(netns_agent.Failure):
                netns_agent.kill_all(ns)
            sh("ip", "netns", "delete", ns, check=False)
        for link in self._our_links():  # bridges; veths went with their namespaces
            sh("ip", "link", "delete", link, check=False)

    def teardown(self) -> None:
        """Kill every process of the lab and remove its namespaces and bridges. Safe to call twice."""
        for proc in [*self.procs.values(), *([self.witness_proc] if self.witness_proc else [])]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self._remove_everything()
        for proc in [*self.procs.values(), *([self.witness_proc] if self.witness_proc else [])]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self.procs.clear()
        self.witness_proc = None

    def __enter__(self) -> LabCluster:
        self.create()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.teardown()

    # --- processes ------------------------------------------------------------------------------------

    def _in(self, name: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(name), *argv]

    def _spawn(self, name: str, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                self._in(name, argv), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _start_witness(self) -> None:
        address = f"{self.address(WITNESS)}:{WITNESS_PORT}"
        argv = [sys.executable, "-m", "hakeeper", "witness", "--listen", address]
        argv += ["--key", str(self.root / "cluster.key"), "--cluster", self.cluster_name]
        self.witness_proc = self._spawn(WITNESS, argv, self.root / "witness.log")

    def config_text(self, name: str) -> str:
        """Node ``name``'s ``cluster.toml``: every node's addresses per link, quorum options, timers."""
        lines = ["[cluster]", f'name = "{self.cluster_name}"', f'key_file = "{self.root / "cluster.key"}"']
        lines += [f'data_dir = "{self.node_dir(name)}"', "", "[quorum]"]
        lines += [f"two_node = {'true' if self.two_node else 'false'}"]
        if self.has_witness:
            lines += [f'witness = "{self.address(WITNESS)}:{WITNESS_PORT}"']
        lines += ["", "[timers]", *(f'{key} = "{value}"' for key, value in self.timers.items()), ""]
        for i, node in enumerate(self.nodes, start=1):
            addresses = ", ".join(f'"{self.address(node, link)}:{DAEMON_PORT}"' for link in range(self.links))
            lines += ["[[nodes]]", f'name = "{node}"', f"id = {i}", f"addresses = [{addresses}]", ""]
        return "\n".join(lines)

    def start(self, name: str) -> None:
        """Start node ``name``'s daemon inside its namespace (its links must be up to be useful)."""
        if name in self.procs and self.procs[name].poll() is None:
            raise LabError(f"the daemon of {name} is already running")
        if not self.bootstrap:
            raise LabError("set the lab's bootstrap configuration before starting daemons")
        node_dir = self.node_dir(name)
        node_dir.mkdir(parents=True, exist_ok=True)
        (node_dir / "cluster.toml").write_text(self.config_text(name))
        (self.root / "bootstrap.toml").write_text(self.bootstrap)
        argv = [sys.executable, "-m", "hakeeper", "daemon", "-v", "--config", str(node_dir / "cluster.toml")]
        argv += ["--node", name, "--bootstrap", str(self.root / "bootstrap.toml")]
        self.procs[name] = self._spawn(name, argv, node_dir / "daemon.log")

    def start_all(self) -> None:
        """Start every node's daemon."""
        for name in self.nodes:
            self.start(name)

    def alive(self, name: str) -> bool:
        """Whether node ``name``'s daemon process is running (it may have been fenced meanwhile)."""
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def power_off(self, name: str) -> None:
        """A machine failure: links down, then every process in the node's namespace killed."""
        try:
            netns_agent.power_off(self.namespace(name))
        except netns_agent.Failure as err:
            raise LabError(f"could not power off {name}: {err}") from err
        self._reap(name)

    def _reap(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def power_on(self, name: str, *, start: bool = True) -> None:
        """A reboot after a failure or a fence: whatever still ran is killed, runtime state is cleared
        (addresses agents added, the agents' run directory), links come up, the daemon starts again."""
        ns = self.namespace(name)
        try:
            netns_agent.kill_all(ns)
        except netns_agent.Failure as err:
            raise LabError(f"could not power on {name}: {err}") from err
        self._reap(name)
        shutil.rmtree(self.node_dir(name) / "lrm", ignore_errors=True)  # HA_VARRUN is not kept over a boot
        for link in range(self.links):
            sh("ip", "-n", ns, "addr", "flush", "dev", self.interface(link))
            self._address_link(ns, name, link)
        if start:
            self.start(name)

    def cut(self, name: str, link: int | None = None) -> None:
        """Isolate node ``name``: its links (or only link ``link``) go down, its processes keep running."""
        self._set_links(name, up=False, link=link)

    def heal(self, name: str, link: int | None = None) -> None:
        """Bring node ``name``'s links (or only link ``link``) up again after :meth:`cut`."""
        self._set_links(name, up=True, link=link)

    def _set_links(self, name: str, *, up: bool, link: int | None) -> None:
        if link is not None and not 0 <= link < self.links:
            raise LabError(f"this lab has {self.links} link(s) per node; there is no link {link}")
        try:
            if link is None:
                netns_agent.set_links(self.namespace(name), up=up)
            else:
                state = "up" if up else "down"
                netns_agent.ip("-n", self.namespace(name), "link", "set", self.interface(link), state)
        except netns_agent.Failure as err:
            raise LabError(f"could not set the links of {name} {'up' if up else 'down'}: {err}") from err

    def stop_all(self, timeout: float = 30.0) -> None:
        """Stop every daemon cleanly (SIGTERM: resources stopped or moved), killing what stays too long."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in list(self.procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.procs[name].wait(timeout=max(0.1, deadline - time.monotonic()))
            self._reap(name)

    def logs(self, tail: int = 4000) -> str:
        """The end of every node's daemon log (and the witness's), for a failed test's message."""
        parts = []
        for name in self.nodes:
            path = self.node_dir(name) / "daemon.log"
            if path.exists():
                parts.append(f"--- {name} ---\n" + path.read_text(errors="replace")[-tail:])
        witness_log = self.root / "witness.log"
        if witness_log.exists():
            parts.append("--- witness ---\n" + witness_log.read_text(errors="replace")[-tail:])
        return "\n".join(parts)

    # --- the client's view ----------------------------------------------------------------------------

    def run_in(self, name: str, *argv: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a command inside namespace ``name`` (a node, ``client`` or ``witness``); never raises on a
        non-zero exit."""
        return sh(*self._in(name, argv), check=False, timeout=timeout)

    def client_get(self, url: str, timeout: float = 1.0) -> str | None:
        """GET ``url`` from the client namespace: the body (stripped), or ``None`` without an answer."""
        if not self.has_client:
            raise LabError("this lab has no client namespace")
        argv = ["curl", "-s", "-f", "--max-time", str(timeout), url]
        try:
            done = self.run_in(CLIENT, *argv, timeout=timeout + 10)
        except LabError:
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    def fence_device_toml(self, device_id: str = "fence-lab") -> str:
        """A bootstrap resource: the lab fence agent, mapping every node name to its namespace."""
        host_map = ";".join(f"{node}:{self.namespace(node)}" for node in self.nodes)
        return (
            f"\n[resources.{device_id}]\n"
            'agent = "stonith:fence_hakeeper_netns"\n'
            f'params = {{ pcmk_host_map = "{host_map}" }}\n'
        )


def web_group_bootstrap(lab: LabCluster, *, fencing: bool, port: int, monitor: str = "5s") -> str:
    """A bootstrap configuration for ``lab``: stickiness 100 and the group ``websvc`` = ``vip`` (the lab's
    VIP on link 0, announced 3 times 50 ms apart) then ``web`` (the demo's HTTP service bound to the VIP,
    health-checked through it); with ``fencing``, the lab fence device and stonith-enabled.

    Fencing powers nodes off rather than rebooting them: the lab agent's ``on`` only brings links up, so a
    "rebooted" namespace would still hold the VIP it had and answer ARP for it next to the new owner."""
    web = f"{sys.executable} -m hakeeper.cli.demo_web --bind {lab.vip} --port {port}"
    nodes = "\n".join(f"[nodes.{n}]" for n in lab.nodes)
    device = lab.fence_device_toml() if fencing else ""
    nic = lab.interface(0)
    return f"""
[cluster]
name = "{lab.cluster_name}"

[properties]
stonith-enabled = {"true" if fencing else "false"}
stonith-action = "off"   # a fenced lab node stays off until power_on reboots it (and clears its VIPs)

[rsc_defaults]
resource-stickiness = 100

{nodes}
{device}
[resources.vip]
agent = "ocf:hakeeper:vip"
params = {{ ip = "{lab.vip}", cidr_netmask = 24, nic = "{nic}", arp_count = 3, arp_interval = 50 }}
ops = [{{ name = "monitor", interval = "{monitor}", timeout = "10s" }}]

[resources.web]
agent = "ocf:hakeeper:process"
params = {{ command = "{web}", health_http = "http://{lab.vip}:{port}/", stop_grace = 2 }}
ops = [{{ name = "monitor", interval = "{monitor}", timeout = "10s" }}]

[resources.websvc]
group = ["vip", "web"]
"""
