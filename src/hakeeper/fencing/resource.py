"""Fencing devices as cluster resources: the ``stonith`` agent class.

As in Pacemaker, a fencing device is configured as a primitive (``stonith:fence_ipmilan``) and placed on a
node by the policy engine. "Running" there means the device is known to work from that node: ``start``
checks it with the fence agent's ``monitor`` action and records it, ``monitor`` checks it again, ``stop``
forgets it.
Fencing itself is not run through this class; the DC's fencer runs the agent's ``off``/``reboot`` directly.

The LRM runs ``python -m hakeeper.fencing.resource ACTION TYPE`` with the device parameters in the
environment, so timeouts, process groups and output bounds are those of every other agent.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from hakeeper.agents.base import ActionContext, AgentSpec, Invocation, Outcome
from hakeeper.agents.results import OcfRc, normalise_ocf_exit
from hakeeper.fencing.agent import run_agent
from hakeeper.fencing.devices import FenceDevice

PARAMS_ENV = "HAKEEPER_STONITH_PARAMS"
ID_ENV = "HAKEEPER_STONITH_ID"
STATE_DIR_ENV = "HA_RSCTMP"


class StonithResource:
    """The ``stonith:TYPE`` class for the LRM (registered by the node daemon)."""

    def __init__(self, spec: AgentSpec) -> None:
        self._spec = spec

    @property
    def spec(self) -> AgentSpec:
        return self._spec

    def invocation(self, ctx: ActionContext) -> Invocation:
        env = dict(ctx.base_env)
        env[PARAMS_ENV] = json.dumps(ctx.params)
        env[ID_ENV] = ctx.resource_id
        env["OCF_RESKEY_CRM_meta_interval"] = str(ctx.interval_ms)
        return Invocation(
            [sys.executable, "-m", "hakeeper.fencing.resource", ctx.action, self._spec.type], env
        )

    def interpret(self, ctx: ActionContext, exit_code: int) -> Outcome:
        rc, note = normalise_ocf_exit(exit_code)
        return Outcome(rc=rc, reason=note)


def _state_file(device_id: str) -> Path:
    base = Path(os.environ.get(STATE_DIR_ENV, "/run/hakeeper"))
    return base / f"stonith-{device_id.replace('/', '_')}.state"


async def _check(device: FenceDevice) -> tuple[bool, str]:
    result = await run_agent(device, "monitor")
    return result.ok, result.reason


def _exit_reason(text: str) -> None:
    print(f"ocf-exit-reason:{text}", file=sys.stderr)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m hakeeper.fencing.resource ACTION FENCE_AGENT", file=sys.stderr)
        return OcfRc.ERR_ARGS
    action, agent = argv
    if action == "meta-data":
        print(
            f'<?xml version="1.0"?><resource-agent name="{agent}"><version>1.1</version>'
            '<parameters/><actions><action name="start" timeout="20s"/><action name="stop" '
            'timeout="20s"/><action name="monitor" timeout="20s" interval="60s"/></actions></resource-agent>'
        )
        return OcfRc.SUCCESS
    try:
        params = json.loads(os.environ.get(PARAMS_ENV, "{}"))
    except json.JSONDecodeError:
        _exit_reason("the device parameters could not be read")
        return OcfRc.ERR_CONFIGURED
    device_id = os.environ.get(ID_ENV, agent)
    device = FenceDevice(id=device_id, agent=agent, params={str(k): str(v) for k, v in params.items()})
    state = _state_file(device_id)
    if action == "stop":
        state.unlink(missing_ok=True)
        return OcfRc.SUCCESS
    if action in ("start", "monitor", "validate-all"):
        if action == "monitor" and not state.exists():
            return OcfRc.NOT_RUNNING
        ok, reason = asyncio.run(_check(device))
        if not ok:
            _exit_reason(f"fencing device {device_id} ({agent}) does not answer: {reason}")
            return OcfRc.ERR_GENERIC
        if action == "start":
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text("started\n")
        return OcfRc.SUCCESS
    _exit_reason(f"a fencing device resource has no {action} action")
    return OcfRc.ERR_UNIMPLEMENTED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
