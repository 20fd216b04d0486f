"""The synthetic CIB generator: deterministic, valid, and realistic enough that both schedulers agree."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hakeeper.cib import model as m
from hakeeper.cib.validate import errors, validate
from hakeeper.cib.xml_io import cib_to_xml, parse_cib_xml
from hakeeper.policy.schedule import schedule
from hakeeper.sim.synthetic import SCENARIOS, Scenario, synthetic_cib


def primitives(cib: m.Cib) -> list[m.Primitive]:
    out: list[m.Primitive] = []
    for rsc in cib.configuration.resources:
        if isinstance(rsc, m.Primitive):
            out.append(rsc)
        elif isinstance(rsc, m.Group):
            out.extend(rsc.children)
        elif isinstance(rsc, m.Clone) and isinstance(rsc.child, m.Primitive):
            out.append(rsc.child)
    return out


def lost_node(cib: m.Cib) -> str:
    lost = [s.uname for s in cib.status.nodes if s.in_ccm == "false"]
    assert len(lost) == 1
    assert lost[0] is not None
    return lost[0]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_same_seed_same_cib_other_seed_other_cib(scenario: Scenario) -> None:
    assert synthetic_cib(4, 60, scenario, 7) == synthetic_cib(4, 60, scenario, 7)
    assert synthetic_cib(4, 60, scenario, 7) != synthetic_cib(4, 60, scenario, 8)


@pytest.mark.parametrize(("nodes", "resources"), [(2, 1), (3, 100), (5, 37)])
def test_configuration_is_valid_and_has_the_requested_size(nodes: int, resources: int) -> None:
    cib = synthetic_cib(nodes, resources, "steady", 1)
    assert errors(validate(cib.configuration)) == []
    ordinary = [p for p in primitives(cib) if p.klass != "stonith"]
    assert len(ordinary) == resources
    assert len(cib.configuration.nodes) == nodes
    assert cib.execution_date is not None


def test_has_the_features_of_a_real_cluster() -> None:
    cfg = synthetic_cib(4, 100, "initial", 1).configuration
    kinds = {type(r) for r in cfg.resources}
    assert {m.Primitive, m.Group, m.Clone} <= kinds
    assert any(isinstance(r, m.Primitive) and r.klass == "stonith" for r in cfg.resources)
    assert cfg.properties[0].values["stonith-enabled"] == "true"
    assert any(isinstance(c, m.Colocation) for c in cfg.constraints)
    assert any(isinstance(c, m.Order) for c in cfg.constraints)
    assert any(isinstance(c, m.Location) and c.rules for c in cfg.constraints)
    assert cfg.rsc_defaults[0].values["resource-stickiness"] == "100"


def test_steady_history_is_written_as_pacemaker_writes_it() -> None:
    cib = synthetic_cib(3, 20, "steady", 1)
    ops = [op for state in cib.status.nodes for rsc in state.resources for op in rsc.ops]
    last = [op for op in ops if op.id.endswith("_last_0")]
    recurring = [op for op in ops if op.interval > 0]
    assert last and recurring
    for op in ops:
        assert op.transition_key is not None and op.transition_magic is not None
        assert op.transition_magic.endswith(op.transition_key)
        assert op.op_digest is not None


def test_initial_starts_every_resource() -> None:
    cib = synthetic_cib(3, 30, "initial", 1)
    assert cib.execution_date is not None
    summary = schedule(cib, cib.execution_date).summary
    starts = [line for line in summary if line.startswith("* Start")]
    assert len(starts) == len(primitives(cib)) + 2  # a clone primitive starts once per node: 3 lines, not 1


def test_steady_gives_our_engine_nothing_to_do() -> None:
    cib = synthetic_cib(4, 120, "steady", 3)
    assert cib.execution_date is not None
    transition = schedule(cib, cib.execution_date)
    assert transition.actions == []
    assert transition.summary == []


def test_node_failed_fences_the_node_and_moves_its_resources() -> None:
    cib = synthetic_cib(4, 120, "node-failed", 3)
    assert cib.execution_date is not None
    lost = lost_node(cib)
    summary = schedule(cib, cib.execution_date).summary
    assert any(line.startswith("* Fence") and lost in line for line in summary)
    moves = [line for line in summary if line.startswith("* Move")]
    assert moves and all(f"{lost} ->" in line for line in moves)


def test_exported_xml_imports_back_unchanged() -> None:
    cib = synthetic_cib(3, 20, "node-failed", 1)
    assert parse_cib_xml(cib_to_xml(cib)).cib == cib


def test_bad_sizes_and_scenarios_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 nodes"):
        synthetic_cib(1, 10, "steady", 1)
    with pytest.raises(ValueError, match="at least 1 resource"):
        synthetic_cib(3, 0, "steady", 1)
    with pytest.raises(ValueError, match="unknown scenario"):
        synthetic_cib(3, 10, "broken", 1)  # type: ignore[arg-type]


def crm_summary(tmp_path: Path, cib: m.Cib) -> list[str]:
    binary = shutil.which("crm_simulate")
    if binary is None:
        pytest.skip("crm_simulate (pacemaker-cli-utils) is not installed")
    xml = tmp_path / "cib.xml"
    xml.write_text(cib_to_xml(cib), encoding="utf-8")
    env = dict(os.environ, CIB_shadow_dir=str(tmp_path), LC_ALL="C")
    done = subprocess.run(
        [binary, "-S", "-x", str(xml)], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    lines = done.stdout.splitlines()
    start = lines.index("Transition Summary:") + 1
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    return [line.strip() for line in lines[start:end]]


def test_pacemaker_accepts_steady_and_has_nothing_to_do(tmp_path: Path) -> None:
    assert crm_summary(tmp_path, synthetic_cib(4, 60, "steady", 2)) == []


def test_pacemaker_fences_the_lost_node_and_moves_its_resources(tmp_path: Path) -> None:
    cib = synthetic_cib(4, 60, "node-failed", 2)
    lost = lost_node(cib)
    summary = crm_summary(tmp_path, cib)
    assert any(line.startswith("* Fence") and lost in line for line in summary)
    moves = [line for line in summary if line.startswith("* Move")]
    assert moves and all(f"{lost} ->" in line for line in moves)


def normalised(line: str) -> str:
    return " ".join(line.replace("( ", "(").replace(" )", ")").split())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_our_engine_and_pacemaker_plan_the_same_transition(tmp_path: Path, scenario: Scenario) -> None:
    cib = synthetic_cib(4, 60, scenario, 1)
    assert cib.execution_date is not None
    theirs = sorted(normalised(line) for line in crm_summary(tmp_path, cib))
    ours = sorted(normalised(line) for line in schedule(cib, cib.execution_date).summary)
    assert ours == theirs
