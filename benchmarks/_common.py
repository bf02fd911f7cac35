"""What the benchmarks share: the stand-in server, started in a process of its own.

A separate process, so that the server's CPU is not counted as the client's, and so that
a client measured with ``os.wait4`` is the only thing in its process. A sibling module of
the scripts (they put ``benchmarks/`` on ``sys.path``), not a package.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field


@dataclass
class StandIn:
    """A running stand-in's base URL; once it has stopped, what it counted."""

    url: str = ""
    invitations: int = -1  # created, as the stand-in counted them (-1: it did not say)
    counters: dict[str, int] = field(default_factory=dict)  # "connect sent": 10, ...
    cpu: float = 0.0  # the server process's user + system seconds

    @property
    def repeats(self) -> int:
        """Invitations to a recipient already invited."""
        return self.counters.get("connect repeat", 0)


@contextlib.contextmanager
def stand_in(
    capacities: Mapping[str, int], window_seconds: float | None = None
) -> Iterator[StandIn]:
    """``campaign-runner sandbox`` on 127.0.0.1 with these senders and their invitations
    per window (the command's default window, a day, when ``window_seconds`` is None).

    Yields its base URL at once, and fills in its counts when the block ends.
    """
    spec = ",".join(f"{sender}:{capacity}" for sender, capacity in capacities.items())
    cmd = [sys.executable, "-u", "-m", "campaign_runner", "sandbox", "--host", "127.0.0.1"]
    cmd += ["--port", "0", "--senders", spec]
    if window_seconds is not None:
        cmd += ["--window-seconds", f"{window_seconds:g}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    stand = StandIn()
    try:
        banner = proc.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\S+)", banner)
        if match is None:
            raise SystemExit(f"the sandbox did not start on loopback: {banner}")
        stand.url = match.group(1)
        yield stand
    finally:
        proc.send_signal(signal.SIGINT)
        # Its stdout ends when it exits; one that ignores SIGINT is killed.
        timer = threading.Timer(30, proc.kill)
        timer.start()
        rest = proc.stdout.read()
        timer.cancel()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        stand.cpu = usage.ru_utime + usage.ru_stime
        stopped = re.search(r"sandbox stopped: (\d+) invitations? created(?: \((.*)\))?", rest)
        if stopped:
            stand.invitations = int(stopped.group(1))
            for name, count in re.findall(r"([\w ]+?): (\d+)", stopped.group(2) or ""):
                stand.counters[name.strip()] = int(count)
