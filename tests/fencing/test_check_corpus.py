"""``fence check`` on a sample of Pacemaker's scheduler corpus: real CIBs never crash it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hakeeper.cib.xml_io import parse_cib_xml
from hakeeper.fencing.check import check_fencing, format_report
from tests.conftest import scheduler_corpus

CORPUS = scheduler_corpus() / "dev" / "xml"
SAMPLE = sorted(CORPUS.glob("*.xml"))[::12] if CORPUS.is_dir() else []


@pytest.mark.skipif(not SAMPLE, reason="the Pacemaker scheduler corpus is not available")
@pytest.mark.parametrize("path", SAMPLE, ids=[p.stem for p in SAMPLE])
def test_check_reports_without_crashing(path: Path) -> None:
    cib = parse_cib_xml(path.read_bytes()).cib
    report = check_fencing(cib.configuration)
    lines = format_report(report)
    assert lines[-1].startswith("fencing check")
    for verdict in report.nodes:
        assert verdict.proven or verdict.problems  # an unproven node always says why
