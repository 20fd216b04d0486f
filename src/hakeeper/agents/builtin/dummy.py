"""``ocf:hakeeper:dummy``: a state file plus configurable delays and failures, for tests and demos.

Parameters: ``state`` (file; default under HA_RSCTMP), ``delay`` (seconds every action sleeps),
``fail_action`` (an action name that fails) with ``fail_rc`` (its exit code, default 1).
Supports promote/demote: the state file holds ``started`` or ``promoted`` and
monitor answers 0 or 8 accordingly (7 when absent).
"""

from __future__ import annotations

import contextlib
import os
import time

from hakeeper.agents.builtin.common import Action, AgentFailure, OcfEnv
from hakeeper.agents.results import OcfRc

METADATA = """<?xml version="1.0"?>
<resource-agent name="dummy" version="1.0">
<version>1.1</version>
<longdesc lang="en">A test agent that keeps its state in a file; delays and failures can be set.</longdesc>
<shortdesc lang="en">Test agent (state file)</shortdesc>
<parameters>
<parameter name="state" unique-group="state">
<longdesc lang="en">Where the state is kept.</longdesc>
<shortdesc lang="en">State file</shortdesc>
<content type="string"/>
</parameter>
<parameter name="delay" reloadable="1">
<longdesc lang="en">Seconds every action sleeps before acting.</longdesc>
<shortdesc lang="en">Delay</shortdesc>
<content type="string" default="0"/>
</parameter>
<parameter name="fail_action">
<longdesc lang="en">An action that fails (returns fail_rc).</longdesc>
<shortdesc lang="en">Failing action</shortdesc>
<content type="string" default=""/>
</parameter>
<parameter name="fail_rc">
<longdesc lang="en">Exit code of the failing action.</longdesc>
<shortdesc lang="en">Failure code</shortdesc>
<content type="integer" default="1"/>
</parameter>
</parameters>
<actions>
<action name="start" timeout="20s"/>
<action name="stop" timeout="20s"/>
<action name="monitor" timeout="20s" interval="10s" depth="0"/>
<action name="promote" timeout="20s"/>
<action name="demote" timeout="20s"/>
<action name="migrate_to" timeout="20s"/>
<action name="migrate_from" timeout="20s"/>
<action name="reload-agent" timeout="20s"/>
<action name="notify" timeout="20s"/>
<action name="validate-all" timeout="20s"/>
<action name="meta-data" timeout="5s"/>
</actions>
</resource-agent>
"""


def _state_file(env: OcfEnv) -> str:
    return env.param("state") or env.state_path("dummy") + ".state"


def _read(env: OcfEnv) -> str | None:
    try:
        with open(_state_file(env), encoding="utf-8") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return None


def _write(env: OcfEnv, state: str) -> None:
    path = _state_file(env)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(state + "\n")


def _prologue(env: OcfEnv) -> None:
    delay = env.number("delay", 0.0)
    if delay > 0:
        time.sleep(delay)
    if env.param("fail_action") == env.action:
        rc = int(env.number("fail_rc", 1))
        raise AgentFailure(f"configured to fail {env.action} with {rc}", rc)


def start(env: OcfEnv) -> int:
    _prologue(env)
    if _read(env) is None:
        _write(env, "started")
    return OcfRc.SUCCESS


def stop(env: OcfEnv) -> int:
    _prologue(env)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_state_file(env))
    return OcfRc.SUCCESS


def monitor(env: OcfEnv) -> int:
    _prologue(env)
    state = _read(env)
    if state is None:
        return OcfRc.NOT_RUNNING
    return OcfRc.RUNNING_PROMOTED if state == "promoted" else OcfRc.SUCCESS


def promote(env: OcfEnv) -> int:
    _prologue(env)
    if _read(env) is None:
        raise AgentFailure("cannot promote: not started", OcfRc.NOT_RUNNING)
    _write(env, "promoted")
    return OcfRc.SUCCESS


def demote(env: OcfEnv) -> int:
    _prologue(env)
    if _read(env) is None:
        raise AgentFailure("cannot demote: not started", OcfRc.NOT_RUNNING)
    _write(env, "started")
    return OcfRc.SUCCESS


def migrate_from(env: OcfEnv) -> int:
    return start(env)


def succeed(env: OcfEnv) -> int:
    _prologue(env)
    return OcfRc.SUCCESS


ACTIONS: dict[str, Action] = {
    "start": start,
    "stop": stop,
    "monitor": monitor,
    "promote": promote,
    "demote": demote,
    "migrate_to": stop,
    "migrate_from": migrate_from,
    "reload-agent": succeed,
    "reload": succeed,
    "notify": succeed,
    "validate-all": succeed,
}
