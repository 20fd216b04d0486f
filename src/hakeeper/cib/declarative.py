"""The declarative configuration file: one TOML schema for the whole cluster configuration.

A friendly face on :class:`~hakeeper.cib.model.Configuration` for people who know pcs or keepalived::

    [cluster]
    name = "demo"

    [properties]
    stonith-enabled = false

    [resources.vip]
    agent = "ocf:heartbeat:IPaddr2"
    params = { ip = "10.0.0.10", cidr_netmask = 24 }
    ops = [ { name = "monitor", interval = "10s", timeout = "20s" } ]

    [resources.websvc]
    group = ["vip", "web"]

    [constraints.websvc-on-node1]
    type = "location"
    resource = "websvc"
    node = "node1"
    score = 100

Every id Pacemaker needs but people do not care about (attribute sets, operations, rules, expressions) is
derived from its owner by a fixed convention (``vip-instance_attributes``, ``vip-monitor-interval-10s``,
``loc-rule``, ``loc-rule-expr``); an id is written out only when it differs from the convention.
Attribute sets are a plain table when there is one set with the conventional id and no rule or score, and
otherwise an explicit list of ``{ id, score, rule, values }`` tables. Resources live in one table (one id
namespace): a primitive has an ``agent``, a group lists its members under ``group``, a clone names its child
under ``clone``. So ``load_config(dump_config(cfg)) == cfg`` for every configuration whose ids are unique.

``load_config`` raises :class:`ConfigError` listing every problem it found as ``path: message`` in the
file's own terms. It checks shape and values (types, durations, scores, unknown keys, references between
resources); what a configuration means (unknown ids in constraints, order cycles...) is
:mod:`hakeeper.cib.validate`'s job.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, NamedTuple

import msgspec
import tomli_w

from hakeeper.cib import model as m
from hakeeper.cib.values import format_duration_ms, format_score, parse_duration_ms, parse_score

CLUSTER_NAME = "cluster-name"
PROPERTIES_ID = "cib-bootstrap-options"
RSC_DEFAULTS_ID = "rsc_defaults-meta_attributes"
OP_DEFAULTS_ID = "op_defaults-meta_attributes"

_RESOURCE_KINDS = ("group", "clone", "bundle-xml")
_EXPRESSION_KINDS = ("attribute", "date", "op", "resource", "expressions")
_CONSTRAINT_TYPES = ("location", "colocation", "order", "ticket")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_PLAIN_INT = re.compile(r"0|-?[1-9][0-9]{0,17}")


Severity = Literal["error", "warning"]


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """One thing wrong with a configuration: where (``path``, in the file's terms) and what to do."""

    path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else "warning: "
        return f"{prefix}{self.path}: {self.message}"


class ConfigError(ValueError):
    """The file cannot be read as a configuration; ``problems`` lists every reason, each with its place."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# --- ids and paths ----------------------------------------------------------------------------------


def path_key(name: str) -> str:
    """A name as it appears in a path: bare when TOML allows it, quoted otherwise."""
    return name if _BARE_KEY.fullmatch(name) else json.dumps(name)


def join_path(path: str, name: str) -> str:
    """``resources`` + ``web`` -> ``resources.web``; names with dots or spaces are quoted."""
    return f"{path}.{path_key(name)}" if path else path_key(name)


def plain_set(sets: list[m.NvSet], default_id: str) -> bool:
    """Whether these attribute sets are written as one plain table rather than a list of explicit sets."""
    return len(sets) == 1 and sets[0].id == default_id and sets[0].score is None and sets[0].rule is None


def _nth(base: str, i: int) -> str:
    """The conventional id of the i-th of several things named after ``base``: base, base-1, base-2..."""
    return base if i == 0 else f"{base}-{i}"


def op_id(owner: str, name: str, interval_ms: int) -> str:
    """The conventional id of an operation, as pcs writes it: ``vip-monitor-interval-10s``."""
    return f"{owner}-{name}-interval-{_fmt_duration(interval_ms)}"


def fencing_level_id(level: m.FencingLevel) -> str:
    """The conventional id of a fencing level, as pcs writes it: ``fl-node1-1``."""
    if level.target is not None:
        what = level.target
    elif level.target_pattern is not None:
        what = level.target_pattern
    else:
        what = f"{level.target_attribute or ''}-{level.target_value or ''}"
    return "fl-" + re.sub(r"[^A-Za-z0-9_.-]", "_", what) + f"-{level.index}"


def _fmt_duration(ms: int) -> str:
    return format_duration_ms(ms) if ms >= 0 else f"-{format_duration_ms(-ms)}"


# --- scalar fields: one table drives both reading and writing ---------------------------------------


class _F(NamedTuple):
    """A scalar field: its key in the file, its attribute in the model, and how its value is written."""

    key: str
    attr: str
    kind: str = "str"  # str bool int score duration names
    always: bool = False  # write even when it equals the model's default


_NODEFAULT: Any = msgspec.NODEFAULT


def _defaults(cls: type[msgspec.Struct]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in msgspec.structs.fields(cls):
        if f.default is not msgspec.NODEFAULT:
            out[f.name] = f.default
        elif f.default_factory is not msgspec.NODEFAULT:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = _NODEFAULT
    return out


def _score_out(score: int) -> int | str:
    text = format_score(score)
    return int(text) if _PLAIN_INT.fullmatch(text) else text


def _scalar_out(kind: str, value: Any) -> Any:
    if kind == "score":
        return _score_out(value)
    if kind == "duration":
        return _fmt_duration(value)
    if kind == "names":
        return list(value)
    return value


def _dump_fields(obj: msgspec.Struct, fields: Iterable[_F]) -> dict[str, Any]:
    defaults = _defaults(type(obj))
    out: dict[str, Any] = {}
    for f in fields:
        value = getattr(obj, f.attr)
        default = defaults[f.attr]
        if value is None or (not f.always and default is not _NODEFAULT and value == default):
            continue
        out[f.key] = _scalar_out(f.kind, value)
    return out


def _nv_out(text: str) -> str | int | bool:
    """Attribute values are text in the model; show the obvious numbers and booleans unquoted."""
    if text in ("true", "false"):
        return text == "true"
    if _PLAIN_INT.fullmatch(text):
        return int(text)
    return text


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date/time"


# === loading ===========================================================================================


class _Loader:
    """One load: reads the parsed TOML document and collects every problem with its path."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def error(self, path: str, message: str) -> None:
        self.problems.append(Problem(path=path, message=message))

    # -- shapes -----------------------------------------------------------------------------------------

    def table(self, value: Any, path: str) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.error(path, f"expected a table, got {_type_name(value)}")
        return None

    def items(self, value: Any, path: str) -> list[Any]:
        if isinstance(value, list):
            return value
        self.error(path, f"expected a list [ ... ], got {_type_name(value)}")
        return []

    def keys(self, tbl: Mapping[str, Any], path: str, allowed: Iterable[str], what: str = "") -> None:
        allowed = list(allowed)
        for k in tbl:
            if k in allowed:
                continue
            hint = _did_you_mean(k, allowed)
            if not hint:
                hint = f" ({what + ' ' if what else ''}takes: {', '.join(allowed)})"
            self.error(path or "file", f'unknown key "{k}"{hint}')

    def required(self, tbl: Mapping[str, Any], path: str, key: str, why: str) -> bool:
        if key in tbl:
            return True
        self.error(path, f'missing "{key}": {why}')
        return False

    # -- scalars ----------------------------------------------------------------------------------------

    def scalar(self, kind: str, value: Any, path: str) -> Any:
        """Convert one value of the given kind; None (after recording an error) when it is wrong."""
        reader: Callable[[Any, str], Any] = getattr(self, f"_{kind}")
        return reader(value, path)

    def _str(self, value: Any, path: str) -> str | None:
        if isinstance(value, str):
            return value
        self.error(path, f"expected text in quotes, got {_type_name(value)}")
        return None

    def _bool(self, value: Any, path: str) -> bool | None:
        if isinstance(value, bool):
            return value
        self.error(path, f"expected true or false, got {_type_name(value)}")
        return None

    def _int(self, value: Any, path: str) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.error(path, f"expected a whole number, got {_type_name(value)}")
        return None

    def _score(self, value: Any, path: str) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            return parse_score(str(value))
        if isinstance(value, str):
            try:
                return parse_score(value)
            except ValueError as err:
                self.error(path, str(err))
                return None
        self.error(
            path, f'expected a score (a whole number, "INFINITY" or "-INFINITY"), got {_type_name(value)}'
        )
        return None

    def _duration(self, value: Any, path: str) -> int | None:
        if isinstance(value, int) and not isinstance(value, bool):
            if value >= 0:
                return value * 1000  # a bare number is seconds, as in Pacemaker
            self.error(path, f"{value} is negative: durations cannot be negative")
            return None
        if isinstance(value, str):
            try:
                return parse_duration_ms(value)
            except ValueError as err:
                self.error(path, str(err))
                return None
        self.error(path, f'expected a duration such as "10s", "1min" or "PT10S", got {_type_name(value)}')
        return None

    def _names(self, value: Any, path: str) -> list[str] | None:
        if not isinstance(value, list):
            self.error(path, f'expected a list of names such as ["a", "b"], got {_type_name(value)}')
            return None
        out: list[str] = []
        ok = True
        for i, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            else:
                self.error(f"{path}[{i}]", f"expected a name in quotes, got {_type_name(item)}")
                ok = False
        return out if ok else None

    def fields(self, tbl: Mapping[str, Any], path: str, fields: Iterable[_F]) -> dict[str, Any]:
        """Read the scalar fields present in ``tbl`` into model attribute names."""
        out: dict[str, Any] = {}
        for f in fields:
            if f.key in tbl:
                value = self.scalar(f.kind, tbl[f.key], join_path(path, f.key))
                if value is not None:
                    out[f.attr] = value
        return out

    # -- attribute sets ---------------------------------------------------------------------------------

    def nv_values(self, value: Any, path: str) -> dict[str, str]:
        tbl = self.table(value, path)
        out: dict[str, str] = {}
        for name, v in (tbl or {}).items():
            if isinstance(v, bool):
                out[name] = "true" if v else "false"
            elif isinstance(v, int | float | str):
                out[name] = str(v)
            else:
                self.error(
                    join_path(path, name), f"expected text, a number or true/false, got {_type_name(v)}"
                )
        return out

    def nvsets(self, value: Any, path: str, default_id: str) -> list[m.NvSet]:
        """A plain table (one set, conventional id) or a list of ``{ id, score, rule, values }`` sets."""
        if isinstance(value, dict):
            return [m.NvSet(id=default_id, values=self.nv_values(value, path))]
        if not isinstance(value, list):
            self.error(
                path, f"expected a table of name = value pairs or a list of sets, got {_type_name(value)}"
            )
            return []
        out: list[m.NvSet] = []
        for i, item in enumerate(value):
            here = f"{path}[{i}]"
            tbl = self.table(item, here)
            if tbl is None:
                continue
            self.keys(tbl, here, ("id", "score", "rule", "values"), "an attribute set")
            vals = self.fields(tbl, here, (_F("id", "id"), _F("score", "score", "score")))
            vals.setdefault("id", _nth(default_id, i))
            vals["values"] = self.nv_values(tbl.get("values", {}), f"{here}.values")
            if "rule" in tbl:
                rule = self.rule(tbl["rule"], f"{here}.rule", f"{vals['id']}-rule")
                if rule is not None:
                    vals["rule"] = rule
            out.append(m.NvSet(**vals))
        return out

    # -- rules ------------------------------------------------------------------------------------------

    def rule(self, value: Any, path: str, default_id: str) -> m.Rule | None:
        tbl = self.table(value, path)
        if tbl is None:
            return None
        self.keys(tbl, path, [f.key for f in _RULE_FIELDS] + ["expressions"], "a rule")
        vals = self.fields(tbl, path, _RULE_FIELDS)
        vals.setdefault("id", default_id)
        exprs: list[m.Expression] = []
        for i, item in enumerate(self.items(tbl.get("expressions", []), f"{path}.expressions")):
            expr = self.expression(item, f"{path}.expressions[{i}]", _nth(f"{vals['id']}-expr", i))
            if expr is not None:
                exprs.append(expr)
        return m.Rule(**vals, expressions=exprs)

    def expression(self, value: Any, path: str, default_id: str) -> m.Expression | None:
        tbl = self.table(value, path)
        if tbl is None:
            return None
        kinds = [k for k in _EXPRESSION_KINDS if k in tbl]
        if len(kinds) != 1:
            found = f" (found {', '.join(kinds)})" if kinds else ""
            self.error(
                path,
                "an expression needs exactly one of: attribute (compare a node attribute), date, op, "
                f"resource, or expressions (a nested rule){found}",
            )
            return None
        if kinds[0] == "expressions":
            return self.rule(tbl, path, default_id)
        if kinds[0] == "resource":
            return self.rsc_expression(tbl, path, default_id)
        fields, cls, what = _EXPRESSION_SPECS[kinds[0]]
        extra = ["duration", "spec"] if cls is m.DateExpression else []
        before = len(self.problems)
        self.keys(tbl, path, [f.key for f in fields] + extra, what)
        vals = self.fields(tbl, path, fields)
        vals.setdefault("id", default_id)
        if cls is m.AttrExpression:
            self.required(tbl, path, "operation", "lt, gt, lte, gte, eq, ne, defined or not_defined")
        for key in extra:
            if key in tbl:
                vals[key] = self.date_spec(
                    tbl[key], join_path(path, key), f"{vals['id']}-{_SPEC_SUFFIX[key]}"
                )
        if len(self.problems) > before:
            return None
        built: m.Expression = cls(**vals)
        return built

    def rsc_expression(self, tbl: Mapping[str, Any], path: str, default_id: str) -> m.RscExpression | None:
        self.keys(tbl, path, ("id", "resource"), "a resource expression")
        ident = self.scalar("str", tbl.get("id", default_id), join_path(path, "id"))
        spec = tbl["resource"]
        here = join_path(path, "resource")
        if isinstance(spec, str):
            parts = spec.split(":")
            if len(parts) != 3:
                self.error(
                    here, f'"{spec}" is not class:provider:type (leave a part empty to match any: "::Dummy")'
                )
                return None
            klass, provider, rtype = (p or None for p in parts)
        elif isinstance(spec, dict):
            self.keys(spec, here, ("class", "provider", "type"))
            got = self.fields(
                spec, here, (_F("class", "klass"), _F("provider", "provider"), _F("type", "type"))
            )
            klass, provider, rtype = got.get("klass"), got.get("provider"), got.get("type")
        else:
            self.error(here, f'expected "class:provider:type", got {_type_name(spec)}')
            return None
        if ident is None:
            return None
        return m.RscExpression(id=ident, klass=klass, provider=provider, type=rtype)

    def date_spec(self, value: Any, path: str, default_id: str) -> m.DateSpec:
        tbl = self.table(value, path) or {}
        ident = default_id
        fields: dict[str, str] = {}
        for k, v in tbl.items():
            if k == "id":
                ident = self.scalar("str", v, join_path(path, k)) or default_id
            elif isinstance(v, str | int) and not isinstance(v, bool):
                fields[k] = str(v)
            else:
                self.error(
                    join_path(path, k), f'expected text such as "9-17" or a number, got {_type_name(v)}'
                )
        return m.DateSpec(id=ident, fields=fields)

    # -- resources --------------------------------------------------------------------------------------

    def agent(self, tbl: Mapping[str, Any], path: str) -> dict[str, Any]:
        explicit = [k for k in ("class", "provider", "type") if k in tbl]
        if "agent" not in tbl:
            return self.fields(
                tbl, path, (_F("class", "klass"), _F("provider", "provider"), _F("type", "type"))
            )
        if explicit:
            self.error(
                path, f'write the agent either as agent = "..." or with {", ".join(explicit)}, not both'
            )
            return {}
        text = self.scalar("str", tbl["agent"], join_path(path, "agent"))
        if text is None:
            return {}
        parts = text.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            self.error(
                join_path(path, "agent"),
                f'"{text}" is not an agent: write class:provider:type such as ocf:heartbeat:IPaddr2, '
                "or class:type such as systemd:httpd",
            )
            return {}
        if len(parts) == 2:
            return {"klass": parts[0], "type": parts[1]}
        return {"klass": parts[0], "provider": parts[1], "type": parts[2]}

    def operations(self, value: Any, path: str, owner: str) -> list[m.Operation]:
        out: list[m.Operation] = []
        for i, item in enumerate(self.items(value, path)):
            here = f"{path}[{i}]"
            tbl = self.table(item, here)
            if tbl is None:
                continue
            self.keys(tbl, here, [f.key for f in _OP_FIELDS] + ["params", "meta"], "an operation")
            if not self.required(tbl, here, "name", 'the action to run, such as "monitor"'):
                continue
            vals = self.fields(tbl, here, _OP_FIELDS)
            if "name" not in vals:
                continue
            vals.setdefault("id", op_id(owner, vals["name"], vals.get("interval", 0)))
            vals.update(self.attribute_sets(tbl, here, vals["id"], ("params", "meta")))
            out.append(m.Operation(**vals))
        return out

    def attribute_sets(
        self, tbl: Mapping[str, Any], path: str, owner: str, keys: Iterable[str]
    ) -> dict[str, list[m.NvSet]]:
        out: dict[str, list[m.NvSet]] = {}
        for key in keys:
            if key in tbl:
                attr, suffix = _SET_KEYS[key]
                out[attr] = self.nvsets(tbl[key], join_path(path, key), f"{owner}-{suffix}")
        return out

    def primitive_like(
        self, tbl: Mapping[str, Any], path: str, ident: str, *, template: bool
    ) -> dict[str, Any]:
        allowed = [
            "agent",
            "class",
            "provider",
            "type",
            "description",
            "params",
            "meta",
            "utilization",
            "ops",
        ]
        if not template:
            allowed.insert(4, "template")
        self.keys(tbl, path, allowed, "a template" if template else "a primitive")
        vals: dict[str, Any] = {"id": ident}
        vals.update(self.agent(tbl, path))
        names = (
            (_F("description", "description"),)
            if template
            else (_F("template", "template"), _F("description", "description"))
        )
        vals.update(self.fields(tbl, path, names))
        vals.update(self.attribute_sets(tbl, path, ident, ("params", "meta", "utilization")))
        if "ops" in tbl:
            vals["operations"] = self.operations(tbl["ops"], join_path(path, "ops"), ident)
        return vals

    def templates(self, value: Any, path: str) -> list[m.Template]:
        out: list[m.Template] = []
        for ident, item in (self.table(value, path) or {}).items():
            here = join_path(path, ident)
            tbl = self.table(item, here)
            if tbl is None:
                continue
            before = len(self.problems)
            vals = self.primitive_like(tbl, here, ident, template=True)
            if "klass" not in vals or "type" not in vals:
                if len(self.problems) == before:
                    self.error(here, 'a template needs an agent, such as agent = "ocf:heartbeat:IPaddr2"')
                continue
            out.append(m.Template(**vals))
        return out

    def resources(self, value: Any, path: str) -> list[m.Resource]:
        tbl = self.table(value, path)
        if tbl is None:
            return []
        return _ResourceAssembler(self, path).assemble(tbl)

    # -- constraints ------------------------------------------------------------------------------------

    def resource_sets(self, value: Any, path: str, owner: str) -> list[m.ResourceSet]:
        out: list[m.ResourceSet] = []
        for i, item in enumerate(self.items(value, path)):
            here = f"{path}[{i}]"
            tbl = self.table(item, here)
            if tbl is None:
                continue
            self.keys(tbl, here, [f.key for f in _SET_FIELDS], "a resource set")
            vals = self.fields(tbl, here, _SET_FIELDS)
            vals.setdefault("id", _nth(f"{owner}-set", i))
            out.append(m.ResourceSet(**vals))
        return out

    def constraints(self, value: Any, path: str) -> list[m.Constraint]:
        out: list[m.Constraint] = []
        for ident, item in (self.table(value, path) or {}).items():
            here = join_path(path, ident)
            tbl = self.table(item, here)
            if tbl is None:
                continue
            kind = tbl.get("type")
            if not isinstance(kind, str) or kind not in _CONSTRAINT_SPECS:
                got = f' "{kind}"' if isinstance(kind, str) else ""
                hint = _did_you_mean(kind, _CONSTRAINT_TYPES) if isinstance(kind, str) else ""
                self.error(
                    join_path(here, "type"),
                    f"the constraint type{got} is not one of {', '.join(_CONSTRAINT_TYPES)}{hint}",
                )
                continue
            cls, fields = _CONSTRAINT_SPECS[kind]
            extra = ["type", "sets"] + (["rules"] if cls is m.Location else [])
            self.keys(tbl, here, [f.key for f in fields] + extra, f"a {kind} constraint")
            constraint = self.constraint(tbl, here, ident, cls, fields)
            if constraint is not None:
                out.append(constraint)
        return out

    def constraint(
        self, tbl: Mapping[str, Any], path: str, ident: str, cls: type[m.Constraint], fields: tuple[_F, ...]
    ) -> m.Constraint | None:
        vals = self.fields(tbl, path, fields)
        vals["id"] = ident
        if cls is m.Colocation and not self.required(tbl, path, "score", "INFINITY keeps them together"):
            return None
        if cls is m.Ticket and not self.required(tbl, path, "ticket", "the name of the ticket"):
            return None
        if "sets" in tbl:
            vals["resource_sets"] = self.resource_sets(tbl["sets"], join_path(path, "sets"), ident)
        if "rules" in tbl:
            rules = []
            for i, item in enumerate(self.items(tbl["rules"], join_path(path, "rules"))):
                rule = self.rule(item, f"{join_path(path, 'rules')}[{i}]", _nth(f"{ident}-rule", i))
                if rule is not None:
                    rules.append(rule)
            vals["rules"] = rules
        if cls is m.Colocation and "score" not in vals:
            return None
        if cls is m.Ticket and "ticket" not in vals:
            return None
        built: m.Constraint = cls(**vals)
        return built

    # -- the rest ---------------------------------------------------------------------------------------

    def nodes(self, value: Any, path: str) -> list[m.Node]:
        out: list[m.Node] = []
        for uname, item in (self.table(value, path) or {}).items():
            here = join_path(path, uname)
            tbl = self.table(item, here)
            if tbl is None:
                continue
            self.keys(tbl, here, [f.key for f in _NODE_FIELDS] + ["attributes", "utilization"], "a node")
            vals = self.fields(tbl, here, _NODE_FIELDS)
            vals.setdefault("id", uname)
            vals["uname"] = uname
            if "attributes" in tbl:
                vals["instance_attributes"] = self.nvsets(
                    tbl["attributes"], join_path(here, "attributes"), f"nodes-{vals['id']}"
                )
            if "utilization" in tbl:
                vals["utilization"] = self.nvsets(
                    tbl["utilization"], join_path(here, "utilization"), f"nodes-{vals['id']}-utilization"
                )
            out.append(m.Node(**vals))
        return out

    def fencing(self, value: Any, path: str) -> list[m.FencingLevel]:
        tbl = self.table(value, path) or {}
        self.keys(tbl, path, ("levels",), "the fencing table")
        out: list[m.FencingLevel] = []
        for i, item in enumerate(self.items(tbl.get("levels", []), join_path(path, "levels"))):
            here = f"{path}.levels[{i}]"
            lv = self.table(item, here)
            if lv is None:
                continue
            self.keys(lv, here, [f.key for f in _LEVEL_FIELDS], "a fencing level")
            ok = self.required(lv, here, "index", "the level's number, 1 is tried first")
            ok = (
                self.required(lv, here, "devices", 'the fencing devices of this level, e.g. ["ipmi-1"]')
                and ok
            )
            vals = self.fields(lv, here, _LEVEL_FIELDS)
            if not ok or "index" not in vals or "devices" not in vals:
                continue
            level = m.FencingLevel(**{"id": "", **vals})
            if "id" not in vals:
                level = msgspec.structs.replace(level, id=fencing_level_id(level))
            out.append(level)
        return out

    def alerts(self, value: Any, path: str) -> list[m.Alert]:
        out: list[m.Alert] = []
        for ident, item in (self.table(value, path) or {}).items():
            here = join_path(path, ident)
            tbl = self.table(item, here)
            if tbl is None:
                continue
            self.keys(
                tbl, here, ("path", "description", "select", "params", "meta", "recipients"), "an alert"
            )
            if not self.required(
                tbl, here, "path", "the alert agent to run, e.g. /usr/share/pacemaker/alerts/..."
            ):
                continue
            vals = self.fields(tbl, here, _ALERT_FIELDS)
            if "path" not in vals:
                continue
            vals["id"] = ident
            vals.update(self.attribute_sets(tbl, here, ident, ("params", "meta")))
            recipients = []
            for i, r in enumerate(self.items(tbl.get("recipients", []), join_path(here, "recipients"))):
                rec = self.recipient(r, f"{here}.recipients[{i}]", _nth(f"{ident}-recipient", i))
                if rec is not None:
                    recipients.append(rec)
            vals["recipients"] = recipients
            out.append(m.Alert(**vals))
        return out

    def recipient(self, value: Any, path: str, default_id: str) -> m.AlertRecipient | None:
        tbl = self.table(value, path)
        if tbl is None:
            return None
        self.keys(tbl, path, ("id", "value", "description", "params", "meta"), "a recipient")
        if not self.required(tbl, path, "value", "where the alert goes, e.g. an e-mail address or a file"):
            return None
        vals = self.fields(tbl, path, _RECIPIENT_FIELDS)
        if "value" not in vals:
            return None
        vals.setdefault("id", default_id)
        vals.update(self.attribute_sets(tbl, path, vals["id"], ("params", "meta")))
        return m.AlertRecipient(**vals)

    def tags(self, value: Any, path: str) -> list[m.Tag]:
        out: list[m.Tag] = []
        for ident, refs in (self.table(value, path) or {}).items():
            names = self.scalar("names", refs, join_path(path, ident))
            if names is not None:
                out.append(m.Tag(id=ident, refs=names))
        return out

    def acls(self, value: Any, path: str) -> m.Acls | None:
        tbl = self.table(value, path)
        if tbl is None:
            return None
        self.keys(tbl, path, ("roles", "targets"), "the acls table")
        roles: list[m.AclRole] = []
        for ident, item in (self.table(tbl.get("roles", {}), join_path(path, "roles")) or {}).items():
            here = join_path(join_path(path, "roles"), ident)
            role = self.table(item, here)
            if role is None:
                continue
            self.keys(role, here, ("description", "permissions"), "an ACL role")
            vals = self.fields(role, here, (_F("description", "description"),))
            perms = []
            for i, p in enumerate(self.items(role.get("permissions", []), join_path(here, "permissions"))):
                perm = self.permission(p, f"{here}.permissions[{i}]", _nth(f"{ident}-perm", i))
                if perm is not None:
                    perms.append(perm)
            roles.append(m.AclRole(id=ident, permissions=perms, **vals))
        targets: list[m.AclTarget] = []
        for ident, item in (self.table(tbl.get("targets", {}), join_path(path, "targets")) or {}).items():
            here = join_path(join_path(path, "targets"), ident)
            target = self.table(item, here)
            if target is None:
                continue
            self.keys(target, here, ("kind", "roles"), "an ACL target")
            vals = self.fields(target, here, (_F("kind", "kind"), _F("roles", "roles", "names")))
            targets.append(m.AclTarget(id=ident, **vals))
        return m.Acls(roles=roles, targets=targets)

    def permission(self, value: Any, path: str, default_id: str) -> m.AclPermission | None:
        tbl = self.table(value, path)
        if tbl is None:
            return None
        self.keys(tbl, path, [f.key for f in _PERMISSION_FIELDS], "an ACL permission")
        if not self.required(tbl, path, "kind", "read, write or deny"):
            return None
        vals = self.fields(tbl, path, _PERMISSION_FIELDS)
        if "kind" not in vals:
            return None
        vals.setdefault("id", default_id)
        return m.AclPermission(**vals)

    def top_sets(self, doc: Mapping[str, Any], key: str, default_id: str) -> list[m.NvSet]:
        return self.nvsets(doc[key], key, default_id) if key in doc else []

    def configuration(self, doc: Mapping[str, Any]) -> m.Configuration:
        self.keys(doc, "", _TOP_KEYS, "the file")
        vals: dict[str, Any] = {
            "properties": self.top_sets(doc, "properties", PROPERTIES_ID),
            "rsc_defaults": self.top_sets(doc, "rsc_defaults", RSC_DEFAULTS_ID),
            "op_defaults": self.top_sets(doc, "op_defaults", OP_DEFAULTS_ID),
        }
        if "cluster" in doc:
            vals["properties"] = self.cluster(doc["cluster"], doc.get("properties"), vals["properties"])
        readers: dict[str, Callable[[Any, str], Any]] = {
            "nodes": self.nodes,
            "templates": self.templates,
            "resources": self.resources,
            "constraints": self.constraints,
            "fencing": self.fencing,
            "alerts": self.alerts,
            "tags": self.tags,
            "acls": self.acls,
        }
        for key, reader in readers.items():
            if key in doc:
                vals["fencing_topology" if key == "fencing" else key] = reader(doc[key], key)
        return m.Configuration(**vals)

    def cluster(self, value: Any, raw_properties: Any, props: list[m.NvSet]) -> list[m.NvSet]:
        tbl = self.table(value, "cluster") or {}
        self.keys(tbl, "cluster", ("name",), "the cluster table")
        if "name" not in tbl:
            return props
        name = self.scalar("str", tbl["name"], "cluster.name")
        if name is None:
            return props
        if raw_properties is not None and not isinstance(raw_properties, dict):
            self.error(
                "cluster.name", f'with properties written as a list of sets, set "{CLUSTER_NAME}" in one'
            )
            return props
        if props and CLUSTER_NAME in props[0].values:
            self.error("cluster.name", f"given twice: also as properties.{CLUSTER_NAME}; keep one")
            return props
        first = props[0] if props else m.NvSet(id=PROPERTIES_ID)
        return [msgspec.structs.replace(first, values={CLUSTER_NAME: name, **first.values})]


class _ResourceAssembler:
    """Builds the resource tree from the flat ``[resources.ID]`` tables; groups and clones name parts."""

    def __init__(self, loader: _Loader, path: str) -> None:
        self.lo = loader
        self.path = path
        self.kind: dict[str, str] = {}
        self.prims: dict[str, m.Primitive] = {}
        self.bundles: dict[str, m.Bundle] = {}
        self.groups: dict[str, tuple[list[str], dict[str, Any]]] = {}
        self.clones: dict[str, tuple[str, dict[str, Any]]] = {}
        self.parent: dict[str, str] = {}

    def assemble(self, tbl: Mapping[str, Any]) -> list[m.Resource]:
        for ident, item in tbl.items():
            here = join_path(self.path, ident)
            entry = self.lo.table(item, here)
            if entry is not None:
                self.read(ident, entry, here)
        for ident, (members, _) in self.groups.items():
            for i, member in enumerate(members):
                self.adopt(ident, member, f"{join_path(self.path, ident)}.group[{i}]", ("primitive",))
        for ident, (child, _) in self.clones.items():
            self.adopt(ident, child, f"{join_path(self.path, ident)}.clone", ("primitive", "group"))
        out: list[m.Resource] = []
        for ident in tbl:
            if ident in self.kind and ident not in self.parent:
                built = self.build(ident)
                if built is not None:
                    out.append(built)
        return out

    def read(self, ident: str, tbl: Mapping[str, Any], path: str) -> None:
        kinds = [k for k in _RESOURCE_KINDS if k in tbl]
        if len(kinds) > 1:
            self.lo.error(path, f"a resource is one thing: {' and '.join(kinds)} cannot be combined")
            return
        kind = kinds[0] if kinds else "primitive"
        if kind == "primitive":
            self.prims[ident] = m.Primitive(**self.lo.primitive_like(tbl, path, ident, template=False))
        elif kind == "group":
            self.lo.keys(tbl, path, ("group", "description", "params", "meta"), "a group")
            members = self.lo.scalar("names", tbl["group"], join_path(path, "group")) or []
            self.groups[ident] = (members, self.container_fields(tbl, path, ident))
        elif kind == "clone":
            self.lo.keys(
                tbl,
                path,
                ("clone", "promotable", "legacy-master", "description", "params", "meta"),
                "a clone",
            )
            child = self.lo.scalar("str", tbl["clone"], join_path(path, "clone"))
            fields = self.container_fields(tbl, path, ident)
            fields.update(self.lo.fields(tbl, path, (_F("legacy-master", "legacy_master", "bool"),)))
            self.promotable(tbl, path, ident, fields)
            if child is None:
                return
            self.clones[ident] = (child, fields)
        else:
            self.lo.keys(tbl, path, ("bundle-xml", "bundle-primitive"), "a bundle")
            vals = self.lo.fields(
                tbl, path, (_F("bundle-xml", "raw_xml"), _F("bundle-primitive", "primitive_id"))
            )
            if "raw_xml" not in vals:
                return
            self.bundles[ident] = m.Bundle(id=ident, **vals)
        self.kind[ident] = "bundle" if kind == "bundle-xml" else kind

    def container_fields(self, tbl: Mapping[str, Any], path: str, ident: str) -> dict[str, Any]:
        vals = self.lo.fields(tbl, path, (_F("description", "description"),))
        vals.update(self.lo.attribute_sets(tbl, path, ident, ("params", "meta")))
        return vals

    def promotable(self, tbl: Mapping[str, Any], path: str, ident: str, fields: dict[str, Any]) -> None:
        """``promotable = true`` is short for the clone meta-attribute promotable="true"."""
        if "promotable" not in tbl:
            return
        flag = self.lo.scalar("bool", tbl["promotable"], join_path(path, "promotable"))
        if flag is None:
            return
        meta: list[m.NvSet] = fields.get("meta_attributes", [])
        if isinstance(tbl.get("meta"), list):
            self.lo.error(
                join_path(path, "promotable"), "with meta written as a list of sets, set promotable in one"
            )
        elif meta and "promotable" in meta[0].values:
            self.lo.error(join_path(path, "promotable"), "given twice: also in meta; keep one")
        else:
            first = meta[0] if meta else m.NvSet(id=f"{ident}-meta_attributes")
            values = {**first.values, "promotable": "true" if flag else "false"}
            fields["meta_attributes"] = [msgspec.structs.replace(first, values=values)]

    def adopt(self, parent: str, child: str, path: str, allowed: tuple[str, ...]) -> None:
        container = self.kind[parent]
        kind = self.kind.get(child)
        if child == parent:
            self.lo.error(path, f"a {container} cannot contain itself; name another resource")
        elif kind is None:
            hint = _did_you_mean(child, self.kind)
            self.lo.error(path, f'no resource "{child}" is defined{hint}')
        elif kind not in allowed:
            what = {"group": "a group inside a group", "clone": f"a clone of a {kind}"}[container]
            self.lo.error(
                path,
                f'"{child}" is a {kind}, and {what} is not possible: '
                + (
                    "list its primitives here instead"
                    if container == "group"
                    else "clone its primitive or group"
                ),
            )
        elif child in self.parent:
            self.lo.error(
                path,
                f'"{child}" is already part of "{self.parent[child]}"; a resource can have only one parent',
            )
        else:
            self.parent[child] = parent

    def build(self, ident: str) -> m.Resource | None:
        kind = self.kind[ident]
        if kind == "primitive":
            return self.prims[ident]
        if kind == "bundle":
            return self.bundles[ident]
        if kind == "group":
            members, fields = self.groups[ident]
            children = [self.prims[c] for c in members if self.parent.get(c) == ident]
            return m.Group(id=ident, children=children, **fields)
        child_id, fields = self.clones[ident]
        if self.parent.get(child_id) != ident:
            return None
        child = self.build(child_id)
        if not isinstance(child, m.Primitive | m.Group):
            return None
        return m.Clone(id=ident, child=child, **fields)


# Field tables shared by loading and dumping.
_RULE_FIELDS = (
    _F("id", "id"),
    _F("score", "score", "score"),
    _F("score-attribute", "score_attribute"),
    _F("boolean-op", "boolean_op"),
    _F("role", "role"),
)
_EXPRESSION_SPECS: dict[str, tuple[tuple[_F, ...], type[Any], str]] = {
    "attribute": (
        (
            _F("id", "id"),
            _F("attribute", "attribute"),
            _F("operation", "operation"),
            _F("value", "value"),
            _F("type", "type"),
            _F("value-source", "value_source"),
        ),
        m.AttrExpression,
        "an attribute expression",
    ),
    "date": (
        (_F("id", "id"), _F("date", "operation", always=True), _F("start", "start"), _F("end", "end")),
        m.DateExpression,
        "a date expression",
    ),
    "op": (
        (_F("id", "id"), _F("op", "name"), _F("interval", "interval", "duration")),
        m.OpExpression,
        "an op expression",
    ),
}
_SPEC_SUFFIX = {"spec": "datespec", "duration": "duration"}
_SET_KEYS = {
    "params": ("instance_attributes", "instance_attributes"),
    "meta": ("meta_attributes", "meta_attributes"),
    "utilization": ("utilization", "utilization"),
}
_OP_FIELDS = (
    _F("id", "id"),
    _F("name", "name"),
    _F("interval", "interval", "duration"),
    _F("timeout", "timeout", "duration"),
    _F("role", "role"),
    _F("on-fail", "on_fail"),
    _F("start-delay", "start_delay", "duration"),
    _F("interval-origin", "interval_origin"),
    _F("enabled", "enabled", "bool"),
    _F("record-pending", "record_pending", "bool"),
    _F("description", "description"),
)
_SET_FIELDS = (
    _F("id", "id"),
    _F("resources", "resources", "names", always=True),
    _F("sequential", "sequential", "bool"),
    _F("require-all", "require_all", "bool"),
    _F("ordering", "ordering"),
    _F("action", "action"),
    _F("role", "role"),
    _F("score", "score", "score"),
    _F("kind", "kind"),
)
_CONSTRAINT_SPECS: dict[str, tuple[type[m.Constraint], tuple[_F, ...]]] = {
    "location": (
        m.Location,
        (
            _F("resource", "rsc"),
            _F("resource-pattern", "rsc_pattern"),
            _F("node", "node"),
            _F("score", "score", "score"),
            _F("role", "role"),
            _F("resource-discovery", "resource_discovery"),
        ),
    ),
    "colocation": (
        m.Colocation,
        (
            _F("resource", "rsc"),
            _F("with", "with_rsc"),
            _F("score", "score", "score", always=True),
            _F("resource-role", "rsc_role"),
            _F("with-role", "with_rsc_role"),
            _F("node-attribute", "node_attribute"),
            _F("influence", "influence", "bool"),
        ),
    ),
    "order": (
        m.Order,
        (
            _F("first", "first"),
            _F("then", "then"),
            _F("first-action", "first_action"),
            _F("then-action", "then_action"),
            _F("kind", "kind"),
            _F("score", "score", "score"),
            _F("symmetrical", "symmetrical", "bool"),
            _F("require-all", "require_all", "bool"),
        ),
    ),
    "ticket": (
        m.Ticket,
        (
            _F("ticket", "ticket"),
            _F("resource", "rsc"),
            _F("resource-role", "rsc_role"),
            _F("loss-policy", "loss_policy"),
        ),
    ),
}
_NODE_FIELDS = (
    _F("id", "id"),
    _F("type", "type"),
    _F("score", "score", "score"),
    _F("description", "description"),
)
_LEVEL_FIELDS = (
    _F("id", "id"),
    _F("target", "target"),
    _F("target-pattern", "target_pattern"),
    _F("target-attribute", "target_attribute"),
    _F("target-value", "target_value"),
    _F("index", "index", "int"),
    _F("devices", "devices", "names"),
)
_ALERT_FIELDS = (_F("path", "path"), _F("description", "description"), _F("select", "select", "names"))
_RECIPIENT_FIELDS = (_F("id", "id"), _F("value", "value"), _F("description", "description"))
_PERMISSION_FIELDS = (
    _F("id", "id"),
    _F("kind", "kind"),
    _F("xpath", "xpath"),
    _F("reference", "reference"),
    _F("object-type", "object_type"),
    _F("attribute", "attribute"),
)
_TOP_KEYS = (
    "cluster",
    "properties",
    "rsc_defaults",
    "op_defaults",
    "nodes",
    "templates",
    "resources",
    "constraints",
    "fencing",
    "alerts",
    "tags",
    "acls",
)


def _syntax_hint(text: str, error: str) -> str:
    """The usual cause of a TOML syntax error, when the line it points at shows it."""
    where = re.search(r"at line (\d+)", error)
    lines = text.splitlines()
    if where is None or not 0 < int(where[1]) <= len(lines):
        return ""
    line = lines[int(where[1]) - 1]
    if line.count("{") > line.count("}"):
        return "; an inline table { ... } must fit on one line: use a [section] or [[list]] for longer ones"
    if re.match(r"\s*[A-Za-z0-9_-]+\s*=\s*[^\s\"'\[{0-9tf+-]", line):
        return '; text values need quotes, e.g. interval = "10s"'
    return ""


def load_config(text: str) -> m.Configuration:
    """Read a declarative TOML configuration; raise :class:`ConfigError` listing every problem found."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        message = f"this is not valid TOML: {err}{_syntax_hint(text, str(err))}"
        raise ConfigError([Problem(path="file", message=message)]) from err
    loader = _Loader()
    cfg = loader.configuration(doc)
    if loader.problems:
        raise ConfigError(loader.problems)
    return cfg


# === dumping ===========================================================================================


def _without_id(out: dict[str, Any], ident: str, conventional: str) -> dict[str, Any]:
    if ident == conventional:
        out.pop("id", None)
    else:
        out["id"] = ident
    return out


class _Dumper:
    """Turns a configuration into plain dicts and lists that ``tomli_w`` writes."""

    def nvsets(self, sets: list[m.NvSet], default_id: str) -> dict[str, Any] | list[dict[str, Any]]:
        if plain_set(sets, default_id):
            return {k: _nv_out(v) for k, v in sets[0].values.items()}
        out: list[dict[str, Any]] = []
        for i, s in enumerate(sets):
            entry: dict[str, Any] = _without_id({}, s.id, _nth(default_id, i))
            if s.score is not None:
                entry["score"] = _score_out(s.score)
            if s.rule is not None:
                entry["rule"] = self.rule(s.rule, f"{s.id}-rule")
            entry["values"] = {k: _nv_out(v) for k, v in s.values.items()}
            out.append(entry)
        return out

    def put_sets(self, out: dict[str, Any], key: str, sets: list[m.NvSet], default_id: str) -> None:
        if sets:
            out[key] = self.nvsets(sets, default_id)

    def rule(self, rule: m.Rule, default_id: str) -> dict[str, Any]:
        out = _without_id(_dump_fields(rule, _RULE_FIELDS), rule.id, default_id)
        out["expressions"] = [
            self.expression(e, _nth(f"{rule.id}-expr", i)) for i, e in enumerate(rule.expressions)
        ]
        return out

    def expression(self, expr: m.Expression, default_id: str) -> dict[str, Any]:
        if isinstance(expr, m.Rule):
            return self.rule(expr, default_id)
        if isinstance(expr, m.RscExpression):
            return _without_id({"resource": self.rsc_spec(expr)}, expr.id, default_id)
        key = {m.AttrExpression: "attribute", m.DateExpression: "date", m.OpExpression: "op"}[type(expr)]
        out = _without_id(_dump_fields(expr, _EXPRESSION_SPECS[key][0]), expr.id, default_id)
        if isinstance(expr, m.DateExpression):
            for attr in ("duration", "spec"):
                spec: m.DateSpec | None = getattr(expr, attr)
                if spec is not None:
                    fields: dict[str, Any] = dict(spec.fields)
                    out[attr] = _without_id(fields, spec.id, f"{expr.id}-{_SPEC_SUFFIX[attr]}")
        return out

    @staticmethod
    def rsc_spec(expr: m.RscExpression) -> str | dict[str, str]:
        parts = (expr.klass, expr.provider, expr.type)
        if all(p is None or (p and ":" not in p) for p in parts):
            return ":".join(p or "" for p in parts)
        names = ("class", "provider", "type")
        return {n: p for n, p in zip(names, parts, strict=True) if p is not None}

    def operation(self, op: m.Operation, owner: str) -> dict[str, Any]:
        out = _without_id(_dump_fields(op, _OP_FIELDS), op.id, op_id(owner, op.name, op.interval))
        self.put_sets(out, "params", op.instance_attributes, f"{op.id}-instance_attributes")
        self.put_sets(out, "meta", op.meta_attributes, f"{op.id}-meta_attributes")
        return out

    def primitive_like(self, p: m.Primitive | m.Template) -> dict[str, Any]:
        out: dict[str, Any] = {}
        parts = (p.klass, p.provider, p.type)
        if p.klass and p.type and all(x is None or (x and ":" not in x) for x in parts):
            out["agent"] = ":".join(x for x in parts if x)
        else:
            out.update(
                {k: v for k, v in zip(("class", "provider", "type"), parts, strict=True) if v is not None}
            )
        if isinstance(p, m.Primitive) and p.template is not None:
            out["template"] = p.template
        if p.description is not None:
            out["description"] = p.description
        self.put_sets(out, "params", p.instance_attributes, f"{p.id}-instance_attributes")
        self.put_sets(out, "meta", p.meta_attributes, f"{p.id}-meta_attributes")
        self.put_sets(out, "utilization", p.utilization, f"{p.id}-utilization")
        if p.operations:
            out["ops"] = [self.operation(op, p.id) for op in p.operations]
        return out

    def container(self, r: m.Group | m.Clone) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if r.description is not None:
            out["description"] = r.description
        self.put_sets(out, "params", r.instance_attributes, f"{r.id}-instance_attributes")
        self.put_sets(out, "meta", r.meta_attributes, f"{r.id}-meta_attributes")
        return out

    def resource(self, r: m.Resource, out: dict[str, Any]) -> None:
        """Add ``r`` and its parts to the flat resources table, parts first."""
        if r.id in out:
            raise ValueError(f'two resources share the id "{r.id}"; give each resource its own id')
        if isinstance(r, m.Primitive):
            out[r.id] = self.primitive_like(r)
        elif isinstance(r, m.Group):
            for child in r.children:
                self.resource(child, out)
            out[r.id] = {"group": [c.id for c in r.children], **self.container(r)}
        elif isinstance(r, m.Clone):
            self.resource(r.child, out)
            out[r.id] = {"clone": r.child.id, **self.clone_fields(r)}
        else:
            out[r.id] = {"bundle-xml": r.raw_xml}
            if r.primitive_id is not None:
                out[r.id]["bundle-primitive"] = r.primitive_id

    def clone_fields(self, r: m.Clone) -> dict[str, Any]:
        out = self.container(r)
        meta = out.get("meta")
        if isinstance(meta, dict) and isinstance(meta.get("promotable"), bool):
            out = {"promotable": meta.pop("promotable"), **out}
            if not meta:
                del out["meta"]
        if r.legacy_master:
            out["legacy-master"] = True
        return out

    def constraint(self, c: m.Constraint) -> dict[str, Any]:
        kind = {m.Location: "location", m.Colocation: "colocation", m.Order: "order", m.Ticket: "ticket"}[
            type(c)
        ]
        out: dict[str, Any] = {"type": kind, **_dump_fields(c, _CONSTRAINT_SPECS[kind][1])}
        if c.resource_sets:
            out["sets"] = [
                _without_id(_dump_fields(s, _SET_FIELDS), s.id, _nth(f"{c.id}-set", i))
                for i, s in enumerate(c.resource_sets)
            ]
        if isinstance(c, m.Location) and c.rules:
            out["rules"] = [self.rule(r, _nth(f"{c.id}-rule", i)) for i, r in enumerate(c.rules)]
        return out

    def node(self, n: m.Node) -> dict[str, Any]:
        out = _without_id(_dump_fields(n, _NODE_FIELDS), n.id, n.uname)
        self.put_sets(out, "attributes", n.instance_attributes, f"nodes-{n.id}")
        self.put_sets(out, "utilization", n.utilization, f"nodes-{n.id}-utilization")
        return out

    def alert(self, a: m.Alert) -> dict[str, Any]:
        out = _dump_fields(a, _ALERT_FIELDS)
        self.put_sets(out, "params", a.instance_attributes, f"{a.id}-instance_attributes")
        self.put_sets(out, "meta", a.meta_attributes, f"{a.id}-meta_attributes")
        recipients = []
        for i, r in enumerate(a.recipients):
            rec = _without_id(_dump_fields(r, _RECIPIENT_FIELDS), r.id, _nth(f"{a.id}-recipient", i))
            self.put_sets(rec, "params", r.instance_attributes, f"{r.id}-instance_attributes")
            self.put_sets(rec, "meta", r.meta_attributes, f"{r.id}-meta_attributes")
            recipients.append(rec)
        if recipients:
            out["recipients"] = recipients
        return out

    def acls(self, acls: m.Acls) -> dict[str, Any]:
        roles: dict[str, Any] = {}
        for role in acls.roles:
            entry: dict[str, Any] = {} if role.description is None else {"description": role.description}
            entry["permissions"] = [
                _without_id(_dump_fields(p, _PERMISSION_FIELDS), p.id, _nth(f"{role.id}-perm", i))
                for i, p in enumerate(role.permissions)
            ]
            _unique(roles, role.id, entry, "ACL roles")
        targets: dict[str, Any] = {}
        for t in acls.targets:
            _unique(
                targets,
                t.id,
                _dump_fields(t, (_F("kind", "kind"), _F("roles", "roles", "names"))),
                "ACL targets",
            )
        out: dict[str, Any] = {}
        if roles:
            out["roles"] = roles
        if targets:
            out["targets"] = targets
        return out

    def properties(self, cfg: m.Configuration, doc: dict[str, Any]) -> None:
        props = self.nvsets(cfg.properties, PROPERTIES_ID) if cfg.properties else None
        if isinstance(props, dict) and isinstance(props.get(CLUSTER_NAME), str):
            doc["cluster"] = {"name": props.pop(CLUSTER_NAME)}
            if not props:
                props = None
        if props is not None:
            doc["properties"] = props

    def configuration(self, cfg: m.Configuration) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        self.properties(cfg, doc)
        self.put_sets(doc, "rsc_defaults", cfg.rsc_defaults, RSC_DEFAULTS_ID)
        self.put_sets(doc, "op_defaults", cfg.op_defaults, OP_DEFAULTS_ID)
        sections: list[tuple[str, list[Any], Callable[[Any], Any], Callable[[Any], str]]] = [
            ("nodes", cfg.nodes, self.node, lambda n: str(n.uname)),
            ("templates", cfg.templates, self.primitive_like, lambda t: str(t.id)),
        ]
        for key, objs, dump, name in sections:
            if objs:
                table: dict[str, Any] = {}
                for obj in objs:
                    _unique(table, name(obj), dump(obj), key)
                doc[key] = table
        if cfg.resources:
            resources: dict[str, Any] = {}
            for r in cfg.resources:
                self.resource(r, resources)
            doc["resources"] = resources
        later: list[tuple[str, list[Any], Callable[[Any], Any]]] = [
            ("constraints", cfg.constraints, self.constraint),
            ("alerts", cfg.alerts, self.alert),
        ]
        for key, objs, dump in later:
            if objs:
                table = {}
                for obj in objs:
                    _unique(table, obj.id, dump(obj), key)
                doc[key] = table
        if cfg.fencing_topology:
            doc["fencing"] = {"levels": [self.level(lv) for lv in cfg.fencing_topology]}
        if cfg.tags:
            tags: dict[str, Any] = {}
            for t in cfg.tags:
                _unique(tags, t.id, list(t.refs), "tags")
            doc["tags"] = tags
        if cfg.acls is not None:
            doc["acls"] = self.acls(cfg.acls)
        return doc

    @staticmethod
    def level(lv: m.FencingLevel) -> dict[str, Any]:
        out = _dump_fields(lv, _LEVEL_FIELDS)
        return _without_id(out, lv.id, fencing_level_id(lv))


def _unique(table: dict[str, Any], key: str, value: Any, section: str) -> None:
    if key in table:
        raise ValueError(f'two entries in {section} share the name "{key}"; give each its own')
    table[key] = value


def to_document(cfg: m.Configuration) -> dict[str, Any]:
    """The configuration as the plain tables the TOML file holds (useful for JSON or YAML output)."""
    return _Dumper().configuration(cfg)


def dump_config(cfg: m.Configuration) -> str:
    """Write the configuration as declarative TOML; ``load_config`` of the result gives ``cfg`` back.

    Raises ``ValueError`` for a configuration that reuses an id (two resources, nodes, constraints... with
    the same name), which no TOML table can hold and ``validate`` reports anyway.
    """
    return tomli_w.dumps(to_document(cfg), multiline_strings=True)
