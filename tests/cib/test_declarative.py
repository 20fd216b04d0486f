"""The declarative TOML format: shape of what it writes, round trips, and load errors with their places."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from hakeeper.cib import model as m
from hakeeper.cib.declarative import ConfigError, dump_config, load_config
from hakeeper.cib.validate import validate
from hakeeper.cib.xml_io import parse_cib_xml
from tests.conftest import PROJECT_ROOT, scheduler_corpus

CORPUS = scheduler_corpus() / "dev" / "xml"
CASES = sorted(CORPUS.glob("*.xml")) if CORPUS.is_dir() else []
needs_corpus = pytest.mark.skipif(not CASES, reason="Pacemaker scheduler corpus not present")
EXAMPLES = sorted((PROJECT_ROOT / "examples").glob("*.toml"))


def ocf(rid: str, rtype: str = "Dummy", **kw: object) -> m.Primitive:
    return m.Primitive(id=rid, klass="ocf", provider="heartbeat", type=rtype, **kw)  # type: ignore[arg-type]


# --- what the friendly format looks like ----------------------------------------------------------------


SIMPLE = """
[cluster]
name = "demo"

[properties]
stonith-enabled = false

[rsc_defaults]
resource-stickiness = 100

[nodes.node1]
attributes = { rack = "a" }
utilization = { cpu = 4 }

[resources.vip]
agent = "ocf:heartbeat:IPaddr2"
params = { ip = "10.0.0.10", cidr_netmask = 24 }
meta = { target-role = "Started" }
ops = [ { name = "monitor", interval = "10s", timeout = "20s" } ]

[resources.web]
agent = "systemd:httpd"

[resources.websvc]
group = ["vip", "web"]

[resources.websvc-clone]
clone = "websvc"
meta = { clone-max = 2 }

[constraints.web-on-node1]
type = "location"
resource = "websvc-clone"
node = "node1"
score = 100
"""


def test_friendly_file_becomes_the_model_with_conventional_ids() -> None:
    cfg = load_config(SIMPLE)
    assert cfg.properties == [
        m.NvSet(id="cib-bootstrap-options", values={"cluster-name": "demo", "stonith-enabled": "false"})
    ]
    assert cfg.rsc_defaults == [
        m.NvSet(id="rsc_defaults-meta_attributes", values={"resource-stickiness": "100"})
    ]
    assert cfg.nodes == [
        m.Node(
            id="node1",
            uname="node1",
            instance_attributes=[m.NvSet(id="nodes-node1", values={"rack": "a"})],
            utilization=[m.NvSet(id="nodes-node1-utilization", values={"cpu": "4"})],
        )
    ]
    vip = m.Primitive(
        id="vip",
        klass="ocf",
        provider="heartbeat",
        type="IPaddr2",
        instance_attributes=[
            m.NvSet(id="vip-instance_attributes", values={"ip": "10.0.0.10", "cidr_netmask": "24"})
        ],
        meta_attributes=[m.NvSet(id="vip-meta_attributes", values={"target-role": "Started"})],
        operations=[
            m.Operation(id="vip-monitor-interval-10s", name="monitor", interval=10_000, timeout=20_000)
        ],
    )
    web = m.Primitive(id="web", klass="systemd", type="httpd")
    clone = m.Clone(
        id="websvc-clone",
        child=m.Group(id="websvc", children=[vip, web]),
        meta_attributes=[m.NvSet(id="websvc-clone-meta_attributes", values={"clone-max": "2"})],
    )
    assert cfg.resources == [clone]
    assert cfg.constraints == [m.Location(id="web-on-node1", rsc="websvc-clone", node="node1", score=100)]


def test_dump_writes_the_friendly_form_back() -> None:
    text = dump_config(load_config(SIMPLE))
    doc = tomllib.loads(text)
    assert doc["cluster"] == {"name": "demo"}
    assert doc["properties"] == {"stonith-enabled": False}
    assert doc["resources"]["vip"] == {
        "agent": "ocf:heartbeat:IPaddr2",
        "params": {"ip": "10.0.0.10", "cidr_netmask": 24},
        "meta": {"target-role": "Started"},
        "ops": [{"name": "monitor", "interval": "10s", "timeout": "20s"}],
    }
    assert doc["resources"]["websvc"] == {"group": ["vip", "web"]}
    assert doc["resources"]["websvc-clone"] == {"clone": "websvc", "meta": {"clone-max": 2}}
    assert not re.search(r"\bid = ", text)  # every id followed the convention
    assert list(doc["resources"]) == ["vip", "web", "websvc", "websvc-clone"]  # parts before their parents


def test_ids_that_break_the_convention_are_written_explicitly() -> None:
    prim = ocf(
        "r1",
        instance_attributes=[m.NvSet(id="custom-ia", values={"a": "1"})],
        operations=[m.Operation(id="r1-mon", name="monitor", interval=5000)],
    )
    cfg = m.Configuration(resources=[prim], nodes=[m.Node(id="uuid-1", uname="n1")])
    doc = tomllib.loads(dump_config(cfg))
    assert doc["resources"]["r1"]["params"] == [{"id": "custom-ia", "values": {"a": 1}}]
    assert doc["resources"]["r1"]["ops"] == [{"id": "r1-mon", "name": "monitor", "interval": "5s"}]
    assert doc["nodes"]["n1"] == {"id": "uuid-1"}
    assert load_config(dump_config(cfg)) == cfg


def test_values_that_only_look_like_numbers_stay_text() -> None:
    values = {
        "a": "0100",
        "b": "1.50",
        "c": "True",
        "d": "-0",
        "e": "12",
        "f": "false",
        "g": "99999999999999999999",
    }
    cfg = m.Configuration(properties=[m.NvSet(id="cib-bootstrap-options", values=values)])
    doc = tomllib.loads(dump_config(cfg))
    assert doc["properties"] == {
        "a": "0100",
        "b": "1.50",
        "c": "True",
        "d": "-0",
        "e": 12,
        "f": False,
        "g": "99999999999999999999",
    }
    assert load_config(dump_config(cfg)) == cfg


def test_promotable_is_a_shortcut_for_the_meta_attribute() -> None:
    text = """
[resources.db]
agent = "ocf:pacemaker:Stateful"
[resources.db-clone]
clone = "db"
promotable = true
"""
    clone = load_config(text).resources[0]
    assert isinstance(clone, m.Clone)
    assert clone.meta_attributes == [m.NvSet(id="db-clone-meta_attributes", values={"promotable": "true"})]
    assert tomllib.loads(dump_config(load_config(text)))["resources"]["db-clone"] == {
        "promotable": True,
        "clone": "db",
    }


def test_rules_sets_and_expressions_have_an_explicit_form() -> None:
    text = """
[resources.r]
agent = "ocf:heartbeat:Dummy"
meta = [
  { values = { target-role = "Stopped" }, score = 10, rule = { expressions = [
      { date = "date_spec", spec = { hours = "9-16", weekdays = "1-5" } } ] } },
  { values = { target-role = "Started" } },
]

[constraints.r-on-ping]
type = "location"
resource = "r"
rules = [ { score = "-INFINITY", boolean-op = "or", expressions = [
  { attribute = "pingd", operation = "not_defined" },
  { attribute = "pingd", operation = "lte", value = "0", type = "integer" },
  { expressions = [ { op = "monitor", interval = "10s" }, { resource = "ocf::Dummy" } ] },
] } ]

[constraints.set-order]
type = "order"
kind = "Optional"
sets = [ { resources = ["a", "b"], sequential = false }, { resources = ["r"], action = "promote" } ]
"""
    cfg = load_config(text)
    prim = cfg.resources[0]
    assert isinstance(prim, m.Primitive)
    first = prim.meta_attributes[0]
    assert first.id == "r-meta_attributes" and first.score == 10
    assert first.rule is not None and first.rule.id == "r-meta_attributes-rule"
    spec = first.rule.expressions[0]
    assert isinstance(spec, m.DateExpression)
    assert spec.id == "r-meta_attributes-rule-expr"
    assert spec.spec == m.DateSpec(
        id="r-meta_attributes-rule-expr-datespec", fields={"hours": "9-16", "weekdays": "1-5"}
    )
    assert prim.meta_attributes[1].id == "r-meta_attributes-1"
    loc = cfg.constraints[0]
    assert isinstance(loc, m.Location)
    rule = loc.rules[0]
    assert (rule.id, rule.score, rule.boolean_op) == ("r-on-ping-rule", -1_000_000, "or")
    assert [e.id for e in rule.expressions] == [
        "r-on-ping-rule-expr",
        "r-on-ping-rule-expr-1",
        "r-on-ping-rule-expr-2",
    ]
    nested = rule.expressions[2]
    assert isinstance(nested, m.Rule)
    assert nested.expressions == [
        m.OpExpression(id="r-on-ping-rule-expr-2-expr", name="monitor", interval=10_000),
        m.RscExpression(id="r-on-ping-rule-expr-2-expr-1", type="Dummy", klass="ocf"),
    ]
    order = cfg.constraints[1]
    assert isinstance(order, m.Order)
    assert [s.id for s in order.resource_sets] == ["set-order-set", "set-order-set-1"]
    assert load_config(dump_config(cfg)) == cfg


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_shipped_examples_round_trip(path: Path) -> None:
    cfg = load_config(path.read_text())
    assert cfg.resources
    assert load_config(dump_config(cfg)) == cfg


def test_there_are_at_least_three_examples() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"active-passive.toml", "active-active.toml", "promotable.toml"} <= names


def test_dump_refuses_two_resources_with_one_id() -> None:
    cfg = m.Configuration(resources=[m.Group(id="g", children=[ocf("a")]), ocf("a")])
    with pytest.raises(ValueError, match='two resources share the id "a"'):
        dump_config(cfg)


# --- the corpus: XML -> model -> TOML -> model ----------------------------------------------------------


@needs_corpus
def test_the_whole_dev_corpus_is_there() -> None:
    assert len(CASES) == 559


def corpus_configuration(path: Path) -> m.Configuration:
    """The configuration of a corpus CIB; the status section is dropped first, as it is slow to read."""
    root = etree.fromstring(path.read_bytes(), etree.XMLParser(resolve_entities=False, no_network=True))
    for status in root.findall("status"):
        root.remove(status)
    return parse_cib_xml(etree.tostring(root)).cib.configuration


@needs_corpus
@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_corpus_configuration_round_trips_through_toml(path: Path) -> None:
    cfg = corpus_configuration(path)
    assert load_config(dump_config(cfg)) == cfg


# --- property: any configuration with unique ids round-trips -------------------------------------------

_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.: ", min_size=1, max_size=8)
_value = st.text(max_size=12)
_score = st.one_of(st.integers(-1_000_000, 1_000_000), st.sampled_from([-1_000_000, 1_000_000]))
_ms = st.integers(0, 10**9)


@st.composite
def _nvsets(draw: st.DrawFn, owner: str) -> list[m.NvSet]:
    sets = []
    for i in range(draw(st.integers(0, 2))):
        rule = None
        if draw(st.booleans()):
            expr = m.AttrExpression(
                id=draw(st.sampled_from([f"{owner}-{i}-rule-expr", "x1"])),
                attribute=draw(_name),
                operation=draw(st.sampled_from(["eq", "defined", "lt"])),
                value=draw(st.none() | _value),
            )
            rule = m.Rule(id=draw(_name), score=draw(st.none() | _score), expressions=[expr])
        set_id = draw(st.sampled_from([f"{owner}-instance_attributes", f"{owner}-meta_attributes", f"s{i}"]))
        values = draw(st.dictionaries(_name, _value, max_size=3))
        sets.append(m.NvSet(id=set_id, values=values, score=draw(st.none() | _score), rule=rule))
    return sets


@st.composite
def _primitive(draw: st.DrawFn, rid: str) -> m.Primitive:
    ops = [
        m.Operation(
            id=draw(st.sampled_from([f"{rid}-op{i}", f"{rid}-monitor-interval-10s"])),
            name=draw(st.sampled_from(["monitor", "start", "stop", "promote"])),
            interval=draw(_ms),
            timeout=draw(st.none() | _ms),
            role=draw(st.none() | st.sampled_from(["Promoted", "Unpromoted"])),
            on_fail=draw(st.none() | st.sampled_from(["restart", "block"])),
            enabled=draw(st.booleans()),
        )
        for i in range(draw(st.integers(0, 2)))
    ]
    agent = draw(
        st.sampled_from(
            [
                ("ocf", "heartbeat", "Dummy"),
                ("systemd", None, "httpd"),
                (None, None, None),
                ("ocf", None, "X"),
            ]
        )
    )
    return m.Primitive(
        id=rid,
        klass=agent[0],
        provider=agent[1],
        type=agent[2],
        template=draw(st.none() | st.just("tmpl")),
        description=draw(st.none() | _value),
        instance_attributes=draw(_nvsets(rid)),
        meta_attributes=draw(_nvsets(rid)),
        operations=ops,
    )


@st.composite
def _configuration(draw: st.DrawFn) -> m.Configuration:
    ids = iter(draw(st.lists(_name, min_size=12, max_size=12, unique=True)))
    resources: list[m.Resource] = []
    for _ in range(draw(st.integers(0, 3))):
        shape = draw(st.sampled_from(["primitive", "group", "clone", "clone-group"]))
        if shape == "primitive":
            resources.append(draw(_primitive(next(ids))))
            continue
        prim = draw(_primitive(next(ids)))
        child: m.Primitive | m.Group = prim
        if shape != "clone":
            child = m.Group(id=next(ids), children=[prim], meta_attributes=draw(_nvsets("g")))
        if shape == "group":
            resources.append(child)
        else:
            resources.append(
                m.Clone(
                    id=next(ids),
                    child=child,
                    meta_attributes=draw(_nvsets("c")),
                    legacy_master=draw(st.booleans()),
                )
            )
    names = [r.id for r in resources] or ["nothing"]
    constraints: list[m.Constraint] = [
        m.Colocation(
            id="col",
            rsc=draw(st.sampled_from(names)),
            with_rsc=draw(st.sampled_from(names)),
            score=draw(_score),
        ),
        m.Order(
            id="ord",
            resource_sets=[m.ResourceSet(id=draw(st.sampled_from(["ord-set", "x"])), resources=names)],
            kind=draw(st.none() | st.just("Optional")),
        ),
    ]
    nodes = [
        m.Node(
            id=draw(st.sampled_from(["n1", "1"])), uname="n1", instance_attributes=draw(_nvsets("nodes-n1"))
        )
    ]
    return m.Configuration(
        properties=draw(_nvsets("cib-bootstrap-options")),
        nodes=nodes,
        resources=resources,
        constraints=constraints if draw(st.booleans()) else [],
        op_defaults=draw(_nvsets("op_defaults")),
        fencing_topology=[
            m.FencingLevel(id=draw(st.sampled_from(["fl-n1-1", "lv"])), index=1, devices=["f"], target="n1")
        ],
        tags=[m.Tag(id="t", refs=names)],
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_configuration())
def test_any_configuration_with_unique_ids_round_trips(cfg: m.Configuration) -> None:
    assert load_config(dump_config(cfg)) == cfg


# --- load errors: each names its place and says what is wrong --------------------------------------------

BASE_RSC = '[resources.web]\nagent = "ocf:heartbeat:apache"\n'

LOAD_ERRORS = [
    (
        "bad-duration",
        BASE_RSC + 'ops = [{ name = "start" }, { name = "monitor", interval = "10x" }]\n',
        "resources.web.ops[1].interval",
        '"10x" is not a duration (use 10s, 1min or PT10S)',
    ),
    (
        "typo-key",
        '[resources.web]\nagnet = "ocf:heartbeat:apache"\n',
        "resources.web",
        'unknown key "agnet" (did you mean "agent"?)',
    ),
    (
        "unknown-top",
        '[resourcse.web]\nagent = "x:y"\n',
        "file",
        'unknown key "resourcse" (did you mean "resources"?)',
    ),
    ("bad-agent", '[resources.web]\nagent = "apache"\n', "resources.web.agent", '"apache" is not an agent'),
    (
        "empty-agent-part",
        '[resources.web]\nagent = "ocf::apache"\n',
        "resources.web.agent",
        "class:provider:type",
    ),
    (
        "agent-and-class",
        BASE_RSC + 'class = "ocf"\n',
        "resources.web",
        'either as agent = "..." or with class',
    ),
    (
        "bad-score",
        '[constraints.c]\ntype = "location"\nresource = "web"\nnode = "n1"\nscore = "lots"\n',
        "constraints.c.score",
        '"lots" is not a score',
    ),
    (
        "score-colour",
        '[constraints.c]\ntype = "location"\nresource = "web"\nnode = "n1"\nscore = "red"\n',
        "constraints.c.score",
        "node-health colour",
    ),
    (
        "bad-type",
        '[constraints.c]\ntype = "colocaton"\n',
        "constraints.c.type",
        '(did you mean "colocation"?)',
    ),
    (
        "no-type",
        '[constraints.c]\nresource = "web"\n',
        "constraints.c.type",
        "is not one of location, colocation",
    ),
    (
        "colocation-no-score",
        '[constraints.c]\ntype = "colocation"\nresource = "a"\nwith = "b"\n',
        "constraints.c",
        'missing "score"',
    ),
    (
        "ticket-no-name",
        '[constraints.c]\ntype = "ticket"\nresource = "a"\n',
        "constraints.c",
        'missing "ticket"',
    ),
    ("op-no-name", BASE_RSC + 'ops = [{ interval = "10s" }]\n', "resources.web.ops[0]", 'missing "name"'),
    (
        "negative-seconds",
        BASE_RSC + 'ops = [{ name = "monitor", interval = -5 }]\n',
        "resources.web.ops[0].interval",
        "durations cannot be negative",
    ),
    (
        "timeout-bool",
        BASE_RSC + 'ops = [{ name = "monitor", timeout = true }]\n',
        "resources.web.ops[0].timeout",
        'expected a duration such as "10s"',
    ),
    (
        "enabled-text",
        BASE_RSC + 'ops = [{ name = "monitor", enabled = "yes" }]\n',
        "resources.web.ops[0].enabled",
        "expected true or false, got text",
    ),
    ("params-list-of-text", BASE_RSC + 'params = ["ip=1"]\n', "resources.web.params[0]", "expected a table"),
    (
        "param-table",
        BASE_RSC + "params = { ip = { a = 1 } }\n",
        "resources.web.params.ip",
        "expected text, a number or true/false, got a table",
    ),
    (
        "group-unknown-member",
        BASE_RSC + '[resources.g]\ngroup = ["web", "wbe"]\n',
        "resources.g.group[1]",
        'no resource "wbe" is defined (did you mean "web"?)',
    ),
    (
        "group-in-group",
        BASE_RSC + '[resources.g1]\ngroup = ["web"]\n[resources.g2]\ngroup = ["g1"]\n',
        "resources.g2.group[0]",
        '"g1" is a group, and a group inside a group is not possible',
    ),
    (
        "clone-of-clone",
        BASE_RSC + '[resources.c1]\nclone = "web"\n[resources.c2]\nclone = "c1"\n',
        "resources.c2.clone",
        '"c1" is a clone, and a clone of a clone is not possible',
    ),
    (
        "two-groups",
        BASE_RSC + '[resources.g1]\ngroup = ["web"]\n[resources.g2]\ngroup = ["web"]\n',
        "resources.g2.group[0]",
        '"web" is already part of "g1"; a resource can have only one parent',
    ),
    ("group-self", '[resources.g]\ngroup = ["g"]\n', "resources.g.group[0]", "a group cannot contain itself"),
    (
        "group-and-clone",
        '[resources.g]\ngroup = ["a"]\nclone = "a"\n',
        "resources.g",
        "group and clone cannot be combined",
    ),
    ("members-not-list", '[resources.g]\ngroup = "web"\n', "resources.g.group", "expected a list of names"),
    (
        "expression-kind",
        '[constraints.c]\ntype = "location"\nresource = "a"\nrules = [{ expressions = [{ value = "1" }] }]\n',
        "constraints.c.rules[0].expressions[0]",
        "an expression needs exactly one of: attribute",
    ),
    (
        "expression-no-operation",
        '[constraints.c]\ntype = "location"\nresource = "a"\n'
        'rules = [{ expressions = [{ attribute = "x", value = "1" }] }]\n',
        "constraints.c.rules[0].expressions[0]",
        'missing "operation": lt, gt',
    ),
    (
        "rsc-expression-parts",
        '[constraints.c]\ntype = "location"\nresource = "a"\n'
        'rules = [{ expressions = [{ resource = "ocf:Dummy" }] }]\n',
        "constraints.c.rules[0].expressions[0].resource",
        '"ocf:Dummy" is not class:provider:type',
    ),
    (
        "sets-wrong-type",
        BASE_RSC + 'meta = "target-role=Stopped"\n',
        "resources.web.meta",
        "expected a table of name = value pairs or a list of sets, got text",
    ),
    (
        "fencing-no-devices",
        '[fencing]\nlevels = [{ target = "n1", index = 1 }]\n',
        "fencing.levels[0]",
        'missing "devices"',
    ),
    (
        "fencing-index-text",
        '[fencing]\nlevels = [{ target = "n1", index = "one", devices = ["f"] }]\n',
        "fencing.levels[0].index",
        "expected a whole number, got text",
    ),
    ("alert-no-path", "[alerts.a]\n", "alerts.a", 'missing "path"'),
    (
        "recipient-no-value",
        '[alerts.a]\npath = "/bin/true"\nrecipients = [{ description = "x" }]\n',
        "alerts.a.recipients[0]",
        'missing "value"',
    ),
    ("tag-not-list", '[tags]\nweb = "a"\n', "tags.web", "expected a list of names"),
    ("node-not-table", '[nodes]\nnode1 = "x"\n', "nodes.node1", "expected a table, got text"),
    (
        "cluster-twice",
        '[cluster]\nname = "a"\n[properties]\ncluster-name = "b"\n',
        "cluster.name",
        "given twice",
    ),
    (
        "promotable-twice",
        BASE_RSC + '[resources.c]\nclone = "web"\npromotable = true\nmeta = { promotable = "true" }\n',
        "resources.c.promotable",
        "given twice",
    ),
    ("template-no-agent", "[templates.t]\n", "templates.t", "a template needs an agent"),
    (
        "template-of-template",
        '[templates.t]\nagent = "ocf:heartbeat:Dummy"\ntemplate = "u"\n',
        "templates.t",
        'unknown key "template" (a template takes: agent, class',
    ),
    (
        "acl-permission-kind",
        '[acls.roles.r]\npermissions = [{ xpath = "/cib" }]\n',
        "acls.roles.r.permissions[0]",
        'missing "kind"',
    ),
    ("not-toml", "[resources.web\n", "file", "this is not valid TOML"),
    (
        "multi-line-inline-table",
        BASE_RSC + 'params = { ip = "10.0.0.1",\n  cidr_netmask = 24 }\n',
        "file",
        "an inline table { ... } must fit on one line",
    ),
    ("unquoted-text", "[resources.web]\nagent = ocf:heartbeat:apache\n", "file", "text values need quotes"),
    (
        "date-spec-bool",
        '[constraints.c]\ntype = "location"\nresource = "a"\n'
        'rules = [{ expressions = [{ date = "date_spec", spec = { hours = true } }] }]\n',
        "constraints.c.rules[0].expressions[0].spec.hours",
        "expected text such as",
    ),
]


@pytest.mark.parametrize(
    ("text", "path", "message"), [c[1:] for c in LOAD_ERRORS], ids=[c[0] for c in LOAD_ERRORS]
)
def test_load_error_names_place_and_problem(text: str, path: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(text)
    found = [(p.path, p.message) for p in caught.value.problems]
    assert any(p == path and message in msg for p, msg in found), found


def test_every_problem_is_reported_at_once() -> None:
    text = (PROJECT_ROOT / "tests" / "cib" / "data" / "broken.toml").read_text()
    with pytest.raises(ConfigError) as caught:
        load_config(text)
    lines = str(caught.value).splitlines()
    assert 'resources.web: unknown key "agnet" (did you mean "agent"?)' in lines
    assert 'resources.web.ops[1].interval: "10x" is not a duration (use 10s, 1min or PT10S)' in lines


def test_load_errors_are_many() -> None:
    assert len(LOAD_ERRORS) >= 40


def test_quoted_names_in_paths() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(
            '[resources."my.rsc"]\nagent = "ocf:heartbeat:Dummy"\nops = [{ name = "x", interval = "x" }]\n'
        )
    assert caught.value.problems[0].path == 'resources."my.rsc".ops[0].interval'


# --- bad input never crashes: any TOML document loads or raises ConfigError ------------------------------

_KEYS = [
    *("cluster", "name", "properties", "rsc_defaults", "nodes", "templates", "resources", "constraints"),
    *("fencing", "levels", "alerts", "tags", "acls", "roles", "targets", "permissions", "kind", "agent"),
    *("class", "provider", "type", "template", "params", "meta", "ops", "group", "clone", "promotable"),
    *("bundle-xml", "id", "score", "rule", "values", "expressions", "attribute", "operation", "value"),
    *("date", "op", "resource", "start", "spec", "interval", "timeout", "role", "sets", "resources", "rules"),
    *("node", "with", "first", "then", "ticket", "index", "devices", "target", "path", "recipients", "a"),
]
_scalars = st.one_of(
    st.text(max_size=4),
    st.integers(-3, 3),
    st.booleans(),
    st.sampled_from(["10s", "ocf:heartbeat:Dummy", "a", "location", "order", "colocation", "ticket", "eq"]),
)
_trees = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(_KEYS), _trees, max_size=5))
def test_any_document_loads_or_is_rejected_with_problems(doc: dict[str, object]) -> None:
    try:
        cfg = load_config(tomli_w.dumps(doc))
    except ConfigError as err:
        assert err.problems and all(p.path and p.message for p in err.problems)
        return
    assert isinstance(cfg, m.Configuration)


def test_snippets_in_the_examples_readme_load() -> None:
    text = (PROJECT_ROOT / "examples" / "README.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 2
    for block in blocks:
        load_config(block)


RICH = """
[properties]
stonith-enabled = false
[[rsc_defaults]]
score = 2
rule = { expressions = [{ date = "date_spec", spec = { hours = "9-16" } }] }
values = { resource-stickiness = 1000 }
[nodes.n1]
attributes = { rack = "a" }
[templates.t]
agent = "ocf:heartbeat:Dummy"
[resources.a]
template = "t"
ops = [{ name = "monitor", interval = "10s", params = { OCF_CHECK_LEVEL = 10 } }]
[resources.b]
agent = "ocf:pacemaker:Stateful"
[resources.g]
group = ["a"]
[resources.f]
agent = "stonith:fence_dummy"
[resources.c]
clone = "b"
promotable = true
[constraints.l]
type = "location"
resource = "g"
[[constraints.l.rules]]
score = 5
expressions = [{ attribute = "rack", operation = "eq", value = "a" }, { op = "monitor" }]
[constraints.s]
type = "order"
sets = [{ resources = ["g", "c"], action = "start" }]
[constraints.tk]
type = "ticket"
ticket = "T"
resource = "c"
[fencing]
levels = [{ target = "n1", index = 1, devices = ["f"] }]
[alerts.x]
path = "/bin/true"
recipients = [{ value = "me" }]
[tags]
both = ["a", "b"]
[acls.roles.r]
permissions = [{ kind = "read", xpath = "/cib" }]
[acls.targets.alice]
roles = ["r"]
"""
_BASES = [tomllib.loads(text) for text in [SIMPLE, RICH, *(p.read_text() for p in EXAMPLES)]]
_junk = st.recursive(
    st.one_of(st.text(max_size=4), st.integers(-5, 5), st.booleans(), st.floats(allow_nan=False)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=4,
)


def _places(node: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [prefix] if prefix else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in items:
        out += _places(child, (*prefix, key))
    return out


@st.composite
def _mutated(draw: st.DrawFn) -> dict[str, object]:
    """A valid document with one to three values replaced by junk, removed, or joined by a stray key."""
    doc = copy.deepcopy(draw(st.sampled_from(_BASES)))
    for _ in range(draw(st.integers(1, 3))):
        places = _places(doc)
        if not places:
            break
        place = draw(st.sampled_from(places))
        parent: Any = doc
        for key in place[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[place[-1]] = draw(_junk)
        elif action == "delete":
            del parent[place[-1]]
        elif isinstance(parent[place[-1]], dict):
            parent[place[-1]][draw(st.sampled_from(["id", "type", "agent", "group", "clone", "x"]))] = draw(
                _junk
            )
    return doc


def test_the_rich_document_is_valid_and_round_trips() -> None:
    cfg = load_config(RICH)
    assert validate(cfg) == []
    assert load_config(dump_config(cfg)) == cfg


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_a_damaged_document_loads_or_is_rejected_with_problems(doc: dict[str, object]) -> None:
    try:
        cfg = load_config(tomli_w.dumps(doc))
    except ConfigError as err:
        assert err.problems
        return
    validate(cfg)  # whatever loads, validation copes with
