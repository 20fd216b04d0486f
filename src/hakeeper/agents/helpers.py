"""Pacemaker's agent helper commands (``crm_attribute``, ``crm_master``, ``crm_node``, ``attrd_updater``).

Agents call these to set promotion scores and node attributes. Ours speak JSON lines over the Unix socket
named by ``HAKEEPER_ATTRD_SOCKET`` (served by the LRM), so updates reach the local node and flow to the CRM.
They are placed on the agent's PATH (and in ``HA_SBIN_DIR``) only, never installed system-wide.

Only the standard library is imported: agents may call these several times per operation.
Exit codes follow Pacemaker's: 0 ok, 64 usage, 102 not connected, 105 no such attribute, 3 unsupported.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

HELPER_COMMANDS = ("crm_attribute", "crm_master", "crm_node", "attrd_updater")
SOCKET_ENV = "HAKEEPER_ATTRD_SOCKET"
NODE_ENV = "HAKEEPER_NODE_NAME"
NODE_ID_ENV = "HAKEEPER_NODE_ID"

EX_OK, EX_UNSUPPORTED, EX_USAGE, EX_NOT_CONNECTED, EX_NOSUCH = 0, 3, 64, 102, 105
SOCKET_TIMEOUT_S = 10.0


class UsageError(Exception):
    """Bad command line: the message is printed and the helper exits 64."""


class HelperFailure(Exception):
    """The request could not be carried out; ``code`` is the exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# ---- option parsing ---------------------------------------------------------------------------------------
# Each table maps every accepted spelling to (canonical name, kind); kind is "flag", "arg" (required value,
# attached or next word) or "opt" (optional value, attached only, as GLib parses Pacemaker's options).

OptionTable = Mapping[str, tuple[str, str]]


def _table(entries: Sequence[tuple[str, str, str]]) -> dict[str, tuple[str, str]]:
    table: dict[str, tuple[str, str]] = {}
    for spellings, canonical, kind in entries:
        for spelling in spellings.split():
            table[spelling] = (canonical, kind)
    return table


CRM_ATTRIBUTE_OPTIONS = _table(
    [
        ("-n --name --attr-name", "name", "arg"),
        ("-v --update --value --attr-value", "update", "arg"),
        ("-D --delete --delete-attr", "delete", "flag"),
        ("-G --query --get-value", "query", "flag"),
        ("-q --quiet -Q", "quiet", "flag"),
        ("-N --node -U --uname --node-uname", "node", "arg"),
        ("-l --lifetime", "lifetime", "arg"),
        ("-t --type", "type", "arg"),
        ("-p --promotion", "promotion", "opt"),
        ("-d --default", "default", "arg"),
        ("-s --set-name", "set_name", "arg"),
        ("-i --id --attr-id", "id", "arg"),
        ("-r --resource", "resource", "arg"),
        ("-z --utilization", "utilization", "flag"),
        ("-V --verbose", "verbose", "flag"),
        ("-h --help", "help", "flag"),
    ]
)
CRM_MASTER_OPTIONS = _table(
    [
        ("-v --update --attr-value", "update", "arg"),
        ("-D --delete --delete-attr", "delete", "flag"),
        ("-G --query --get-value", "query", "flag"),
        ("-q --quiet -Q", "quiet", "flag"),
        ("-N --node -U --uname", "node", "arg"),
        ("-l --lifetime", "lifetime", "arg"),
        ("-i --id --attr-id", "id", "arg"),
        ("-r --resource", "resource", "arg"),
        ("-V --verbose", "verbose", "flag"),
        ("-h --help", "help", "flag"),
    ]
)
ATTRD_UPDATER_OPTIONS = _table(
    [
        ("-n --name", "name", "arg"),
        ("-U -v --update", "update", "arg"),
        ("-B --update-both", "update_both", "arg"),
        ("-Y --update-delay", "update_delay", "flag"),
        ("-Q --query", "query", "flag"),
        ("-D --delete", "delete", "flag"),
        ("-R --refresh", "refresh", "flag"),
        ("-N --node", "node", "arg"),
        ("-d --delay", "delay", "arg"),
        ("-s --set", "set_name", "arg"),
        ("-p --private", "private", "flag"),
        ("-A --all", "all", "flag"),
        ("-l --lifetime", "lifetime", "arg"),
        ("-z --utilization", "utilization", "flag"),
        ("-q --quiet", "quiet", "flag"),
        ("-V --verbose", "verbose", "flag"),
        ("-h --help", "help", "flag"),
    ]
)
CRM_NODE_OPTIONS = _table(
    [
        ("-n --name", "name", "flag"),
        ("-i --cluster-id", "id", "flag"),
        ("-N --name-for-id", "name_for_id", "arg"),
        ("-q --quorum", "quorum", "flag"),
        ("-l --list", "list", "flag"),
        ("-p --partition", "partition", "flag"),
        ("-V --verbose", "verbose", "flag"),
        ("-h --help", "help", "flag"),
    ]
)


def parse_options(command: str, table: OptionTable, args: Sequence[str]) -> dict[str, str]:
    """Parse ``args`` by ``table``; flags map to ``"1"``, optional values without a value to ``""``."""
    parsed: dict[str, str] = {}
    words = list(args)
    while words:
        word = words.pop(0)
        if word == "--":
            if words:
                raise UsageError(f"{command}: unexpected argument {words[0]!r}")
            break
        if word.startswith("--"):
            spelling, eq, attached = word.partition("=")
            _take(command, table, spelling, attached if eq else None, words, parsed)
        elif word.startswith("-") and len(word) > 1:
            _parse_short_cluster(command, table, word, words, parsed)
        else:
            raise UsageError(f"{command}: unexpected argument {word!r} (options start with '-')")
    return parsed


def _parse_short_cluster(
    command: str, table: OptionTable, word: str, words: list[str], parsed: dict[str, str]
) -> None:
    letters = word[1:]
    for i, letter in enumerate(letters):
        spelling = "-" + letter
        entry = table.get(spelling)
        if entry is None:
            raise _unknown(command, table, spelling)
        rest = letters[i + 1 :]
        if entry[1] in ("arg", "opt") and rest:
            _take(command, table, spelling, rest, words, parsed)
            return
        _take(command, table, spelling, None, words, parsed)


def _take(
    command: str,
    table: OptionTable,
    spelling: str,
    attached: str | None,
    words: list[str],
    parsed: dict[str, str],
) -> None:
    entry = table.get(spelling)
    if entry is None:
        raise _unknown(command, table, spelling)
    canonical, kind = entry
    if kind == "flag":
        if attached is not None:
            raise UsageError(f"{command}: option {spelling} takes no value")
        parsed[canonical] = "1"
    elif kind == "opt":
        parsed[canonical] = attached or ""
    elif attached is not None:
        parsed[canonical] = attached
    elif words:
        parsed[canonical] = words.pop(0)
    else:
        raise UsageError(f"{command}: option {spelling} needs a value")


def _unknown(command: str, table: OptionTable, spelling: str) -> UsageError:
    known = " ".join(sorted(table))
    return UsageError(f"{command}: unknown option {spelling} (hakeeper's {command} understands: {known})")


# ---- talking to the local node ----------------------------------------------------------------------------


def request(env: Mapping[str, str], message: dict[str, object]) -> dict[str, object]:
    """Send one JSON request to the LRM's attribute socket and return its JSON answer."""
    path = env.get(SOCKET_ENV)
    if not path:
        raise HelperFailure(
            f"cannot reach the local node: {SOCKET_ENV} is not set (run agents through hakeeper's LRM)",
            EX_NOT_CONNECTED,
        )
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(SOCKET_TIMEOUT_S)
            sock.connect(path)
            sock.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise HelperFailure(
            f"cannot reach the local node's attribute service at {path}: {exc.strerror or exc}",
            EX_NOT_CONNECTED,
        ) from None
    try:
        answer = json.loads(data)
    except ValueError:
        raise HelperFailure("the local node sent an unreadable answer", EX_NOT_CONNECTED) from None
    if not isinstance(answer, dict):
        raise HelperFailure("the local node sent an unreadable answer", EX_NOT_CONNECTED)
    if not answer.get("ok"):
        raise HelperFailure(str(answer.get("error", "request refused")), int(str(answer.get("code", 1))))
    return answer


_DURATION = re.compile(r"^\s*(\d+)\s*(ms|msec|s|sec|m|min|h|hr)?\s*$")
_FACTORS = {None: 1000, "s": 1000, "sec": 1000, "ms": 1, "msec": 1, "m": 60_000, "min": 60_000}


def dampen_ms(text: str | None) -> int:
    if not text:
        return 0
    match = _DURATION.match(text)
    if match is None:
        raise UsageError(f"invalid delay {text!r} (expected e.g. 5s, 500ms or 2m)")
    unit = match.group(2)
    factor = 3_600_000 if unit in ("h", "hr") else _FACTORS[unit]
    return int(match.group(1)) * factor


def _local_node(env: Mapping[str, str]) -> str:
    name = env.get(NODE_ENV)
    if not name:
        raise HelperFailure(f"the local node name is unknown: {NODE_ENV} is not set", EX_NOT_CONNECTED)
    return name


def promotion_name(env: Mapping[str, str], resource: str | None) -> str:
    """``master-<rsc>``; a clone instance suffix (``:1``) is dropped unless the clone is globally unique."""
    rsc = resource or env.get("OCF_RESOURCE_INSTANCE", "")
    if not rsc:
        raise HelperFailure(
            "no resource given for the promotion score: OCF_RESOURCE_INSTANCE is not set and no -r/-p value",
            EX_USAGE,
        )
    if env.get("OCF_RESKEY_CRM_meta_globally_unique", "false").lower() not in ("true", "1", "yes"):
        rsc = re.sub(r":\d+$", "", rsc)
    return "master-" + rsc


def _lifetime(opts: Mapping[str, str], default: str) -> str:
    lifetime = opts.get("lifetime")
    kind = opts.get("type")
    if kind in ("status",):
        lifetime = lifetime or "reboot"
    elif kind == "nodes":
        lifetime = lifetime or "forever"
    elif kind:
        raise HelperFailure(
            f"attribute type {kind!r} is not supported by hakeeper's agent helpers "
            "(only node attributes: -t nodes or -t status)",
            EX_UNSUPPORTED,
        )
    lifetime = lifetime or default
    if lifetime in ("reboot", "status", "transient"):
        return "reboot"
    if lifetime in ("forever", "nodes", "permanent"):
        return "forever"
    raise UsageError(f"invalid lifetime {lifetime!r} (expected reboot or forever)")


def _attribute_action(
    command: str, env: Mapping[str, str], opts: Mapping[str, str], name: str, lifetime: str
) -> tuple[str, dict[str, object]]:
    node = opts.get("node") or _local_node(env)
    base: dict[str, object] = {
        "name": name,
        "node": node,
        "lifetime": lifetime,
        "resource": env.get("OCF_RESOURCE_INSTANCE", ""),
    }
    chosen = [k for k in ("update", "delete", "query") if k in opts]
    if len(chosen) > 1:
        raise UsageError(f"{command}: choose one of update (-v), delete (-D) or query (-G)")
    if "update" in opts:
        return "update", {**base, "op": "update", "value": opts["update"]}
    if "delete" in opts:
        return "delete", {**base, "op": "delete"}
    return "query", {**base, "op": "query"}


def _print_query(
    out: list[str], opts: Mapping[str, str], answer: Mapping[str, object], name: str, lifetime: str
) -> int:
    value = answer.get("value")
    if value is None:
        if "default" in opts:
            value = opts["default"]
        else:
            raise HelperFailure(f"attribute {name!r} is not set on this node", EX_NOSUCH)
    if "quiet" in opts:
        out.append(str(value))
    else:
        scope = "status" if lifetime == "reboot" else "nodes"
        out.append(f"scope={scope}  name={name} value={value}")
    return EX_OK


def crm_attribute(args: Sequence[str], env: Mapping[str, str], out: list[str]) -> int:
    opts = parse_options("crm_attribute", CRM_ATTRIBUTE_OPTIONS, args)
    if "help" in opts:
        out.append("crm_attribute (hakeeper): query, update or delete node attributes and promotion scores")
        return EX_OK
    if "utilization" in opts:
        raise HelperFailure("utilization attributes are not supported by hakeeper's helpers", EX_UNSUPPORTED)
    if "promotion" in opts:
        name = promotion_name(env, opts["promotion"] or opts.get("resource"))
        lifetime = _lifetime(opts, "reboot")
    else:
        name = opts.get("name", "")
        if not name:
            raise UsageError("crm_attribute: an attribute name is required (-n NAME)")
        if "node" not in opts and "lifetime" not in opts and "type" not in opts:
            raise HelperFailure(
                "cluster properties are not supported by hakeeper's crm_attribute: "
                "give -N NODE or -l LIFETIME to work with a node attribute",
                EX_UNSUPPORTED,
            )
        lifetime = _lifetime(opts, "forever")
    action, message = _attribute_action("crm_attribute", env, opts, name, lifetime)
    answer = request(env, message)
    if action == "query":
        return _print_query(out, opts, answer, name, lifetime)
    return EX_OK


def crm_master(args: Sequence[str], env: Mapping[str, str], out: list[str]) -> int:
    opts = parse_options("crm_master", CRM_MASTER_OPTIONS, args)
    if "help" in opts:
        out.append("crm_master (hakeeper): query, update or delete a resource's promotion score")
        return EX_OK
    name = promotion_name(env, opts.get("resource"))
    lifetime = _lifetime(opts, "forever")
    action, message = _attribute_action("crm_master", env, opts, name, lifetime)
    answer = request(env, message)
    if action == "query":
        return _print_query(out, opts, answer, name, lifetime)
    return EX_OK


def attrd_updater(args: Sequence[str], env: Mapping[str, str], out: list[str]) -> int:
    opts = parse_options("attrd_updater", ATTRD_UPDATER_OPTIONS, args)
    if "help" in opts:
        out.append("attrd_updater (hakeeper): update, query or delete a transient node attribute")
        return EX_OK
    if "utilization" in opts or "set_name" in opts:
        raise HelperFailure(
            "attribute sets and utilization are not supported by hakeeper's helpers", EX_UNSUPPORTED
        )
    if "refresh" in opts:
        return EX_OK  # nothing is buffered locally: every update is already sent
    name = opts.get("name", "")
    if not name:
        raise UsageError("attrd_updater: an attribute name is required (-n NAME)")
    node = opts.get("node") or _local_node(env)
    base: dict[str, object] = {
        "name": name,
        "node": node,
        "lifetime": "reboot",
        "dampen_ms": dampen_ms(opts.get("delay")),
        "resource": env.get("OCF_RESOURCE_INSTANCE", ""),
        "private": "private" in opts,
    }
    if "query" in opts:
        return _attrd_query(out, env, base, all_nodes="all" in opts)
    if "delete" in opts:
        request(env, {**base, "op": "delete"})
    elif "update" in opts or "update_both" in opts:
        value = opts.get("update", opts.get("update_both", ""))
        request(env, {**base, "op": "update", "value": value})
    elif "update_delay" in opts:
        request(env, {**base, "op": "delay"})
    else:
        raise UsageError("attrd_updater: say what to do: -U VALUE, -B VALUE, -Y, -Q or -D")
    return EX_OK


def _attrd_query(out: list[str], env: Mapping[str, str], base: dict[str, object], all_nodes: bool) -> int:
    answer = request(env, {**base, "op": "query", "all": all_nodes})
    values = answer.get("values")
    if not isinstance(values, dict) or not values:
        raise HelperFailure(f"attribute {base['name']!r} is not set", EX_NOSUCH)
    for host, value in sorted(values.items()):
        out.append(f'name="{base["name"]}" host="{host}" value="{value}"')
    return EX_OK


def crm_node(args: Sequence[str], env: Mapping[str, str], out: list[str]) -> int:
    opts = parse_options("crm_node", CRM_NODE_OPTIONS, args)
    if "help" in opts:
        out.append("crm_node (hakeeper): show the local node's name, id, quorum and partition")
        return EX_OK
    if "name" in opts:
        out.append(_local_node(env))
    elif "id" in opts:
        out.append(env.get(NODE_ID_ENV, "") or "0")
    elif "quorum" in opts:
        answer = request(env, {"op": "quorum"})
        out.append("1" if answer.get("quorate") else "0")
    elif "list" in opts or "partition" in opts or "name_for_id" in opts:
        return _crm_node_members(opts, env, out)
    else:
        raise UsageError("crm_node: say what to show: -n, -i, -q, -l or -p")
    return EX_OK


def _crm_node_members(opts: Mapping[str, str], env: Mapping[str, str], out: list[str]) -> int:
    answer = request(env, {"op": "nodes"})
    nodes = answer.get("nodes")
    members = [str(n) for n in nodes] if isinstance(nodes, list) else [_local_node(env)]
    if "partition" in opts:
        out.append(" ".join(members))
    elif "list" in opts:
        out.extend(f"{i} {name} member" for i, name in enumerate(members, start=1))
    else:
        wanted = opts["name_for_id"]
        if not wanted.isdigit() or not 1 <= int(wanted) <= len(members):
            raise HelperFailure(f"no node with id {wanted}", EX_NOSUCH)
        out.append(members[int(wanted) - 1])
    return EX_OK


COMMANDS = {
    "crm_attribute": crm_attribute,
    "crm_master": crm_master,
    "crm_node": crm_node,
    "attrd_updater": attrd_updater,
}


def run(command: str, args: Sequence[str], env: Mapping[str, str]) -> tuple[int, list[str], str]:
    """Run one helper: (exit code, stdout lines, stderr message)."""
    handler = COMMANDS.get(command)
    if handler is None:
        return EX_USAGE, [], f"unknown helper command {command!r}"
    out: list[str] = []
    try:
        return handler(args, env, out), out, ""
    except UsageError as exc:
        return EX_USAGE, out, str(exc)
    except HelperFailure as exc:
        return exc.code, out, f"{command}: {exc}"


def write_helper_dir(directory: Path, python: str) -> Path:
    """Create ``directory`` with one small executable script per helper command; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    for command in HELPER_COMMANDS:
        script = directory / command
        script.write_text(
            f'#!/bin/sh\nexec {shlex.quote(python)} -m hakeeper.agents.helpers {command} "$@"\n',
            encoding="utf-8",
        )
        script.chmod(0o755)
    return directory


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if not words:
        print("usage: python -m hakeeper.agents.helpers COMMAND [OPTIONS]", file=sys.stderr)
        return EX_USAGE
    code, out, err = run(words[0], words[1:], os.environ)
    for line in out:
        print(line)
    if err:
        print(err, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
