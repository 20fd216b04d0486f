"""Pacemaker CIB XML import/export: every corpus input imports, and export->import gives an equal model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hakeeper.cib import model as m
from hakeeper.cib.xml_io import CibXmlError, cib_to_xml, parse_cib_xml
from tests.conftest import scheduler_corpus

CORPUS = scheduler_corpus() / "dev" / "xml"
CASES = sorted(CORPUS.glob("*.xml")) if CORPUS.is_dir() else []
needs_corpus = pytest.mark.skipif(not CASES, reason="Pacemaker scheduler corpus not present")


def _without_lines(warnings: list[str]) -> list[str]:
    return [re.sub(r" \(line \d+\)", "", w) for w in warnings]


@needs_corpus
def test_the_whole_dev_corpus_is_present() -> None:
    assert len(CASES) == 559


@needs_corpus
@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_corpus_input_imports_and_round_trips(path: Path) -> None:
    first = parse_cib_xml(path.read_bytes())
    assert first.cib.configuration.nodes or first.cib.status.nodes or not first.cib.configuration.resources
    second = parse_cib_xml(cib_to_xml(first.cib))
    assert second.cib == first.cib
    # export must not invent problems: whatever warns the second time warned the first time
    assert set(_without_lines(second.warnings)) <= set(_without_lines(first.warnings))


SMALL = """<cib admin_epoch="1" epoch="12" num_updates="3" have-quorum="1" execution-date="1700000000">
  <configuration>
    <crm_config><cluster_property_set id="opts">
      <nvpair id="o1" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
    <nodes><node id="1" uname="node1"/><node id="2" uname="node2"/></nodes>
    <resources>
      <master id="ms">
        <meta_attributes id="ms-meta"><nvpair id="ms-m1" name="promoted-max" value="1"/></meta_attributes>
        <primitive id="db" class="ocf" provider="pacemaker" type="Stateful">
          <operations>
            <op id="db-mon" name="monitor" interval="10s" timeout="20" role="Promoted"/>
            <op id="db-mon2" name="monitor" interval="PT11S"/>
          </operations>
        </primitive>
      </master>
      <group id="g">
        <primitive id="vip" class="ocf" provider="heartbeat" type="IPaddr2">
          <instance_attributes id="vip-ia">
            <nvpair id="vip-ip" name="ip" value="10.0.0.10"/>
          </instance_attributes>
        </primitive>
      </group>
    </resources>
    <constraints>
      <rsc_location id="loc" rsc="g">
        <rule id="loc-r" score="-INFINITY" boolean-op="or">
          <expression id="e1" attribute="#uname" operation="eq" value="node2"/>
          <date_expression id="d1" operation="date_spec"><date_spec id="ds" hours="9-16"/></date_expression>
        </rule>
      </rsc_location>
      <rsc_colocation id="col" rsc="g" with-rsc="ms" with-rsc-role="Promoted" score="INFINITY"/>
      <rsc_order id="ord" first="ms" first-action="promote" then="g" then-action="start"/>
    </constraints>
  </configuration>
  <status>
    <node_state id="1" uname="node1" in_ccm="true" crmd="online" join="member" expected="member">
      <transient_attributes id="1"><instance_attributes id="st-1">
        <nvpair id="st-1-f" name="fail-count-vip#monitor_10000" value="2"/>
      </instance_attributes></transient_attributes>
      <lrm id="1"><lrm_resources>
        <lrm_resource id="vip" class="ocf" provider="heartbeat" type="IPaddr2">
          <lrm_rsc_op id="vip_last_0" operation="start" call-id="4" rc-code="0" op-status="0" interval="0"
                      last-rc-change="1699999000" exec-time="20" queue-time="0" crm-debug-origin="x"/>
        </lrm_resource>
      </lrm_resources></lrm>
    </node_state>
  </status>
</cib>"""


def test_small_cib_maps_every_concept() -> None:
    result = parse_cib_xml(SMALL)
    assert result.warnings == []
    cib = result.cib
    assert cib.version == (1, 12, 3)
    assert cib.execution_date == 1700000000
    ms = cib.configuration.resources[0]
    assert isinstance(ms, m.Clone) and ms.legacy_master
    assert any(s.values.get("promotable") == "true" for s in ms.meta_attributes)
    assert isinstance(ms.child, m.Primitive)
    assert [(o.interval, o.timeout, o.role) for o in ms.child.operations] == [
        (10_000, 20_000, "Promoted"),
        (11_000, None, None),
    ]
    loc = cib.configuration.constraints[0]
    assert isinstance(loc, m.Location)
    assert loc.rules[0].score == -1_000_000 and loc.rules[0].boolean_op == "or"
    date = loc.rules[0].expressions[1]
    assert isinstance(date, m.DateExpression) and date.spec == m.DateSpec(id="ds", fields={"hours": "9-16"})
    col = cib.configuration.constraints[1]
    assert isinstance(col, m.Colocation) and (col.with_rsc, col.with_rsc_role, col.score) == (
        "ms",
        "Promoted",
        1_000_000,
    )
    op = cib.status.nodes[0].resources[0].ops[0]
    assert (op.call_id, op.rc, op.interval, op.last_rc_change) == (4, 0, 0, 1699999000)
    assert cib.status.nodes[0].transient_attributes[0].values == {"fail-count-vip#monitor_10000": "2"}
    assert parse_cib_xml(cib_to_xml(cib)).cib == cib


def test_unknown_elements_and_attributes_are_warnings_not_losses() -> None:
    text = SMALL.replace('<rsc_order id="ord"', '<rsc_order frobnicate="yes" id="ord"').replace(
        "<constraints>", "<constraints><rsc_mystery id='q'/>"
    )
    warnings = parse_cib_xml(text).warnings
    assert any("<rsc_order id='ord'>" in w and "frobnicate='yes' is not supported" in w for w in warnings)
    assert any("<rsc_mystery id='q'>" in w and "is not a constraint" in w for w in warnings)


def test_a_bad_duration_is_reported_with_its_place() -> None:
    text = SMALL.replace('interval="PT11S"', 'interval="11x"')
    warnings = parse_cib_xml(text).warnings
    assert any(w.startswith("<op id='db-mon2'>") and '"11x" is not a duration' in w for w in warnings)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<cib><configuration>", "not well-formed XML"),
        ("<config/>", "root element is <config>"),
        ("", "not well-formed XML"),
    ],
)
def test_not_a_cib(text: str, message: str) -> None:
    with pytest.raises(CibXmlError, match=message):
        parse_cib_xml(text)


def test_external_entities_are_refused() -> None:
    evil = '<?xml version="1.0"?><!DOCTYPE cib [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + SMALL.replace(
        'value="10.0.0.10"', 'value="&x;"'
    )
    with pytest.raises(CibXmlError, match="external entity"):
        parse_cib_xml(evil)
