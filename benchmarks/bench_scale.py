"""Benchmark one campaign at scale (issue 10, item 6): many senders, a million prospects.

    .venv/bin/python benchmarks/bench_scale.py [--quick] [--repeat 1] [--senders 10,100,1000]
                                               [--rows N] [--invitations K] [--rate R]
                                               [--concurrency C] [--idle-seconds S]
                                               [--part all|send|idle] [--dir DIR]

Input: ``--rows`` (1,000,000) valid prospects, the same CSV as ``bench_run.py``'s (cached in
``benchmarks/_data/``), for every configuration. For each number of senders N, alternating,
``--repeat`` times, each against a fresh stand-in (``campaign-runner sandbox`` on 127.0.0.1,
in its own process, so that its CPU is not the client's) that knows the N senders, each
with capacity K/N for its day:

* the baseline: ``bench_run.py``'s bare aiohttp loop, POSTing the first K rows with the
  same concurrency, the N senders taking turns, with no pacing, journal or ledger; its CPU
  per invitation is its own process's CPU from its first request to its last answer, / K;
* ``campaign-runner run FILE --results RES --yes --no-progress --config CFG``, the config
  naming the N senders with ``daily_limit: K/N`` and pacing compressed to
  ``window_seconds: K/R``, so every configuration sends the same K (``--invitations``,
  20,000) invitations at the same total pace R (``--rate``, 400 a second), each sender one
  every N/R seconds (pacing's other settings are the project's defaults). All the rows are
  read, validated and planned; K are sent, and the run stops with the rest still to send.
  A rehearsal, with a workspace ledger of its own (a fresh ``XDG_DATA_HOME``).

The run is watched while it works: its results file is read as it grows, and its CPU
(user + system, ``/proc/PID/stat``) sampled every 10 ms. The first invitation is the
results file's first ``sent`` line: time to it is that line's timestamp minus the moment
the process was started, CPU to it the process's CPU when the line was seen. CPU per
invitation is the CPU from the first ``sent`` line to the K-th, / (K - 1): start-up (reading,
validating, planning 1M rows) and shutdown are reported apart. Peak memory is the
process's ``ru_maxrss``; wall time is the whole process's. After every run the stand-in's
count is checked: K invitations, no recipient twice, no sender past its capacity.

Goals: CPU per invitation at the most senders within 1.2x of that at the fewest; peak RSS
under 1 GiB. Last, when ``campaign-runner run --help`` lists ``--wait``: a ``--wait`` run of
the same input and the most senders whose working hours are closed (they open in six hours;
the window is the default day, as a real campaign's), so that it has nothing to do; once
its start-up CPU has settled, its CPU seconds over ``--idle-seconds`` (60) should be close
to zero (no polling), and its context switches show how often it woke. Otherwise that part
prints "skipped: no --wait".

``--quick``: 100,000 rows, 2,000 invitations, 10 s idle (well under a minute). Journals go
to a temporary directory under ``--dir``. Loopback only. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from _common import StandIn, stand_in  # siblings: benchmarks/ is on sys.path
from bench_run import (
    DATA_DIR,
    GIB,
    STAMP_FORMAT,
    bare_command,
    build_input,
    cached,
    cli_command,
    engine_fingerprint,
    fresh_data_home,
    load,
    measure,
    run_env,
)

SCALE_GOAL = 1.2  # CPU per invitation, most senders vs fewest
POLL_SECONDS = 0.01
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
MIB = 2**20


@dataclass(frozen=True)
class Setup:
    data: Path
    rows: int
    invitations: int  # K, the same for every number of senders
    rate: float  # invitations a second, all senders together
    concurrency: int
    work: Path

    @property
    def window(self) -> float:
        return self.invitations / self.rate


def sender_ids(count: int) -> list[str]:
    return [f"scale_s{i:04d}" for i in range(count)]


def write_config(
    path: Path, base_url: str, senders: Sequence[str], setup: Setup, *, paced: bool, hours: str = ""
) -> Path:
    """A config naming ``senders``, sharing the setup's invitations per window evenly; the
    window is the setup's compressed one when ``paced``, else the default day."""
    limit = setup.invitations // len(senders)
    lines = ["api:", f"  base_url: {base_url}", "senders:"]
    for sender in senders:
        lines += [f"  - id: {sender}", f"    daily_limit: {limit}", "    premium: true"]
    lines += ["pacing:", f"  concurrency: {setup.concurrency}"]
    if paced:
        lines.append(f"  window_seconds: {setup.window:g}")
    if hours:
        lines.append(f'  hours: "{hours}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def head_rows(source: Path, target: Path, rows: int) -> Path:
    """The header and first ``rows`` rows of ``source`` (a note may hold a line break)."""
    with (
        source.open(encoding="utf-8", newline="") as fh,
        target.open("w", encoding="utf-8", newline="") as out,
    ):
        reader, writer = csv.reader(fh), csv.writer(out, lineterminator="\n")
        for i, row in enumerate(reader):
            if i > rows:
                break
            writer.writerow(row)
    return target


# --------------------------------------------------------------------------- watching a run


def process_cpu(pid: int) -> float | None:
    """User + system seconds of ``pid`` and its threads so far; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: count fields after its end.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def context_switches(pid: int) -> int:
    """Voluntary and involuntary context switches of all of ``pid``'s threads: wake-ups."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue  # a thread that ended meanwhile
        total += sum(int(n) for n in re.findall(r"ctxt_switches:\s+(\d+)", text))
    return total


def _exited(pid: int) -> bool:
    """Whether ``pid`` has ended, leaving it to be reaped (its /proc entry stays)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


class SentLines:
    """Reads a results file as it grows: how many ``sent`` lines, the first and last stamp."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fh: TextIO | None = None
        self._rest = ""
        self._columns: dict[str, int] = {}
        self.sent = 0
        self.first = ""
        self.last = ""

    def read(self) -> None:
        if self._fh is None:
            if not self._path.exists():
                return
            self._fh = self._path.open(encoding="utf-8", newline="")
        chunk = self._fh.read()
        if not chunk:
            return
        *lines, self._rest = (self._rest + chunk).split("\n")
        for line in lines:
            if not self._columns:
                self._columns = {name: i for i, name in enumerate(line.split(","))}
            elif ",sent," in line:
                cells = next(csv.reader([line]))
                if cells[self._columns["status"]] == "sent":
                    stamp = cells[self._columns["timestamp"]]
                    self.sent += 1
                    self.first = min(self.first or stamp, stamp)
                    self.last = max(self.last, stamp)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Watched:
    """One ``run``, as watched: times from the process's start, CPU in seconds."""

    code: int
    stdout: str
    stderr: str
    wall: float
    cpu: float  # the whole process, user + system
    peak_rss: int  # bytes
    sent: int  # sent lines in the results file
    first_at: float  # seconds from the start to the first sent line's timestamp
    last_at: float
    cpu_first: float  # the process's CPU when the first sent line was seen
    cpu_last: float  # ... and the K-th; the total if the process ended first
    tail_included: bool  # whether cpu_last had to be the total

    @property
    def cpu_per_invitation(self) -> float:
        return (self.cpu_last - self.cpu_first) / max(1, self.sent - 1)


def watch(cmd: Sequence[str], env: dict[str, str], results: Path, expect: int) -> Watched:
    """Run ``cmd``, reading ``results`` and sampling its CPU until it ends."""
    lines = SentLines(results)
    cpu_first = cpu_last = None
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began, start = time.time(), time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env)
        while True:
            ended = _exited(proc.pid)
            lines.read()
            cpu = process_cpu(proc.pid)
            if cpu_first is None and lines.sent >= 1:
                cpu_first = cpu
            if cpu_last is None and lines.sent >= expect:
                cpu_last = cpu
            if ended:
                break
            time.sleep(POLL_SECONDS)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        lines.close()
        out.seek(0)
        err.seek(0)
        total = usage.ru_utime + usage.ru_stime
        return Watched(
            code=os.waitstatus_to_exitcode(status),
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            wall=wall,
            cpu=total,
            peak_rss=usage.ru_maxrss * 1024,
            sent=lines.sent,
            first_at=_epoch(lines.first) - began if lines.first else float("nan"),
            last_at=_epoch(lines.last) - began if lines.last else float("nan"),
            cpu_first=total if cpu_first is None else cpu_first,
            cpu_last=total if cpu_last is None else cpu_last,
            tail_included=cpu_last is None,
        )


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class Bare:
    cpu_per_invitation: float
    seconds: float


def _check_stand_in(name: str, stand: StandIn, expect: int) -> None:
    over = stand.counters.get("connect daily_limit", 0)
    if stand.invitations != expect or stand.repeats or over:
        raise SystemExit(
            f"{name}: the stand-in created {stand.invitations} invitations (expected "
            f"{expect}), {stand.repeats} to a recipient already invited, and refused "
            f"{over} for a spent capacity"
        )


def bench_bare(setup: Setup, senders: list[str], rows: Path) -> Bare:
    k = setup.invitations
    with stand_in(dict.fromkeys(senders, k // len(senders))) as stand:
        outcome = measure(bare_command(stand.url, rows, setup.concurrency, senders))
    if outcome.code != 0:
        raise SystemExit(f"the bare aiohttp loop failed ({outcome.code}):\n{outcome.stderr}")
    child = json.loads(outcome.stdout)
    if child["statuses"] != {"sent": k}:
        raise SystemExit(f"the bare aiohttp loop got {child['statuses']}, not {k} sent")
    _check_stand_in("bare aiohttp", stand, k)
    return Bare(child["cpu"] / k, child["seconds"])


def bench_run(setup: Setup, senders: list[str]) -> Watched:
    k, n = setup.invitations, len(senders)
    results = setup.work / f"scale_{n}.results.csv"
    results.unlink(missing_ok=True)
    with stand_in(dict.fromkeys(senders, k // n)) as stand:
        config = write_config(setup.work / f"scale_{n}.yaml", stand.url, senders, setup, paced=True)
        args = ["run", str(setup.data), "--results", str(results), "--yes", "--no-progress"]
        env = run_env(fresh_data_home(setup.work))
        run = watch([*cli_command(), *args, "--config", str(config)], env, results, k)
    # Exit 3: stopped with rows still to send (capacity spent), when there are more rows.
    expected_code = 3 if setup.rows > k else 0
    if run.code != expected_code or run.sent != k:
        raise SystemExit(
            f"run with {n} senders: exit {run.code} (expected {expected_code}), {run.sent} "
            f"sent (expected {k}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        )
    _check_stand_in(f"run with {n} senders", stand, k)
    return run


def bench_sending(setup: Setup, levels: list[int], repeat: int) -> None:
    k = setup.invitations
    print(
        f"sending: {setup.rows:,} rows, {k:,} invitations per run at {setup.rate:g} a second "
        f"(pacing.window_seconds {setup.window:g}), concurrency {setup.concurrency}; a fresh "
        f"stand-in for each run\n"
        f"   run: {' '.join(cli_command())} run FILE --results RES --yes --no-progress "
        f"--config CFG",
        flush=True,
    )
    rows = head_rows(setup.data, setup.work / f"bare_{k}.csv", k)
    bare: dict[int, list[Bare]] = {n: [] for n in levels}
    ours: dict[int, list[Watched]] = {n: [] for n in levels}
    for i in range(repeat):
        for n in levels:
            senders = sender_ids(n)
            b = bench_bare(setup, senders, rows)
            bare[n].append(b)
            print(
                f"   run {i + 1} N={n:<5} bare aiohttp     {b.cpu_per_invitation * 1000:6.3f} ms "
                f"CPU/inv (sending {b.seconds:5.2f} s)",
                flush=True,
            )
            r = bench_run(setup, senders)
            ours[n].append(r)
            tail = " (shutdown included: the K-th line was not seen)" if r.tail_included else ""
            print(
                f"   run {i + 1} N={n:<5} campaign-runner  {r.cpu_per_invitation * 1000:6.3f} ms "
                f"CPU/inv{tail}; first invitation at {r.first_at:5.2f} s (CPU {r.cpu_first:5.2f} "
                f"s), last at {r.last_at:6.2f} s; after it CPU {r.cpu - r.cpu_last:5.2f} s; "
                f"total CPU {r.cpu:6.2f} s, wall {r.wall:6.2f} s, {r.peak_rss / MIB:5.0f} MiB peak",
                flush=True,
            )
    summarise(k, levels, bare, ours)


def summarise(
    k: int, levels: list[int], bare: dict[int, list[Bare]], ours: dict[int, list[Watched]]
) -> None:
    """The table (medians; the largest peak) and the goals."""
    base = levels[0]

    def cpu(n: int) -> float:
        return statistics.median(r.cpu_per_invitation for r in ours[n]) * 1000

    def startup(n: int) -> float:
        return statistics.median(r.cpu_first for r in ours[n])

    header = (
        f"| senders | invitations | CPU/inv ours (ms) | CPU/inv bare (ms) | ours/bare | "
        f"vs {base} senders | peak MiB | first invitation (s) | CPU to first (s) | sending (s) | "
        f"wall (s) |"
    )
    print(header)
    print("|" + "|".join(" --- " for _ in range(header.count("|") - 1)) + "|")
    for n in levels:
        b = statistics.median(x.cpu_per_invitation for x in bare[n]) * 1000
        peak = max(r.peak_rss for r in ours[n]) / MIB
        first = statistics.median(r.first_at for r in ours[n])
        sending = statistics.median(r.last_at - r.first_at for r in ours[n])
        wall = statistics.median(r.wall for r in ours[n])
        print(
            f"| {n:,} | {k:,} | {cpu(n):.3f} | {b:.3f} | {cpu(n) / b:.2f}x | "
            f"{cpu(n) / cpu(base):.2f}x | {peak:,.0f} | {first:.1f} | {startup(n):.1f} | "
            f"{sending:.1f} | {wall:.1f} |"
        )
    most = levels[-1]
    ratio = cpu(most) / cpu(base)
    print(
        f"goal: CPU per invitation at {most:,} senders within {SCALE_GOAL}x of that at {base}: "
        f"{ratio:.2f}x, {'met' if ratio <= SCALE_GOAL else 'not met'}"
    )
    # Not a goal of the issue, but what the per-invitation figure leaves out.
    print(
        f"start-up (CPU to the first invitation) at {most:,} senders: {startup(most):.1f} s, "
        f"{startup(most) / startup(base):.2f}x that at {base} ({startup(base):.1f} s)"
    )
    peaks = {n: max(r.peak_rss for r in ours[n]) for n in levels}
    over = [f"{n:,} senders {p / MIB:,.0f} MiB" for n, p in peaks.items() if p >= GIB]
    verdict = "met" if not over else f"not met ({', '.join(over)})"
    print(f"goal: peak RSS under 1 GiB: {verdict}")
    runs = len(ours[base])
    print(f"(median of {runs} run(s) each; peak: the largest; {load()})", flush=True)


# --------------------------------------------------------------------------- idle


def has_wait() -> bool:
    """Whether this ``campaign-runner run`` has ``--wait``."""
    shown = subprocess.run([*cli_command(), "run", "--help"], capture_output=True, text=True)
    return re.search(r"^\s+--wait\b", shown.stdout, re.MULTILINE) is not None


def closed_hours(now: datetime) -> str:
    """A minute of working hours six hours from ``now`` (local time): closed until then."""
    opens = now + timedelta(hours=6)
    closes = opens + timedelta(minutes=1)
    return f"{opens:%H:%M}-{closes:%H:%M}"


def _settle(pid: int, limit: float = 600.0) -> float | None:
    """Wait until ``pid`` has used under two clock ticks of CPU in two seconds; the seconds
    that took, or None when it ended first."""
    began = time.perf_counter()
    samples: list[float] = []
    while time.perf_counter() - began < limit:
        cpu = process_cpu(pid)
        if cpu is None or _exited(pid):
            return None
        samples.append(cpu)
        if len(samples) > 4 and samples[-1] - samples[-5] < 2 / CLOCK_TICK:
            return time.perf_counter() - began
        time.sleep(0.5)
    raise SystemExit(f"the --wait run was still busy after {limit:g} s")


def bench_idle(setup: Setup, n: int, seconds: float) -> None:
    print(f"idle under --wait: {n:,} senders, working hours closed", flush=True)
    if not has_wait():
        print("   skipped: no --wait", flush=True)
        return
    senders = sender_ids(n)
    k = setup.invitations
    results = setup.work / f"idle_{n}.results.csv"
    hours = closed_hours(datetime.now().astimezone())
    with stand_in(dict.fromkeys(senders, k // n)) as stand:
        config = write_config(
            setup.work / f"idle_{n}.yaml", stand.url, senders, setup, paced=False, hours=hours
        )
        args = ["run", str(setup.data), "--results", str(results), "--yes", "--no-progress"]
        cmd = [*cli_command(), *args, "--wait", "--config", str(config)]
        print(f"   run: {' '.join(cmd)} (pacing.hours {hours!r})", flush=True)
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=run_env(fresh_data_home(setup.work))
            )
            cpu0 = cpu1 = None
            alive = False
            try:
                settled = _settle(proc.pid)
                if settled is not None:
                    cpu0, switches0 = process_cpu(proc.pid), context_switches(proc.pid)
                    time.sleep(seconds)
                    cpu1, switches1 = process_cpu(proc.pid), context_switches(proc.pid)
                    alive = not _exited(proc.pid)
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    code = proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    code = proc.wait()
            out.seek(0)
            said = out.read().decode(errors="replace")
    if settled is None or not alive or cpu0 is None or cpu1 is None:
        print(f"   the --wait run ended before idling (exit {code}):\n{said[-2000:]}")
        return
    if stand.invitations != 0:
        raise SystemExit(f"the idle run sent {stand.invitations} invitations")
    print(
        f"   settled {settled:.1f} s after start (CPU {cpu0:.2f} s); then over {seconds:g} s idle: "
        f"CPU {cpu1 - cpu0:.2f} s, {switches1 - switches0:,} context switches (all threads); "
        f"stopped with Ctrl-C: exit {code}; the stand-in received no invitation",
        flush=True,
    )


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, 2,000 invitations")
    parser.add_argument("--rows", type=int, help="rows of the input (default 1,000,000)")
    parser.add_argument("--invitations", type=int, help="sent per run (default 20,000)")
    parser.add_argument("--senders", default="10,100,1000", help="numbers of senders")
    parser.add_argument("--rate", type=float, default=400.0, help="invitations a second")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--idle-seconds", type=float, help="idle CPU sampled (default 60)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (median)")
    parser.add_argument("--part", choices=("all", "send", "idle"), default="all")
    parser.add_argument("--dir", type=Path, default=DATA_DIR, help="where journals go")
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    k = args.invitations or (2_000 if args.quick else 20_000)
    idle = args.idle_seconds or (10.0 if args.quick else 60.0)
    levels = sorted(int(n) for n in args.senders.split(",") if n.strip())
    if any(k % n for n in levels) or k > rows:
        parser.error(f"--invitations {k} must divide among {levels} senders and fit {rows} rows")
    print(f"engine: {engine_fingerprint()}; {os.cpu_count()} CPUs, {load()}", flush=True)
    data = cached("bench_run_input", build_input, rows)
    args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench_scale_") as tmp:
        setup = Setup(data, rows, k, args.rate, args.concurrency, Path(tmp))
        if args.part in ("all", "send"):
            bench_sending(setup, levels, args.repeat)
        if args.part in ("all", "idle"):
            bench_idle(setup, levels[-1], idle)


if __name__ == "__main__":
    main()
