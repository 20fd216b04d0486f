"""The helper commands agents call (crm_attribute, crm_master, crm_node, attrd_updater), end to end over the
LRM's attribute socket, with the option spellings Debian's agents use."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hakeeper.agents import helpers
from hakeeper.lrm.attrd import AttrdServer
from hakeeper.lrm.attributes import AttributeView
from hakeeper.lrm.messages import AttributeUpdate


class Node:
    def __init__(self, tmp_path: Path) -> None:
        self.view = AttributeView("node1")
        self.updates: list[AttributeUpdate] = []
        self.server = AttrdServer(str(tmp_path / "attrd.sock"), self.view, self.updates.append)
        self.env = {
            helpers.SOCKET_ENV: self.server.path,
            helpers.NODE_ENV: "node1",
            "OCF_RESOURCE_INSTANCE": "db:1",
        }

    async def run(self, command: str, *args: str, **extra_env: str) -> tuple[int, list[str], str]:
        return await asyncio.to_thread(helpers.run, command, list(args), {**self.env, **extra_env})


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    node = Node(tmp_path)
    await node.server.start()
    yield node
    await node.server.close()


async def test_promotion_score_spellings(node: Node) -> None:
    assert (await node.run("crm_attribute", "--promotion", "-v", "10"))[0] == 0
    assert node.view.get("master-db") == "10"
    assert (await node.run("crm_attribute", "-p", "-v", "5"))[0] == 0  # ocf_promotion_score
    assert (await node.run("crm_master", "-l", "reboot", "-v", "100"))[0] == 0
    assert (await node.run("crm_master", "-Q", "-l", "reboot", "-v", "1"))[0] == 0
    assert node.view.get("master-db") == "1"
    code, out, _ = await node.run("crm_master", "-G", "-q", "-l", "reboot")
    assert (code, out) == (0, ["1"])
    code, out, _ = await node.run("crm_attribute", "--promotion", "-G")
    assert (code, out) == (0, ["scope=status  name=master-db value=1"])
    assert (await node.run("crm_attribute", "--promotion", "-D"))[0] == 0
    code, _out, err = await node.run("crm_attribute", "--promotion", "-G")
    assert code == helpers.EX_NOSUCH and "not set" in err
    assert [(u.name, u.value, u.lifetime) for u in node.updates] == [
        ("master-db", "10", "reboot"),
        ("master-db", "5", "reboot"),
        ("master-db", "100", "reboot"),
        ("master-db", "1", "reboot"),
        ("master-db", None, "reboot"),
    ]


async def test_globally_unique_clone_keeps_its_instance_number(node: Node) -> None:
    await node.run("crm_attribute", "-p", "-v", "3", OCF_RESKEY_CRM_meta_globally_unique="true")
    assert node.view.get("master-db:1") == "3"


async def test_node_attribute_spellings(node: Node) -> None:
    assert (await node.run("crm_attribute", "-N", "node2", "-l", "reboot", "--name", "x", "-v", "1"))[0] == 0
    assert node.view.get("x", "node2") == "1"
    code, out, _ = await node.run(
        "crm_attribute", "-N", "node2", "-l", "reboot", "--name", "x", "--query", "-q"
    )
    assert (code, out) == (0, ["1"])
    code, out, _ = await node.run("crm_attribute", "--lifetime=forever", "--name=y", "-G", "-q", "-d", "dflt")
    assert (code, out) == (0, ["dflt"])
    assert (await node.run("crm_attribute", "-t", "nodes", "--node", "node1", "-n", "z", "--update", "7"))[
        0
    ] == 0
    assert node.updates[-1].lifetime == "forever"


async def test_attrd_updater_spellings(node: Node) -> None:
    assert (await node.run("attrd_updater", "-n", "pingd", "-B", "1000", "-d", "5s"))[0] == 0
    assert (await node.run("attrd_updater", "-n", "pingd", "-v", "2000", "-d", "500ms"))[0] == 0
    assert [(u.value, u.dampen_ms) for u in node.updates] == [("1000", 5000), ("2000", 500)]
    code, out, _ = await node.run("attrd_updater", "-n", "pingd", "-Q")
    assert (code, out) == (0, ['name="pingd" host="node1" value="2000"'])
    assert (await node.run("attrd_updater", "-D", "-n", "pingd", "-d", "5s"))[0] == 0
    assert node.view.get("pingd") is None
    assert (await node.run("attrd_updater", "-n", "pingd", "-Q"))[0] == helpers.EX_NOSUCH
    assert (await node.run("attrd_updater", "-n", "#health-smart", "-U", "red", "-d", ""))[0] == 0


async def test_crm_node(node: Node) -> None:
    assert await node.run("crm_node", "-n") == (0, ["node1"], "")
    assert await node.run("crm_node", "-q") == (0, ["1"], "")
    node.view.nodes = ["node1", "node2"]
    assert await node.run("crm_node", "-p") == (0, ["node1 node2"], "")
    assert await node.run("crm_node", "-l") == (0, ["1 node1 member", "2 node2 member"], "")


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("crm_attribute", ["--bogus"], "unknown option --bogus"),
        ("crm_attribute", ["-X"], "unknown option -X"),
        ("crm_attribute", ["-n"], "needs a value"),
        ("crm_attribute", ["stray"], "unexpected argument"),
        ("crm_attribute", ["-n", "x", "-v", "1", "-D", "-l", "reboot"], "choose one"),
        ("attrd_updater", ["-n", "x", "-d", "soon", "-U", "1"], "invalid delay"),
        ("crm_master", ["--promotion"], "unknown option"),
        ("crm_node", [], "say what to show"),
    ],
)
async def test_bad_usage_fails_clearly(node: Node, command: str, args: list[str], message: str) -> None:
    code, _out, err = await node.run(command, *args)
    assert code == helpers.EX_USAGE and message in err


async def test_unsupported_features_say_so(node: Node) -> None:
    code, _out, err = await node.run("crm_attribute", "-n", "stonith-enabled", "-v", "false")
    assert code == helpers.EX_UNSUPPORTED and "cluster properties" in err
    code, _out, err = await node.run("crm_attribute", "-t", "crm_config", "-n", "x", "-G")
    assert code == helpers.EX_UNSUPPORTED


def test_without_the_lrm_the_helpers_say_why() -> None:
    code, _out, err = helpers.run(
        "crm_attribute", ["-p", "-v", "1"], {"OCF_RESOURCE_INSTANCE": "r", helpers.NODE_ENV: "n"}
    )
    assert code == helpers.EX_NOT_CONNECTED and "HAKEEPER_ATTRD_SOCKET is not set" in err
    env = {helpers.SOCKET_ENV: "/nonexistent/sock", helpers.NODE_ENV: "n", "OCF_RESOURCE_INSTANCE": "r"}
    code, _out, err = helpers.run("crm_attribute", ["-p", "-v", "1"], env)
    assert code == helpers.EX_NOT_CONNECTED and "cannot reach the local node" in err


async def test_helper_scripts_run_as_commands(node: Node, tmp_path: Path) -> None:
    bin_dir = helpers.write_helper_dir(tmp_path / "bin", sys.executable)
    env = {**os.environ, **node.env, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = await asyncio.to_thread(
        subprocess.run, ["crm_node", "-n"], env=env, capture_output=True, text=True, check=False
    )
    assert (proc.returncode, proc.stdout) == (0, "node1\n")
    assert sorted(p.name for p in bin_dir.iterdir()) == sorted(helpers.HELPER_COMMANDS)
