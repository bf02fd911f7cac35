"""What does a note template cost ``validate``?

Builds (once, cached under ``benchmarks/_data/``) a prospect CSV of 12 columns, as CRM
exports have them, without a note column, then checks it, each in a fresh subprocess:

* ``check_file(FILE)``: the baseline, reading only the URL and company columns;
* ``check_file(FILE, note_template=T)``: every column read (the template's are known
  only against the header), the template rendered, every note tested for placeholders;
* the same with a template whose text holds ``[beta]``, so that every rendered note is a
  candidate of the placeholder prefilter and reaches Python: the worst case.

Prints the median wall time and peak RSS of each, and their ratio to the baseline. Not
part of the test suite.

Usage::

    .venv/bin/python benchmarks/bench_notes.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import subprocess
import sys
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "_data"
HEADER = [
    "Person Linkedin Url",
    "First Name",
    "Last Name",
    "Title",
    "Company",
    "Email",
    "City",
    "Country",
    "Industry",
    "Phone",
    "Website",
    "Employees",
]
FIRST = ["Jane", "John", "Maria", "Ahmed", "Wei", "Olga", "Liam", "Sofia", "Noah", "Aisha", ""]
LAST = ["Doe", "Roe", "Example", "Sample", "Mustermann", "Rossi"]
TITLES = ["Head of Sales", "VP Marketing", "Founder", "RevOps Lead", "CTO", "Office Manager"]
COMPANIES = ["Acme Widgets Ltd", "Globex Example Corp", "Initech Sample GmbH", "", "Hooli Inc"]
TEMPLATE = (
    "Hi {first_name|there}, I came across your work as {title} at {company|your company} "
    "and would love to connect and swap notes on what is working this quarter."
)
WORST = TEMPLATE + " [beta]"

CHILD = """
import resource, sys, time
from campaign_runner.validation import check_file
start = time.perf_counter()
verdicts = check_file(sys.argv[1], note_template=sys.argv[2] or None)
elapsed = time.perf_counter() - start
assert verdicts.counts["valid"] > 0, verdicts.counts
print(elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def build(rows: int) -> Path:
    path = DATA_DIR / f"notes_{rows}.csv"
    if path.exists():
        return path
    DATA_DIR.mkdir(exist_ok=True)
    rng = random.Random(9)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for i in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            writer.writerow(
                [
                    f"https://www.linkedin.com/in/{(first or 'x').lower()}-{last.lower()}-{i}",
                    first,
                    last,
                    rng.choice(TITLES),
                    rng.choice(COMPANIES),
                    f"{(first or 'x').lower()}.{last.lower()}{i}@example.com",
                    rng.choice(["Graz", "Berlin", "Lyon", "Leeds"]),
                    rng.choice(["AT", "DE", "FR", "UK"]),
                    rng.choice(["Software", "Retail", "Logistics"]),
                    f"+43 316 {i:07d}",
                    f"https://example.com/{i}",
                    str(rng.randint(1, 5000)),
                ]
            )
    return path


def measure(path: Path, template: str, repeat: int) -> tuple[float, float]:
    times, peaks = [], []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), template],
            capture_output=True,
            text=True,
            check=True,
        )
        elapsed, peak_kib = done.stdout.split()
        times.append(float(elapsed))
        peaks.append(int(peak_kib) / 1024)
    return statistics.median(times), statistics.median(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = build(args.rows)
    cases = [("no template", ""), ("template", TEMPLATE), ("template, all candidates", WORST)]
    base_time = base_peak = 0.0
    print(f"{args.rows:,} rows, {len(HEADER)} columns, median of {args.repeat}")
    for label, template in cases:
        elapsed, peak = measure(path, template, args.repeat)
        if not template:
            base_time, base_peak = elapsed, peak
        print(
            f"{label:26} {elapsed:7.2f} s ({elapsed / base_time:4.2f}x)"
            f"  peak {peak:7.0f} MiB ({peak / base_peak:4.2f}x)"
        )


if __name__ == "__main__":
    main()
