"""The LRM shell: drives :class:`LrmCore` with asyncio, runs agents, serves the helper socket.

Upward interface: :meth:`LocalResourceManager.submit` / :meth:`cancel` take requests; every reportable
:class:`OpResult` and every :class:`AttributeUpdate` lands in :attr:`events` (an ``asyncio.Queue``) in order.
Time is the event loop's clock (monotonic).

After an LRM restart nothing is remembered: the history is empty until the CRM probes each resource
(``monitor`` with interval 0), so the state is rebuilt from what the agents report, never guessed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from hakeeper.agents.base import ActionContext, Agent, AgentSpecError, AgentUnavailable
from hakeeper.agents.helpers import NODE_ENV, SOCKET_ENV, write_helper_dir
from hakeeper.agents.registry import AgentRegistry
from hakeeper.agents.results import OcfRc, OpStatus
from hakeeper.lrm.attrd import AttrdServer
from hakeeper.lrm.attributes import AttributeView
from hakeeper.lrm.core import Completion, Execute, LrmCore, Output
from hakeeper.lrm.executor import DEFAULT_OUTPUT_LIMIT, KILL_WAIT_S, RawResult, run_invocation
from hakeeper.lrm.forkserver import ForkServerClient, ForkServerUnavailable
from hakeeper.lrm.messages import AttributeUpdate, CancelRequest, OpRequest, OpResult

log = logging.getLogger(__name__)

MAX_UNIX_PATH = 107
RESULT_OUTPUT_LIMIT = 4096
"""How much agent output an OpResult carries (the executor keeps more while the agent runs)."""

Event = OpResult | AttributeUpdate


class LrmConfig(msgspec.Struct, frozen=True, kw_only=True):
    node_name: str
    max_parallel: int = 4
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    run_dir: str = ""
    """Where the helper commands and the attribute socket live; empty means a fresh temporary directory."""
    command_prefix: list[str] = []
    """Prepended to every agent command line (``ip netns exec lab1`` runs a node's agents in a netns)."""
    extra_env: dict[str, str] = {}
    keep_lateness_samples: int = 0
    warm_builtin_agents: bool = True
    """Fork built-in agents' actions from a warm interpreter (:mod:`hakeeper.lrm.forkserver`) instead of
    starting Python for each; off, every action is a fresh process."""
    """For benchmarks: how many recurring-start lateness samples to keep (0 keeps none)."""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def completion_from_raw(
    exec_id: int, raw: RawResult, outcome_rc: int, outcome_status: OpStatus, note: str
) -> Completion:
    """Combine the agent's exit reason with our own note (e.g. an undefined exit code)."""
    reason = raw.exit_reason
    if note:
        reason = f"{reason} ({note})" if reason else note
    output = (raw.stdout + raw.stderr)[-RESULT_OUTPUT_LIMIT:]
    if raw.dropped_bytes:
        output = f"[{raw.dropped_bytes} bytes of output dropped]\n{output}"
    return Completion(
        exec_id=exec_id,
        rc=outcome_rc,
        op_status=outcome_status,
        exit_reason=reason,
        output=output,
        agent_exit_code=raw.exit_code,
        exec_time_ms=round((raw.finished - raw.started) * 1000),
        finished_wall=raw.finished_wall,
    )


class LocalResourceManager:
    """One node's LRM."""

    def __init__(self, config: LrmConfig, registry: AgentRegistry | None = None) -> None:
        self.config = config
        self.registry = registry or AgentRegistry()
        self.core = LrmCore(max_parallel=config.max_parallel)
        self.attributes = AttributeView(config.node_name)
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.lateness_samples: list[float] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._waiters: dict[int, asyncio.Future[OpResult]] = {}
        self._owns_run_dir = not config.run_dir
        self.run_dir = Path(config.run_dir or tempfile.mkdtemp(prefix="hakeeper-lrm-"))
        self._attrd = AttrdServer(str(self.run_dir / "attrd.sock"), self.attributes, self._on_attribute)
        self._base_env: dict[str, str] = {}
        self._started = False
        self.forkserver: ForkServerClient | None = None
        if config.warm_builtin_agents:
            self.forkserver = ForkServerClient(self.registry.paths.python, config.command_prefix)

    # ---- lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        if len(self._attrd.path.encode()) > MAX_UNIX_PATH:
            raise ValueError(
                f"the LRM run directory {self.run_dir} is too deep for a Unix socket path "
                f"(at most {MAX_UNIX_PATH} bytes); choose a shorter run_dir"
            )
        helper_dir = write_helper_dir(self.run_dir / "bin", sys.executable)
        await self._attrd.start()
        self._base_env = self._agent_base_env(helper_dir)
        if self.forkserver is not None:
            try:
                self.forkserver.start()  # warm before the first failover needs it
            except ForkServerUnavailable as exc:
                log.warning("%s; built-in agents run as fresh processes", exc)
        self._started = True

    async def close(self) -> None:
        """Stop scheduling, kill running agents' groups (via task cancellation) and remove the socket."""
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for waiter in self._waiters.values():
            waiter.cancel()
        self._waiters.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._attrd.close()
        if self.forkserver is not None:
            self.forkserver.close()
        if self._owns_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self._started = False

    async def __aenter__(self) -> LocalResourceManager:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _agent_base_env(self, helper_dir: Path) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OCF_", "HAKEEPER_", "PYTEST_")) and k != "HA_SBIN_DIR"
        }
        env["PATH"] = f"{helper_dir}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        env["HA_SBIN_DIR"] = str(helper_dir)
        env[SOCKET_ENV] = self._attrd.path
        env[NODE_ENV] = self.config.node_name
        env.update(self.config.extra_env)
        return env

    # ---- upward interface ---------------------------------------------------------------------------------

    def submit(self, req: OpRequest) -> int:
        """Queue an operation; returns its call id. Results arrive on :attr:`events`."""
        self._require_started()
        outputs = self.core.submit(self._now(), req, time.time())
        call_id = self.core.last_call_id
        self._handle(outputs)
        return call_id

    def cancel(self, req: CancelRequest) -> None:
        self._require_started()
        self._handle(self.core.cancel(self._now(), req, time.time()))

    async def run(self, req: OpRequest) -> OpResult:
        """Submit ``req`` and wait for its (first) result. The result still appears on :attr:`events`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[OpResult] = loop.create_future()
        self._require_started()
        outputs = self.core.submit(self._now(), req, time.time())
        self._waiters[self.core.last_call_id] = future
        self._handle(outputs)
        return await future

    # ---- driving the core ---------------------------------------------------------------------------------

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("the LRM is not started: call start() (or use it as an async context manager)")

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _handle(self, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, Execute):
                task = asyncio.create_task(self._execute(output))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                self._report(output)
        self._arm_timer()

    def _report(self, result: OpResult) -> None:
        self.events.put_nowait(result)
        waiter = self._waiters.pop(result.call_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(result)

    def _on_attribute(self, update: AttributeUpdate) -> None:
        self.events.put_nowait(update)

    def _arm_timer(self) -> None:
        wake = self.core.next_wakeup()
        if wake == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = wake
        if wake is not None:
            self._timer = asyncio.get_running_loop().call_at(wake, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, None
        self._handle(self.core.poll(self._now()))

    async def _execute(self, execute: Execute) -> None:
        keep = self.config.keep_lateness_samples
        if execute.request.interval_ms > 0 and len(self.lateness_samples) < keep:
            self.lateness_samples.append(self._now() - execute.due)
        try:
            completion = await self._perform(execute)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not leave the resource busy forever
            log.exception("internal error while running %s", execute.request.key)
            completion = self._refused(
                execute, OcfRc.ERR_GENERIC, OpStatus.ERROR, f"internal LRM error: {exc}"
            )
        self._handle(self.core.complete(self._now(), completion))

    async def _perform(self, execute: Execute) -> Completion:
        req = execute.request
        meta = dict(req.meta)
        if req.role:
            meta.setdefault("role", req.role)
        ctx = ActionContext(
            resource_id=req.resource_id,
            action=req.operation,
            interval_ms=req.interval_ms,
            timeout_ms=req.timeout_ms,
            params=req.params,
            meta=meta,
            check_level=req.check_level,
            node_name=self.config.node_name,
            base_env=self._base_env,
        )
        try:
            agent = self.registry.resolve(req.agent)
            invocation = agent.invocation(ctx)
        except AgentSpecError as exc:
            return self._refused(execute, OcfRc.ERR_CONFIGURED, OpStatus.ERROR_FATAL, str(exc))
        except AgentUnavailable as exc:
            return self._refused(execute, exc.rc, exc.status, str(exc))
        if self.config.command_prefix:
            # the fork server runs under the same prefix, so a forked action needs no change
            invocation = msgspec.structs.replace(
                invocation, argv=[*self.config.command_prefix, *invocation.argv]
            )
        raw = await run_invocation(
            invocation, req.timeout_ms / 1000.0, self.config.output_limit, self.forkserver
        )
        return self._interpret(execute, raw, agent, ctx)

    def _refused(self, execute: Execute, rc: int, status: OpStatus, reason: str) -> Completion:
        return Completion(
            exec_id=execute.exec_id, rc=rc, op_status=status, exit_reason=reason, finished_wall=time.time()
        )

    def _interpret(self, execute: Execute, raw: RawResult, agent: Agent, ctx: ActionContext) -> Completion:
        timeout_s = execute.request.timeout_ms / 1000.0
        if raw.spawn_error:
            reason = f"{execute.request.agent} is not installed or cannot be run here: {raw.spawn_error}"
            return completion_from_raw(
                execute.exec_id, raw, OcfRc.ERR_INSTALLED, OpStatus.NOT_INSTALLED, reason
            )
        if raw.timed_out:
            note = f"{execute.request.operation} timed out after {timeout_s:g}s; its process group was killed"
            if raw.survived_kill:
                note += f", but the agent still had not died {KILL_WAIT_S:g}s later (stuck in the kernel?)"
            return completion_from_raw(execute.exec_id, raw, OcfRc.ERR_GENERIC, OpStatus.TIMEOUT, note)
        if raw.lost:
            note = f"the result of {execute.request.operation} is unknown: {raw.lost}"
            return completion_from_raw(execute.exec_id, raw, OcfRc.ERR_GENERIC, OpStatus.ERROR, note)
        if raw.exit_code is None:
            note = f"agent was killed by {_signal_name(raw.signal or 0)}"
            return completion_from_raw(execute.exec_id, raw, OcfRc.ERR_GENERIC, OpStatus.ERROR, note)
        outcome = agent.interpret(ctx, raw.exit_code)
        return completion_from_raw(execute.exec_id, raw, outcome.rc, outcome.status, outcome.reason)
