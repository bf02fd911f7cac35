"""How fast is ``campaign-runner validate`` next to pandas merely reading the same file?

Builds (once, cached under ``benchmarks/_data/``) a realistic 1,000,000-row prospect CSV,
then runs, each in a fresh subprocess and alternating so that noise hits both alike:

* the baseline: ``pandas.read_csv(FILE, dtype=str, keep_default_na=False)``;
* ``campaign-runner validate FILE --report OUT``.

It prints the median wall time and peak RSS of each and their ratio. Goals: validate at
most 1.0x the baseline's wall time, at most 1 GiB peak memory. Not part of the test suite.

Usage::

    .venv/bin/python benchmarks/bench_validate.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "_data"
GIB = 1024**3

FIRST = ["Jane", "John", "Maria", "Ahmed", "Wei", "Olga", "Liam", "Sofia", "Noah", "Aisha"]
LAST = ["Doe", "Roe", "Example", "Sample", "Placeholder", "Testington", "Mustermann", "Rossi"]
COMPANIES = [
    "Acme Widgets Ltd",
    "Globex Example Corp",
    "Initech Sample GmbH",
    "Umbrella Demo SA",
    "Hooli Fictional Inc",
    "Vandelay Imports, LLC",
]
TITLES = ["Head of Sales", "VP Marketing", "Founder", "RevOps Lead", "CTO", "Office Manager"]
NOTES = [
    "Hi {first}, I came across your work at {company} and was impressed by how your team "
    "approaches growth. I'd love to connect and swap notes on what is working this quarter.",
    'Hello {first} - fellow "{title}" here. We help teams like {company} cut manual '
    "prospecting by half, and I thought it could be worth a chat. Either way, happy to connect!",
    "{first}, congratulations on the recent news at {company}! I follow the space closely "
    "and would value being in your network.\nBest regards, and have a great week ahead.",
    "Hi {first}! Saw your post about scaling outbound at {company}; the point about "
    "personalisation at volume really resonated. Would be glad to connect and keep in touch, "
    "I share similar content every week or so.",
]


def _url(rng: random.Random, slug: str) -> str:
    """A profile URL in one of the forms people paste, or a deliberately bad one."""
    roll = rng.random()
    if roll < 0.60:
        return f"https://www.linkedin.com/in/{slug}"
    if roll < 0.70:
        return f"http://linkedin.com/in/{slug}/"
    if roll < 0.78:
        return f"linkedin.com/in/{slug}?trk=public_profile_browsemap"
    if roll < 0.84:
        return f"https://uk.linkedin.com/in/{slug.title()}"
    if roll < 0.89:
        return f"https://www.linkedin.com/in/{slug}/detail/recent-activity/"
    if roll < 0.90:
        return f"https://www.linkedin.com/in/j%C3%B6rg-{slug}"
    if roll < 0.91:
        return "https://www.linkedin.com/company/acme-widgets-ltd"
    if roll < 0.915:
        return "https://www.linkedin.com/sales/lead/ACwAAA1b2c3,NAME_SEARCH,x1Yz"
    if roll < 0.92:
        return ""
    return f"https://m.linkedin.com/in/{slug}"


def build(path: Path, rows: int, seed: int = 20240224) -> None:
    """Write ``rows`` fictional prospects to ``path`` (about 1 % duplicates, 2 % invalid)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\r\n")
        out.writerow(["first_name", "last_name", "company", "title", "linkedin_url", "note"])
        for i in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            # About 1 % of the rows repeat an earlier person.
            n = rng.randrange(max(i, 1)) if rng.random() < 0.01 else i
            slug = f"{first}-{last}-example-{n:x}".lower()
            company, title = rng.choice(COMPANIES), rng.choice(TITLES)
            note = rng.choice(NOTES).format(first=first, company=company, title=title)
            out.writerow([first, last, company, title, _url(rng, slug), note])
    tmp.replace(path)


def measure(cmd: list[str]) -> tuple[float, int, float]:
    """Run ``cmd``; return its wall time (s), peak RSS (bytes) and CPU time (s)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}):\n{err}")
    return wall, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def _validate_command() -> list[str]:
    script = Path(sys.executable).with_name("campaign-runner")
    if script.exists():
        return [str(script)]
    found = shutil.which("campaign-runner")
    return [found] if found else [sys.executable, "-m", "campaign_runner"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    data = DATA_DIR / f"prospects_{args.rows}.csv"
    if not data.exists():
        print(f"building {data} ...", flush=True)
        build(data, args.rows)
    report = DATA_DIR / f"report_{args.rows}.csv"
    size_mb = data.stat().st_size / 1e6
    baseline = [
        sys.executable,
        "-c",
        f"import pandas; pandas.read_csv({str(data)!r}, dtype=str, keep_default_na=False)",
    ]
    validate = [*_validate_command(), "validate", str(data), "--report", str(report)]
    print(f"file: {data} ({args.rows:,} rows, {size_mb:.0f} MB)")
    print(f"validate: {' '.join(validate)}")

    times: dict[str, list[float]] = {"baseline": [], "validate": []}
    peaks: dict[str, list[int]] = {"baseline": [], "validate": []}
    # CPU time, because a shared machine's noise distorts wall time (ours uses 2 cores).
    cpus: dict[str, list[float]] = {"baseline": [], "validate": []}
    for i in range(args.repeat):
        for name, cmd in (("baseline", baseline), ("validate", validate)):
            wall, peak, cpu = measure(cmd)
            times[name].append(wall)
            peaks[name].append(peak)
            cpus[name].append(cpu)
            print(
                f"  run {i + 1} {name:9} {wall:6.2f} s wall {cpu:6.2f} s CPU "
                f"{peak / 2**20:7.0f} MiB",
                flush=True,
            )

    base_t, val_t = statistics.median(times["baseline"]), statistics.median(times["validate"])
    base_m, val_m = max(peaks["baseline"]), max(peaks["validate"])
    base_c, val_c = statistics.median(cpus["baseline"]), statistics.median(cpus["validate"])
    print(
        f"baseline pandas.read_csv: {base_t:.2f} s ({base_c:.2f} s CPU), "
        f"peak {base_m / 2**20:.0f} MiB"
    )
    print(
        f"campaign-runner validate: {val_t:.2f} s ({val_c:.2f} s CPU), peak {val_m / 2**20:.0f} MiB"
    )
    print(f"ratio (validate / baseline wall time): {val_t / base_t:.2f}x  (goal <= 1.0x)")
    print(f"peak memory goal (<= 1 GiB): {'met' if val_m <= GIB else 'MISSED'}")


if __name__ == "__main__":
    main()
