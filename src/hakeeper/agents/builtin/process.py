"""``ocf:hakeeper:process``: run a command as a supervised daemon.

start launches ``command`` (split into words as a shell would, but never run through one) in its own
session, with optional ``user``, ``workdir``, ``environment`` and ``logfile``; it records
``pid starttime`` in the pidfile (so a recycled pid is never mistaken for ours) and waits until the
daemon is healthy. monitor checks that the pid is alive plus an optional health check:
``health_command`` (exits 0), ``health_tcp`` (``host:port`` accepts a connection) or ``health_http``
(a URL answering 2xx/3xx). stop sends SIGTERM to the daemon's process group, waits ``stop_grace``
seconds, then sends SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import time

from hakeeper.agents.builtin.common import Action, AgentFailure, OcfEnv, process_start_time
from hakeeper.agents.results import OcfRc

METADATA = """<?xml version="1.0"?>
<resource-agent name="process" version="1.0">
<version>1.1</version>
<longdesc lang="en">Runs a command as a supervised daemon: pidfile, user, working directory, environment;
monitored by pid liveness plus an optional health check (command, TCP connect or HTTP GET).</longdesc>
<shortdesc lang="en">Supervised process</shortdesc>
<parameters>
<parameter name="command" required="1">
<longdesc lang="en">The command line (split into words like a shell, never run through one).</longdesc>
<shortdesc lang="en">Command</shortdesc>
<content type="string"/>
</parameter>
<parameter name="pidfile" unique-group="pidfile">
<longdesc lang="en">Where the pid is kept (default under HA_RSCTMP).</longdesc>
<shortdesc lang="en">Pid file</shortdesc>
<content type="string"/>
</parameter>
<parameter name="user">
<longdesc lang="en">Run as this user.</longdesc>
<shortdesc lang="en">User</shortdesc>
<content type="string"/>
</parameter>
<parameter name="workdir">
<longdesc lang="en">Working directory.</longdesc>
<shortdesc lang="en">Working directory</shortdesc>
<content type="string" default="/"/>
</parameter>
<parameter name="environment">
<longdesc lang="en">Extra environment as NAME=VALUE words (shell quoting allowed).</longdesc>
<shortdesc lang="en">Environment</shortdesc>
<content type="string"/>
</parameter>
<parameter name="logfile">
<longdesc lang="en">File receiving the daemon's stdout and stderr.</longdesc>
<shortdesc lang="en">Log file</shortdesc>
<content type="string" default="/dev/null"/>
</parameter>
<parameter name="health_command">
<longdesc lang="en">A command that exits 0 while the service is healthy.</longdesc>
<shortdesc lang="en">Health command</shortdesc>
<content type="string"/>
</parameter>
<parameter name="health_tcp">
<longdesc lang="en">host:port that must accept a TCP connection.</longdesc>
<shortdesc lang="en">Health TCP address</shortdesc>
<content type="string"/>
</parameter>
<parameter name="health_http">
<longdesc lang="en">A URL that must answer GET with 2xx or 3xx.</longdesc>
<shortdesc lang="en">Health URL</shortdesc>
<content type="string"/>
</parameter>
<parameter name="health_timeout">
<longdesc lang="en">Seconds one health check may take.</longdesc>
<shortdesc lang="en">Health check timeout</shortdesc>
<content type="integer" default="5"/>
</parameter>
<parameter name="stop_grace">
<longdesc lang="en">Seconds between SIGTERM and SIGKILL on stop.</longdesc>
<shortdesc lang="en">Stop grace</shortdesc>
<content type="integer" default="10"/>
</parameter>
</parameters>
<actions>
<action name="start" timeout="30s"/>
<action name="stop" timeout="30s"/>
<action name="monitor" timeout="20s" interval="10s" depth="0"/>
<action name="validate-all" timeout="20s"/>
<action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
"""

POLL_S = 0.02
"""How often start checks readiness and stop checks the daemon is gone: a start's result is on the critical
path of whatever the cluster orders after it."""
SETTLE_S = 0.2
"""A daemon without a health check counts as started once it has stayed alive this long."""


def _pidfile(env: OcfEnv) -> str:
    return env.param("pidfile") or env.state_path("process") + ".pid"


def _running_pid(env: OcfEnv) -> int | None:
    """Our daemon's pid if the pidfile names a live process that started when we recorded it."""
    try:
        with open(_pidfile(env), encoding="ascii") as handle:
            words = handle.read().split()
    except FileNotFoundError:
        return None
    if len(words) != 2 or not words[0].isdigit():
        return None
    pid = int(words[0])
    return pid if process_start_time(pid) == words[1] else None


def _command(env: OcfEnv, name: str) -> list[str]:
    text = env.required(name) if name == "command" else env.param(name)
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise AgentFailure(
            f"parameter '{name}' cannot be split into words: {exc}", OcfRc.ERR_CONFIGURED
        ) from None
    if name == "command" and not words:
        raise AgentFailure("the required parameter 'command' is empty", OcfRc.ERR_CONFIGURED)
    return words


def _environment(env: OcfEnv) -> dict[str, str]:
    merged = {k: v for k, v in os.environ.items() if not k.startswith(("OCF_", "HAKEEPER_"))}
    for word in _command(env, "environment"):
        name, eq, value = word.partition("=")
        if not eq or not name:
            raise AgentFailure(f"environment entry {word!r} is not NAME=VALUE", OcfRc.ERR_CONFIGURED)
        merged[name] = value
    return merged


def _has_health_check(env: OcfEnv) -> bool:
    return any(env.param(name) for name in ("health_command", "health_tcp", "health_http"))


def health(env: OcfEnv) -> str:
    """Empty when healthy (or no check configured), else why not."""
    timeout = env.number("health_timeout", 5)
    if env.param("health_command"):
        try:
            proc = subprocess.run(
                _command(env, "health_command"), capture_output=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"health command failed: {exc}"
        if proc.returncode != 0:
            return f"health command exited with {proc.returncode}"
    if env.param("health_tcp"):
        host, _, port = env.param("health_tcp").rpartition(":")
        if not port.isdigit():
            raise AgentFailure("health_tcp must be host:port", OcfRc.ERR_CONFIGURED)
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout):
                pass
        except OSError as exc:
            return f"no TCP connection to {env.param('health_tcp')}: {exc.strerror or exc}"
    if env.param("health_http"):
        return _http_health(env.param("health_http"), timeout)
    return ""


def _http_health(url: str, timeout: float) -> str:
    if not url.startswith(("http://", "https://")):
        raise AgentFailure(
            f"health_http must be an http:// or https:// URL, not {url!r}", OcfRc.ERR_CONFIGURED
        )
    # imported here, after the daemon is spawned: urllib costs tens of milliseconds of a start's critical path
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return f"GET {url} failed: {exc}"
    return "" if 200 <= status < 400 else f"GET {url} answered {status}"


def start(env: OcfEnv) -> int:
    if _running_pid(env) is not None:
        return OcfRc.SUCCESS
    argv = _command(env, "command")
    user = env.param("user") or None
    if user and os.geteuid() != 0:
        raise AgentFailure(f"cannot run as user {user}: the cluster does not run as root", OcfRc.ERR_PERM)
    with open(env.param("logfile", "/dev/null") or "/dev/null", "ab") as log:
        try:
            child = subprocess.Popen(
                argv,
                cwd=env.param("workdir", "/") or "/",
                env=_environment(env),
                user=user,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        except (OSError, ValueError, KeyError) as exc:
            raise AgentFailure(f"could not start {argv[0]}: {exc}", OcfRc.ERR_INSTALLED) from None
    started = process_start_time(child.pid) or ""
    pidfile = _pidfile(env)
    os.makedirs(os.path.dirname(pidfile) or ".", exist_ok=True)
    with open(pidfile, "w", encoding="ascii") as handle:
        handle.write(f"{child.pid} {started}\n")
    return _wait_healthy(env, child)


def _wait_healthy(env: OcfEnv, child: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + max(1.0, env.timeout_s - 1.0)
    # with a health check, healthy means started (check at once); without one, staying alive a while does
    settle = time.monotonic() + (0.0 if _has_health_check(env) else SETTLE_S)
    why = "not checked yet"
    while time.monotonic() < deadline:
        code = child.poll()
        if code is not None:
            raise AgentFailure(f"the process exited right after start (exit code {code})", OcfRc.ERR_GENERIC)
        if time.monotonic() >= settle:
            why = health(env)
            if not why:
                return OcfRc.SUCCESS
        time.sleep(POLL_S)
    raise AgentFailure(f"the process did not become healthy in time: {why}", OcfRc.ERR_GENERIC)


def monitor(env: OcfEnv) -> int:
    pid = _running_pid(env)
    if pid is None:
        if os.path.exists(_pidfile(env)) and not env.is_probe:
            raise AgentFailure("the process has exited", OcfRc.NOT_RUNNING)
        return OcfRc.NOT_RUNNING
    why = health(env)
    if why:
        raise AgentFailure(why, OcfRc.ERR_GENERIC)
    return OcfRc.SUCCESS


def stop(env: OcfEnv) -> int:
    pid = _running_pid(env)
    if pid is not None:
        grace = min(env.number("stop_grace", 10), max(0.0, env.timeout_s - 2.0))
        _signal_group(pid, signal.SIGTERM)
        if not _wait_exit(pid, grace):
            _signal_group(pid, signal.SIGKILL)
            if not _wait_exit(pid, 2.0):
                raise AgentFailure(f"process {pid} survived SIGKILL", OcfRc.ERR_GENERIC)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_pidfile(env))
    return OcfRc.SUCCESS


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)  # the daemon leads its own session, so its group id is its pid
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _wait_exit(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process_start_time(pid) is None:
            return True
        time.sleep(POLL_S)
    return process_start_time(pid) is None


def validate(env: OcfEnv) -> int:
    _command(env, "command")
    _environment(env)
    return OcfRc.SUCCESS


ACTIONS: dict[str, Action] = {"start": start, "stop": stop, "monitor": monitor, "validate-all": validate}
