"""Benchmark ``campaign-runner run``: sending throughput, and resuming a finished campaign.

    .venv/bin/python benchmarks/bench_run.py [--quick] [--repeat 1] [--concurrency 4,16]
                                             [--part all|a|b] [--dir DIR] [--profile]

A. Throughput. ``--rows`` (10,000) valid prospects are sent to the stand-in server, which
   this script starts in a separate process (``python -m campaign_runner sandbox --port 0``,
   10 senders x 100,000 invitations per 1 s window, so capacity never binds). For each
   concurrency C, alternating, and each against a fresh sandbox:

   * the baseline: a bare aiohttp loop in a fresh process, C workers sharing one
     ``TCPConnector(limit=C)``, POSTing the same JSON bodies with the same headers and
     timeouts as ``client.py``, and reading and parsing every answer;
   * ``campaign-runner run FILE --results RES --yes --no-progress --config CFG``, with
     durability on (every journal write is fdatasync'ed) and ``pacing.window_seconds: 1``,
     so each sender's pacing interval is about 10 microseconds. Against the stand-in a run
     is a rehearsal, and claims every invitation in the rehearsals' workspace ledger
     (SQLite, ``synchronous=FULL``) before it leaves: each run gets a fresh
     ``XDG_DATA_HOME``, so that its ledger, like its sandbox, has never seen anybody.

   Throughput is measured over the sending phase: for the run, from the first ``pending``
   line to the last outcome line of its results journal (imports, validation and the
   senders/quotas calls excluded); for the baseline, from its first request to its last
   answer. End-to-end rates, CPU seconds of client and server, and client CPU per request
   (start-up, measured separately, subtracted; from 5,000 rows) are printed too: CPU is
   the number that noise on a shared machine disturbs least. Goal: run >= 0.7x the
   baseline. The sandbox's count of invitations (and of repeated recipients) is checked
   after every run.

B. Resume. ``--resume-rows`` (1,000,000) valid rows with normalised URLs, and a results
   file with a ``sent`` line for every one. Each in a fresh process, in this order, every
   repeat with a fresh ledger: ``pandas.read_csv(FILE, dtype=str, keep_default_na=False)``;
   ``campaign-runner run FILE --results RES --yes --no-progress --config CFG`` against a
   sandbox, twice: the first run meets a results file its ledger has never seen and
   imports its outcomes (a one-time cost), the second is the steady state; a ``--dry-run
   --sandbox`` that reads that ledger; and a ``--dry-run`` with no API key (offline,
   senders from the config, no ledger). The runs against the stand-in resume a file
   marked ``api=sandbox`` (a rehearsal accepts no other), the offline one an unmarked
   copy. Every run must plan 0 to send, exit 0 and leave its results file as it was.
   Goals: wall time <= 3x the baseline's, peak RSS <= 1 GiB.

``--quick`` shrinks the sizes (1,000 and 50,000 rows) for a smoke test (about 25 s).
``--profile`` also runs each kind of ``run`` once under cProfile and prints its top
functions. Inputs are cached in ``benchmarks/_data/`` (gitignored); journals go to a
temporary directory under ``--dir`` (fsync cost depends on its file system). Loopback only.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import importlib.util
import json
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from _common import StandIn, stand_in  # a sibling module: benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "benchmarks" / "_data"
GIB = 1024**3
API_KEY = "sandbox-key"
SENDERS = tuple(f"bench_s{i:02d}" for i in range(10))
SANDBOX_CAPACITY = 100_000  # per sender and window: far above what one run sends
SANDBOX_WINDOW = 1.0
THROUGHPUT_GOAL = 0.7
RESUME_GOAL = 3.0
MIN_ROWS_FOR_CPU = 5_000
STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

FIRST = ["Jane", "John", "Maria", "Ahmed", "Wei", "Olga", "Liam", "Sofia", "Noah", "Aisha"]
LAST = ["Doe", "Roe", "Example", "Sample", "Placeholder", "Testington", "Mustermann", "Rossi"]
COMPANIES = ["Acme Widgets Ltd", "Globex Example Corp", "Vandelay Imports, LLC", "Hooli Inc"]
NOTES = [
    "Hi {first}, I came across your work at {company} and was impressed by how your team "
    "approaches growth. I'd love to connect and swap notes on what is working this quarter.",
    'Hello {first} - fellow "sales person" here. We help teams like {company} cut manual '
    "prospecting by half. Either way, happy to connect!",
    "{first}, congratulations on the recent news at {company}!\nBest regards.",
]

# The baseline: the POSTs SendPilotClient.connect makes, and nothing else.
BARE_LOOP = """
import asyncio, csv, json, sys, time
import aiohttp

base, key, path = sys.argv[1:4]
concurrency, senders = int(sys.argv[4]), sys.argv[5].split(",")

def bodies():
    with open(path, encoding="utf-8", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            body = {"senderId": senders[i % len(senders)],
                    "recipientLinkedinUrl": row["linkedin_url"]}
            if row["note"]:
                body["message"] = row["note"]
            yield body

async def main():
    todo = iter(list(bodies()))
    headers = {"X-API-Key": key, "Accept": "application/json"}
    timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_read=30)
    statuses = {}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker():
            for body in todo:
                async with session.post(f"{base}/inbox/connect", json=body,
                                        headers=headers, timeout=timeout) as response:
                    raw = await response.read()
                    word = json.loads(raw).get("status", str(response.status))
                    statuses[word] = statuses.get(word, 0) + 1
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu, "statuses": statuses}))

asyncio.run(main())
"""


# --------------------------------------------------------------------------- data


def _person(rng: random.Random, i: int) -> tuple[str, str, str, str, str]:
    first, last, company = rng.choice(FIRST), rng.choice(LAST), rng.choice(COMPANIES)
    url = f"https://www.linkedin.com/in/{first}-{last}-example-{i:x}".lower()
    note = rng.choice(NOTES).format(first=first, company=company)
    return first, last, company, url, note


def build_input(path: Path, rows: int, seed: int = 4) -> None:
    """``rows`` valid prospects with unique, already normalised profile URLs and notes."""
    rng = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["first_name", "last_name", "company", "linkedin_url", "note"])
        out.writerows(_person(rng, i) for i in range(rows))
    tmp.replace(path)


def build_results(path: Path, rows: int, seed: int = 4, api: str = "") -> None:
    """A results journal saying that every row of :func:`build_input` (same seed) was sent.

    Timestamps start on 2024-01-01, one second apart, so that no capacity window counts them.
    ``api``, when given, fills an ``api`` column: ``sandbox`` marks a rehearsal's file, the
    only kind a run against the stand-in accepts; without it the file is a real campaign's
    from before that column existed.
    """
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    header = "row,linkedin_url,sender_id,status,request_id,error,attempts,timestamp"
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow([*header.split(","), "note_delivered", *(["api"] if api else [])])
        marks = [api] if api else []
        for i in range(rows):
            url = _person(rng, i)[3]
            stamp = datetime.fromtimestamp(start + i, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            sender = SENDERS[i % len(SENDERS)]
            line = [i + 2, url, sender, "sent", f"conn_{i:012x}", "", 1, stamp, "yes"]
            out.writerow([*line, *marks])
    tmp.replace(path)


def cached(name: str, build: Callable[[Path, int], None], rows: int) -> Path:
    path = DATA_DIR / f"{name}_{rows}.csv"
    if not path.exists():
        print(f"building {path} ...", flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        build(path, rows)
    return path


def write_config(path: Path, base_url: str | None, concurrency: int) -> Path:
    """A config naming the sandbox's senders with a limit that never binds."""
    lines = ["api:", f"  base_url: {base_url}"] if base_url else []
    lines.append("senders:")
    for sender in SENDERS:
        lines += [f"  - id: {sender}", "    daily_limit: 1000000", "    premium: true"]
    lines += ["pacing:", f"  window_seconds: {SANDBOX_WINDOW:g}", "  jitter: 0"]
    lines.append(f"  concurrency: {concurrency}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def engine_fingerprint() -> str:
    """Which engine was measured: git HEAD plus a hash of the (possibly edited) sources.

    Of the ``campaign_runner`` that the commands measured import (``PYTHONPATH`` may name
    another checkout than this one), found without importing it.
    """
    spec = importlib.util.find_spec("campaign_runner")
    package = (
        Path(spec.submodule_search_locations[0])
        if spec and spec.submodule_search_locations
        else ROOT / "campaign_runner"
    )
    digest = hashlib.sha1()
    for source in sorted(package.rglob("*.py")):
        digest.update(source.read_bytes())
    head = subprocess.run(
        ["git", "-C", str(package), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    where = "" if package == ROOT / "campaign_runner" else f" in {package.parent}"
    return f"git {head or '?'}{where}, campaign_runner sources sha1 {digest.hexdigest()[:12]}"


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


# --------------------------------------------------------------------------- processes


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("campaign-runner")
    if script.exists():
        return [str(script)]
    found = shutil.which("campaign-runner")
    return [found] if found else [sys.executable, "-m", "campaign_runner"]


def profiled(args: list[str], profile: Path | None) -> list[str]:
    """The ``campaign-runner`` command line for ``args``, under cProfile if asked."""
    if profile is None:
        return [*cli_command(), *args]
    return [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "campaign_runner", *args]


@dataclass(frozen=True)
class Outcome:
    wall: float
    cpu: float  # user + system seconds
    peak_rss: int  # bytes
    code: int
    stdout: str
    stderr: str


def measure(cmd: Sequence[str], env: dict[str, str] | None = None) -> Outcome:
    """Run ``cmd`` in a fresh process: its wall time, CPU time, peak RSS and output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Outcome(
            wall,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss * 1024,
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def run_env(data_home: Path, with_key: bool = True) -> dict[str, str]:
    """The environment of a ``run``: its workspace ledger under ``data_home``.

    Against the stand-in a run is a rehearsal, whose ledger is always
    ``$XDG_DATA_HOME/campaign-runner/sandbox.sqlite3`` (``CAMPAIGN_RUNNER_DATABASE`` does not
    apply to it), so a fresh ``data_home`` is what gives a run a ledger of its own: one that
    an earlier run left would hold every person, and the run would send nothing.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SENDPILOT_API_KEY", "CAMPAIGN_RUNNER_CONFIG", "CAMPAIGN_RUNNER_DATABASE")
    }
    env["XDG_DATA_HOME"] = str(data_home)
    if with_key:
        env["SENDPILOT_API_KEY"] = API_KEY
    return env


def fresh_data_home(work: Path) -> Path:
    """An empty data directory: a workspace ledger that no earlier run has written."""
    return Path(tempfile.mkdtemp(dir=work, prefix="data_home_"))


def sandbox() -> contextlib.AbstractContextManager[StandIn]:
    """The stand-in, in its own process, with this benchmark's senders and window."""
    return stand_in(dict.fromkeys(SENDERS, SANDBOX_CAPACITY), SANDBOX_WINDOW)


# --------------------------------------------------------------------------- A: throughput


@dataclass(frozen=True)
class Throughput:
    seconds: float  # the sending phase
    wall: float  # the whole client process
    cpu: float  # the client process, start-up included
    server_cpu: float
    peak_rss: int
    sent: int  # as the client saw it
    invitations: int  # as the sandbox counted them
    repeats: int  # invitations to a recipient already invited

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else float("nan")


def journal_phase(path: Path) -> tuple[float, Counter[str]]:
    """Seconds from the first to the last line of a results journal; final statuses."""
    stamps: list[str] = []
    latest: dict[str, str] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for line in csv.DictReader(fh):
            stamps.append(line["timestamp"])
            latest[line["linkedin_url"]] = line["status"]
    first = datetime.strptime(min(stamps), STAMP_FORMAT)
    last = datetime.strptime(max(stamps), STAMP_FORMAT)
    return (last - first).total_seconds(), Counter(latest.values())


def bare_command(
    url: str, data: Path, concurrency: int, senders: Sequence[str] = SENDERS
) -> list[str]:
    """The bare loop, sending every row of ``data``, the senders taking turns.

    It prints JSON: ``seconds`` and ``cpu`` (its process's) from its first request to its
    last answer, and the count of each answer's ``status``.
    """
    cmd = [sys.executable, "-c", BARE_LOOP, url, API_KEY, str(data), str(concurrency)]
    return [*cmd, ",".join(senders)]


def bench_bare(data: Path, concurrency: int) -> Throughput:
    with sandbox() as stand:
        outcome = measure(bare_command(stand.url, data, concurrency))
    if outcome.code != 0:
        raise SystemExit(f"the bare aiohttp loop failed ({outcome.code}):\n{outcome.stderr}")
    child = json.loads(outcome.stdout)
    sent = int(child["statuses"].get("sent", 0))
    return Throughput(
        child["seconds"],
        outcome.wall,
        outcome.cpu,
        stand.cpu,
        outcome.peak_rss,
        sent,
        stand.invitations,
        stand.repeats,
    )


def bench_campaign(
    data: Path, work: Path, concurrency: int, profile: Path | None = None
) -> Throughput:
    results = work / f"throughput_c{concurrency}.results.csv"
    results.unlink(missing_ok=True)
    with sandbox() as stand:
        config = write_config(work / f"throughput_c{concurrency}.yaml", stand.url, concurrency)
        args = ["run", str(data), "--results", str(results), "--yes", "--no-progress"]
        env = run_env(fresh_data_home(work))
        outcome = measure(profiled([*args, "--config", str(config)], profile), env)
    if outcome.code != 0:
        raise SystemExit(f"run failed ({outcome.code}):\n{outcome.stdout}\n{outcome.stderr}")
    seconds, statuses = journal_phase(results)
    return Throughput(
        seconds,
        outcome.wall,
        outcome.cpu,
        stand.cpu,
        outcome.peak_rss,
        statuses["sent"],
        stand.invitations,
        stand.repeats,
    )


def startup_cpu(data: Path, work: Path) -> dict[str, float]:
    """CPU seconds each client spends before its first request, to subtract per request.

    The run's: a ``--dry-run`` of the same input (imports, validation, journal, plan). The
    bare loop's: the same script over a header-only input (imports, session, no request).
    """
    offline = write_config(work / "startup.yaml", None, 4)
    results = work / "startup.results.csv"
    args = ["run", str(data), "--results", str(results), "--dry-run", "--yes", "--no-progress"]
    env = run_env(fresh_data_home(work), with_key=False)
    run = measure([*cli_command(), *args, "--config", str(offline)], env)
    empty = work / "empty.csv"
    empty.write_text(data.open(encoding="utf-8").readline(), encoding="utf-8")
    bare = measure(bare_command("http://127.0.0.1:9/v1", empty, 4))
    return {"bare aiohttp": bare.cpu, "campaign-runner": run.cpu}


def bench_throughput(data: Path, rows: int, work: Path, levels: list[int], repeat: int) -> None:
    print(f"A. throughput: {rows:,} rows; sandbox in its own process, a fresh one for each run")
    print(
        f"   run: {' '.join(cli_command())} run FILE --results RES --yes --no-progress --config CFG"
    )
    startup = startup_cpu(data, work)
    for c in levels:
        runs: dict[str, list[Throughput]] = {"bare aiohttp": [], "campaign-runner": []}
        for i in range(repeat):
            for name in runs:
                t = bench_bare(data, c) if name == "bare aiohttp" else bench_campaign(data, work, c)
                runs[name].append(t)
                ok = t.sent == rows and t.invitations == rows and t.repeats == 0
                check = "ok" if ok else f"CHECK: sandbox {t.invitations}, repeats {t.repeats}"
                print(
                    f"   C={c:<3} run {i + 1} {name:15} {t.rate:6,.0f} req/s (sending "
                    f"{t.seconds:5.2f} s, process {t.wall:5.2f} s, CPU {t.cpu:5.2f} s, "
                    f"server CPU {t.server_cpu:5.2f} s, {t.peak_rss / 2**20:4.0f} MiB) "
                    f"sent {t.sent:,} [{check}]",
                    flush=True,
                )
                if not ok:
                    raise SystemExit("a run that did not send every row measures nothing")
        _summarise(c, rows, runs, startup)


def _summarise(
    c: int, rows: int, runs: dict[str, list[Throughput]], startup: dict[str, float]
) -> None:
    bare, ours = "bare aiohttp", "campaign-runner"

    def median(value: Callable[[str, Throughput], float]) -> dict[str, float]:
        return {n: statistics.median(value(n, t) for t in runs[n]) for n in runs}

    rate = median(lambda n, t: t.rate)
    e2e = median(lambda n, t: rows / t.wall)
    cpu = median(lambda n, t: (t.cpu - startup[n]) / rows * 1000)
    server = median(lambda n, t: t.server_cpu / rows * 1000)
    ratio = rate[ours] / rate[bare]
    verdict = "met" if ratio >= THROUGHPUT_GOAL else "MISSED"
    print(
        f"   C={c}: campaign-runner {rate[ours]:,.0f} req/s vs bare aiohttp {rate[bare]:,.0f} "
        f"req/s: {ratio:.2f}x (goal >= {THROUGHPUT_GOAL}x: {verdict})\n"
        f"         end to end, start-up included: {e2e[ours]:,.0f} vs {e2e[bare]:,.0f} rows/s "
        f"({e2e[ours] / e2e[bare]:.2f}x)",
        flush=True,
    )
    if rows < MIN_ROWS_FOR_CPU:
        return  # start-up CPU varies by more than the requests cost
    print(
        f"         client CPU per request, start-up excluded: {cpu[ours]:.2f} ms vs "
        f"{cpu[bare]:.2f} ms ({cpu[ours] / cpu[bare]:.2f}x); server CPU per request "
        f"{server[ours]:.2f} ms vs {server[bare]:.2f} ms",
        flush=True,
    )


# --------------------------------------------------------------------------- B: resume


FIRST_RESUME = "run, 1st (import)"
RESUME = "run, 2nd"


def build_rehearsal_results(path: Path, rows: int) -> None:
    build_results(path, rows, api="sandbox")


def bench_resume(rows: int, work: Path, repeat: int, profile: Path | None = None) -> None:
    data = cached("bench_run_input", build_input, rows)
    # The runs against the stand-in are rehearsals: they accept only a rehearsal's results
    # file. The offline dry run is not one, and refuses such a file: it gets a real one.
    pristine = {
        "rehearsal": cached("bench_run_results_sandbox", build_rehearsal_results, rows),
        "real": cached("bench_run_results", build_results, rows),
    }
    # The run locks the results file and could append to it: give it a copy.
    results = {kind: work / f"resume_{rows}.{kind}.results.csv" for kind in pristine}
    for kind, path in pristine.items():
        shutil.copyfile(path, results[kind])
    size = {kind: path.stat().st_size for kind, path in results.items()}
    print(
        f"B. resume: {rows:,} rows ({data.stat().st_size / 2**20:.0f} MiB input, "
        f"{size['rehearsal'] / 2**20:.0f} MiB results, every row sent)\n"
        f"   {FIRST_RESUME!r}: against the stand-in, with a fresh workspace ledger that has\n"
        f"     never seen the results file: the run imports its {rows:,} outcomes (once);\n"
        f"   {RESUME!r}: the same again, the ledger now holding the campaign (steady state);\n"
        f"   'dry-run --sandbox': a dry run reading that ledger (the stand-in embedded);\n"
        f"   'dry-run': offline, no API key and so no ledger (a real campaign's results)"
    )
    read_csv = f"import pandas; pandas.read_csv({str(data)!r}, dtype=str, keep_default_na=False)"

    def common(kind: str) -> list[str]:
        return ["run", str(data), "--results", str(results[kind]), "--yes", "--no-progress"]

    times: dict[str, list[float]] = {}
    peaks: dict[str, list[int]] = {}
    with sandbox() as stand:
        online = write_config(work / "resume_online.yaml", stand.url, 4)
        offline = write_config(work / "resume_offline.yaml", None, 4)
        run = [*cli_command(), *common("rehearsal"), "--config", str(online)]
        rehearse = [*cli_command(), *common("rehearsal"), "--dry-run", "--sandbox"]
        dry = [*cli_command(), *common("real"), "--dry-run", "--config", str(offline)]
        print(f"   run: {' '.join(run)}")
        for i in range(repeat):
            home = fresh_data_home(work)
            commands: dict[str, tuple[list[str], dict[str, str] | None, str]] = {
                "pandas.read_csv": ([sys.executable, "-c", read_csv], None, ""),
                FIRST_RESUME: (run, run_env(home), "rehearsal"),
                RESUME: (run, run_env(home), "rehearsal"),
                "dry-run --sandbox": (
                    [*rehearse, "--config", str(offline)],
                    run_env(home, with_key=False),
                    "rehearsal",
                ),
                "dry-run": (dry, run_env(home, with_key=False), "real"),
            }
            for name, (cmd, env, kind) in commands.items():
                outcome = measure(cmd, env)
                if kind:
                    _check_nothing_to_send(name, outcome, results[kind], size[kind])
                elif outcome.code != 0:
                    raise SystemExit(f"{name} failed ({outcome.code}):\n{outcome.stderr}")
                times.setdefault(name, []).append(outcome.wall)
                peaks.setdefault(name, []).append(outcome.peak_rss)
                print(
                    f"   run {i + 1} {name:18} {outcome.wall:6.2f} s  CPU {outcome.cpu:6.2f} s  "
                    f"{outcome.peak_rss / 2**20:6.0f} MiB peak RSS",
                    flush=True,
                )
        if profile is not None:
            home = fresh_data_home(work)
            args = [*common("rehearsal"), "--config", str(online)]
            for suffix in ("first", "second"):
                outcome = measure(
                    profiled(args, profile.with_suffix(f".{suffix}.prof")), run_env(home)
                )
                _check_nothing_to_send(
                    "profiled run", outcome, results["rehearsal"], size["rehearsal"]
                )
    _summarise_resume(times, peaks)


def _summarise_resume(times: dict[str, list[float]], peaks: dict[str, list[int]]) -> None:
    """Each command's median time and largest peak RSS, both as ratios to read_csv's."""
    base, base_peak = statistics.median(times["pandas.read_csv"]), max(peaks["pandas.read_csv"])
    runs = len(times["pandas.read_csv"])
    print(f"   {'':18} {'time':>8} {'vs read_csv':>12} {'peak RSS':>10} {'vs read_csv':>12}")
    verdicts = []
    for name in times:
        t, peak = statistics.median(times[name]), max(peaks[name])
        print(
            f"   {name:18} {t:6.2f} s {t / base:11.2f}x {peak / 2**20:6.0f} MiB "
            f"{peak / base_peak:11.2f}x"
        )
        if name != "pandas.read_csv":
            time_ok = "met" if t / base <= RESUME_GOAL else "MISSED"
            peak_ok = "met" if peak <= GIB else "MISSED"
            verdicts.append(f"{name}: time {time_ok}, peak {peak_ok}")
    print(
        f"   (median time and largest peak of {runs} run(s) each) goals: time <= "
        f"{RESUME_GOAL}x read_csv, peak RSS <= 1 GiB: {'; '.join(verdicts)}"
    )


def _check_nothing_to_send(name: str, outcome: Outcome, results: Path, size: int) -> None:
    if outcome.code != 0:
        raise SystemExit(f"{name} failed ({outcome.code}):\n{outcome.stdout}\n{outcome.stderr}")
    if "plan: 0 to send, 0 now, 0 later" not in outcome.stdout:
        raise SystemExit(f"{name} did not find the campaign done:\n{outcome.stdout}")
    if results.stat().st_size != size:
        raise SystemExit(f"{name} changed the results file (it had {size} bytes)")


# --------------------------------------------------------------------------- main


def print_profile(path: Path, title: str, top: int = 15) -> None:
    print(f"profile of {title}:", flush=True)
    stats = pstats.Stats(str(path), stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(r"campaign_runner/(?!cli|__main__)", top)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 50,000 rows")
    parser.add_argument("--rows", type=int, help="rows sent in A (default 10,000)")
    parser.add_argument("--resume-rows", type=int, help="rows resumed in B (default 1,000,000)")
    parser.add_argument("--concurrency", default="4,16", help="levels for A (default 4,16)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (median)")
    parser.add_argument("--part", choices=("all", "a", "b"), default="all")
    parser.add_argument("--dir", type=Path, default=DATA_DIR, help="where journals go")
    parser.add_argument("--profile", action="store_true", help="also profile each run")
    args = parser.parse_args()
    rows = args.rows or (1_000 if args.quick else 10_000)
    resume_rows = args.resume_rows or (50_000 if args.quick else 1_000_000)
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.dir.mkdir(parents=True, exist_ok=True)
    print(f"engine: {engine_fingerprint()}; {os.cpu_count()} CPUs, {load()}", flush=True)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench_run_") as tmp:
        work = Path(tmp)
        if args.part in ("all", "a"):
            data = cached("bench_run_input", build_input, rows)
            bench_throughput(data, rows, work, levels, args.repeat)
            if args.profile:
                bench_campaign(data, work, max(levels), profile=work / "throughput.prof")
                print_profile(work / "throughput.prof", f"run, {rows:,} rows, C={max(levels)}")
            print(f"   {load()}", flush=True)
        if args.part in ("all", "b"):
            profile = work / "resume.prof" if args.profile else None
            bench_resume(resume_rows, work, args.repeat, profile)
            if profile is not None:
                for suffix, what in (("first", FIRST_RESUME), ("second", RESUME)):
                    path = profile.with_suffix(f".{suffix}.prof")
                    print_profile(path, f"resume of {resume_rows:,} rows, {what}")
            print(f"   {load()}", flush=True)


if __name__ == "__main__":
    main()
