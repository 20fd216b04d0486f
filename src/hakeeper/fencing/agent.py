"""The fence-agents protocol: what to write on the agent's stdin, and what its exit status means.

An agent started without arguments reads ``key=value`` lines from stdin. We send ``action=``, for actions
against a node ``nodename=<node>`` and the host argument (``port=``/``plug=``, per ``pcmk_host_argument`` or
the agent's metadata) unless the device configures that parameter itself, and every device parameter (the
``pcmk_*`` ones are the cluster's, never the agent's). Exit status: off/on/reboot/monitor/list 0 is success;
status 0 is "on", 2 is "off", anything else an error. A timeout is a failure.

Running goes through the LRM's executor (own process group, SIGKILL of the group at the timeout, bounded
output), which feeds the lines to the agent's stdin: the parameters (which may hold passwords) never appear
on a command line or in the environment.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence

import msgspec
from lxml import etree

from hakeeper.agents.base import Invocation
from hakeeper.fencing.devices import FenceDevice
from hakeeper.lrm.executor import RawResult, run_invocation

TARGETED_ACTIONS = frozenset({"off", "on", "reboot", "status"})
DEFAULT_SEARCH_PATH = ("/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin")
_AGENT_NAME = re.compile(r"fence_[A-Za-z0-9_.+-]+")
_LOG_PREFIX = re.compile(
    r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ |[A-Z]+:root:)?(?:ERROR|WARNING|INFO)?:?\s*"
)
_MAX_PORT_LEN = 255

EXIT_MEANINGS: Mapping[int, str] = {
    1: "the agent reported a generic error",
    2: "the agent rejected its parameters",
    3: "the device refused the login",
    4: "the connection to the device was lost",
    5: "the device timed out",
    6: "the device did not power on in time",
    7: "the device did not power off in time",
    8: "the device did not report a power status",
    9: "the management console did not report a power status",
    10: "no password was configured",
    11: "the login has too few privileges",
    12: "the virtual machine's UUID could not be found",
}


class AgentError(Exception):
    """The agent cannot be run or its answer cannot be understood."""


class FenceResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one agent run meant."""

    device: str
    action: str
    target: str | None = None
    ok: bool
    power: str | None = None
    """For ``status``: ``"on"`` or ``"off"`` when the agent answered (``ok`` is then True)."""
    ports: frozenset[str] | None = None
    """For ``list``: the ports the device knows."""
    reason: str = ""
    exit_code: int | None = None
    timed_out: bool = False
    output: str = ""
    duration_s: float = 0.0


# --- stdin ------------------------------------------------------------------------------------------


def default_host_argument(parameters: Sequence[str] | None) -> str:
    """``port`` if the agent's metadata has it, else ``plug``, else ``none``; ``port`` if unknown."""
    if parameters is None or "port" in parameters:
        return "port"
    return "plug" if "plug" in parameters else "none"


def stdin_lines(
    device: FenceDevice,
    action: str,
    target: str | None = None,
    *,
    metadata_parameters: Sequence[str] | None = None,
) -> list[str]:
    """The ``key=value`` lines for running ``action`` (a cluster action) on ``device`` against ``target``."""
    lines = [f"action={device.agent_action(action)}"]
    if target is not None and action in TARGETED_ACTIONS:
        lines.append(f"nodename={target}")
        host_arg = device.host_argument or default_host_argument(metadata_parameters)
        if host_arg.lower() != "none" and host_arg not in device.params:
            lines.append(f"{host_arg}={device.port_for(target)}")
    for name, value in device.params.items():
        if name in ("action", "nodename") or name.startswith("pcmk_"):
            continue
        _check_line(device.id, name, value)
        lines.append(f"{name}={value}")
    return lines


def _check_line(device: str, name: str, value: str) -> None:
    if any(c in value for c in "\n\r\0") or any(c in name for c in "\n\r\0="):
        raise AgentError(
            f"parameter {name!r} of fencing device {device} contains a line break, a NUL or an '=' in its "
            f"name; the fence-agents protocol cannot pass it"
        )


# --- running ----------------------------------------------------------------------------------------


def find_agent(name: str, search_path: Sequence[str] | None = None) -> str:
    """The absolute path of agent ``name``: our own environment's bin, then ``PATH``, then sbin dirs."""
    if not _AGENT_NAME.fullmatch(name):
        raise AgentError(f"{name!r} is not a fence agent name (they look like fence_ipmilan)")
    dirs = list(search_path) if search_path is not None else _default_dirs()
    for directory in dirs:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise AgentError(
        f"fence agent {name} is not installed on this node (looked in {', '.join(dirs)}); "
        f"install the package that provides it (Debian: fence-agents)"
    )


def _default_dirs() -> list[str]:
    own_bin = os.path.dirname(sys.executable)
    path_dirs = os.environ.get("PATH", "").split(os.pathsep)
    return list(dict.fromkeys(d for d in [own_bin, *path_dirs, *DEFAULT_SEARCH_PATH] if d))


def agent_invocation(agent_path: str, lines: Sequence[str]) -> Invocation:
    """The agent without arguments (so it reads stdin), with ``lines`` as its stdin."""
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C", "LANG": "C"}
    return Invocation(argv=[agent_path], env=env, stdin=("\n".join(lines) + "\n").encode())


async def run_agent(
    device: FenceDevice,
    action: str,
    target: str | None = None,
    *,
    timeout_s: float | None = None,
    metadata_parameters: Sequence[str] | None = None,
    search_path: Sequence[str] | None = None,
) -> FenceResult:
    """Run one action of ``device`` and interpret it; never raises for agent misbehaviour."""
    timeout = timeout_s if timeout_s is not None else device.timeout_ms(action) / 1000.0
    try:
        path = find_agent(device.agent, search_path)
        lines = stdin_lines(device, action, target, metadata_parameters=metadata_parameters)
    except AgentError as err:
        return FenceResult(device=device.id, action=action, target=target, ok=False, reason=str(err))
    raw = await run_invocation(agent_invocation(path, lines), timeout)
    return interpret(device.id, action, target, raw, timeout)


# --- interpretation ---------------------------------------------------------------------------------


def last_error_line(stderr: str) -> str:
    """The agent's last meaningful stderr line, without the logging timestamp and level."""
    for line in reversed(stderr.splitlines()):
        text = _LOG_PREFIX.sub("", line).strip()
        if text and not text.startswith("Please use '-h'"):
            return text[:300]
    return ""


def _failure_reason(agent_action: str, raw: RawResult, timeout_s: float) -> str:
    if raw.spawn_error:
        return raw.spawn_error
    if raw.timed_out and raw.survived_kill:
        return (
            f"{agent_action} did not finish within {timeout_s:g}s and did not die when killed (stuck in I/O?)"
        )
    if raw.timed_out:
        return f"{agent_action} did not finish within {timeout_s:g}s and was killed"
    if raw.signal is not None:
        return f"{agent_action} was killed by signal {raw.signal}"
    code = raw.exit_code if raw.exit_code is not None else -1
    said = last_error_line(raw.stderr)
    meaning = EXIT_MEANINGS.get(code, "the agent failed")
    return f"{agent_action} failed with exit code {code} ({meaning})" + (f": {said}" if said else "")


def interpret(device: str, action: str, target: str | None, raw: RawResult, timeout_s: float) -> FenceResult:
    """The meaning of one agent run (see the module docstring for the exit-status rules)."""
    base = FenceResult(
        device=device,
        action=action,
        target=target,
        ok=False,
        exit_code=raw.exit_code,
        timed_out=raw.timed_out,
        output=raw.stdout,
        duration_s=max(0.0, raw.finished - raw.started),
    )
    finished = not raw.spawn_error and not raw.timed_out and raw.signal is None
    code = raw.exit_code
    if finished and action == "status" and code in (0, 2):
        return msgspec.structs.replace(base, ok=True, power="on" if code == 0 else "off")
    if not finished or code != 0:
        return msgspec.structs.replace(base, reason=_failure_reason(action, raw, timeout_s))
    if action == "list":
        try:
            ports = parse_list_output(raw.stdout)
        except AgentError as err:
            return msgspec.structs.replace(base, reason=str(err))
        return msgspec.structs.replace(base, ok=True, ports=ports)
    return msgspec.structs.replace(base, ok=True)


def parse_list_output(text: str) -> frozenset[str]:
    """The ports in a ``list`` answer: one ``port[,alias]`` per line (or several names on one line)."""
    ports: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        names = [line.split(",", 1)[0].strip()] if "," in line else line.split()
        for name in names:
            if not name.isprintable() or len(name) > _MAX_PORT_LEN or not name:
                raise AgentError(
                    f"the agent's list answer is not a list of ports (line {number}: {line[:60]!r})"
                )
            ports.add(name)
    return frozenset(ports)


# --- metadata ---------------------------------------------------------------------------------------


class AgentParameter(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    required: bool = False
    default: str | None = None
    type: str = "string"
    shortdesc: str = ""
    deprecated: bool = False
    obsoletes: str | None = None


class AgentMetadata(msgspec.Struct, frozen=True, kw_only=True):
    """What an agent's ``metadata`` action says about it."""

    name: str
    shortdesc: str = ""
    parameters: dict[str, AgentParameter] = {}
    actions: frozenset[str] = frozenset()

    @property
    def host_argument(self) -> str:
        return default_host_argument(list(self.parameters))

    def missing_parameters(self, given: Mapping[str, str]) -> list[str]:
        """Required parameters ``given`` lacks (the cluster supplies action, port/plug and nodename;
        a deprecated parameter counts for the one that replaced it, and the other way round)."""
        supplied_by_cluster = {"action", "port", "plug", "nodename"}
        missing = []
        for param in self.parameters.values():
            if not param.required or param.deprecated or param.name in supplied_by_cluster:
                continue
            aliases = {param.name, *(p.name for p in self.parameters.values() if p.obsoletes == param.name)}
            if param.obsoletes:
                aliases.add(param.obsoletes)
            if not aliases & set(given):
                missing.append(param.name)
        return missing


def parse_metadata(xml: str | bytes) -> AgentMetadata:
    """Parse ``<resource-agent>`` metadata; raises :class:`AgentError` saying what is wrong."""
    data = xml.encode() if isinstance(xml, str) else xml
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as err:
        raise AgentError(f"the agent's metadata is not XML: {err}") from err
    if root.tag != "resource-agent" or not root.get("name"):
        raise AgentError(f"the agent's metadata starts with <{root.tag}>; expected <resource-agent name=...>")
    params: dict[str, AgentParameter] = {}
    for p in root.iterfind("parameters/parameter"):
        name = p.get("name")
        if not name:
            raise AgentError("the agent's metadata has a <parameter> without a name")
        content = p.find("content")
        params[name] = AgentParameter(
            name=name,
            required=p.get("required", "0") in ("1", "true"),
            default=content.get("default") if content is not None else None,
            type=content.get("type", "string") if content is not None else "string",
            shortdesc=(p.findtext("shortdesc") or "").strip(),
            deprecated=p.get("deprecated", "0") in ("1", "true"),
            obsoletes=p.get("obsoletes"),
        )
    actions = frozenset(a.get("name", "") for a in root.iterfind("actions/action")) - {""}
    if "off" not in actions and "reboot" not in actions:
        raise AgentError(f"agent {root.get('name')} advertises neither off nor reboot; it cannot fence")
    return AgentMetadata(
        name=root.get("name", ""),
        shortdesc=root.get("shortdesc", "") or (root.findtext("shortdesc") or "").strip(),
        parameters=params,
        actions=actions,
    )


async def agent_metadata(
    agent: str, *, timeout_s: float = 10.0, search_path: Sequence[str] | None = None
) -> AgentMetadata:
    """Run ``agent``'s metadata action and parse it; raises :class:`AgentError`."""
    device = FenceDevice(id=agent, agent=agent)
    result = await run_agent(device, "metadata", timeout_s=timeout_s, search_path=search_path)
    if not result.ok:
        raise AgentError(f"{agent} metadata: {result.reason}")
    return parse_metadata(result.output)


class AgentRunner:
    """Runs devices the way the cluster does, with each agent's metadata fetched once and cached.

    The metadata decides the default host argument (``port``/``plug``/none); an agent whose metadata
    cannot be read still runs (with ``port``), and the reason is kept in ``metadata_errors``.
    """

    def __init__(self, *, search_path: Sequence[str] | None = None, metadata_timeout_s: float = 10.0) -> None:
        self.search_path = list(search_path) if search_path is not None else None
        self.metadata_timeout_s = metadata_timeout_s
        self._metadata: dict[str, AgentMetadata] = {}
        self.metadata_errors: dict[str, str] = {}

    async def metadata(self, agent: str) -> AgentMetadata | None:
        if agent not in self._metadata and agent not in self.metadata_errors:
            try:
                self._metadata[agent] = await agent_metadata(
                    agent, timeout_s=self.metadata_timeout_s, search_path=self.search_path
                )
            except AgentError as err:
                self.metadata_errors[agent] = str(err)
        return self._metadata.get(agent)

    def forget(self, agent: str) -> None:
        """Read the agent's metadata again next time (after a package upgrade, say)."""
        self._metadata.pop(agent, None)
        self.metadata_errors.pop(agent, None)

    async def run(
        self, device: FenceDevice, action: str, target: str | None = None, *, timeout_s: float | None = None
    ) -> FenceResult:
        meta = await self.metadata(device.agent)
        params = list(meta.parameters) if meta is not None else None
        return await run_agent(
            device,
            action,
            target,
            timeout_s=timeout_s,
            metadata_parameters=params,
            search_path=self.search_path,
        )
