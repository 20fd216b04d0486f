"""Semantic validation of a configuration, whatever format it came from.

``validate(cfg)`` returns every problem it finds as a :class:`Problem` whose ``path`` uses the declarative
file's own terms (``resources.web.ops[1].interval``, ``constraints.web-after-db.then``), so the same message
reads right for a TOML file, a Pacemaker XML import or a change made through the CLI. Errors are things the
cluster would refuse or silently ignore; warnings are legal but probably not what the operator meant.

Decisions where Pacemaker leaves room (checked against its scheduler sources):

* A constraint naming a resource, template or tag that does not exist is an **error**: Pacemaker drops such a
  constraint ("is not a valid resource or tag"), which is never what the operator wanted.
* A location constraint naming a node that is not configured is a **warning**, and only when nodes are
  configured at all: Pacemaker keeps it and it applies if that node joins later.
* Agent classes: ``ocf``, ``lsb``, ``systemd``, ``service``, ``stonith`` and our own ``hakeeper``.
  ``nagios`` and ``upstart`` (deprecated in Pacemaker, never run by hakeeper) are errors.
* Role names are read case-insensitively as Pacemaker does; ``Master``/``Slave`` are accepted with a warning.
* Ids must be unique across resources, templates, tags, constraints, alerts and fencing levels (one XML
  id space in Pacemaker). Attribute sets and operations shared through ``id-ref`` legitimately repeat ids,
  so they are not checked.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from hakeeper.cib import model as m
from hakeeper.cib.declarative import (
    OP_DEFAULTS_ID,
    PROPERTIES_ID,
    RSC_DEFAULTS_ID,
    Problem,
    Severity,
    join_path,
    plain_set,
)
from hakeeper.cib.values import (
    INFINITY,
    format_duration_ms,
    parse_datetime,
    parse_duration_ms,
    parse_score,
)

__all__ = ["Problem", "Severity", "describe", "errors", "validate"]

KNOWN_CLASSES = ("ocf", "lsb", "systemd", "service", "stonith", "hakeeper")
_RETIRED_CLASSES = ("nagios", "upstart")
ROLES = ("Stopped", "Started", "Unpromoted", "Promoted")
_LEGACY_ROLES = {"master": "Promoted", "slave": "Unpromoted"}
KNOWN_OPS = (
    "start",
    "stop",
    "monitor",
    "promote",
    "demote",
    "notify",
    "migrate_to",
    "migrate_from",
    "reload",
    "reload-agent",
    "meta-data",
    "validate-all",
    "status",
)
_OP_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_NEVER_RECURRING = ("start", "stop", "promote", "demote")  # Pacemaker ignores these with an interval

_ENUMS: dict[str, tuple[str, ...]] = {
    "on-fail": ("ignore", "block", "demote", "stop", "restart", "standby", "fence", "restart-container"),
    "kind": ("Mandatory", "Optional", "Serialize"),
    "loss-policy": ("stop", "demote", "fence", "freeze"),
    "action": ("start", "stop", "promote", "demote"),
    "resource-discovery": ("always", "never", "exclusive"),
    "boolean-op": ("and", "or"),
    "operation": ("lt", "gt", "lte", "gte", "eq", "ne", "defined", "not_defined"),
    "type": ("string", "integer", "number", "version"),
    "value-source": ("literal", "param", "meta"),
    "date": ("in_range", "gt", "lt", "date_spec"),
    "ordering": ("group", "listed"),
    "node-type": ("member", "remote", "ping"),
    "permission": ("read", "write", "deny"),
    "target-kind": ("target", "group"),
    "select": ("nodes", "fencing", "resources", "attributes"),
}

# Values of well-known options: cluster properties and resource meta-attributes (Pacemaker Explained).
_BOOL, _DURATION, _INT, _SCORE = "bool", "duration", "int", "score"
CLUSTER_OPTIONS: dict[str, str | tuple[str, ...]] = {
    "no-quorum-policy": ("stop", "freeze", "ignore", "demote", "suicide", "fence"),
    "placement-strategy": ("default", "utilization", "minimal", "balanced"),
    "stonith-action": ("reboot", "off", "poweroff"),
    "node-health-strategy": ("none", "migrate-on-red", "only-green", "progressive", "custom"),
    "fence-reaction": ("stop", "panic"),
    "stonith-enabled": _BOOL,
    "symmetric-cluster": _BOOL,
    "maintenance-mode": _BOOL,
    "start-failure-is-fatal": _BOOL,
    "enable-startup-probes": _BOOL,
    "stop-all-resources": _BOOL,
    "stop-orphan-resources": _BOOL,
    "stop-orphan-actions": _BOOL,
    "remove-after-stop": _BOOL,
    "startup-fencing": _BOOL,
    "concurrent-fencing": _BOOL,
    "have-watchdog": _BOOL,
    "enable-acl": _BOOL,
    "shutdown-lock": _BOOL,
    "is-managed-default": _BOOL,
    "cluster-delay": _DURATION,
    "stonith-timeout": _DURATION,
    "cluster-recheck-interval": _DURATION,
    "dc-deadtime": _DURATION,
    "election-timeout": _DURATION,
    "shutdown-escalation": _DURATION,
    "join-integration-timeout": _DURATION,
    "join-finalization-timeout": _DURATION,
    "transition-delay": _DURATION,
    "priority-fencing-delay": _DURATION,
    "shutdown-lock-limit": _DURATION,
    "default-action-timeout": _DURATION,
    "crmd-transition-delay": _DURATION,
    "crmd-integration-timeout": _DURATION,
    "crmd-finalization-timeout": _DURATION,
    "stonith-watchdog-timeout": "text",
    "batch-limit": _INT,
    "migration-limit": _INT,
    "node-action-limit": _INT,
    "stonith-max-attempts": _INT,
    "cluster-ipc-limit": _INT,
    "pe-error-series-max": _INT,
    "pe-warn-series-max": _INT,
    "pe-input-series-max": _INT,
    "node-health-base": _SCORE,
    "node-health-red": _SCORE,
    "node-health-yellow": _SCORE,
    "node-health-green": _SCORE,
    "default-resource-stickiness": _SCORE,
    "load-threshold": "text",
    "cluster-name": "text",
    "dc-version": "text",
    "cluster-infrastructure": "text",
    "last-lrm-refresh": "text",
    "expected-quorum-votes": "text",
    "notification-agent": "text",
    "notification-recipient": "text",
}
META_ATTRIBUTES: dict[str, str | tuple[str, ...]] = {
    "target-role": ("Stopped", "Started", "Unpromoted", "Promoted", "Slave", "Master"),
    "multiple-active": ("block", "stop_only", "stop_start", "stop_unexpected"),
    "requires": ("nothing", "quorum", "fencing", "unfencing"),
    "is-managed": _BOOL,
    "maintenance": _BOOL,
    "critical": _BOOL,
    "allow-migrate": _BOOL,
    "interleave": _BOOL,
    "globally-unique": _BOOL,
    "notify": _BOOL,
    "ordered": _BOOL,
    "promotable": _BOOL,
    "allow-unhealthy-nodes": _BOOL,
    "resource-stickiness": _SCORE,
    "migration-threshold": _SCORE,
    "priority": _INT,
    "clone-max": _INT,
    "clone-node-max": _INT,
    "clone-min": _INT,
    "promoted-max": _INT,
    "promoted-node-max": _INT,
    "master-max": _INT,
    "master-node-max": _INT,
    "failure-timeout": _DURATION,
}
OP_DEFAULT_ATTRIBUTES: dict[str, str | tuple[str, ...]] = {
    "timeout": _DURATION,
    "interval": _DURATION,
    "start-delay": _DURATION,
    "on-fail": _ENUMS["on-fail"],
    "enabled": _BOOL,
    "record-pending": _BOOL,
}
_TRUE_WORDS = ("true", "on", "yes", "y", "1", "false", "off", "no", "n", "0")


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _one_of(choices: Iterable[str]) -> str:
    items = list(choices)
    return ", ".join(items[:-1]) + " or " + items[-1] if len(items) > 1 else items[0]


def _walk(resources: Iterable[m.Resource]) -> Iterator[tuple[m.Resource, m.Resource | None]]:
    """Every resource with its parent (None at the top), parents before their children."""
    for r in resources:
        yield r, None
        if isinstance(r, m.Group):
            for c in r.children:
                yield c, r
        elif isinstance(r, m.Clone):
            yield r.child, r
            if isinstance(r.child, m.Group):
                for c in r.child.children:
                    yield c, r.child


class _Checker:
    """One validation pass: indexes the configuration, then runs each family of checks."""

    def __init__(self, cfg: m.Configuration) -> None:
        self.cfg = cfg
        self.problems: list[Problem] = []
        self.resources: dict[str, m.Resource] = {}
        self.parents: dict[str, list[str]] = {}
        for r, parent in _walk(cfg.resources):
            self.resources.setdefault(r.id, r)
            self.parents.setdefault(r.id, []).append(parent.id if parent else "")
        self.clone_of = {
            part.id: top.id
            for top in cfg.resources
            if isinstance(top, m.Clone)
            for part in [top.child, *(top.child.children if isinstance(top.child, m.Group) else [])]
        }
        self.templates = {t.id: t for t in cfg.templates}
        self.tags = {t.id: t for t in cfg.tags}
        self.node_names = {n.uname for n in cfg.nodes} | self.implicit_nodes()

    def implicit_nodes(self) -> set[str]:
        """Nodes that resources create: remote nodes (ocf:pacemaker:remote) and guests (meta remote-node)."""
        out: set[str] = set()
        for r in self.resources.values():
            if isinstance(r, m.Primitive):
                if (r.klass, r.provider, r.type) == ("ocf", "pacemaker", "remote"):
                    out.add(r.id)
                out.update(s.values["remote-node"] for s in r.meta_attributes if "remote-node" in s.values)
        return out

    def unknown_node(self, name: str) -> bool:
        """Whether ``name`` is surely not a node (bundles name their nodes after themselves)."""
        bundles = [r.id for r in self.cfg.resources if isinstance(r, m.Bundle)]
        configured = bool(self.cfg.nodes)
        return (
            configured and name not in self.node_names and not any(name.startswith(f"{b}-") for b in bundles)
        )

    # -- reporting --------------------------------------------------------------------------------------

    def error(self, path: str, message: str) -> None:
        self.problems.append(Problem(path=path, message=message))

    def warn(self, path: str, message: str) -> None:
        self.problems.append(Problem(path=path, message=message, severity="warning"))

    def enum(self, path: str, value: str | None, what: str, choices: Iterable[str]) -> None:
        """``value`` must be one of ``choices`` (compared without letter case, as Pacemaker does)."""
        options = list(choices)
        if value is None or value.lower() in (c.lower() for c in options):
            return
        self.error(path, f'"{value}" is not a valid {what}{_hint(value, options)}: use {_one_of(options)}')

    def role(self, path: str, value: str | None) -> None:
        if value is None:
            return
        if value.lower() in _LEGACY_ROLES:
            new = _LEGACY_ROLES[value.lower()]
            self.warn(path, f'role "{value}" is the deprecated name of "{new}"; write "{new}"')
            return
        self.enum(path, value, "role", ROLES)

    def score(self, path: str, value: int | None) -> None:
        if value is not None and abs(value) > INFINITY:
            self.error(
                path, f"the score {value} is beyond ±INFINITY ({INFINITY}); write INFINITY or -INFINITY"
            )

    def known_ref(self, path: str, ref: str | None, *, what: str = "resource, template or tag") -> None:
        if ref in self.clone_of:
            clone = self.clone_of[ref]
            self.warn(
                path,
                f'"{ref}" is inside the clone "{clone}", so the constraint applies to all of "{clone}"; '
                f'name "{clone}" to say so',
            )
        if ref is None or ref in self.resources or ref in self.templates or ref in self.tags:
            return
        hint = _hint(ref, [*self.resources, *self.templates, *self.tags])
        self.error(path, f'no {what} is named "{ref}"{hint}; define it or fix the name')

    # -- ids --------------------------------------------------------------------------------------------

    def ids(self) -> None:
        seen: dict[str, str] = {}

        def claim(ident: str, path: str) -> None:
            if ident in seen and seen[ident] != path:
                self.error(
                    path, f'the id "{ident}" is also used by {seen[ident]}; ids must be unique, rename one'
                )
            seen.setdefault(ident, path)

        for ident, parents in self.parents.items():
            named = [p for p in parents if p]
            if len(named) > 1:
                self.error(
                    join_path("resources", ident),
                    f"is part of both {named[0]!r} and {named[1]!r}; a resource can have only one parent "
                    "(define a second resource with another id)",
                )
            elif len(parents) > 1:
                self.error(join_path("resources", ident), "is defined more than once; ids must be unique")
        for ident in self.resources:
            claim(ident, join_path("resources", ident))
        for section, objs in (
            ("templates", self.cfg.templates),
            ("tags", self.cfg.tags),
            ("constraints", self.cfg.constraints),
            ("alerts", self.cfg.alerts),
        ):
            for obj in objs:
                claim(obj.id, join_path(section, obj.id))
        for i, level in enumerate(self.cfg.fencing_topology):
            claim(level.id, f"fencing.levels[{i}]")
        self.node_ids()

    def node_ids(self) -> None:
        names: set[str] = set()
        ids: dict[str, str] = {}
        for n in self.cfg.nodes:
            path = join_path("nodes", n.uname)
            if n.uname in names:
                self.error(path, "is configured twice; each node name must appear once")
            names.add(n.uname)
            if n.id in ids and ids[n.id] != n.uname:
                self.error(
                    join_path(path, "id"), f'"{n.id}" is also the id of node {ids[n.id]!r}; use another id'
                )
            ids.setdefault(n.id, n.uname)
            self.enum(join_path(path, "type"), n.type, "node type", _ENUMS["node-type"])
            self.score(join_path(path, "score"), n.score)

    # -- attribute values -------------------------------------------------------------------------------

    def nv_sets(
        self,
        base: str,
        sets: list[m.NvSet],
        default_id: str,
        known: dict[str, str | tuple[str, ...]] | None,
        what: str,
    ) -> None:
        """Check each value of well-known names; with ``what``, warn about names nobody knows."""
        plain = plain_set(sets, default_id)
        for i, s in enumerate(sets):
            here = base if plain else f"{base}[{i}]"
            self.score(f"{here}.score", s.score)
            if s.rule is not None:
                self.rule(f"{here}.rule", s.rule)
            for name, value in s.values.items():
                path = join_path(here if plain else f"{here}.values", name)
                if known is None:
                    continue
                if name not in known:
                    if what:
                        self.warn(
                            path, f"is not a {what} hakeeper knows{_hint(name, known)}; it has no effect"
                        )
                    continue
                self.value(path, name, value, known[name])

    def value(self, path: str, name: str, value: str, kind: str | tuple[str, ...]) -> None:
        if value == "#default":  # Pacemaker's explicit "use the default"
            return
        if isinstance(kind, tuple):
            self.enum(path, value, f"{name} value", kind)
        elif kind == _BOOL and value.strip().lower() not in _TRUE_WORDS:
            self.error(path, f'"{value}" is not true or false')
        elif kind == _INT and not re.fullmatch(r"\s*[+-]?[0-9]+\s*", value):
            leading = re.match(r"\s*([+-]?[0-9]+)\.[0-9]*\s*$", value)
            if leading:
                self.warn(path, f'"{value}" is not a whole number; it is read as {int(leading[1])}')
            else:
                self.error(path, f'"{value}" is not a whole number')
        elif kind in (_DURATION, _SCORE):
            try:
                (parse_duration_ms if kind == _DURATION else parse_score)(value)
            except ValueError as err:
                self.error(path, str(err))

    # -- rules ------------------------------------------------------------------------------------------

    def rule(self, path: str, rule: m.Rule) -> None:
        self.score(f"{path}.score", rule.score)
        self.enum(f"{path}.boolean-op", rule.boolean_op, "boolean-op", _ENUMS["boolean-op"])
        self.role(f"{path}.role", rule.role)
        if not rule.expressions:
            self.warn(path, "has no expressions, so it never applies; add one or remove the rule")
        for i, expr in enumerate(rule.expressions):
            self.expression(f"{path}.expressions[{i}]", expr)

    def expression(self, path: str, expr: m.Expression) -> None:
        if isinstance(expr, m.Rule):
            self.rule(path, expr)
        elif isinstance(expr, m.AttrExpression):
            self.enum(f"{path}.operation", expr.operation, "comparison", _ENUMS["operation"])
            self.enum(f"{path}.type", expr.type, "value type", _ENUMS["type"])
            self.enum(f"{path}.value-source", expr.value_source, "value-source", _ENUMS["value-source"])
            if expr.value is None and expr.operation not in ("defined", "not_defined"):
                self.error(path, f'"{expr.operation}" compares with a value: add value = "..."')
        elif isinstance(expr, m.DateExpression):
            self.date_expression(path, expr)
        elif isinstance(expr, m.OpExpression) and expr.interval is not None and expr.interval < 0:
            self.error(f"{path}.interval", "is negative; intervals are 0 or more")

    def date_expression(self, path: str, expr: m.DateExpression) -> None:
        self.enum(f"{path}.date", expr.operation, "date comparison", _ENUMS["date"])
        for key in ("start", "end"):
            text = getattr(expr, key)
            if text is not None:
                try:
                    parse_datetime(text)
                except ValueError as err:
                    self.error(f"{path}.{key}", str(err))
        op = expr.operation
        if op == "gt" and expr.start is None:
            self.error(path, 'date = "gt" needs start = "..." (the time after which it holds)')
        elif op == "lt" and expr.end is None:
            self.error(path, 'date = "lt" needs end = "..." (the time before which it holds)')
        elif op == "in_range" and expr.start is None and expr.end is None:
            self.error(path, 'date = "in_range" needs start, end or both')
        elif op == "date_spec" and expr.spec is None:
            self.error(path, 'date = "date_spec" needs spec = { hours = "9-17", ... }')

    # -- resources --------------------------------------------------------------------------------------

    def resources_(self) -> None:
        for r, _ in _walk(self.cfg.resources):
            path = join_path("resources", r.id)
            if isinstance(r, m.Primitive):
                self.primitive(path, r)
            elif isinstance(r, m.Group | m.Clone):
                self.nv_sets(
                    f"{path}.meta", r.meta_attributes, f"{r.id}-meta_attributes", META_ATTRIBUTES, ""
                )
                if isinstance(r, m.Group) and not r.children:
                    self.warn(path, "is a group without members; add members or remove it")
        for t in self.cfg.templates:
            path = join_path("templates", t.id)
            self.agent(path, t.klass, t.provider, t.type)
            self.operations(path, t.id, t.operations)

    def primitive(self, path: str, p: m.Primitive) -> None:
        if p.template is not None:
            if p.template not in self.templates:
                hint = _hint(p.template, self.templates)
                self.error(f"{path}.template", f'no template is named "{p.template}"{hint}')
        elif p.klass is None and p.type is None:
            self.error(path, 'has no agent: add agent = "ocf:heartbeat:IPaddr2" (or another) or a template')
        if p.klass is not None or p.type is not None:
            self.agent(path, p.klass, p.provider, p.type)
        self.nv_sets(f"{path}.meta", p.meta_attributes, f"{p.id}-meta_attributes", META_ATTRIBUTES, "")
        self.operations(path, p.id, p.operations)

    def agent(self, path: str, klass: str | None, provider: str | None, rtype: str | None) -> None:
        where = f"{path}.agent"
        if klass is None:
            self.error(where, f'"{rtype}" has no class: write ocf:PROVIDER:{rtype}, systemd:{rtype}, ...')
        elif klass.lower() in _RETIRED_CLASSES:
            self.error(
                where,
                f'the "{klass}" class is deprecated in Pacemaker and hakeeper does not run it; '
                "use an ocf agent or a systemd unit",
            )
        elif klass not in KNOWN_CLASSES:
            self.error(
                where,
                f'"{klass}" is not an agent class{_hint(klass, KNOWN_CLASSES)}: use {_one_of(KNOWN_CLASSES)}',
            )
        elif klass == "ocf" and not provider:
            self.error(
                where,
                f"ocf agents need a provider: write ocf:heartbeat:{rtype or 'TYPE'} "
                f"or ocf:pacemaker:{rtype or 'TYPE'}",
            )
        elif klass != "ocf" and provider:
            self.warn(where, f'only ocf agents have a provider; "{provider}" is ignored for {klass}')
        if klass is not None and not rtype:
            self.error(where, f"names the class {klass} but no agent type: write {klass}:...:NAME")

    def operations(self, path: str, owner: str, ops: list[m.Operation]) -> None:
        recurring: dict[tuple[str, int], int] = {}
        for i, op in enumerate(ops):
            here = f"{path}.ops[{i}]"
            self.operation(here, op)
            if op.interval > 0:
                key = (op.name, op.interval)
                if key in recurring:
                    self.error(
                        f"{here}.interval",
                        f"ops[{recurring[key]}] already runs {op.name} every "
                        f"{format_duration_ms(op.interval)} on {owner!r}; "
                        "Pacemaker forbids two recurring operations with the same name and interval: "
                        "change one interval (e.g. 10s and 11s)",
                    )
                recurring.setdefault(key, i)

    def operation(self, path: str, op: m.Operation) -> None:
        if not _OP_NAME.fullmatch(op.name):
            self.error(f"{path}.name", f'"{op.name}" is not an operation name: use monitor, start, stop, ...')
        elif op.name not in KNOWN_OPS:
            self.warn(
                f"{path}.name",
                f'"{op.name}" is not a standard action{_hint(op.name, KNOWN_OPS)}; '
                "make sure the agent implements it",
            )
        for key, value in (
            ("interval", op.interval),
            ("timeout", op.timeout),
            ("start-delay", op.start_delay),
        ):
            if value is not None and value < 0:
                self.error(f"{path}.{key}", f"is negative ({value} ms); use 0 or more, such as 10s")
        if op.timeout == 0:
            self.error(f"{path}.timeout", "is 0: every operation needs time to run; use e.g. 20s")
        if op.interval > 0 and op.name.lower() in _NEVER_RECURRING:
            self.error(
                f"{path}.interval",
                f"{op.name} cannot repeat, so Pacemaker ignores this operation; remove the interval "
                "(monitor is the action that repeats)",
            )
        self.enum(f"{path}.on-fail", op.on_fail, "on-fail", _ENUMS["on-fail"])
        self.role(f"{path}.role", op.role)

    # -- constraints ------------------------------------------------------------------------------------

    def constraints(self) -> None:
        for c in self.cfg.constraints:
            path = join_path("constraints", c.id)
            for i, s in enumerate(c.resource_sets):
                self.resource_set(f"{path}.sets[{i}]", s)
            checks: dict[type[Any], Callable[[str, Any], None]] = {
                m.Location: self.location,
                m.Colocation: self.colocation,
                m.Order: self.order,
                m.Ticket: self.ticket,
            }
            checks[type(c)](path, c)

    def resource_set(self, path: str, s: m.ResourceSet) -> None:
        for j, ref in enumerate(s.resources):
            self.known_ref(f"{path}.resources[{j}]", ref)
        if not s.resources:
            self.warn(path, "names no resources; add some or remove the set")
        self.role(f"{path}.role", s.role)
        self.enum(f"{path}.action", s.action, "action", _ENUMS["action"])
        self.enum(f"{path}.kind", s.kind, "order kind", _ENUMS["kind"])
        self.enum(f"{path}.ordering", s.ordering, "ordering", _ENUMS["ordering"])
        self.score(f"{path}.score", s.score)

    def needs_resources(self, path: str, has_direct: bool, c: m.Constraint, what: str) -> bool:
        if has_direct or c.resource_sets:
            return True
        self.error(path, f"names no resources: give {what} or sets = [...]")
        return False

    def both_ends(self, path: str, c: m.Constraint, a: str | None, b: str | None, what: str) -> None:
        """A constraint between two resources needs both of them, unless it uses resource sets."""
        if c.resource_sets or (a is not None and b is not None):
            return
        if a is None and b is None:
            self.error(path, f"names no resources: give {what}, or sets = [...]")
        else:
            self.error(path, f"needs both {what}")

    def location(self, path: str, c: m.Location) -> None:
        direct = c.rsc is not None or c.rsc_pattern is not None
        self.needs_resources(path, direct, c, "resource (or resource-pattern)")
        self.known_ref(f"{path}.resource", c.rsc)
        if c.rsc_pattern is not None:
            try:
                re.compile(c.rsc_pattern.removeprefix("!"))
            except re.error as err:
                self.error(
                    f"{path}.resource-pattern", f'"{c.rsc_pattern}" is not a regular expression ({err})'
                )
        if c.node is not None:
            if c.score is None:
                self.error(path, f'prefers node "{c.node}" but has no score: add score = 100 (or INFINITY)')
            if self.unknown_node(c.node):
                hint = _hint(c.node, self.node_names)
                self.warn(
                    f"{path}.node",
                    f'"{c.node}" is not a configured node{hint}; '
                    "the constraint applies only if such a node joins",
                )
        elif not c.rules:
            self.error(path, 'says nothing about nodes: add node = "..." with a score, or rules = [...]')
        self.score(f"{path}.score", c.score)
        self.role(f"{path}.role", c.role)
        self.enum(
            f"{path}.resource-discovery",
            c.resource_discovery,
            "resource-discovery",
            _ENUMS["resource-discovery"],
        )
        for i, rule in enumerate(c.rules):
            self.rule(f"{path}.rules[{i}]", rule)

    def colocation(self, path: str, c: m.Colocation) -> None:
        self.both_ends(path, c, c.rsc, c.with_rsc, 'resource = "..." and with = "..."')
        self.known_ref(f"{path}.resource", c.rsc)
        self.known_ref(f"{path}.with", c.with_rsc)
        if c.rsc is not None and c.rsc == c.with_rsc:
            self.error(path, f'colocates "{c.rsc}" with itself, which means nothing; name another resource')
        self.score(f"{path}.score", c.score)
        self.role(f"{path}.resource-role", c.rsc_role)
        self.role(f"{path}.with-role", c.with_rsc_role)

    def order(self, path: str, c: m.Order) -> None:
        self.both_ends(path, c, c.first, c.then, 'first = "..." and then = "..."')
        self.known_ref(f"{path}.first", c.first)
        self.known_ref(f"{path}.then", c.then)
        self.enum(f"{path}.first-action", c.first_action, "action", _ENUMS["action"])
        self.enum(f"{path}.then-action", c.then_action, "action", _ENUMS["action"])
        self.enum(f"{path}.kind", c.kind, "order kind", _ENUMS["kind"])
        self.score(f"{path}.score", c.score)
        if c.first is not None and c.first == c.then and (c.first_action or "start") == _then_action(c):
            self.error(path, f'orders "{c.first}" after itself; name two different resources')

    def ticket(self, path: str, c: m.Ticket) -> None:
        if not c.ticket.strip():
            self.error(f"{path}.ticket", "is empty: name the ticket")
        self.needs_resources(path, c.rsc is not None, c, "resource")
        self.known_ref(f"{path}.resource", c.rsc)
        self.role(f"{path}.resource-role", c.rsc_role)
        self.enum(f"{path}.loss-policy", c.loss_policy, "loss-policy", _ENUMS["loss-policy"])

    # -- order cycles -----------------------------------------------------------------------------------

    def order_cycles(self) -> None:
        graph = _OrderGraph(self.tags, self.templates, self.resources)
        for c in self.cfg.constraints:
            if isinstance(c, m.Order) and _mandatory(c):
                graph.add_order(c)
        for r, _ in _walk(self.cfg.resources):
            if isinstance(r, m.Group):
                graph.add_group(r)
        for cycle, labels in graph.cycles():
            steps = " → ".join(f"{action} {rsc}" for rsc, action in [*cycle, cycle[0]])
            position = {c.id: i for i, c in enumerate(self.cfg.constraints)}
            named = sorted(
                (x for x in labels if not x.startswith("group ")), key=lambda x: position.get(x, 0)
            )
            where = join_path("constraints", named[0]) if named else join_path("resources", labels[0][6:])
            self.error(
                where,
                f"mandatory orders form a cycle: {steps} ({', '.join(labels)}), so none of them can "
                'ever happen; remove one of these orders or make it kind = "Optional"',
            )

    # -- the rest ---------------------------------------------------------------------------------------

    def properties(self) -> None:
        self.nv_sets("properties", self.cfg.properties, PROPERTIES_ID, CLUSTER_OPTIONS, "cluster option")
        self.nv_sets("rsc_defaults", self.cfg.rsc_defaults, RSC_DEFAULTS_ID, META_ATTRIBUTES, "")
        self.nv_sets("op_defaults", self.cfg.op_defaults, OP_DEFAULTS_ID, OP_DEFAULT_ATTRIBUTES, "")
        self.fencing_needed()

    def fencing_needed(self) -> None:
        enabled = True
        for s in self.cfg.properties:
            if s.rule is None and "stonith-enabled" in s.values:
                enabled = s.values["stonith-enabled"].strip().lower() in ("true", "on", "yes", "y", "1")
        has_device = any(isinstance(r, m.Primitive) and r.klass == "stonith" for r in self.resources.values())
        has_device = has_device or any(t.klass == "stonith" for t in self.templates.values())
        if enabled and self.cfg.resources and not has_device:
            self.warn(
                "properties.stonith-enabled",
                "fencing is enabled but no fencing device (a stonith: resource) is configured, so "
                "no resource will start; add a fencing device, or set stonith-enabled = false for a "
                "test cluster",
            )

    def fencing_levels(self) -> None:
        for i, lv in enumerate(self.cfg.fencing_topology):
            path = f"fencing.levels[{i}]"
            if not 1 <= lv.index <= 9:
                self.error(f"{path}.index", f"is {lv.index}; fencing levels are numbered 1 to 9")
            targets = [x for x in (lv.target, lv.target_pattern, lv.target_attribute) if x is not None]
            if len(targets) != 1:
                self.error(path, "needs exactly one of target, target-pattern or target-attribute")
            if lv.target is not None and self.unknown_node(lv.target):
                self.warn(
                    f"{path}.target",
                    f'"{lv.target}" is not a configured node{_hint(lv.target, self.node_names)}',
                )
            if lv.target_attribute is not None and lv.target_value is None:
                self.error(path, "target-attribute needs target-value")
            if not lv.devices:
                self.error(f"{path}.devices", 'is empty: list the fencing devices, e.g. ["ipmi-node1"]')
            for j, dev in enumerate(lv.devices):
                self.fencing_device(f"{path}.devices[{j}]", dev)

    def fencing_device(self, path: str, dev: str) -> None:
        r = self.resources.get(dev)
        if r is None:
            devices = [
                x.id for x in self.resources.values() if isinstance(x, m.Primitive) and x.klass == "stonith"
            ]
            self.error(
                path,
                f'no fencing device is named "{dev}"{_hint(dev, devices)}; '
                "define it as a resource with a stonith: agent",
            )
        elif not (isinstance(r, m.Primitive) and r.klass == "stonith"):
            self.error(path, f'"{dev}" is not a fencing device (its agent is not stonith:...)')

    def tags_alerts_acls(self) -> None:
        for t in self.cfg.tags:
            for j, ref in enumerate(t.refs):
                if ref not in self.resources and ref not in self.templates:
                    hint = _hint(ref, self.resources)
                    self.error(f"{join_path('tags', t.id)}[{j}]", f'no resource is named "{ref}"{hint}')
        for a in self.cfg.alerts:
            path = join_path("alerts", a.id)
            if not a.path.startswith("/"):
                self.warn(
                    f"{path}.path", f'"{a.path}" is not an absolute path; write the full path of the agent'
                )
            for j, sel in enumerate(a.select):
                self.enum(f"{path}.select[{j}]", sel, "alert selection", _ENUMS["select"])
        if self.cfg.acls is not None:
            self.acls(self.cfg.acls)

    def acls(self, acls: m.Acls) -> None:
        roles = {r.id for r in acls.roles}
        for role in acls.roles:
            for j, p in enumerate(role.permissions):
                here = f"{join_path('acls.roles', role.id)}.permissions[{j}]"
                self.enum(f"{here}.kind", p.kind, "permission", _ENUMS["permission"])
                if p.xpath is None and p.reference is None and p.object_type is None:
                    self.error(here, "says nothing about what it covers: add xpath, reference or object-type")
        for t in acls.targets:
            here = join_path("acls.targets", t.id)
            self.enum(f"{here}.kind", t.kind, "ACL target kind", _ENUMS["target-kind"])
            for j, r in enumerate(t.roles):
                if r not in roles:
                    self.error(f"{here}.roles[{j}]", f'no ACL role is named "{r}"{_hint(r, roles)}')

    def run(self) -> list[Problem]:
        self.ids()
        self.properties()
        self.resources_()
        self.constraints()
        self.order_cycles()
        self.fencing_levels()
        self.tags_alerts_acls()
        return self.problems


def _then_action(c: m.Order) -> str:
    return c.then_action or c.first_action or "start"


def _mandatory(c: m.Order) -> bool:
    if c.kind is not None:
        return c.kind.lower() == "mandatory"
    return c.score is None or c.score > 0


_INVERSE = {"start": "stop", "stop": "start", "promote": "demote", "demote": "promote"}
_Node = tuple[str, str]  # (resource id, action)


class _OrderGraph:
    """Mandatory "A before B" edges between (resource, action) pairs, to find cycles."""

    def __init__(
        self, tags: dict[str, m.Tag], templates: dict[str, m.Template], resources: dict[str, m.Resource]
    ) -> None:
        self.edges: dict[_Node, dict[_Node, str]] = {}
        self.tags = tags
        self.users = {
            t: [r.id for r in resources.values() if isinstance(r, m.Primitive) and r.template == t]
            for t in templates
        }

    def expand(self, ref: str) -> list[str]:
        if ref in self.tags:
            return list(self.tags[ref].refs)
        return self.users.get(ref, [ref])

    def add(self, a: _Node, b: _Node, label: str) -> None:
        for x in self.expand(a[0]):
            for y in self.expand(b[0]):
                self.edges.setdefault((x, a[1]), {}).setdefault((y, b[1]), label)

    def add_order(self, c: m.Order) -> None:
        if c.first is not None and c.then is not None:
            fa, ta = c.first_action or "start", _then_action(c)
            self.add((c.first, fa), (c.then, ta), c.id)
            if c.symmetrical is not False and fa in _INVERSE and ta in _INVERSE:
                self.add((c.then, _INVERSE[ta]), (c.first, _INVERSE[fa]), c.id)
        previous: list[_Node] = []
        for s in c.resource_sets:
            action = s.action or "start"
            members = [(r, action) for r in s.resources]
            if s.sequential is not False:
                for a, b in itertools.pairwise(members):
                    self.add(a, b, c.id)
            for a in previous:
                for b in members:
                    self.add(a, b, c.id)
            previous = members

    def add_group(self, g: m.Group) -> None:
        for a, b in itertools.pairwise(g.children):
            self.add((a.id, "start"), (b.id, "start"), f"group {g.id}")
            self.add((b.id, "stop"), (a.id, "stop"), f"group {g.id}")

    def cycles(self) -> list[tuple[list[_Node], list[str]]]:
        """One cycle per strongly connected component that has one, with the labels of its edges."""
        out = []
        for component in _strongly_connected(self.edges):
            start = min(component)
            path = self.path_back(start, component)
            if path is None:
                continue
            labels = list(
                dict.fromkeys(self.edges[a][b] for a, b in zip(path, [*path[1:], start], strict=True))
            )
            out.append((path, labels))
        return out

    def path_back(self, start: _Node, within: set[_Node]) -> list[_Node] | None:
        """A shortest path from ``start`` back to itself inside one component (breadth first)."""
        came_from: dict[_Node, _Node] = {}
        frontier = [start]
        while frontier:
            nxt = []
            for node in frontier:
                for succ in sorted(self.edges.get(node, {})):
                    if succ == start:
                        path = [node]
                        while path[-1] != start:
                            path.append(came_from[path[-1]])
                        return path[::-1]
                    if succ in within and succ not in came_from:
                        came_from[succ] = node
                        nxt.append(succ)
            frontier = nxt
        return None


def _strongly_connected(edges: dict[_Node, dict[_Node, str]]) -> list[set[_Node]]:
    """Tarjan's algorithm, iterative (configurations can be large), in a deterministic order."""
    index: dict[_Node, int] = {}
    low: dict[_Node, int] = {}
    stack: list[_Node] = []
    on_stack: set[_Node] = set()
    out: list[set[_Node]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[_Node, Iterator[_Node]]] = [(root, iter(sorted(edges.get(root, {}))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, succs = work[-1]
            advanced = False
            for succ in succs:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(edges.get(succ, {})))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: set[_Node] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1 or node in edges.get(node, {}):
                    out.append(component)
    return out


def validate(cfg: m.Configuration) -> list[Problem]:
    """Every problem in ``cfg``: errors (the cluster would refuse or ignore something) and warnings."""
    return _Checker(cfg).run()


def errors(problems: Iterable[Problem]) -> list[Problem]:
    """Only the errors among ``problems``."""
    return [p for p in problems if p.severity == "error"]


def describe(problems: Iterable[Problem]) -> str:
    """One line per problem, errors first."""
    ordered = sorted(problems, key=lambda p: p.severity != "error")
    return "\n".join(str(p) for p in ordered)
