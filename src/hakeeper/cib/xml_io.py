"""Pacemaker CIB XML import and export.

Import is lenient the way Pacemaker is (old spellings such as ``<master>`` are accepted) and loud about what
it does not understand: every element or attribute it cannot represent becomes a warning naming it, never a
silent loss. Export writes XML that Pacemaker's tools read; ``parse(export(cib)) == cib`` for every model.

Entities and network access are disabled in the parser: a CIB is data, not a program.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, Union, get_args, get_origin

import msgspec
from lxml import etree

from hakeeper.cib import model as m
from hakeeper.cib.values import INFINITY, format_duration_ms, parse_duration_ms, parse_score

S = TypeVar("S", bound=msgspec.Struct)


class CibXmlError(ValueError):
    """The document is not a CIB we can read (not XML, or not a ``<cib>``)."""


class ImportResult(msgspec.Struct, frozen=True):
    cib: m.Cib
    warnings: list[str]


# Attributes Pacemaker writes for its own bookkeeping; they carry no meaning for the model.
_COSMETIC = {
    "crm-debug-origin",
    "cib-last-written",
    "update-origin",
    "update-client",
    "update-user",
    "remote-tls-port",
    "remote-clear-port",
    "crmd-debug-origin",
}

# XML attribute name for a model field, where it is not the field name with "_" -> "-".
_RENAMES: dict[type[msgspec.Struct], dict[str, str]] = {
    m.OpRecord: {
        "call_id": "call-id",
        "rc": "rc-code",
        "operation_key": "operation_key",
        "on_node": "on_node",
        "migrate_source": "migrate_source",
        "migrate_target": "migrate_target",
        "crm_feature_set": "crm_feature_set",
    },
    m.NodeState: {
        "in_ccm": "in_ccm",
        "remote_node": "remote_node",
        "node_fenced": "node_fenced",
        "node_in_maintenance": "node_in_maintenance",
        "clear_shutdown": "clear_shutdown",
    },
    m.ResourceHistory: {"klass": "class"},
    m.Primitive: {"klass": "class"},
    m.Template: {"klass": "class"},
    m.RscExpression: {"klass": "class"},
    m.TicketState: {"last_granted": "last-granted"},
    m.Cib: {"admin_epoch": "admin_epoch", "num_updates": "num_updates", "crm_feature_set": "crm_feature_set"},
    m.AttrExpression: {"value_source": "value-source"},
}

# Model fields that hold durations in milliseconds but are written as durations in configuration XML.
_DURATION_FIELDS = {"interval", "timeout", "start_delay"}
_BOOL_TRUE = {"true", "yes", "on", "1", "y", "t"}
_BOOL_FALSE = {"false", "no", "off", "0", "n", "f"}


def _convert(values: dict[str, Any], cls: type[S]) -> S:
    """Build a struct from field-named values (msgspec.convert expects the encoded names)."""
    renamed = {f.encode_name: values[f.name] for f in msgspec.structs.fields(cls) if f.name in values}
    return msgspec.convert(renamed, cls)


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _BOOL_TRUE:
        return True
    if word in _BOOL_FALSE:
        return False
    raise ValueError(f'"{text}" is not a boolean (use true or false)')


def _xml_name(cls: type[msgspec.Struct], field: str) -> str:
    return _RENAMES.get(cls, {}).get(field, field.replace("_", "-"))


def _scalar_kind(tp: Any) -> str | None:
    """'str', 'int', 'bool' for scalar (optionally None-able) field types; None for structured ones."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) != 1:
            return None
        tp = args[0]
    if tp in (str, int, bool):
        return str(tp.__name__)
    return None


class _Reader:
    """One import: collects warnings, resolves ``id-ref`` against the whole document."""

    def __init__(self, root: etree._Element, *, config_xml: bool) -> None:
        self.warnings: list[str] = []
        self.by_id: dict[str, etree._Element] = {}
        for el in root.iter():
            ident = el.get("id")
            if isinstance(el.tag, str) and ident is not None:
                self.by_id.setdefault(ident, el)
        self.config_xml = config_xml

    def warn(self, el: etree._Element, text: str) -> None:
        ident = el.get("id")
        where = f"<{el.tag} id={ident!r}>" if ident else f"<{el.tag}>"
        line = f" (line {el.sourceline})" if el.sourceline else ""
        self.warnings.append(f"{where}{line}: {text}")

    def deref(self, el: etree._Element) -> etree._Element:
        ref = el.get("id-ref")
        if ref is None:
            return el
        target = self.by_id.get(ref)
        if target is None:
            self.warn(el, f"refers to id {ref!r}, which does not exist; ignored")
            return el
        return target

    # -- generic scalar attributes --------------------------------------------------------------------

    def scalars(
        self,
        el: etree._Element,
        cls: type[S],
        *,
        skip: Iterable[str] = (),
        durations_in_ms: bool = False,
        allow_unknown: bool = False,
    ) -> dict[str, Any]:
        """Read every scalar field of ``cls`` from ``el``'s attributes, converting and warning on errors."""
        out: dict[str, Any] = {}
        known: set[str] = set(_COSMETIC) | {"id-ref"}
        skipped = set(skip)
        for f in msgspec.structs.fields(cls):
            kind = _scalar_kind(f.type)
            name = _xml_name(cls, f.name)
            known.add(name)
            if kind is None or f.name in skipped:
                continue
            raw = el.get(name)
            if raw is None:
                continue
            try:
                out[f.name] = self._convert(f.name, kind, raw, durations_in_ms)
            except ValueError as err:
                self.warn(el, f"attribute {name}: {err}; ignored")
        known |= {_xml_name(cls, s) for s in skipped}
        for attr, value in el.attrib.items():
            if attr not in known and not allow_unknown:
                self.warn(el, f"attribute {attr!s}={value!r} is not supported; ignored")
        return out

    @staticmethod
    def _convert(field: str, kind: str, raw: str, durations_in_ms: bool) -> Any:
        if kind == "str":
            return raw
        if kind == "bool":
            return parse_bool(raw)
        if field == "score":
            return parse_score(raw)
        if field in _DURATION_FIELDS and not durations_in_ms:
            return parse_duration_ms(raw)
        return int(raw)

    def build(self, el: etree._Element, cls: type[S], values: dict[str, Any]) -> S | None:
        try:
            return _convert(values, cls)
        except msgspec.ValidationError as err:
            self.warn(el, f"cannot be read ({err}); skipped")
            return None

    def children(self, el: etree._Element, *tags: str) -> list[etree._Element]:
        return [c for c in el if isinstance(c.tag, str) and c.tag in tags]

    def unknown_children(self, el: etree._Element, known: set[str]) -> None:
        for c in el:
            if isinstance(c.tag, str) and c.tag not in known:
                self.warn(c, f"element <{c.tag}> inside <{el.tag}> is not supported; ignored")

    # -- rules and attribute sets ---------------------------------------------------------------------

    def rule(self, el: etree._Element) -> m.Rule | None:
        el = self.deref(el)
        vals = self.scalars(el, m.Rule)
        exprs: list[m.Expression] = []
        for c in el:
            if not isinstance(c.tag, str):
                continue
            expr = self.expression(c)
            if expr is not None:
                exprs.append(expr)
        vals["expressions"] = exprs
        return self.build(el, m.Rule, vals)

    def expression(self, el: etree._Element) -> m.Expression | None:
        el = self.deref(el)
        if el.tag == "rule":
            return self.rule(el)
        if el.tag == "expression":
            return self.build(el, m.AttrExpression, self.scalars(el, m.AttrExpression))
        if el.tag == "date_expression":
            vals = self.scalars(el, m.DateExpression)
            for c in el:
                if c.tag in ("date_spec", "duration"):
                    fields = {str(k): str(v) for k, v in c.attrib.items() if k != "id"}
                    spec = m.DateSpec(id=c.get("id", ""), fields=fields)
                    vals["spec" if c.tag == "date_spec" else "duration"] = spec
                elif isinstance(c.tag, str):
                    self.warn(c, f"element <{c.tag}> inside <date_expression> is not supported; ignored")
            return self.build(el, m.DateExpression, vals)
        if el.tag == "op_expression":
            vals = self.scalars(el, m.OpExpression, skip=["interval"])
            if el.get("interval") is not None:
                vals["interval"] = self._duration(el, "interval")
            return self.build(el, m.OpExpression, vals)
        if el.tag == "rsc_expression":
            return self.build(el, m.RscExpression, self.scalars(el, m.RscExpression))
        self.warn(el, f"element <{el.tag}> is not a rule expression; ignored")
        return None

    def _duration(self, el: etree._Element, name: str) -> int | None:
        try:
            return parse_duration_ms(el.get(name, ""))
        except ValueError as err:
            self.warn(el, f"attribute {name}: {err}; ignored")
            return None

    def nvsets(self, parent: etree._Element, tag: str) -> list[m.NvSet]:
        out: list[m.NvSet] = []
        for el in self.children(parent, tag):
            nv = self.nvset(el)
            if nv is not None:
                out.append(nv)
        return out

    def nvset(self, el: etree._Element) -> m.NvSet | None:
        set_id = el.get("id") or el.get("id-ref") or ""
        el = self.deref(el)
        vals = self.scalars(el, m.NvSet, skip=["values"])
        vals["id"] = set_id
        values: dict[str, str] = {}
        rule: m.Rule | None = None
        for c in el:
            if not isinstance(c.tag, str):
                continue
            if c.tag == "nvpair":
                pair = self.deref(c)
                name = pair.get("name")
                if name is None:
                    self.warn(c, "nvpair without a name; ignored")
                    continue
                values[name] = pair.get("value", "")
            elif c.tag == "rule":
                rule = self.rule(c)
            else:
                self.warn(c, f"element <{c.tag}> inside <{el.tag}> is not supported; ignored")
        vals["values"] = values
        if rule is not None:
            vals["rule"] = rule
        return self.build(el, m.NvSet, vals)

    # -- resources ------------------------------------------------------------------------------------

    def operations(self, parent: etree._Element) -> list[m.Operation]:
        ops: list[m.Operation] = []
        for opsel in self.children(parent, "operations"):
            opsel = self.deref(opsel)
            for el in opsel:
                if not isinstance(el.tag, str):
                    continue
                if el.tag != "op":
                    self.warn(el, "only <op> belongs in <operations>; ignored")
                    continue
                el = self.deref(el)
                vals = self.scalars(el, m.Operation)
                vals.setdefault("interval", 0)
                vals["instance_attributes"] = self.nvsets(el, "instance_attributes")
                vals["meta_attributes"] = self.nvsets(el, "meta_attributes")
                op = self.build(el, m.Operation, vals)
                if op is not None:
                    ops.append(op)
        return ops

    def primitive_fields(self, el: etree._Element, cls: type[S]) -> dict[str, Any]:
        vals = self.scalars(el, cls)
        vals["instance_attributes"] = self.nvsets(el, "instance_attributes")
        vals["meta_attributes"] = self.nvsets(el, "meta_attributes")
        vals["utilization"] = self.nvsets(el, "utilization")
        vals["operations"] = self.operations(el)
        self.unknown_children(el, {"instance_attributes", "meta_attributes", "utilization", "operations"})
        return vals

    def primitive(self, el: etree._Element) -> m.Primitive | None:
        return self.build(el, m.Primitive, self.primitive_fields(el, m.Primitive))

    def group(self, el: etree._Element) -> m.Group | None:
        vals = self.scalars(el, m.Group)
        vals["instance_attributes"] = self.nvsets(el, "instance_attributes")
        vals["meta_attributes"] = self.nvsets(el, "meta_attributes")
        children = []
        for c in self.children(el, "primitive"):
            p = self.primitive(c)
            if p is not None:
                children.append(p)
        vals["children"] = children
        self.unknown_children(el, {"instance_attributes", "meta_attributes", "primitive"})
        return self.build(el, m.Group, vals)

    def clone(self, el: etree._Element) -> m.Clone | None:
        vals = self.scalars(el, m.Clone)
        vals["instance_attributes"] = self.nvsets(el, "instance_attributes")
        meta = self.nvsets(el, "meta_attributes")
        if el.tag == "master":
            vals["legacy_master"] = True
            if not any("promotable" in s.values for s in meta):
                meta.append(m.NvSet(id=f"{el.get('id')}-promotable-implied", values={"promotable": "true"}))
        vals["meta_attributes"] = meta
        kids = self.children(el, "primitive", "group")
        if len(kids) != 1:
            self.warn(el, f"a clone must contain exactly one primitive or group, found {len(kids)}; skipped")
            return None
        child = self.primitive(kids[0]) if kids[0].tag == "primitive" else self.group(kids[0])
        if child is None:
            return None
        vals["child"] = child
        self.unknown_children(el, {"instance_attributes", "meta_attributes", "primitive", "group"})
        return self.build(el, m.Clone, vals)

    def bundle(self, el: etree._Element) -> m.Bundle:
        self.warn(el, "bundles are recognised and kept, but not yet scheduled by the policy engine")
        prim = next(iter(self.children(el, "primitive")), None)
        raw = etree.tostring(el, encoding="unicode", with_tail=False)
        return m.Bundle(
            id=el.get("id", ""), raw_xml=raw, primitive_id=None if prim is None else prim.get("id")
        )

    def resources(self, el: etree._Element) -> tuple[list[m.Resource], list[m.Template]]:
        resources: list[m.Resource] = []
        templates: list[m.Template] = []
        readers: dict[str, Callable[[etree._Element], m.Resource | None]] = {
            "primitive": self.primitive,
            "group": self.group,
            "clone": self.clone,
            "master": self.clone,
            "bundle": self.bundle,
        }
        for c in el:
            if not isinstance(c.tag, str):
                continue
            if c.tag == "template":
                t = self.build(c, m.Template, self.primitive_fields(c, m.Template))
                if t is not None:
                    templates.append(t)
            elif c.tag in readers:
                r = readers[c.tag](c)
                if r is not None:
                    resources.append(r)
            else:
                self.warn(c, f"element <{c.tag}> is not a resource; ignored")
        return resources, templates

    # -- constraints ----------------------------------------------------------------------------------

    def resource_sets(self, el: etree._Element) -> list[m.ResourceSet]:
        out = []
        for s in self.children(el, "resource_set"):
            s = self.deref(s)
            vals = self.scalars(s, m.ResourceSet)
            refs = []
            for c in s:
                if c.tag == "resource_ref":
                    refs.append(c.get("id", ""))
                elif isinstance(c.tag, str):
                    self.warn(c, f"element <{c.tag}> inside <resource_set> is not supported; ignored")
            vals["resources"] = refs
            rs = self.build(s, m.ResourceSet, vals)
            if rs is not None:
                out.append(rs)
        return out

    def constraint(self, el: etree._Element) -> m.Constraint | None:
        el = self.deref(el)
        kinds: dict[str, type[m.Location | m.Colocation | m.Order | m.Ticket]] = {
            "rsc_location": m.Location,
            "rsc_colocation": m.Colocation,
            "rsc_order": m.Order,
            "rsc_ticket": m.Ticket,
        }
        cls = kinds.get(el.tag)
        if cls is None:
            self.warn(el, f"element <{el.tag}> is not a constraint; ignored")
            return None
        vals = self.scalars(el, cls)
        vals["resource_sets"] = self.resource_sets(el)
        known = {"resource_set"}
        if cls is m.Location:
            rules = [r for r in (self.rule(c) for c in self.children(el, "rule")) if r is not None]
            vals["rules"] = rules
            known.add("rule")
        self.unknown_children(el, known)
        if cls is m.Colocation and "score" not in vals:
            vals["score"] = 0
        return self.build(el, cls, vals)

    # -- the rest of the configuration ----------------------------------------------------------------

    def nodes(self, el: etree._Element) -> list[m.Node]:
        out = []
        for n in self.children(el, "node"):
            vals = self.scalars(n, m.Node)
            vals["instance_attributes"] = self.nvsets(n, "instance_attributes")
            vals["utilization"] = self.nvsets(n, "utilization")
            self.unknown_children(n, {"instance_attributes", "utilization"})
            node = self.build(n, m.Node, vals)
            if node is not None:
                out.append(node)
        self.unknown_children(el, {"node"})
        return out

    def fencing_topology(self, el: etree._Element) -> list[m.FencingLevel]:
        out = []
        for lv in self.children(el, "fencing-level"):
            vals = self.scalars(lv, m.FencingLevel, skip=["devices"])
            vals["devices"] = [d for d in lv.get("devices", "").split(",") if d]
            level = self.build(lv, m.FencingLevel, vals)
            if level is not None:
                out.append(level)
        self.unknown_children(el, {"fencing-level"})
        return out

    def alerts(self, el: etree._Element) -> list[m.Alert]:
        out = []
        for a in self.children(el, "alert"):
            vals = self.scalars(a, m.Alert)
            vals["instance_attributes"] = self.nvsets(a, "instance_attributes")
            vals["meta_attributes"] = self.nvsets(a, "meta_attributes")
            recips = []
            for r in self.children(a, "recipient"):
                rv = self.scalars(r, m.AlertRecipient)
                rv["instance_attributes"] = self.nvsets(r, "instance_attributes")
                rv["meta_attributes"] = self.nvsets(r, "meta_attributes")
                rec = self.build(r, m.AlertRecipient, rv)
                if rec is not None:
                    recips.append(rec)
            vals["recipients"] = recips
            selects: list[str] = []
            for s in self.children(a, "select"):
                selects.extend(c.tag.removeprefix("select_") for c in s if isinstance(c.tag, str))
            vals["select"] = selects
            self.unknown_children(a, {"instance_attributes", "meta_attributes", "recipient", "select"})
            alert = self.build(a, m.Alert, vals)
            if alert is not None:
                out.append(alert)
        return out

    def tags(self, el: etree._Element) -> list[m.Tag]:
        out = []
        for t in self.children(el, "tag"):
            refs = [c.get("id", "") for c in self.children(t, "obj_ref")]
            out.append(m.Tag(id=t.get("id", ""), refs=refs))
        return out

    def acls(self, el: etree._Element) -> m.Acls:
        roles = []
        targets = []
        for c in el:
            if not isinstance(c.tag, str):
                continue
            if c.tag == "acl_role":
                perms = []
                for p in self.children(c, "acl_permission"):
                    vals = self.scalars(p, m.AclPermission)
                    perm = self.build(p, m.AclPermission, vals)
                    if perm is not None:
                        perms.append(perm)
                roles.append(
                    m.AclRole(id=c.get("id", ""), description=c.get("description"), permissions=perms)
                )
            elif c.tag in ("acl_target", "acl_group"):
                role_ids = [r.get("id", "") for r in self.children(c, "role")]
                kind = "target" if c.tag == "acl_target" else "group"
                targets.append(m.AclTarget(id=c.get("id", ""), kind=kind, roles=role_ids))
            else:
                self.warn(c, f"element <{c.tag}> inside <acls> is not supported; ignored")
        return m.Acls(roles=roles, targets=targets)

    def configuration(self, el: etree._Element) -> m.Configuration:
        vals: dict[str, Any] = {}
        for c in el:
            if not isinstance(c.tag, str):
                continue
            if c.tag == "crm_config":
                vals["properties"] = self.nvsets(c, "cluster_property_set")
            elif c.tag == "nodes":
                vals["nodes"] = self.nodes(c)
            elif c.tag == "resources":
                vals["resources"], vals["templates"] = self.resources(c)
            elif c.tag == "constraints":
                cons = [self.constraint(x) for x in c if isinstance(x.tag, str)]
                vals["constraints"] = [x for x in cons if x is not None]
            elif c.tag == "rsc_defaults":
                vals["rsc_defaults"] = self.nvsets(c, "meta_attributes")
            elif c.tag == "op_defaults":
                vals["op_defaults"] = self.nvsets(c, "meta_attributes")
            elif c.tag == "fencing-topology":
                vals["fencing_topology"] = self.fencing_topology(c)
            elif c.tag == "alerts":
                vals["alerts"] = self.alerts(c)
            elif c.tag == "tags":
                vals["tags"] = self.tags(c)
            elif c.tag == "acls":
                vals["acls"] = self.acls(c)
            else:
                self.warn(c, f"configuration section <{c.tag}> is not supported; ignored")
        return m.Configuration(**vals)

    # -- status ---------------------------------------------------------------------------------------

    def node_state(self, el: etree._Element) -> m.NodeState | None:
        vals = self.scalars(el, m.NodeState, skip=["has_lrm"])
        attrs: list[m.NvSet] = []
        resources: list[m.ResourceHistory] = []
        has_lrm = False
        for c in el:
            if not isinstance(c.tag, str):
                continue
            if c.tag == "transient_attributes":
                attrs.extend(self.nvsets(c, "instance_attributes"))
            elif c.tag == "lrm":
                has_lrm = True
                for lrs in self.children(c, "lrm_resources"):
                    for r in self.children(lrs, "lrm_resource"):
                        hist = self.resource_history(r)
                        if hist is not None:
                            resources.append(hist)
            else:
                self.warn(c, f"element <{c.tag}> inside <node_state> is not supported; ignored")
        vals["transient_attributes"] = attrs
        vals["resources"] = resources
        vals["has_lrm"] = has_lrm
        return self.build(el, m.NodeState, vals)

    def resource_history(self, el: etree._Element) -> m.ResourceHistory | None:
        vals = self.scalars(el, m.ResourceHistory)
        ops = []
        for o in self.children(el, "lrm_rsc_op"):
            ov = self.scalars(o, m.OpRecord, durations_in_ms=True)
            op = self.build(o, m.OpRecord, ov)
            if op is not None:
                ops.append(op)
        vals["ops"] = ops
        self.unknown_children(el, {"lrm_rsc_op"})
        return self.build(el, m.ResourceHistory, vals)

    def status(self, el: etree._Element) -> m.Status:
        nodes: list[m.NodeState] = []
        tickets: list[m.TicketState] = []
        for c in el:
            if not isinstance(c.tag, str):
                continue
            if c.tag == "node_state":
                ns = self.node_state(c)
                if ns is not None:
                    nodes.append(ns)
            elif c.tag == "tickets":
                tickets.extend(self.ticket_state(t) for t in self.children(c, "ticket_state"))
            else:
                self.warn(c, f"status section <{c.tag}> is not supported; ignored")
        return m.Status(nodes=nodes, tickets=tickets)

    def ticket_state(self, el: etree._Element) -> m.TicketState:
        known = {"id", "granted", "standby", "last-granted"}
        extra = {str(k): str(v) for k, v in el.attrib.items() if k not in known}
        vals = self.scalars(el, m.TicketState, skip=["attributes"], allow_unknown=True)
        vals["attributes"] = extra
        return _convert(vals, m.TicketState)


def parse_cib_xml(data: bytes | str) -> ImportResult:
    """Read a Pacemaker CIB document. Raises ``CibXmlError`` only when it is not a CIB at all."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, huge_tree=False)
    try:
        raw = data.encode() if isinstance(data, str) else data
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as err:
        raise CibXmlError(f"the file is not well-formed XML: {err}") from err
    if root.tag != "cib":
        raise CibXmlError(f"the document's root element is <{root.tag}>, expected <cib>")
    reader = _Reader(root, config_xml=True)
    vals = reader.scalars(root, m.Cib)
    if "have_quorum" not in vals and root.get("have-quorum") is None:
        vals["have_quorum"] = False
    for c in root:
        if not isinstance(c.tag, str):
            continue
        if c.tag == "configuration":
            vals["configuration"] = reader.configuration(c)
        elif c.tag == "status":
            vals["status"] = reader.status(c)
        else:
            reader.warn(c, f"section <{c.tag}> is not supported; ignored")
    return ImportResult(cib=_convert(vals, m.Cib), warnings=reader.warnings)


# === export ============================================================================================


def _fmt_scalar(field: str, value: Any, *, durations_in_ms: bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if field == "score" and isinstance(value, int):
        if value >= INFINITY:
            return "INFINITY"
        if value <= -INFINITY:
            return "-INFINITY"
        return str(value)
    if field in _DURATION_FIELDS and isinstance(value, int) and not durations_in_ms:
        return format_duration_ms(value)
    return str(value)


class _Writer:
    def attrs(
        self,
        el: etree._Element,
        obj: msgspec.Struct,
        *,
        skip: Iterable[str] = (),
        durations_in_ms: bool = False,
    ) -> None:
        cls = type(obj)
        skipped = set(skip)
        for f in msgspec.structs.fields(cls):
            if f.name in skipped or _scalar_kind(f.type) is None:
                continue
            value = getattr(obj, f.name)
            if value is None or (value == f.default and f.name not in ("id",) and not f.required):
                continue
            el.set(_xml_name(cls, f.name), _fmt_scalar(f.name, value, durations_in_ms=durations_in_ms))

    def sub(self, parent: etree._Element, tag: str, obj: msgspec.Struct | None = None, **kw: Any) -> Any:
        el = etree.SubElement(parent, tag)
        if obj is not None:
            self.attrs(el, obj, **kw)
        return el

    def rule(self, parent: etree._Element, rule: m.Rule) -> None:
        el = self.sub(parent, "rule", rule, skip=["expressions"])
        for e in rule.expressions:
            self.expression(el, e)

    def expression(self, parent: etree._Element, expr: m.Expression) -> None:
        if isinstance(expr, m.Rule):
            self.rule(parent, expr)
        elif isinstance(expr, m.AttrExpression):
            self.sub(parent, "expression", expr)
        elif isinstance(expr, m.DateExpression):
            el = self.sub(parent, "date_expression", expr)
            for tag, spec in (("date_spec", expr.spec), ("duration", expr.duration)):
                if spec is not None:
                    s = etree.SubElement(el, tag)
                    if spec.id:
                        s.set("id", spec.id)
                    for k, v in spec.fields.items():
                        s.set(k, v)
        elif isinstance(expr, m.OpExpression):
            self.sub(parent, "op_expression", expr)
        else:
            self.sub(parent, "rsc_expression", expr)

    def nvsets(self, parent: etree._Element, tag: str, sets: list[m.NvSet]) -> None:
        for s in sets:
            el = self.sub(parent, tag, s)
            if s.rule is not None:
                self.rule(el, s.rule)
            for name, value in s.values.items():
                etree.SubElement(el, "nvpair", id=f"{s.id}-{name}", name=name, value=value)

    def primitive_body(self, el: etree._Element, p: m.Primitive | m.Template) -> None:
        self.nvsets(el, "instance_attributes", p.instance_attributes)
        self.nvsets(el, "meta_attributes", p.meta_attributes)
        self.nvsets(el, "utilization", p.utilization)
        if p.operations:
            ops = etree.SubElement(el, "operations")
            for op in p.operations:
                o = self.sub(ops, "op", op)
                if op.interval == 0:
                    o.set("interval", "0")
                self.nvsets(o, "instance_attributes", op.instance_attributes)
                self.nvsets(o, "meta_attributes", op.meta_attributes)

    def resource(self, parent: etree._Element, r: m.Resource) -> None:
        if isinstance(r, m.Primitive):
            self.primitive_body(self.sub(parent, "primitive", r), r)
        elif isinstance(r, m.Group):
            el = self.sub(parent, "group", r)
            self.nvsets(el, "instance_attributes", r.instance_attributes)
            self.nvsets(el, "meta_attributes", r.meta_attributes)
            for child in r.children:
                self.resource(el, child)
        elif isinstance(r, m.Clone):
            el = self.sub(parent, "master" if r.legacy_master else "clone", r, skip=["legacy_master"])
            self.nvsets(el, "instance_attributes", r.instance_attributes)
            self.nvsets(el, "meta_attributes", r.meta_attributes)
            self.resource(el, r.child)
        else:
            parser = etree.XMLParser(resolve_entities=False, no_network=True)
            parent.append(etree.fromstring(r.raw_xml.encode(), parser))

    def constraint(self, parent: etree._Element, c: m.Constraint) -> None:
        tag = {
            m.Location: "rsc_location",
            m.Colocation: "rsc_colocation",
            m.Order: "rsc_order",
            m.Ticket: "rsc_ticket",
        }[type(c)]
        el = self.sub(parent, tag, c)
        if isinstance(c, m.Colocation):
            el.set("score", _fmt_scalar("score", c.score, durations_in_ms=False))
        for s in c.resource_sets:
            se = self.sub(el, "resource_set", s, skip=["resources"])
            for rid in s.resources:
                etree.SubElement(se, "resource_ref", id=rid)
        if isinstance(c, m.Location):
            for rule in c.rules:
                self.rule(el, rule)

    def configuration(self, parent: etree._Element, cfg: m.Configuration) -> None:
        el = etree.SubElement(parent, "configuration")
        self.nvsets(etree.SubElement(el, "crm_config"), "cluster_property_set", cfg.properties)
        nodes = etree.SubElement(el, "nodes")
        for n in cfg.nodes:
            ne = self.sub(nodes, "node", n)
            self.nvsets(ne, "instance_attributes", n.instance_attributes)
            self.nvsets(ne, "utilization", n.utilization)
        res = etree.SubElement(el, "resources")
        for t in cfg.templates:
            self.primitive_body(self.sub(res, "template", t), t)
        for r in cfg.resources:
            self.resource(res, r)
        cons = etree.SubElement(el, "constraints")
        for c in cfg.constraints:
            self.constraint(cons, c)
        if cfg.rsc_defaults:
            self.nvsets(etree.SubElement(el, "rsc_defaults"), "meta_attributes", cfg.rsc_defaults)
        if cfg.op_defaults:
            self.nvsets(etree.SubElement(el, "op_defaults"), "meta_attributes", cfg.op_defaults)
        if cfg.fencing_topology:
            ft = etree.SubElement(el, "fencing-topology")
            for lv in cfg.fencing_topology:
                le = self.sub(ft, "fencing-level", lv, skip=["devices"])
                le.set("devices", ",".join(lv.devices))
        if cfg.alerts:
            self.alerts(etree.SubElement(el, "alerts"), cfg.alerts)
        if cfg.tags:
            te = etree.SubElement(el, "tags")
            for tag_def in cfg.tags:
                tag = etree.SubElement(te, "tag", id=tag_def.id)
                for ref in tag_def.refs:
                    etree.SubElement(tag, "obj_ref", id=ref)
        if cfg.acls is not None:
            self.acls(etree.SubElement(el, "acls"), cfg.acls)

    def alerts(self, parent: etree._Element, alerts: list[m.Alert]) -> None:
        for a in alerts:
            ae = self.sub(parent, "alert", a, skip=["select"])
            if a.select:
                se = etree.SubElement(ae, "select")
                for s in a.select:
                    etree.SubElement(se, f"select_{s}")
            self.nvsets(ae, "instance_attributes", a.instance_attributes)
            self.nvsets(ae, "meta_attributes", a.meta_attributes)
            for r in a.recipients:
                re_ = self.sub(ae, "recipient", r)
                self.nvsets(re_, "instance_attributes", r.instance_attributes)
                self.nvsets(re_, "meta_attributes", r.meta_attributes)

    def acls(self, parent: etree._Element, acls: m.Acls) -> None:
        for t in acls.targets:
            te = etree.SubElement(parent, "acl_target" if t.kind == "target" else "acl_group", id=t.id)
            for r in t.roles:
                etree.SubElement(te, "role", id=r)
        for role in acls.roles:
            re_ = self.sub(parent, "acl_role", role, skip=["permissions"])
            for p in role.permissions:
                self.sub(re_, "acl_permission", p)

    def status(self, parent: etree._Element, st: m.Status) -> None:
        el = etree.SubElement(parent, "status")
        for ns in st.nodes:
            ne = self.sub(el, "node_state", ns, skip=["has_lrm"])
            if ns.transient_attributes:
                ta = etree.SubElement(ne, "transient_attributes", id=ns.id)
                self.nvsets(ta, "instance_attributes", ns.transient_attributes)
            if ns.has_lrm:
                lrm = etree.SubElement(ne, "lrm", id=ns.id)
                lrs = etree.SubElement(lrm, "lrm_resources")
                for r in ns.resources:
                    re_ = self.sub(lrs, "lrm_resource", r)
                    for op in r.ops:
                        oe = self.sub(re_, "lrm_rsc_op", op, durations_in_ms=True)
                        oe.set("interval", str(op.interval))
                        oe.set("op-status", str(op.op_status))
        if st.tickets:
            te = etree.SubElement(el, "tickets")
            for t in st.tickets:
                e = self.sub(te, "ticket_state", t, skip=["attributes"])
                e.set("granted", "true" if t.granted else "false")
                for k, v in t.attributes.items():
                    e.set(k, v)


def cib_to_xml(cib: m.Cib) -> str:
    """Write the CIB as Pacemaker XML (pretty-printed)."""
    w = _Writer()
    root = etree.Element("cib")
    w.attrs(root, cib, skip=["have_quorum"])
    for name in ("admin_epoch", "epoch", "num_updates"):
        root.set(name, str(getattr(cib, name)))
    root.set("have-quorum", "1" if cib.have_quorum else "0")
    w.configuration(root, cib.configuration)
    w.status(root, cib.status)
    return etree.tostring(root, encoding="unicode", pretty_print=True)
