"""The daemon's policy-engine worker process dies with the daemon, even when the daemon is SIGKILLed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from hakeeper.cli.localcluster import wait_until

DAEMON_LIKE = textwrap.dedent(
    """
    import concurrent.futures, multiprocessing, os, sys, time
    from hakeeper.daemon.shutdown import setup_worker

    if __name__ == "__main__":
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=setup_worker,
            initargs=(os.getpid(),),
        )
        print(pool.submit(os.getpid).result(), flush=True)
        time.sleep(600)
    """
)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_worker_dies_with_a_killed_daemon() -> None:
    daemon = subprocess.Popen([sys.executable, "-c", DAEMON_LIKE], stdout=subprocess.PIPE, text=True)
    try:
        assert daemon.stdout is not None
        worker = int(daemon.stdout.readline())
        assert alive(worker)
        daemon.kill()
        daemon.wait()
        assert wait_until(lambda: not alive(worker), 30), f"worker {worker} outlived the daemon"
    finally:
        daemon.kill()
        daemon.wait()
