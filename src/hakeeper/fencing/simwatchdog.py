"""A simulated hardware watchdog, as its own process: ``python -m hakeeper.fencing.simwatchdog``.

Tests and labs cannot use ``/dev/watchdog`` (it would reset the machine running them), and a watchdog living
inside the daemon's own event loop would die with a hung daemon instead of catching it. This process plays
the hardware: the daemon pets it by rewriting a *pet file* (:class:`PetFile`, the counterpart of
:class:`~hakeeper.fencing.watchdog.DeviceWatchdog`), and when the file has not changed for ``--timeout``
seconds it "resets the node": it SIGKILLs every process of the node's network namespace
(``--kill-namespace``) or the daemon's process group (``--kill-pgid``), then exits.

Like the kernel's watchdog it is armed by the first pet and disarmed by the magic close (the file holding
just ``V``); a later pet arms it again. :class:`SimWatchdogCore` is the decision, with time passed in.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

MAGIC_CLOSE = "V"


class SimWatchdogCore:
    """Armed by a pet, disarmed by the magic close; expires ``timeout_s`` after the last pet while armed."""

    def __init__(self, timeout_s: float) -> None:
        if timeout_s <= 0:
            raise ValueError("the watchdog timeout must be positive")
        self.timeout_s = timeout_s
        self.armed = False
        self.fired = False
        self._last_content: str | None = None
        self._last_pet = 0.0

    def observe(self, content: str | None, now: float) -> bool:
        """The pet file now holds ``content`` (None: absent). Returns True when the watchdog fires now."""
        if self.fired:
            return False
        if content is not None and content != self._last_content:
            self._last_content = content
            if content.strip() == MAGIC_CLOSE:
                self.armed = False
            else:
                self.armed = True
                self._last_pet = now
        if self.armed and now - self._last_pet >= self.timeout_s:
            self.fired = True
        return self.fired


class PetFile:
    """The daemon's end of a simulated watchdog: each pet rewrites ``path`` atomically with a new count."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._count = 0
        self._open = False

    def open(self, timeout_s: int) -> None:
        """Arm it (the first pet); ``timeout_s`` belongs to the watchdog process, not to this end."""
        self._open = True
        self.pet()

    def pet(self) -> None:
        if self._open:
            self._count += 1
            self._write(f"pet {self._count}\n")

    def disarm(self) -> None:
        """A clean stop: the magic close."""
        if self._open:
            self._write(MAGIC_CLOSE)
            self._open = False

    def abandon(self) -> None:
        """Stop petting without the magic close: the watchdog fires at its timeout."""
        self._open = False

    def _write(self, text: str) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.path)


# --- the process ------------------------------------------------------------------------------------


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def namespace_pids(namespace: str) -> list[int]:
    """Every process in network namespace ``namespace`` (``ip netns pids``)."""
    proc = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, timeout=10, check=False
    )
    return [int(word) for word in proc.stdout.split() if word.isdigit()]


def kill_namespace(namespace: str) -> int:
    """SIGKILL every process of ``namespace`` but this one, until none is left; returns how many died."""
    killed: set[int] = set()
    for _ in range(10):  # processes may fork while we kill: go round until the namespace is empty
        pids = [p for p in namespace_pids(namespace) if p != os.getpid()]
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        time.sleep(0.05)
    return len(killed)


def kill_pgid(pgid: int) -> int:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
        return 1
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hakeeper.fencing.simwatchdog",
        description="A simulated watchdog: kills a lab node's processes when its pet file stops changing.",
    )
    parser.add_argument("--timeout", type=float, required=True, help="seconds without a pet before the reset")
    parser.add_argument("--pet-file", type=Path, required=True, help="the file the daemon rewrites to pet")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--kill-namespace", metavar="NS", help="kill every process of this network namespace")
    target.add_argument("--kill-pgid", metavar="PGID", type=int, help="kill this process group")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be more than 0 seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    core = SimWatchdogCore(args.timeout)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    interval = min(0.05, args.timeout / 20)
    print(f"simwatchdog: watching {args.pet_file} (timeout {args.timeout:g}s)", flush=True)
    while not core.observe(_read(args.pet_file), time.monotonic()):
        time.sleep(interval)
    if args.kill_namespace:
        killed = kill_namespace(args.kill_namespace)
        what = f"{killed} process(es) of namespace {args.kill_namespace}"
    else:
        killed = kill_pgid(args.kill_pgid)
        what = f"process group {args.kill_pgid}" if killed else f"nothing (group {args.kill_pgid} is gone)"
    print(f"simwatchdog: not petted for {args.timeout:g}s: reset the node (killed {what})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
