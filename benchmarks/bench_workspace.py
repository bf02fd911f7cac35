"""Benchmark planning a campaign against a busy workspace ledger (issue 8, second goal).

    .venv/bin/python benchmarks/bench_workspace.py [--quick] [--repeat 3] [--postgres]
                                                   [--invitations N] [--rows N]

Inputs, cached in ``benchmarks/_data/`` (gitignored) and rebuilt when a day old (their
dates are relative to when they were built, and the rolling day and week move on):

* an SQLite workspace ledger with ``--invitations`` (1,000,000) invitations by 36 senders
  over 400 campaigns, spread over the last 28 days, oldest first: about one person in ten
  was tried twice (an earlier failed, deferred or released attempt), and the latest
  attempt of each person is sent, already connected, unknown, failed, deferred or pending.
  Built with the ledger's own schema (``SQLiteLedger``), then one ``executemany`` per
  table inside one transaction; never ANALYZEd, as no real ledger is;
* a ``--rows`` (100,000) prospect CSV: 30% of its people are in the ledger (most of them
  held by a live attempt), the rest are new;
* a results file from before the ledger, with outcomes for 20% of the CSV's new people.

Then, each in a fresh process, alternating, ``--repeat`` times:

* ``pandas.read_csv(FILE, dtype=str, keep_default_na=False)``: the baseline;
* ``run FILE --dry-run``: no API key, senders from a config, ``CAMPAIGN_RUNNER_DATABASE``
  naming the ledger (opened read-only);
* ``run FILE --yes --limit 0`` against a ``campaign-runner sandbox`` stand-in on 127.0.0.1:
  a real run's planning (the API's senders and quotas, the results lock, registering the
  campaign), which sends nothing. A run against the stand-in is a rehearsal, and a
  rehearsal uses the ledger ``sandbox.sqlite3`` in the data directory whatever
  ``CAMPAIGN_RUNNER_DATABASE`` says: a copy of the ledger is put there
  (``XDG_DATA_HOME``), fresh for each run, so each run is the campaign's first;
* the same with the earlier results file: the first run also imports its outcomes.

Each prints wall time and peak RSS (``ru_maxrss`` of the child); the summary gives
medians, ratios to read_csv and the goals (time <= 3x read_csv, peak RSS <= 1 GiB). Every
run's plan is checked: the number of people already invited by other campaigns, and that
the stand-in received no invitation.

``--postgres`` also loads the same ledger into a throwaway PostgreSQL server
(``tests/pg.py``, on 127.0.0.1) and measures the dry run against it, plus a real run's
ledger calls (``campaign``, ``import_lines``, ``holders``, ``usage``) in one process, since
a run against the stand-in cannot use a PostgreSQL ledger.
``--quick``: 100,000 invitations and 10,000 rows. Loopback only. Not part of the suite.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import StandIn, stand_in  # siblings, not a package
from bench_run import (
    Outcome,
    cli_command,
    engine_fingerprint,
    load,
    measure,
)

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "benchmarks" / "_data"
GIB = 1024**3
DAY = 86_400.0
GOAL = 3.0
MAX_AGE = DAY  # inputs older than this are rebuilt: their dates would leave the week
API_KEY = "sandbox-key"
SENDERS = tuple(f"ws_s{i:02d}" for i in range(36))
CAMPAIGNS = 400
SPAN_DAYS = 28
DAILY_LIMIT = 2_000
SHARED = 0.30  # of the CSV's people, those the ledger knows
EARLIER = 0.20  # of the CSV's new people, those the earlier results file has outcomes for

FIRST = ["Jane", "John", "Maria", "Ahmed", "Wei", "Olga", "Liam", "Sofia", "Noah", "Aisha"]
LAST = ["Doe", "Roe", "Example", "Sample", "Placeholder", "Testington", "Mustermann", "Rossi"]
COMPANIES = ["Acme Widgets Ltd", "Globex Example Corp", "Vandelay Imports, LLC", "Hooli Inc"]
NOTE = "Hi {first}, I came across your work at {company} and would love to connect."
# The latest attempt of each person (the live ones first), and the earlier ones'.
LATEST = [
    ("sent", 0.80),
    ("already_connected", 0.05),
    ("unknown", 0.01),
    ("pending", 0.002),
    ("failed", 0.12),
    ("deferred", 0.018),
]
EARLIER_STATUSES = ("failed", "deferred", "released")
LIVE = frozenset({"pending", "sent", "unknown", "already_connected"})


def ledger_url(person: int) -> str:
    """The canonical profile URL of the ledger's person ``person`` (already normalised)."""
    return f"https://www.linkedin.com/in/{FIRST[person % 10].lower()}-ws-{person:x}"


def new_url(person: int) -> str:
    return f"https://www.linkedin.com/in/{FIRST[person % 10].lower()}-new-{person:x}"


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Inputs:
    ledger: Path
    prospects: Path
    earlier: Path  # results from before the ledger, for some of the prospects
    facts: dict[str, int]  # what the plans must say


def _fresh(path: Path) -> bool:
    return path.exists() and time.time() - path.stat().st_mtime < MAX_AGE


def inputs(invitations: int, rows: int) -> Inputs:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    stem = DATA_DIR / f"bench_workspace_{invitations}_{rows}"
    ledger, prospects = stem.with_suffix(".sqlite3"), stem.with_suffix(".csv")
    earlier, facts = stem.with_suffix(".results.csv"), stem.with_suffix(".json")
    if not all(_fresh(p) for p in (ledger, prospects, earlier, facts)):
        began = time.perf_counter()
        print(f"building {ledger.name} and {prospects.name} ...", flush=True)
        # In a process of its own: a child's ru_maxrss starts at its parent's RSS when it
        # forks, so this process must stay small for the peaks measured below to be true.
        build = [sys.executable, __file__, "--build", str(invitations), str(rows)]
        subprocess.run(build, check=True)
        print(f"  built in {time.perf_counter() - began:.1f} s", flush=True)
    # A cached ledger gets any index this version adds, as a real one does on its first
    # writing run; a read-only dry run would otherwise be measured without it.
    upgrade = "import sys; from campaign_runner.ledger import SQLiteLedger as L; L(sys.argv[1])"
    subprocess.run([sys.executable, "-c", f"{upgrade}.close()", str(ledger)], check=True)
    return Inputs(ledger, prospects, earlier, json.loads(facts.read_text()))


def build(invitations: int, rows: int) -> None:
    stem = DATA_DIR / f"bench_workspace_{invitations}_{rows}"
    ledger, prospects = stem.with_suffix(".sqlite3"), stem.with_suffix(".csv")
    earlier, facts = stem.with_suffix(".results.csv"), stem.with_suffix(".json")
    people = build_ledger(ledger, invitations)
    build_prospects(prospects, earlier, facts, rows, people, ledger)


def _latest_status(rng: random.Random) -> str:
    x = rng.random()
    for status, share in LATEST:
        x -= share
        if x < 0:
            return status
    return LATEST[-1][0]


def attempt_rows(invitations: int, now: float, seed: int = 8) -> tuple[list[tuple], int]:
    """The ledger's attempts, oldest first, and how many people they are about."""
    rng = random.Random(seed)
    people = invitations * 10 // 11  # one in ten is tried twice
    span = SPAN_DAYS * DAY
    rows: list[tuple] = []
    for person in range(people):
        at = now - span * rng.random()
        sender = SENDERS[rng.randrange(len(SENDERS))]
        campaign = 1 + rng.randrange(CAMPAIGNS)
        if person < invitations - people:  # tried before: an earlier attempt, let go
            first = at - (at - (now - span)) * rng.random()
            status = rng.choice(EARLIER_STATUSES)
            rows.append((ledger_url(person), sender, campaign, person + 2, status, first))
        rows.append((ledger_url(person), sender, campaign, person + 2, _latest_status(rng), at))
    rows.sort(key=lambda r: r[5])
    return rows, people


def build_ledger(path: Path, invitations: int) -> int:
    """The workspace ledger at ``path``; how many people it knows."""
    from campaign_runner.ledger import SQLiteLedger

    now = time.time()
    for old in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        old.unlink(missing_ok=True)
    rows, people = attempt_rows(invitations, now)
    SQLiteLedger(path).close()  # the schema, as the runner makes it
    import sqlite3

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO campaigns (name, results_path, created_at) VALUES (?, ?, ?)",
        [(f"c{i:03d}", f"/old/c{i:03d}.results.csv", now - SPAN_DAYS * DAY) for i in range(1, 401)],
    )
    db.executemany(
        "INSERT INTO attempts (url, sender_id, campaign_id, row_number, status, request_id, "
        "at, settled_at) VALUES (?, ?, ?, ?, ?, ?, ?, "
        "CASE WHEN ?5 = 'pending' THEN NULL ELSE ?7 END)",
        ((*r[:5], f"conn_{i:012x}", r[5]) for i, r in enumerate(rows)),
    )
    last = {}
    for r in rows:
        last[r[1]] = (r[5], r[2])
    db.executemany(
        "INSERT INTO senders (sender_id, next_slot_at, campaign_id) VALUES (?, ?, ?)",
        [(s, at + 60, c) for s, (at, c) in last.items()],
    )
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return people


def build_prospects(
    path: Path, earlier: Path, facts: Path, rows: int, people: int, ledger: Path
) -> None:
    """The prospect CSV, the earlier results file and the facts the plans must show."""
    import sqlite3

    rng = random.Random(9)
    shared = rng.sample(range(people), int(rows * SHARED))
    urls = [ledger_url(p) for p in shared] + [new_url(p) for p in range(rows - len(shared))]
    rng.shuffle(urls)
    with sqlite3.connect(ledger) as db:
        live = {
            u
            for (u,) in db.execute(
                "SELECT url FROM attempts WHERE status IN "
                "('pending', 'sent', 'unknown', 'already_connected')"
            )
        }
    held = sum(u in live for u in urls)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["first_name", "last_name", "company", "linkedin_url", "note"])
        for u in urls:
            first, company = rng.choice(FIRST), rng.choice(COMPANIES)
            note = NOTE.format(first=first, company=company)
            out.writerow([first, rng.choice(LAST), company, u, note])
    # Results from before the ledger existed, for some new people, dated three days ago;
    # written by a rehearsal (api: sandbox), as the runs against the stand-in are.
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 3 * DAY))
    header = ["row", "linkedin_url", "sender_id", "status", "request_id", "error", "attempts"]
    done = sent = 0
    with earlier.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow([*header, "timestamp", "note_delivered", "api"])
        for i, u in enumerate(urls):
            if "-new-" not in u or rng.random() >= EARLIER:
                continue
            status = "sent" if rng.random() < 0.9 else "failed"
            sender = SENDERS[i % len(SENDERS)]
            out.writerow([i + 2, u, sender, status, f"conn_e{i:x}", "", 1, stamp, "yes", "sandbox"])
            done += 1
            sent += status == "sent"
    facts.write_text(
        json.dumps({"rows": rows, "held": held, "earlier": done, "earlier_sent": sent})
    )


# --------------------------------------------------------------------------- processes


def write_config(path: Path, base_url: str | None) -> Path:
    lines = ["api:", f"  base_url: {base_url}"] if base_url else []
    lines.append("senders:")
    for sender in SENDERS:
        lines += [f"  - id: {sender}", f"    daily_limit: {DAILY_LIMIT}"]
        lines += [f"    weekly_limit: {DAILY_LIMIT * 7}", "    premium: true"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def env_for(database: str | None, data_home: Path | None, key: bool) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SENDPILOT_API_KEY", "CAMPAIGN_RUNNER_CONFIG", "CAMPAIGN_RUNNER_DATABASE")
    }
    if key:
        env["SENDPILOT_API_KEY"] = API_KEY
    if database:
        env["CAMPAIGN_RUNNER_DATABASE"] = database
    if data_home:
        env["XDG_DATA_HOME"] = str(data_home)
    return env


@dataclass(frozen=True)
class Case:
    """One command to time, and how to set up and check one run of it."""

    name: str
    cmd: Sequence[str]
    env: dict[str, str] | None = None
    ledger: Path | None = None  # copied here before each run (a real run changes it)
    results: Path | None = None  # removed, or replaced by `earlier`, before each run
    earlier: Path | None = None
    expect: str = ""  # a line the plan must print
    imported: int = 0  # attempts the run must have brought into its ledger copy


def prepare(case: Case, pristine: Path) -> None:
    if case.ledger is not None:
        case.ledger.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("-wal", "-shm"):
            case.ledger.with_name(case.ledger.name + suffix).unlink(missing_ok=True)
        shutil.copyfile(pristine, case.ledger)
    if case.results is not None:
        case.results.unlink(missing_ok=True)
        case.results.with_name(case.results.name + ".lock").unlink(missing_ok=True)
        if case.earlier is not None:
            shutil.copyfile(case.earlier, case.results)


def check(case: Case, outcome: Outcome) -> None:
    if case.name.startswith("pandas"):
        if outcome.code != 0:
            raise SystemExit(f"{case.name} failed:\n{outcome.stderr}")
        return
    # --limit 0 stops with rows still to send: exit 3 (see cli's exit codes).
    if outcome.code not in (0, 3) or case.expect not in outcome.stdout + outcome.stderr:
        raise SystemExit(
            f"{case.name}: exit {outcome.code}, expected {case.expect!r}:\n"
            f"{outcome.stdout[-3000:]}\n{outcome.stderr[-3000:]}"
        )
    if case.ledger is not None and case.results is not None:
        import sqlite3

        with contextlib.closing(sqlite3.connect(case.ledger)) as db:
            (mine,) = db.execute(
                "SELECT COUNT(*) FROM attempts a JOIN campaigns c ON c.id = a.campaign_id "
                "WHERE c.results_path = ?",
                (str(case.results.resolve()),),
            ).fetchone()
        if mine != case.imported:
            raise SystemExit(f"{case.name}: {mine} attempts imported, not {case.imported}")


def bench(cases: list[Case], pristine: Path, repeat: int) -> dict[str, list[Outcome]]:
    runs: dict[str, list[Outcome]] = {c.name: [] for c in cases}
    for i in range(repeat):
        for case in cases:
            prepare(case, pristine)
            outcome = measure(case.cmd, case.env)
            check(case, outcome)
            runs[case.name].append(outcome)
            print(
                f"   run {i + 1} {case.name:28} {outcome.wall:6.2f} s  CPU {outcome.cpu:6.2f} s"
                f"  {outcome.peak_rss / 2**20:6.0f} MiB peak RSS",
                flush=True,
            )
    return runs


def summarise(runs: dict[str, list[Outcome]]) -> None:
    """Median time (and CPU), largest peak RSS, ratios to read_csv, and the goals."""
    base = statistics.median(o.wall for o in runs["pandas.read_csv"])
    base_peak = max(o.peak_rss for o in runs["pandas.read_csv"])
    count = len(runs["pandas.read_csv"])
    print(
        f"   {'':28} {'time':>8} {'vs read_csv':>12} {'CPU':>7} {'peak RSS':>10} "
        f"{'vs read_csv':>12}  goals (time <= {GOAL:g}x, peak <= 1 GiB)"
    )
    for name, outcomes in runs.items():
        t = statistics.median(o.wall for o in outcomes)
        cpu = statistics.median(o.cpu for o in outcomes)
        peak = max(o.peak_rss for o in outcomes)
        verdict = ""
        if name != "pandas.read_csv":
            time_ok = "met" if t / base <= GOAL else "MISSED"
            verdict = f"time {time_ok}, peak {'met' if peak <= GIB else 'MISSED'}"
        print(
            f"   {name:28} {t:6.2f} s {t / base:11.2f}x {cpu:5.2f} s {peak / 2**20:6.0f} MiB "
            f"{peak / base_peak:11.2f}x  {verdict}"
        )
    print(f"   (median time and CPU, largest peak, of {count} run(s) each)", flush=True)


def baseline(prospects: Path) -> Case:
    code = f"import pandas; pandas.read_csv({str(prospects)!r}, dtype=str, keep_default_na=False)"
    return Case("pandas.read_csv", [sys.executable, "-c", code])


def sqlite_cases(data: Inputs, work: Path, stand: StandIn) -> list[Case]:
    offline = write_config(work / "offline.yaml", None)
    online = write_config(work / "online.yaml", stand.url)
    held = f"{data.facts['held']} already invited by another campaign"
    results = work / "planned.results.csv"
    common = ["run", str(data.prospects), "--results", str(results), "--no-progress"]
    home = work / "home"
    sandbox_ledger = home / "campaign-runner" / "sandbox.sqlite3"
    real = [*cli_command(), *common, "--yes", "--limit", "0", "--config", str(online)]
    return [
        baseline(data.prospects),
        Case(
            "run --dry-run",
            [*cli_command(), *common, "--dry-run", "--config", str(offline)],
            env_for(str(data.ledger), home, key=False),
            results=results,
            expect=held,
        ),
        Case(
            "run --limit 0 (stand-in)",
            real,
            env_for(None, home, key=True),
            ledger=sandbox_ledger,
            results=results,
            expect=held,
        ),
        Case(
            "run --limit 0, importing",
            real,
            env_for(None, home, key=True),
            ledger=sandbox_ledger,
            results=results,
            earlier=data.earlier,
            expect=held,
            imported=data.facts["earlier"],
        ),
    ]


# --------------------------------------------------------------------------- PostgreSQL

LEDGER_CALLS = """
import json, sys, time
from pathlib import Path
from campaign_runner.journal import load_journal
from campaign_runner.ledger import open_ledger
import csv
from campaign_runner.workspace import import_lines
database, csv_path, earlier = sys.argv[1:4]
with open(csv_path, encoding="utf-8", newline="") as fh:
    urls = [row["linkedin_url"] for row in csv.DictReader(fh)]
lines = import_lines(load_journal(Path(earlier)), time.time())
took = {}
with open_ledger(database) as ledger:
    began = time.perf_counter()
    info = ledger.campaign("bench", "/bench/planned.results.csv", time.time())
    took["campaign"] = time.perf_counter() - began
    began = time.perf_counter()
    added = ledger.import_lines(info.id, lines)
    took["import_lines"] = time.perf_counter() - began
    began = time.perf_counter()
    held = ledger.holders(urls)
    took["holders"] = time.perf_counter() - began
    began = time.perf_counter()
    ledger.usage(86400.0, time.time())
    took["usage"] = time.perf_counter() - began
print(json.dumps({"took": took, "held": len(held), "added": added, "lines": len(lines)}))
"""


def load_postgres(server: object, source: Path) -> str:
    """A database on ``server`` with the SQLite ledger's rows; its URL."""
    import sqlite3

    import psycopg

    from campaign_runner.ledger import open_ledger

    url = server.create_database()  # type: ignore[attr-defined]
    open_ledger(url).close()  # the schema, as the runner makes it
    columns = "id, url, sender_id, campaign_id, row_number, status, request_id, error, at"
    with sqlite3.connect(source) as lite, psycopg.connect(url) as db:
        with db.cursor() as cur:
            for table, cols in (
                ("campaigns", "id, name, results_path, created_at"),
                ("attempts", f"{columns}, settled_at"),
                ("senders", "sender_id, next_slot_at, campaign_id"),
            ):
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in lite.execute(f"SELECT {cols} FROM {table}"):
                        copy.write_row(row)
            for table in ("campaigns", "attempts"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )
        db.commit()
        db.autocommit = True
        # A long-lived database has been analysed by autovacuum long since.
        db.execute("VACUUM ANALYZE")
    return url


def bench_postgres(data: Inputs, work: Path, repeat: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import pg

    why = pg.unavailable()
    if why:
        print(f"PostgreSQL: skipped ({why})")
        return
    server, took = pg.start_server()
    try:
        print(f"PostgreSQL: throwaway server on 127.0.0.1:{server.port} ({took:.1f} s to start)")
        began = time.perf_counter()
        template = load_postgres(server, data.ledger)
        print(f"   loaded the ledger in {time.perf_counter() - began:.1f} s", flush=True)
        offline = write_config(work / "offline.yaml", None)
        results = work / "planned_pg.results.csv"
        common = ["run", str(data.prospects), "--results", str(results), "--no-progress"]
        cases = [
            baseline(data.prospects),
            Case(
                "run --dry-run (PostgreSQL)",
                [*cli_command(), *common, "--dry-run", "--config", str(offline)],
                env_for(template, work / "home", key=False),
                results=results,
                expect=f"{data.facts['held']} already invited by another campaign",
            ),
        ]
        summarise(bench(cases, data.ledger, repeat))
        # A real run's ledger calls, on a fresh copy of the database each time.
        name = template.rsplit("/", 1)[1]
        for i in range(repeat):
            import psycopg

            copy_name = f"{name}_run{i}"
            with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
                admin.execute(f"CREATE DATABASE {copy_name} TEMPLATE {name}")
            copy_url = template.rsplit("/", 1)[0] + "/" + copy_name
            cmd = [sys.executable, "-c", LEDGER_CALLS, copy_url, str(data.prospects)]
            outcome = measure([*cmd, str(data.earlier)])
            if outcome.code != 0:
                raise SystemExit(f"ledger calls failed:\n{outcome.stderr}")
            got = json.loads(outcome.stdout)
            # Holders include the campaign's own live attempts, imported just before.
            held = data.facts["held"] + data.facts["earlier_sent"]
            if got["held"] != held or got["added"] != data.facts["earlier"]:
                raise SystemExit(f"ledger calls: unexpected {got} (facts {data.facts})")
            calls = ", ".join(f"{k} {v:.2f} s" for k, v in got["took"].items())
            print(f"   run {i + 1} ledger calls of a first real run: {calls}", flush=True)
    finally:
        server.stop()


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 invitations, 10,000 rows")
    parser.add_argument("--invitations", type=int, help="in the ledger (default 1,000,000)")
    parser.add_argument("--rows", type=int, help="of the prospect CSV (default 100,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (median)")
    parser.add_argument("--postgres", action="store_true", help="also against PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true", help="only --postgres")
    parser.add_argument("--build", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build(*args.build)
        return
    invitations = args.invitations or (100_000 if args.quick else 1_000_000)
    rows = args.rows or (10_000 if args.quick else 100_000)
    print(f"engine: {engine_fingerprint()}; {os.cpu_count()} CPUs, {load()}", flush=True)
    data = inputs(invitations, rows)
    f = data.facts
    print(
        f"workspace: {invitations:,} invitations ({data.ledger.stat().st_size / 2**20:.0f} MiB), "
        f"{len(SENDERS)} senders, {CAMPAIGNS} campaigns over {SPAN_DAYS} days; prospects: "
        f"{rows:,} rows ({data.prospects.stat().st_size / 2**20:.1f} MiB), {f['held']:,} held "
        f"by a live attempt; earlier results: {f['earlier']:,} lines",
        flush=True,
    )
    with tempfile.TemporaryDirectory(dir=DATA_DIR, prefix="bench_workspace_") as tmp:
        work = Path(tmp)
        if not args.no_sqlite:
            # The stand-in knows the ledger's senders.
            with stand_in(dict.fromkeys(SENDERS, DAILY_LIMIT)) as stand:
                print(f"SQLite: stand-in at {stand.url}; run: {' '.join(cli_command())} run ...")
                summarise(bench(sqlite_cases(data, work, stand), data.ledger, args.repeat))
            if stand.invitations != 0:
                raise SystemExit(f"the stand-in received {stand.invitations} invitations")
            print(f"   the stand-in received no invitation; {load()}", flush=True)
        if args.postgres:
            bench_postgres(data, work, args.repeat)
            print(f"   {load()}", flush=True)


if __name__ == "__main__":
    main()
