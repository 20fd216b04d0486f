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

Every name (namespaces, bridges, host-side veths) starts with the instance's prefix, and every address
lies in the instance's subnets. Labs of concurrent processes (parallel test workers, a demo next to a
test) must never share either: a lab reserves its prefix and subnet index in a machine-wide registry
(:class:`LabRegistry`, files under ``/run/hakeeper-lab`` changed under a lock) when it is constructed and
releases them at :meth:`LabCluster.teardown`; a reservation whose process is gone is reclaimed, together
with what that process left in the network. The default prefix is ``hkl<subnet index>``. The bridge's
alias also records the owning process, so a lab never removes network objects a live process owns, even
one that predates the registry. Creating a lab first removes what a crashed earlier run with the same
prefix left behind; :meth:`LabCluster.teardown` removes the namespaces, bridges and processes of this lab
only.

When something goes wrong, :meth:`LabCluster.diagnosis` says, per node, the daemon's command line,
whether it runs or how it ended, whether its namespace still exists, and the end of its output (the
daemon's stdout and stderr go to ``daemon.log`` in the node's directory, after a line the lab writes
before starting it, so an empty daemon is told from one never started).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from hakeeper.api.client import ApiClient
from hakeeper.cli.localcluster import wait_until
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
MAX_NODES = 60
IFNAMSIZ = 15  # Linux interface names: at most 15 characters
REGISTRY_DIR = Path("/run/hakeeper-lab")
SLOTS = 250  # subnet indexes: the third octet of 10.180.<index>.0/24 (and 10.181.<index>.0/24)
_LOCK_WAIT_S = 60.0
_START_MARK = "--- lab: "  # the line the lab writes to a daemon's log before starting it


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot), or ``None`` when there is no such process.
    A pid names one process only together with its start time: pids are reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after "pid (comm)": field 3 is fields[0]
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


# --- which prefix and subnet a lab gets ---------------------------------------------------------------------


@dataclass(frozen=True)
class LabSlot:
    """One lab's reservation: its name prefix and subnet index, and the process holding them."""

    index: int
    prefix: str
    pid: int
    started: int  # the owner's start time (see process_start): a reused pid is not the owner


def slot_prefix(index: int) -> str:
    """The default prefix of the lab with subnet index ``index``."""
    return f"hkl{index}"


def check_prefix(prefix: str) -> None:
    """A prefix must make valid interface names for every lab shape; :class:`LabError` says why not."""
    if not _PREFIX.fullmatch(prefix):
        raise LabError(f"lab prefix {prefix!r} must be 2-7 lower-case letters/digits, letter first")
    longest = longest_interface_name(prefix)
    if len(longest) > IFNAMSIZ:
        raise LabError(f"lab prefix {prefix!r} is too long: {longest!r} exceeds {IFNAMSIZ} characters")


def longest_interface_name(prefix: str, links: int = 2) -> str:
    """The longest host interface name a lab with ``prefix`` makes (a veth of node 60 on its last link)."""
    return max(f"{prefix}-b{links - 1}", f"{prefix}-v{MAX_NODES}l{links - 1}", key=len)


def choose_slot(held: Sequence[LabSlot], prefix: str | None, slots: int = SLOTS) -> tuple[int, str]:
    """The subnet index and prefix for a new lab, given the live reservations ``held``: the lowest free
    index, and ``prefix`` or else ``hkl<index>``. Two live labs never share an index or a prefix."""
    by_prefix = {slot.prefix: slot for slot in held}
    if prefix is not None and prefix in by_prefix:
        owner = by_prefix[prefix].pid
        raise LabError(
            f"the lab prefix {prefix} is in use by the running process {owner}; give this lab another prefix"
        )
    used = {slot.index for slot in held}
    for index in range(slots):
        name = prefix or slot_prefix(index)
        if index not in used and name not in by_prefix:
            return index, name
    owners = sorted({slot.pid for slot in held})
    raise LabError(f"all {slots} lab subnets are taken by running labs (processes {owners}); tear some down")


class LabRegistry:
    """Reservations of lab prefixes and subnets, shared by every process on this machine.

    One JSON file per reservation (``slot-<index>.json``) in ``directory``, read and changed only under an
    exclusive ``flock`` on ``directory/lock`` (the kernel drops it if its holder dies). A reservation whose
    process is gone (pid dead, or reused by a process started at another time) is stale: the next
    :meth:`reserve` removes what that process left in the network (``reclaim``) and frees it."""

    def __init__(self, directory: Path = REGISTRY_DIR) -> None:
        self.directory = directory

    def reserve(self, prefix: str | None, reclaim: Callable[[str], None]) -> LabSlot:
        """Reserve a subnet index and ``prefix`` (or a default prefix) for this process."""
        me = os.getpid()
        with self._locked():
            live = self._reclaim_stale(reclaim)
            index, name = choose_slot(live, prefix)
            slot = LabSlot(index, name, me, process_start(me) or 0)
            self._write(slot)
        return slot

    def release(self, slot: LabSlot) -> None:
        """Give ``slot`` back (only if it is still ours: a reclaimed slot may belong to another lab now,
        and a child forked after the reservation is not its owner)."""
        if slot.pid != os.getpid():
            return
        with self._locked():
            if self._read(self._path(slot.index)) == slot:
                self._path(slot.index).unlink(missing_ok=True)

    def held(self) -> list[LabSlot]:
        """The reservations of processes that are alive."""
        with self._locked():
            return [slot for slot in self._entries() if _holder_alive(slot)]

    def _reclaim_stale(self, reclaim: Callable[[str], None]) -> list[LabSlot]:
        live = []
        for slot in self._entries():
            if _holder_alive(slot):
                live.append(slot)
                continue
            reclaim(slot.prefix)  # still under the lock: nobody can take this prefix meanwhile
            self._path(slot.index).unlink(missing_ok=True)
        return live

    def _path(self, index: int) -> Path:
        return self.directory / f"slot-{index}.json"

    def _entries(self) -> list[LabSlot]:
        found = []
        for path in sorted(self.directory.glob("slot-*.json")):
            slot = self._read(path)
            if slot is None:
                path.unlink(missing_ok=True)  # unreadable: written by nobody we know, reserves nothing
            else:
                found.append(slot)
        return found

    @staticmethod
    def _read(path: Path) -> LabSlot | None:
        try:
            data = json.loads(path.read_text())
            slot = LabSlot(int(data["index"]), str(data["prefix"]), int(data["pid"]), int(data["started"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return slot if path.name == f"slot-{slot.index}.json" else None

    def _write(self, slot: LabSlot) -> None:
        path = self._path(slot.index)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(asdict(slot)))
        partial.replace(path)  # atomic: a reader sees the old file or the whole new one

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise LabError(f"cannot use the lab registry in {self.directory}: {err}") from err
        try:
            deadline = time.monotonic() + _LOCK_WAIT_S
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LabError(
                            f"the lab registry {self.directory} stayed locked for {_LOCK_WAIT_S:g} s; "
                            "is a lab process hung while building or tearing down?"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # releases the lock


def _holder_alive(slot: LabSlot) -> bool:
    return process_start(slot.pid) == slot.started


# --- the network objects of one prefix ----------------------------------------------------------------------


def owner_alias() -> str:
    """The alias a lab's bridges carry: the owning process and its start time."""
    return f"hakeeper-lab owner={os.getpid()} started={process_start(os.getpid()) or 0}"


def bridge_owner(prefix: str) -> tuple[int, int | None] | None:
    """(pid, start time if recorded) from the alias of the prefix's first bridge, if that bridge exists."""
    done = sh("ip", "-o", "link", "show", "dev", f"{prefix}-b0", check=False)
    found = re.search(r"alias hakeeper-lab owner=(\d+)(?: started=(\d+))?", done.stdout)
    if not found:
        return None
    return int(found.group(1)), int(found.group(2)) if found.group(2) else None


def foreign_owner(prefix: str) -> int | None:
    """A live process other than this one that owns the prefix's network objects, if any."""
    owner = bridge_owner(prefix)
    if owner is None or owner[0] == os.getpid():
        return None
    pid, started = owner
    alive = _pid_alive(pid) if started is None else process_start(pid) == started
    return pid if alive else None


def remove_network(prefix: str) -> None:
    """Kill every process in the namespaces ``<prefix>-*``, delete them and every link ``<prefix>-*``."""
    for ns in netns_agent.namespaces():
        if ns.startswith(f"{prefix}-"):
            with contextlib.suppress(netns_agent.Failure):
                netns_agent.kill_all(ns)
            sh("ip", "netns", "delete", ns, check=False)
    out = sh("ip", "-o", "link", "show").stdout
    names = [line.split(":", 2)[1].strip().split("@", 1)[0] for line in out.splitlines() if ":" in line]
    for link in names:  # bridges; veths went with their namespaces
        if link.startswith(f"{prefix}-"):
            sh("ip", "link", "delete", link, check=False)


def reclaim_network(prefix: str) -> None:
    """Remove what a dead lab with ``prefix`` left, unless a live process (a lab without the registry)
    owns that prefix now."""
    if foreign_owner(prefix) is None:
        remove_network(prefix)


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
        registry: LabRegistry | None = None,
    ) -> None:
        """Reserves the lab's prefix (``prefix`` or a free ``hkl<n>``) and subnets at once, when this
        machine can run labs: call :meth:`teardown` (or use ``with``) to give them back."""
        if prefix is not None:
            check_prefix(prefix)
        if not 1 <= links <= 2:
            raise LabError(f"a lab has one or two links per node, not {links}")
        if not nodes or len(nodes) > MAX_NODES:
            raise LabError(f"a lab needs 1 to {MAX_NODES} nodes")
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
        self.argv: dict[str, list[str]] = {}
        """The command line each node's daemon was last started with (for :meth:`diagnosis`)."""
        self.exit_codes: dict[str, int | None] = {}
        """How each node's last reaped daemon ended (a negative code: killed by that signal)."""
        self._registry = registry or LabRegistry()
        self._network_ours = False  # set once no live process but us owns the prefix's network objects
        self._torn_down = False
        self._holding = lab_supported() is None  # else create() says why; names only fill configurations
        self.slot = self._registry.reserve(prefix, reclaim_network) if self._holding else _unlisted(prefix)
        self.prefix = self.slot.prefix
        self.vip = self._host(0, VIP_HOST)
        """A free address on link 0 for a virtual IP (the bridge's /24)."""

    @property
    def reserved(self) -> bool:
        """Whether this lab holds a reservation in the registry (until :meth:`teardown`)."""
        return self._holding

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
        return ipaddress.IPv4Network(f"10.{180 + link}.{self.slot.index}.0/24")

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
        if self._torn_down:
            raise LabError("this lab was torn down and its prefix given back; build a new LabCluster")
        if not self.reserved:
            raise LabError("this lab was constructed where labs cannot run; build a new LabCluster")
        try:
            self.clean_leftovers()
            self.root.mkdir(parents=True, exist_ok=True)
            write_key_file(self.root / "cluster.key", force=True)
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
        sh("ip", "link", "set", br, "alias", owner_alias())
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
        Refuses, touching nothing, when a live process other than this one owns the prefix (a lab that
        does not use the registry)."""
        owner = foreign_owner(self.prefix)
        if owner is not None:
            raise LabError(
                f"the lab prefix {self.prefix} is in use by the running process {owner}; "
                "give this lab another prefix"
            )
        self._network_ours = True
        remove_network(self.prefix)

    def teardown(self) -> None:
        """Kill every process of the lab, remove its namespaces and bridges (never those of another
        live process) and give its prefix and subnets back. Safe to call twice."""
        procs = [*self.procs.values(), *([self.witness_proc] if self.witness_proc else [])]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._network_ours:
            remove_network(self.prefix)
            self._network_ours = False
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        for name, proc in self.procs.items():
            self.exit_codes[name] = proc.returncode
        self.procs.clear()
        self.witness_proc = None
        if self._holding:
            self._registry.release(self.slot)
            self._holding = False
        self._torn_down = True

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
        """Start ``argv`` in namespace ``name``, its stdout and stderr appended to ``log`` after a line
        saying when and what (so a log holding only that line means: started, and never wrote)."""
        full = self._in(name, argv)
        self.argv[name] = full
        with log.open("ab") as out:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            out.write(f"{_START_MARK}{stamp} starting {shlex.join(full)}\n".encode())
            out.flush()
            try:
                return subprocess.Popen(full, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as err:
                raise LabError(f"could not start {name}'s process ({shlex.join(full)}): {err}") from err

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
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            self.exit_codes[name] = proc.returncode

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
        """For a failed test's message: :meth:`diagnosis` (every node's daemon, how it is, and the end
        of its log; the witness's too)."""
        return self.diagnosis(tail)

    def process_state(self, name: str) -> str:
        """How node ``name``'s daemon is: running (pid), ended (exit code or signal), or never started."""
        proc = self.witness_proc if name == WITNESS else self.procs.get(name)
        if proc is not None:
            code = proc.poll()
            return (
                f"running (pid {proc.pid})"
                if code is None
                else f"pid {proc.pid} ended: {describe_exit(code)}"
            )
        if name not in self.argv:
            return "never started"
        if name not in self.exit_codes:
            return "not running"
        code = self.exit_codes[name]
        return "powered off, still dying" if code is None else f"powered off (ended: {describe_exit(code)})"

    def diagnosis(self, tail: int = 4000) -> str:
        """What the lab knows about every node, for an operator or a failed test: its namespace and
        whether it still exists, the daemon's command line and state, and the end of its log."""
        bridges = [
            f"{self.bridge(k)} {_presence(Path('/sys/class/net', self.bridge(k)))}" for k in range(self.links)
        ]
        held = "reserved" if self.reserved else "not reserved"
        lines = [f"lab {self.prefix} (subnet {self.subnet(0)}, {held} by process {self.slot.pid}); bridges: "]
        lines[0] += ", ".join(bridges)
        members = [*self.nodes, *([WITNESS] if self.has_witness else [])]
        for name in members:
            log = self.root / "witness.log" if name == WITNESS else self.node_dir(name) / "daemon.log"
            ns = self.namespace(name)
            lines.append(
                f"--- {name}: {self.process_state(name)}; namespace {ns} "
                f"{_presence(Path(netns_agent.NETNS_DIR, ns))}"
            )
            if name in self.argv:
                lines.append(f"command: {shlex.join(self.argv[name])}")
            lines.append(log_tail(log, tail))
        return "\n".join(lines)

    def wait_for(
        self, check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.5
    ) -> None:
        """Wait until ``check()`` holds; else :class:`LabError` saying ``what`` did not happen, with the
        lab's :meth:`diagnosis`."""
        if not wait_until(check, timeout_s, interval_s):
            raise LabError(f"the lab did not {what} within {timeout_s:g} s\n{self.diagnosis()}")

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


def _unlisted(prefix: str | None) -> LabSlot:
    """Names for a lab that cannot run here (no reservation: nothing will be built)."""
    index = os.getpid() % SLOTS
    return LabSlot(index, prefix or slot_prefix(index), os.getpid(), 0)


def describe_exit(code: int | None) -> str:
    """A process's end in words: its exit code, or the signal that killed it."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def log_tail(path: Path, tail: int) -> str:
    """The last ``tail`` characters of a daemon's log, saying so when it is missing or nothing but the
    lab's own start line (the process never wrote: it hung or was killed before its first line)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        return f"({path.name} cannot be read: {err.strerror})"
    own = [line for line in text.splitlines() if line and not line.startswith(_START_MARK)]
    if not own:
        starts = text.count(_START_MARK)
        return f"({path.name}: the process wrote nothing after {starts} start(s): hung or killed early)"
    return f"{path.name}, last {tail} characters:\n" + text[-tail:]


def _presence(path: Path) -> str:
    return "present" if path.exists() else "MISSING"


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
