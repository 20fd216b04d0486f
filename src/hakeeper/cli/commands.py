"""The list of command families. Add one line per family module."""

from __future__ import annotations

import click

from hakeeper.cli.agent_cmd import agent
from hakeeper.cli.bench_cmd import bench
from hakeeper.cli.cluster_cmd import cluster, simulate_with_live  # also adds config apply|haresources
from hakeeper.cli.config_cmd import config
from hakeeper.cli.constraint_cmd import constraint
from hakeeper.cli.daemon_cmd import daemon
from hakeeper.cli.demo_cmd import demo
from hakeeper.cli.fence_cmd import fence
from hakeeper.cli.messaging_cmd import keygen, witness
from hakeeper.cli.node_cmd import node
from hakeeper.cli.resource_cmd import resource
from hakeeper.cli.simulate_cmd import simulate
from hakeeper.cli.status_cmd import status
from hakeeper.cli.token_cmd import token

ALL: list[click.Command] = [simulate, agent, fence, config, keygen, witness, token, daemon, demo, bench]
ALL += [status, resource, constraint, node, cluster, simulate_with_live]  # replaces simulate: FILE or --live
