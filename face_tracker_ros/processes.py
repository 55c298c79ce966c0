"""Stopping child processes that run nodes (benchmarks and tests start node processes).

A node process shuts down cleanly on SIGINT/SIGTERM (:mod:`face_tracker_ros.spin`); one that does
not within the timeout is killed, so a caller never hangs on a stuck child.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Iterable


def stop_processes(procs: Iterable[subprocess.Popen], sig: int = signal.SIGINT, timeout: float = 20.0,
                   kill_group: bool = False) -> None:
    """Send ``sig`` to every running process of ``procs`` at once, then wait for each (``timeout``
    seconds each); kill one still running (with ``kill_group``, its whole process group: it must
    have been started with ``start_new_session=True``) and reap it.
    """
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(sig)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            if kill_group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait()
