#!/usr/bin/env python3
"""Score ``hakeeper simulate`` against Pacemaker's scheduler regression corpus (the development set).

The corpus lives next to the project: ``../shared/pacemaker-scheduler`` relative to the project root, or
wherever ``HAKEEPER_SCHEDULER_CORPUS`` points. Prints the scorer's totals, the non-trivial passes (cases
whose expected transition summary is not empty) and pass counts per feature from ``features.tsv``.
Extra arguments are passed to the scorer (for example ``-k REGEX`` or ``-v``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def corpus_dir() -> Path:
    override = os.environ.get("HAKEEPER_SCHEDULER_CORPUS")
    return Path(override) if override else (ROOT.parent / "shared" / "pacemaker-scheduler")


def features(corpus: Path) -> dict[str, list[str]]:
    """Feature name -> cases having it, from dev/features.tsv."""
    path = corpus / "dev" / "features.tsv"
    if not path.is_file():
        return {}
    rows = path.read_text(encoding="utf-8").splitlines()
    header = rows[0].split("\t")[1:]
    out: dict[str, list[str]] = {name: [] for name in header}
    for row in rows[1:]:
        cells = row.split("\t")
        for name, cell in zip(header, cells[1:], strict=False):
            if cell.strip() == "1":
                out[name].append(cells[0])
    return out


def main(argv: list[str]) -> int:
    corpus = corpus_dir()
    scorer = corpus / "score.py"
    if not scorer.is_file():
        print(f"The scheduler corpus was not found at {corpus}; set HAKEEPER_SCHEDULER_CORPUS to its folder.",
              file=sys.stderr)
        return 2
    hakeeper = Path(sys.executable).parent / "hakeeper"
    command = f"{hakeeper} simulate {{xml}}"
    with tempfile.TemporaryDirectory() as tmp:
        result_path = Path(tmp) / "results.json"
        proc = subprocess.run(
            [sys.executable, str(scorer), str(corpus / "dev"), command, "-j", "2", "-q", "--json",
             str(result_path), *argv],
            check=False,
        )
        if not result_path.is_file():
            return proc.returncode or 1
        results = json.loads(result_path.read_text(encoding="utf-8"))
    passed = {r["name"] for r in results if r["status"] == "PASS"}
    nontrivial = [r for r in results if not r["empty_expected"]]
    nt_pass = sum(1 for r in nontrivial if r["status"] == "PASS")
    share = 100.0 * nt_pass / len(nontrivial) if nontrivial else 0.0
    print(f"non-trivial: {nt_pass} of {len(nontrivial)} passed ({share:.1f}%)")
    names = {r["name"] for r in results}
    print("per feature (passed/cases):")
    for feature, cases in features(corpus).items():
        mine = [c for c in cases if c in names]
        if mine:
            good = sum(1 for c in mine if c in passed)
            print(f"  {feature:<55} {good:>4}/{len(mine):<4}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
