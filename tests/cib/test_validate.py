"""Semantic validation: every check names the place (in the file's terms) and says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from hakeeper.cib import model as m
from hakeeper.cib.declarative import load_config
from hakeeper.cib.validate import Problem, describe, errors, validate
from tests.cib.test_declarative import CASES, corpus_configuration, needs_corpus
from tests.conftest import PROJECT_ROOT

EXAMPLES = sorted((PROJECT_ROOT / "examples").glob("*.toml"))

# A small valid cluster every case below adds one mistake to.
BASE = """
[properties]
stonith-enabled = false

[nodes.node1]
[nodes.node2]

[resources.vip]
agent = "ocf:heartbeat:IPaddr2"
params = { ip = "10.0.0.10" }
ops = [{ name = "monitor", interval = "10s" }]

[resources.web]
agent = "systemd:httpd"

[resources.websvc]
group = ["vip", "web"]

[resources.db]
agent = "ocf:pacemaker:Stateful"

[resources.db-clone]
clone = "db"
promotable = true
"""


def problems_of(extra: str, base: str = BASE) -> list[Problem]:
    return validate(load_config(base + extra))


def test_the_base_cluster_is_clean() -> None:
    assert problems_of("") == []


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_shipped_examples_have_no_problems(path: Path) -> None:
    assert validate(load_config(path.read_text())) == []


def loc(cid: str, body: str) -> str:
    return f'\n[constraints.{cid}]\ntype = "location"\n{body}\n'


def col(cid: str, body: str) -> str:
    return f'\n[constraints.{cid}]\ntype = "colocation"\n{body}\n'


def order(cid: str, body: str) -> str:
    return f'\n[constraints.{cid}]\ntype = "order"\n{body}\n'


def rsc(rid: str, body: str) -> str:
    return f"\n[resources.{rid}]\n{body}\n"


ERRORS = [
    (
        "unknown-rsc-in-location",
        loc("l", 'resource = "wbe"\nnode = "node1"\nscore = 10'),
        "constraints.l.resource",
        'no resource, template or tag is named "wbe" (did you mean "web"?)',
    ),
    (
        "unknown-with",
        col("c", 'resource = "web"\nwith = "vipp"\nscore = "INFINITY"'),
        "constraints.c.with",
        'no resource, template or tag is named "vipp"',
    ),
    ("unknown-first", order("o", 'first = "dbb"\nthen = "web"'), "constraints.o.first", 'is named "dbb"'),
    (
        "unknown-in-set",
        col("c", 'score = 10\nsets = [{ resources = ["vip", "nope"] }]'),
        "constraints.c.sets[0].resources[1]",
        'is named "nope"',
    ),
    (
        "colocated-with-itself",
        col("c", 'resource = "web"\nwith = "web"\nscore = 10'),
        "constraints.c",
        'colocates "web" with itself',
    ),
    (
        "order-cycle",
        order("o1", 'first = "vip"\nthen = "db-clone"') + order("o2", 'first = "db-clone"\nthen = "vip"'),
        "constraints.o1",
        "mandatory orders form a cycle: start db-clone → start vip → start db-clone (o2, o1)",
    ),
    (
        "order-cycle-through-group",
        order("o", 'first = "web"\nthen = "vip"'),
        "constraints.o",
        "mandatory orders form a cycle: start vip → start web → start vip (group websvc, o)",
    ),
    (
        "order-after-itself",
        order("o", 'first = "web"\nthen = "web"'),
        "constraints.o",
        'orders "web" after itself',
    ),
    (
        "order-kind",
        order("o", 'first = "vip"\nthen = "db"\nkind = "Mandtory"'),
        "constraints.o.kind",
        '"Mandtory" is not a valid order kind (did you mean "Mandatory"?): use Mandatory',
    ),
    (
        "order-action",
        order("o", 'first = "vip"\nthen = "db"\nfirst-action = "begin"'),
        "constraints.o.first-action",
        '"begin" is not a valid action: use start, stop, promote or demote',
    ),
    ("order-half", order("o", 'first = "vip"'), "constraints.o", 'needs both first = "..." and then = "..."'),
    (
        "location-no-score",
        loc("l", 'resource = "web"\nnode = "node1"'),
        "constraints.l",
        'prefers node "node1" but has no score',
    ),
    (
        "location-no-node",
        loc("l", 'resource = "web"\nscore = 10'),
        "constraints.l",
        "says nothing about nodes",
    ),
    ("location-no-resource", loc("l", 'node = "node1"\nscore = 10'), "constraints.l", "names no resources"),
    (
        "location-bad-pattern",
        loc("l", 'resource-pattern = "web["\nnode = "node1"\nscore = 1'),
        "constraints.l.resource-pattern",
        "is not a regular expression",
    ),
    (
        "location-discovery",
        loc("l", 'resource = "web"\nnode = "node1"\nscore = 1\nresource-discovery = "sometimes"'),
        "constraints.l.resource-discovery",
        '"sometimes" is not a valid resource-discovery',
    ),
    (
        "bad-role",
        col("c", 'resource = "vip"\nwith = "db-clone"\nwith-role = "Primary"\nscore = 10'),
        "constraints.c.with-role",
        '"Primary" is not a valid role: use Stopped, Started, Unpromoted or Promoted',
    ),
    (
        "rule-operation",
        loc(
            "l",
            'resource = "web"\nrules = [{ score = 1, expressions = ['
            '{ attribute = "a", operation = "equals", value = "1" }] }]',
        ),
        "constraints.l.rules[0].expressions[0].operation",
        '"equals" is not a valid comparison',
    ),
    (
        "rule-missing-value",
        loc(
            "l",
            'resource = "web"\nrules = [{ score = 1, expressions = ['
            '{ attribute = "a", operation = "eq" }] }]',
        ),
        "constraints.l.rules[0].expressions[0]",
        '"eq" compares with a value: add value = "..."',
    ),
    (
        "rule-boolean",
        loc(
            "l",
            'resource = "web"\nrules = [{ score = 1, boolean-op = "xor", expressions = ['
            '{ attribute = "a", operation = "defined" }] }]',
        ),
        "constraints.l.rules[0].boolean-op",
        '"xor" is not a valid boolean-op',
    ),
    (
        "rule-bad-date",
        loc(
            "l",
            'resource = "web"\nrules = [{ score = 1, expressions = [{ date = "gt", start = "yesterday" }] }]',
        ),
        "constraints.l.rules[0].expressions[0].start",
        '"yesterday" is not a date and time',
    ),
    (
        "rule-gt-needs-start",
        loc(
            "l",
            'resource = "web"\nrules = [{ score = 1, expressions = [{ date = "gt", end = "2024-01-01" }] }]',
        ),
        "constraints.l.rules[0].expressions[0]",
        'date = "gt" needs start',
    ),
    (
        "ticket-loss-policy",
        '\n[constraints.t]\ntype = "ticket"\nticket = "T"\nresource = "web"\nloss-policy = "panic"\n',
        "constraints.t.loss-policy",
        '"panic" is not a valid loss-policy: use stop, demote, fence or freeze',
    ),
    (
        "unknown-class",
        rsc("x", 'agent = "ocff:heartbeat:Dummy"'),
        "resources.x.agent",
        '"ocff" is not an agent class (did you mean "ocf"?)',
    ),
    (
        "retired-class",
        rsc("x", 'agent = "nagios:check_http"'),
        "resources.x.agent",
        'the "nagios" class is deprecated in Pacemaker and hakeeper does not run it',
    ),
    (
        "ocf-without-provider",
        rsc("x", 'agent = "ocf:Dummy"'),
        "resources.x.agent",
        "ocf agents need a provider: write ocf:heartbeat:Dummy",
    ),
    (
        "no-agent",
        rsc("x", 'description = "nothing"'),
        "resources.x",
        'has no agent: add agent = "ocf:heartbeat:IPaddr2"',
    ),
    (
        "class-without-type",
        rsc("x", 'class = "ocf"\nprovider = "heartbeat"'),
        "resources.x.agent",
        "names the class ocf but no agent type",
    ),
    (
        "unknown-template",
        rsc("x", 'template = "tmpl"'),
        "resources.x.template",
        'no template is named "tmpl"',
    ),
    (
        "duplicate-recurring-op",
        rsc(
            "x",
            'agent = "ocf:heartbeat:Dummy"\nops = [{ name = "monitor", interval = "10s" }, '
            '{ name = "monitor", interval = "10s", role = "Promoted" }]',
        ),
        "resources.x.ops[1].interval",
        "ops[0] already runs monitor every 10s on 'x'; Pacemaker forbids",
    ),
    (
        "bad-op-name",
        rsc("x", 'agent = "ocf:heartbeat:Dummy"\nops = [{ name = "mon itor" }]'),
        "resources.x.ops[0].name",
        '"mon itor" is not an operation name',
    ),
    (
        "on-fail",
        rsc(
            "x",
            'agent = "ocf:heartbeat:Dummy"\n'
            'ops = [{ name = "monitor", interval = "5s", on-fail = "reboot" }]',
        ),
        "resources.x.ops[0].on-fail",
        '"reboot" is not a valid on-fail',
    ),
    (
        "op-role",
        rsc(
            "x",
            'agent = "ocf:heartbeat:Dummy"\nops = [{ name = "monitor", interval = "5s", role = "Leader" }]',
        ),
        "resources.x.ops[0].role",
        '"Leader" is not a valid role',
    ),
    (
        "recurring-start",
        rsc("x", 'agent = "ocf:heartbeat:Dummy"\nops = [{ name = "start", interval = "5s" }]'),
        "resources.x.ops[0].interval",
        "start cannot repeat, so Pacemaker ignores this operation; remove the interval",
    ),
    (
        "zero-timeout",
        rsc("x", 'agent = "ocf:heartbeat:Dummy"\nops = [{ name = "start", timeout = "0s" }]'),
        "resources.x.ops[0].timeout",
        "is 0: every operation needs time to run",
    ),
    (
        "target-role",
        rsc("x", 'agent = "ocf:heartbeat:Dummy"\nmeta = { target-role = "Running" }'),
        "resources.x.meta.target-role",
        '"Running" is not a valid target-role value',
    ),
    (
        "stickiness-not-score",
        '\n[rsc_defaults]\nresource-stickiness = "sticky"\n',
        "rsc_defaults.resource-stickiness",
        '"sticky" is not a score',
    ),
    (
        "failure-timeout",
        rsc("x", 'agent = "ocf:heartbeat:Dummy"\nmeta = { failure-timeout = "soon" }'),
        "resources.x.meta.failure-timeout",
        '"soon" is not a duration (use 10s, 1min or PT10S)',
    ),
    (
        "clone-max",
        '\n[resources.c]\nclone = "x"\nmeta = { clone-max = "two" }\n'
        + rsc("x", 'agent = "ocf:heartbeat:Dummy"'),
        "resources.c.meta.clone-max",
        '"two" is not a whole number',
    ),
    (
        "no-quorum-policy",
        "",
        "properties.no-quorum-policy",
        '"stopp" is not a valid no-quorum-policy value (did you mean "stop"?)',
    ),
    ("boolean-property", "", "properties.symmetric-cluster", '"maybe" is not true or false'),
    ("duration-property", "", "properties.cluster-recheck-interval", '"15 mins later" is not a duration'),
    (
        "placement-strategy",
        "",
        "properties.placement-strategy",
        '"fair" is not a valid placement-strategy value',
    ),
    (
        "fencing-unknown-device",
        '\n[fencing]\nlevels = [{ target = "node1", index = 1, devices = ["ipmi1"] }]\n',
        "fencing.levels[0].devices[0]",
        'no fencing device is named "ipmi1"',
    ),
    (
        "fencing-not-a-device",
        '\n[fencing]\nlevels = [{ target = "node1", index = 1, devices = ["web"] }]\n',
        "fencing.levels[0].devices[0]",
        '"web" is not a fencing device',
    ),
    (
        "fencing-index",
        '\n[resources.f]\nagent = "stonith:fence_dummy"\n[fencing]\n'
        'levels = [{ target = "node1", index = 12, devices = ["f"] }]\n',
        "fencing.levels[0].index",
        "is 12; fencing levels are numbered 1 to 9",
    ),
    (
        "tag-unknown",
        '\n[tags]\nfrontend = ["web", "proxy"]\n',
        "tags.frontend[1]",
        'no resource is named "proxy"',
    ),
    (
        "acl-unknown-role",
        '\n[acls.targets.alice]\nroles = ["admin"]\n',
        "acls.targets.alice.roles[0]",
        'no ACL role is named "admin"',
    ),
    (
        "acl-kind",
        '\n[acls.roles.r]\npermissions = [{ kind = "execute", xpath = "/cib" }]\n',
        "acls.roles.r.permissions[0].kind",
        '"execute" is not a valid permission',
    ),
    ("id-reused", '\n[tags]\nweb = ["vip"]\n', "tags.web", 'the id "web" is also used by resources.web'),
]
PROPERTY_VALUES = {
    "no-quorum-policy": "stopp",
    "boolean-property": "symmetric-cluster",
    "duration-property": "cluster-recheck-interval",
    "placement-strategy": "fair",
}
_PROPERTY_CASES = {
    "no-quorum-policy": ('no-quorum-policy = "stopp"'),
    "boolean-property": ('symmetric-cluster = "maybe"'),
    "duration-property": ('cluster-recheck-interval = "15 mins later"'),
    "placement-strategy": ('placement-strategy = "fair"'),
}


def _case_text(case_id: str, extra: str) -> tuple[str, str]:
    """(base, extra): property cases change the base's [properties] table instead of adding to it."""
    if case_id in _PROPERTY_CASES:
        return BASE.replace(
            "stonith-enabled = false", f"stonith-enabled = false\n{_PROPERTY_CASES[case_id]}"
        ), ""
    return BASE, extra


@pytest.mark.parametrize(("case_id", "extra", "path", "message"), ERRORS, ids=[c[0] for c in ERRORS])
def test_error_names_place_and_fix(case_id: str, extra: str, path: str, message: str) -> None:
    base, extra = _case_text(case_id, extra)
    found = [(p.path, p.message) for p in errors(problems_of(extra, base))]
    assert any(p == path and message in msg for p, msg in found), found


def test_there_are_many_error_cases() -> None:
    assert len(ERRORS) >= 40


WARNINGS = [
    (
        "unknown-node",
        loc("l", 'resource = "web"\nnode = "node3"\nscore = 10'),
        "constraints.l.node",
        '"node3" is not a configured node (did you mean "node',
    ),
    (
        "legacy-role",
        col("c", 'resource = "vip"\nwith = "db-clone"\nwith-role = "Master"\nscore = 10'),
        "constraints.c.with-role",
        'role "Master" is the deprecated name of "Promoted"',
    ),
    (
        "unknown-op",
        rsc("x", 'agent = "ocf:heartbeat:Dummy"\nops = [{ name = "moniter", interval = "5s" }]'),
        "resources.x.ops[0].name",
        '"moniter" is not a standard action (did you mean "monitor"?)',
    ),
    (
        "provider-for-systemd",
        rsc("x", 'class = "systemd"\nprovider = "heartbeat"\ntype = "httpd"'),
        "resources.x.agent",
        'only ocf agents have a provider; "heartbeat" is ignored for systemd',
    ),
    (
        "cloned-child",
        col("c", 'resource = "web"\nwith = "db"\nscore = 10'),
        "constraints.c.with",
        '"db" is inside the clone "db-clone", so the constraint applies to all of "db-clone"',
    ),
    ("empty-group", "\n[resources.g]\ngroup = []\n", "resources.g", "is a group without members"),
    (
        "float-priority",
        rsc("x", 'agent = "ocf:heartbeat:Dummy"\nmeta = { priority = "2.0" }'),
        "resources.x.meta.priority",
        '"2.0" is not a whole number; it is read as 2',
    ),
]


@pytest.mark.parametrize(
    ("extra", "path", "message"), [c[1:] for c in WARNINGS], ids=[c[0] for c in WARNINGS]
)
def test_warning_names_place_and_fix(extra: str, path: str, message: str) -> None:
    problems = problems_of(extra)
    assert not errors(problems), problems
    assert any(p.path == path and message in p.message for p in problems), problems


def test_unknown_cluster_option_is_a_warning_with_a_suggestion() -> None:
    problems = problems_of(
        "", BASE.replace("stonith-enabled = false", "stonith-enabled = false\nstonith-enable = true")
    )
    assert problems == [
        Problem(
            path="properties.stonith-enable",
            message='is not a cluster option hakeeper knows (did you mean "stonith-enabled"?); '
            "it has no effect",
            severity="warning",
        )
    ]


def test_fencing_enabled_without_a_device_is_warned_about() -> None:
    problems = problems_of("", BASE.replace("stonith-enabled = false", "stonith-enabled = true"))
    assert [p.path for p in problems] == ["properties.stonith-enabled"]
    assert "no resource will start" in problems[0].message


# --- what only a model built elsewhere (XML, CLI) can contain ------------------------------------------


NO_FENCING = [m.NvSet(id="cib-bootstrap-options", values={"stonith-enabled": "false"})]


def dummy(rid: str) -> m.Primitive:
    return m.Primitive(id=rid, klass="ocf", provider="heartbeat", type="Dummy")


def test_a_primitive_in_two_groups_is_reported() -> None:
    cfg = m.Configuration(
        resources=[m.Group(id="g1", children=[dummy("a")]), m.Group(id="g2", children=[dummy("a")])]
    )
    assert errors(validate(cfg)) == [
        Problem(
            path="resources.a",
            message="is part of both 'g1' and 'g2'; a resource can have only one parent "
            "(define a second resource with another id)",
        )
    ]


def test_negative_interval_and_out_of_range_score() -> None:
    prim = m.Primitive(
        id="a",
        klass="ocf",
        provider="heartbeat",
        type="Dummy",
        operations=[m.Operation(id="op", name="monitor", interval=-1000)],
    )
    cfg = m.Configuration(
        resources=[prim], constraints=[m.Location(id="l", rsc="a", node="n", score=2_000_000)]
    )
    found = {(p.path, p.message) for p in errors(validate(cfg))}
    assert ("resources.a.ops[0].interval", "is negative (-1000 ms); use 0 or more, such as 10s") in found
    assert (
        "constraints.l.score",
        "the score 2000000 is beyond ±INFINITY (1000000); write INFINITY or -INFINITY",
    ) in found


def test_duplicate_node_names() -> None:
    cfg = m.Configuration(nodes=[m.Node(id="1", uname="n1"), m.Node(id="2", uname="n1")])
    assert [(p.path, p.message) for p in validate(cfg)] == [
        ("nodes.n1", "is configured twice; each node name must appear once")
    ]


def test_a_cycle_is_reported_once_with_every_order_in_it() -> None:
    orders = [
        m.Order(id=f"o{i}", first=a, then=b, kind="Mandatory")
        for i, (a, b) in enumerate([("a", "b"), ("b", "c"), ("c", "a")])
    ]
    cfg = m.Configuration(resources=[dummy("a"), dummy("b"), dummy("c")], constraints=orders)
    cycles = [p for p in validate(cfg) if "cycle" in p.message]
    assert len(cycles) == 2  # the starts, and (orders are symmetrical) the stops
    assert cycles[0].message.startswith(
        "mandatory orders form a cycle: start a → start b → start c → start a"
    )


def test_optional_orders_do_not_form_cycles() -> None:
    orders = [
        m.Order(id="o1", first="a", then="b"),
        m.Order(id="o2", first="b", then="a", kind="Optional"),
        m.Order(id="o3", first="b", then="a", score=0),
    ]
    cfg = m.Configuration(properties=NO_FENCING, resources=[dummy("a"), dummy("b")], constraints=orders)
    assert validate(cfg) == []


def test_a_tag_in_an_order_expands_to_its_resources() -> None:
    cfg = m.Configuration(
        properties=NO_FENCING,
        resources=[dummy("a"), dummy("b")],
        tags=[m.Tag(id="both", refs=["a", "b"])],
        constraints=[m.Order(id="o1", first="a", then="both", symmetrical=False)],
    )
    assert [p.message.split(":")[0] for p in validate(cfg)] == ["mandatory orders form a cycle"]


def test_describe_puts_errors_first() -> None:
    problems = [Problem(path="a", message="w", severity="warning"), Problem(path="b", message="e")]
    assert describe(problems) == "b: e\nwarning: a: w"


@needs_corpus
def test_every_corpus_configuration_validates_without_crashing() -> None:
    wrong_kind: list[Problem] = []
    for path in CASES:
        problems = validate(corpus_configuration(path))
        assert all(isinstance(p, Problem) and p.path and p.message for p in problems)
        if path.stem == "order-wrong-kind":
            wrong_kind = problems
    assert (
        "constraints.order1.kind",
        '"foo" is not a valid order kind: use Mandatory, Optional or Serialize',
    ) in [(p.path, p.message) for p in wrong_kind]
