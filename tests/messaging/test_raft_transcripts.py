"""Readable Raft transcripts (in the spirit of etcd-io/raft's ``testdata/*.txt``).

Each file in ``testdata/raft_*.txt`` is a series of stanzas: command lines, a ``----`` line, then the exact
output those commands must print, then a blank line. ``#`` lines are comments. Set
``RAFT_TRANSCRIPT_REWRITE=1`` to regenerate the outputs after an intended
change (and review the diff).

Commands: ``cluster 1 2 3 [witness=4] [key=value...]``, ``elect N``, ``propose N DATA``,
``conf N add-learner|add-voter|add-witness|promote|remove ID``, ``transfer N TARGET``, ``read N CTX``,
``isolate N``, ``cut A B``, ``heal``, ``crash N``, ``restart N``, ``compact N``, ``add-node N [witness]``,
``tick N [COUNT]``, ``tick-all [COUNT]``, ``status``, ``log N``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hakeeper.messaging.raft.core import Accepted, ProposeResult, Rejected
from hakeeper.messaging.raft.messages import ConfChange, ConfChangeKind, Entry, EntryKind, InstallSnapshot
from hakeeper.sim.raftnet import RaftNet

TESTDATA = Path(__file__).parent / "testdata"
_CONF = {
    "add-learner": ConfChangeKind.ADD_LEARNER,
    "add-voter": ConfChangeKind.ADD_VOTER,
    "add-witness": ConfChangeKind.ADD_WITNESS,
    "promote": ConfChangeKind.PROMOTE_LEARNER,
    "remove": ConfChangeKind.REMOVE_NODE,
}


class Transcript:
    def __init__(self) -> None:
        self.net: RaftNet | None = None

    @property
    def n(self) -> RaftNet:
        assert self.net is not None, "the transcript must start with a 'cluster' command"
        return self.net

    def run(self, line: str) -> list[str]:
        cmd, *args = line.split()
        handler = getattr(self, "do_" + cmd.replace("-", "_"), None)
        if handler is None:
            raise ValueError(f"unknown transcript command {cmd!r}")
        out: list[str] = handler(*args)
        return out

    def do_cluster(self, *args: str) -> list[str]:
        voters = [int(a) for a in args if a.isdigit()]
        witnesses = [int(a.split("=")[1]) for a in args if a.startswith("witness=")]
        config: dict[str, int | bool] = {}
        for a in args:
            if "=" in a and not a.startswith("witness="):
                key, value = a.split("=")
                config[key] = value == "true" if value in ("true", "false") else int(value)
        self.net = RaftNet(voters, witnesses=witnesses, **config)
        return []

    def do_elect(self, node: str) -> list[str]:
        self.n.elect(int(node))
        return []

    def do_propose(self, node: str, data: str) -> list[str]:
        return [_result(self.n.propose(int(node), data.encode()))]

    def do_conf(self, node: str, kind: str, target: str) -> list[str]:
        result = self.n.raft(int(node)).propose_conf_change(ConfChange(_CONF[kind], int(target)))
        self.n.settle()
        return [_result(result)]

    def do_transfer(self, node: str, target: str) -> list[str]:
        result = self.n.raft(int(node)).transfer_leadership(int(target))
        self.n.settle()
        return ["ok" if result is None else _result(result)]

    def do_read(self, node: str, ctx: str) -> list[str]:
        result = self.n.raft(int(node)).read_index(ctx.encode())
        self.n.settle()
        states = [f"read {s.ctx.decode()} at index {s.index}" for s in self.n.nodes[int(node)].read_states]
        self.n.nodes[int(node)].read_states.clear()
        return (["ok"] if result is None else [_result(result)]) + states

    def do_isolate(self, node: str) -> list[str]:
        self.n.isolate(int(node))
        return []

    def do_cut(self, a: str, b: str) -> list[str]:
        self.n.cut.add((int(a), int(b)))
        return []

    def do_heal(self) -> list[str]:
        self.n.heal()
        return []

    def do_crash(self, node: str) -> list[str]:
        self.n.crash(int(node))
        return []

    def do_restart(self, node: str) -> list[str]:
        self.n.restart(int(node))
        return []

    def do_compact(self, node: str) -> list[str]:
        self.n.compact(int(node))
        storage = self.n.nodes[int(node)].storage
        return [f"n{node} log now starts at {storage.first_index()}"]

    def do_add_node(self, node: str, *flags: str) -> list[str]:
        self.n.add_empty_node(int(node), witness="witness" in flags)
        return []

    def do_tick(self, node: str, count: str = "1") -> list[str]:
        for _ in range(int(count)):
            self.n.tick(int(node))
            self.n.settle()
        return []

    def do_tick_all(self, count: str = "1") -> list[str]:
        self.n.tick_all(int(count))
        return []

    def do_status(self) -> list[str]:
        out = []
        for nid, node in sorted(self.n.nodes.items()):
            r = node.raft
            if not node.up:
                out.append(f"n{nid} down")
                continue
            conf = r.conf_state
            members = f"voters={','.join(map(str, conf.voters))}"
            if conf.learners:
                members += f" learners={','.join(map(str, conf.learners))}"
            if conf.witnesses:
                members += f" witnesses={','.join(map(str, conf.witnesses))}"
            applied = ",".join(d.decode() for d in node.applied)
            out.append(
                f"n{nid} {r.role.value} term={r.term} commit={r.commit_index} {members} applied=[{applied}]"
            )
        snapshots = sorted({m.to for m in self.n.sent if isinstance(m, InstallSnapshot)})
        if snapshots:
            out.append("snapshots sent to: " + ",".join(f"n{s}" for s in snapshots))
        return out

    def do_log(self, node: str) -> list[str]:
        r = self.n.raft(int(node))
        entries = r.log.slice(r.log.first_index(), r.log.last_index() + 1)
        return [f"n{node} log: " + " ".join(_describe(e) for e in entries)]


def _describe(e: Entry) -> str:
    text = f"{e.index}/{e.term}:{e.kind.name.lower()}"
    return text + f"={e.data.decode()}" if e.kind is EntryKind.NORMAL else text


def _result(result: ProposeResult) -> str:
    if isinstance(result, Accepted):
        return f"accepted index={result.index} term={result.term}"
    assert isinstance(result, Rejected)
    return f"rejected {result.reason.value}: {result.detail}"


def _stanzas(text: str) -> list[tuple[list[str], list[str]]]:
    stanzas: list[tuple[list[str], list[str]]] = []
    commands: list[str] = []
    expected: list[str] | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if expected is None:
            if line == "----":
                expected = []
            elif line and not line.startswith("#"):
                commands.append(line)
        elif line == "":
            stanzas.append((commands, expected))
            commands, expected = [], None
        else:
            expected.append(line)
    if expected is not None:
        stanzas.append((commands, expected))
    return stanzas


def _render(text: str, actual: list[list[str]]) -> str:
    """Rewrite mode: keep comments and commands, replace each stanza's output."""
    out: list[str] = []
    pending: list[str] = []
    outputs = iter(actual)
    skipping = False
    for raw in text.splitlines():
        line = raw.rstrip()
        if skipping:
            if line == "":
                skipping = False
                out.append("")
            continue
        if line == "----":
            out.extend(pending)
            pending = []
            out.append("----")
            out.extend(next(outputs))
            skipping = True
            continue
        pending.append(line)
    out.extend(pending)
    return "\n".join(out).rstrip("\n") + "\n"


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("raft_*.txt")), ids=lambda p: p.stem)
def test_transcript(path: Path) -> None:
    text = path.read_text()
    transcript = Transcript()
    actual: list[list[str]] = []
    mismatches = []
    for commands, expected in _stanzas(text):
        got: list[str] = []
        for c in commands:
            got.extend(transcript.run(c))
        actual.append(got)
        if got != expected:
            mismatches.append(f"after {commands[-1]!r}:\n  expected {expected}\n  got      {got}")
    if os.environ.get("RAFT_TRANSCRIPT_REWRITE") == "1":
        path.write_text(_render(text, actual))
        return
    assert not mismatches, f"{path.name}:\n" + "\n".join(mismatches)


def test_transcripts_exist() -> None:
    assert len(list(TESTDATA.glob("raft_*.txt"))) >= 5
