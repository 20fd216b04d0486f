"""``fence_hakeeper_netns``: a real fence agent for lab nodes that are network namespaces.

It speaks the fence-agents protocol (``key=value`` lines on stdin when started without arguments; or
``-o ACTION -n PLUG [--prefix P]`` on the command line) so the cluster runs it like any other agent:

- ``off``: SIGKILL every process inside the target's namespace (``ip netns pids``, repeated until none is
  left, as processes may fork meanwhile) and take every link in it down (except ``lo``). The node is dead
  and cut off, which is what fencing must guarantee.
- ``on``: bring the namespace's links up again (processes stay dead, as after a power cycle).
- ``reboot``: ``off`` then ``on``.
- ``status``: exit 0 (on) when any link of the namespace is up, 2 (off) when none is, 1 on error.
  A namespace that does not exist is an error for every action, never a silent success.
- ``list``: namespaces whose name starts with ``prefix``, one ``name,name`` per line.
- ``monitor``: ``ip`` works and namespaces can be listed. ``metadata`` prints the metadata XML.

The target namespace is ``port``/``plug`` (default: ``nodename``). It refuses a namespace that is the
agent's own network namespace, so it can never kill the host it runs on.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

EXIT_OK, EXIT_ERROR, EXIT_OFF = 0, 1, 2
NETNS_DIR = "/run/netns"
KILL_ROUNDS = 50
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_IP_TIMEOUT_S = 10.0

METADATA = """<?xml version="1.0" ?>
<resource-agent name="fence_hakeeper_netns" shortdesc="Fence a lab node that is a network namespace">
<longdesc>Kills every process inside the target network namespace and takes its links down (off); brings \
the links back up (on). For hakeeper's lab tests: real fencing without power switches.</longdesc>
<vendor-url>https://github.com/hakeeper</vendor-url>
<parameters>
\t<parameter name="action" unique="0" required="1">
\t\t<getopt mixed="-o, --action=[action]" />
\t\t<content type="string" default="reboot" />
\t\t<shortdesc lang="en">Fencing action</shortdesc>
\t</parameter>
\t<parameter name="port" unique="0" required="0">
\t\t<getopt mixed="-n, --plug=[namespace]" />
\t\t<content type="string" />
\t\t<shortdesc lang="en">The network namespace of the node to fence (default: the node name)</shortdesc>
\t</parameter>
\t<parameter name="plug" unique="0" required="0" obsoletes="port">
\t\t<getopt mixed="-n, --plug=[namespace]" />
\t\t<content type="string" />
\t\t<shortdesc lang="en">The network namespace of the node to fence (default: the node name)</shortdesc>
\t</parameter>
\t<parameter name="nodename" unique="0" required="0">
\t\t<getopt mixed="-N, --nodename=[name]" />
\t\t<content type="string" />
\t\t<shortdesc lang="en">Name of the node to fence (set by the cluster)</shortdesc>
\t</parameter>
\t<parameter name="prefix" unique="0" required="0">
\t\t<getopt mixed="--prefix=[prefix]" />
\t\t<content type="string" default="" />
\t\t<shortdesc lang="en">Only namespaces whose name starts with this are listed</shortdesc>
\t</parameter>
</parameters>
<actions>
\t<action name="on" automatic="0" />
\t<action name="off" />
\t<action name="reboot" />
\t<action name="status" />
\t<action name="list" />
\t<action name="monitor" />
\t<action name="metadata" />
\t<action name="validate-all" />
</actions>
</resource-agent>
"""


class Failure(Exception):
    """Why the action failed, for stderr."""


def parse_stdin(text: str) -> dict[str, str]:
    """``key=value`` lines; ``#`` comments and blank lines skipped; the last value of a key wins."""
    options: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        options[key.strip()] = value.strip()
    return options


def parse_argv(argv: Sequence[str]) -> dict[str, str]:
    """The few command-line options operators use by hand: -o/--action, -n/--plug, -N, --prefix."""
    names = {
        "-o": "action",
        "--action": "action",
        "-n": "port",
        "--plug": "port",
        "--port": "port",
        "-N": "nodename",
        "--nodename": "nodename",
        "--prefix": "prefix",
    }
    options: dict[str, str] = {}
    args = list(argv)
    while args:
        arg = args.pop(0)
        key, eq, value = arg.partition("=")
        if key not in names:
            raise Failure(f"unknown option {arg!r} (use -o ACTION -n NAMESPACE [--prefix P])")
        if not eq:
            if not args:
                raise Failure(f"option {key} needs a value")
            value = args.pop(0)
        options[names[key]] = value
    return options


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            ["ip", *args], capture_output=True, text=True, timeout=_IP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise Failure(f"'ip {' '.join(args)}' could not run: {err}") from err
    if check and done.returncode != 0:
        raise Failure(f"'ip {' '.join(args)}' failed: {done.stderr.strip() or done.returncode}")
    return done


def namespaces() -> list[str]:
    out = ip("netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def target_namespace(options: dict[str, str]) -> str:
    name = options.get("port") or options.get("plug") or options.get("nodename") or ""
    if not _NAME.fullmatch(name):
        raise Failure(f"the target namespace {name!r} is missing or not a valid name (set port= or plug=)")
    return name


def _is_own_namespace(name: str) -> bool:
    try:
        target = os.stat(os.path.join(NETNS_DIR, name))
        own = os.stat("/proc/self/ns/net")
    except OSError:
        return False
    return (target.st_dev, target.st_ino) == (own.st_dev, own.st_ino)


def links(name: str) -> dict[str, bool]:
    """Every link of the namespace except ``lo``, and whether it is administratively up."""
    out = ip("-n", name, "-o", "link", "show").stdout
    result: dict[str, bool] = {}
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) < 3:
            continue
        link = parts[1].strip().split("@", 1)[0]
        flags = parts[2].split(">", 1)[0]
        if link != "lo":
            result[link] = "UP" in flags.lstrip(" <").split(",")
    return result


def pids_in(name: str) -> list[int]:
    out = ip("netns", "pids", name).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def kill_all(name: str) -> None:
    me, parent = os.getpid(), os.getppid()
    for _ in range(KILL_ROUNDS):
        found = pids_in(name)
        if 1 in found or me in found or parent in found:
            # a second guard besides the namespace identity check: never take the host down with it
            raise Failure(f"namespace {name} holds PID 1 or this agent itself; refusing to kill it")
        pids = found
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    raise Failure(f"processes keep appearing in namespace {name}; could not kill them all")


def set_links(name: str, up: bool) -> None:
    for link in links(name):
        ip("-n", name, "link", "set", "dev", link, "up" if up else "down")


def _require(name: str) -> None:
    # Never report success for a namespace we cannot see: a typo in the port would otherwise "fence"
    # nothing while the real node keeps running (power agents fail on unknown plugs for the same reason).
    if name not in namespaces():
        raise Failure(f"namespace {name} does not exist (check the device's port or pcmk_host_map)")


def power_off(name: str) -> None:
    _require(name)
    if _is_own_namespace(name):
        raise Failure(f"namespace {name} is this agent's own network namespace; refusing to fence myself")
    set_links(name, up=False)  # cut it off first, so it cannot answer while its processes die
    kill_all(name)


def power_on(name: str) -> None:
    _require(name)
    set_links(name, up=True)


def status(name: str) -> int:
    _require(name)
    return EXIT_OK if any(links(name).values()) else EXIT_OFF


def run(options: dict[str, str]) -> int:
    action = options.get("action", "reboot").lower()
    if action == "metadata":
        sys.stdout.write(METADATA)
        return EXIT_OK
    if action == "monitor":
        namespaces()
        return EXIT_OK
    if action == "list":
        prefix = options.get("prefix", "")
        for name in namespaces():
            if name.startswith(prefix):
                print(f"{name},{name}")
        return EXIT_OK
    if action == "validate-all":
        target_namespace(options)
        return EXIT_OK
    name = target_namespace(options)
    if action == "status":
        state = status(name)
        print(f"Status: {'ON' if state == EXIT_OK else 'OFF'}")
        return state
    if action in ("off", "reboot"):
        power_off(name)
    if action in ("on", "reboot"):
        power_on(name)
    if action not in ("off", "on", "reboot"):
        raise Failure(f"unrecognised action {action!r}")
    print(f"Success: {action} {name}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        options = parse_argv(args) if args else parse_stdin(sys.stdin.read())
        code = run(options)
    except Failure as err:
        print(f"ERROR: Failed: {err}", file=sys.stderr)
        code = EXIT_ERROR
    sys.exit(code)


if __name__ == "__main__":
    main()
