"""``python -m hakeeper.sim --seeds 2000 [--start N] [--jobs J]`` runs a Raft seed sweep and prints a summary;
``--replay SEED`` reruns one seed and prints its per-event trace.

``python -m hakeeper.sim crm --seeds 2000 [--start N] [--cold] [--daemon-restarts]`` does the same for the
whole-CRM simulation (DC, members, LRMs and fencing under faults); ``crm --replay SEED`` (with the same flags)
prints that seed's trace."""

from __future__ import annotations

import argparse
import sys

from hakeeper.sim.runner import replay, sweep


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["crm"]:
        return crm_main(args_in[1:])
    parser = argparse.ArgumentParser(prog="python -m hakeeper.sim", description=__doc__)
    parser.add_argument("--seeds", type=int, default=2000, help="how many seeds to run (default 2000)")
    parser.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--replay", type=int, metavar="SEED", help="rerun one seed and print its trace")
    args = parser.parse_args(args_in)
    if args.seeds < 0 or args.start < 0 or args.jobs < 1:
        parser.error("--seeds and --start must not be negative, and --jobs must be at least 1")
    if args.replay is not None:
        lines = replay(args.replay)
        print("\n".join(lines))
        return 1 if "FAILED" in lines[-1] else 0
    summary = sweep(range(args.start, args.start + args.seeds), jobs=args.jobs, progress=_progress)
    print("\n".join(summary.lines()))
    return 1 if summary.failures else 0


def crm_main(argv: list[str]) -> int:
    """``python -m hakeeper.sim crm ...``: the whole-CRM simulation."""
    from hakeeper.sim.crm import WarmStarts, replay_crm
    from hakeeper.sim.crm_runner import sweep_crm

    parser = argparse.ArgumentParser(
        prog="python -m hakeeper.sim crm",
        description="Simulate the whole CRM (DC, members, LRMs, fencing) under faults, one seed at a time.",
    )
    parser.add_argument("--seeds", type=int, default=2000, help="how many seeds to run (default 2000)")
    parser.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--replay", type=int, metavar="SEED", help="rerun one seed and print its trace")
    parser.add_argument(
        "--daemon-restarts",
        action="store_true",
        help="every unfenced lost node comes back with a restarted daemon (default: a third of the seeds)",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="start every seed from an empty cluster (default: most start from a settled one, faster)",
    )
    args = parser.parse_args(argv)
    if args.seeds < 0 or args.start < 0:
        parser.error("--seeds and --start must not be negative")
    if args.replay is not None:
        warm = None if args.cold else WarmStarts()
        lines = replay_crm(args.replay, warm=warm, daemon_restarts=args.daemon_restarts)
        print("\n".join(lines))
        return 1 if "FAILED" in lines[-1] else 0
    seeds = range(args.start, args.start + args.seeds)
    summary = sweep_crm(seeds, daemon_restarts=args.daemon_restarts, cold=args.cold, progress=_progress)
    print("\n".join(summary.lines()))
    return 1 if summary.failures else 0


def _progress(done: int, failed: int) -> None:
    print(f"... {done} seeds, {failed} failed", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
