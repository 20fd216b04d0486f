"""A handful of Pacemaker scheduler regression cases through ``schedule`` (skipped without the corpus)."""

from __future__ import annotations

import re

import pytest

from hakeeper.cib.xml_io import parse_cib_xml
from hakeeper.policy.schedule import schedule
from tests.conftest import scheduler_corpus

CASES = [
    "simple3",
    "standby",
    "rsc_dep1",
    "order1",
    "group10",
    "interleave-restart",
    "promoted-0",
    "rec-node-4",
    "migrate-1",
    "quorum-4",
    "4-am-then-bm-b-not-migratable",
    "ticket-primitive-1",
]


def _expected(text: str) -> list[str]:
    out: list[str] = []
    inside = False
    for raw in text.splitlines():
        if raw.startswith("Transition Summary:"):
            inside = True
            continue
        if inside and raw and not raw[0].isspace():
            break
        if inside and raw.strip():
            out.append(_normal(raw))
    return sorted(out)


def _normal(line: str) -> str:
    line = " ".join(line.split())
    line = re.sub(r"\bMaster\b", "Promoted", re.sub(r"\bSlave\b", "Unpromoted", line))
    return re.sub(r"\s*\)", ")", re.sub(r"\(\s*", "(", line))


@pytest.mark.parametrize("name", CASES)
def test_corpus_case(name: str) -> None:
    base = scheduler_corpus() / "dev"
    xml, summary = base / "xml" / f"{name}.xml", base / "summary" / f"{name}.summary"
    if not xml.is_file() or not summary.is_file():
        pytest.skip("the Pacemaker scheduler corpus is not available")
    cib = parse_cib_xml(xml.read_bytes()).cib
    transition = schedule(cib, cib.execution_date or 0)
    assert sorted(_normal(line) for line in transition.summary) == _expected(summary.read_text())
