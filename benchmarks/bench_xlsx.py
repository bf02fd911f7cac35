"""How much does reading a workbook as the sheet shows it cost, over openpyxl's own stream?

Builds (once, cached under ``benchmarks/_data/``) two 100,000-row workbooks, one with a
plain URL column and one whose URL cells say "View profile" with the profile linked behind
them, both with a formatted date and a number column. Then, each in a fresh subprocess
and alternating so that noise hits both alike:

* the baseline: iterating the first sheet with openpyxl in read-only mode,
  ``values_only=True`` (what campaign-runner did before it read formats and links);
* ``load_prospects(FILE, all_columns=False)``, as ``validate`` calls it.

It prints the median wall time of each and their ratio. Not part of the test suite.

Usage::

    .venv/bin/python benchmarks/bench_xlsx.py [--rows 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import time
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "_data"

BASELINE = """
import sys, openpyxl
book = openpyxl.load_workbook(sys.argv[1], read_only=True, data_only=True)
sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
book.close()
"""
LOADER = """
import sys
from pathlib import Path
from campaign_runner.prospects import load_prospects
load_prospects(Path(sys.argv[1]), all_columns=False)
"""


def build(path: Path, rows: int, links: bool) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["First Name", "Last Name", "Company", "LinkedIn", "Note", "Added", "Staff"])
    for i in range(rows):
        url = f"https://www.linkedin.com/in/jane-{i}"
        note = f"Hi Jane {i}, let's connect"
        added = dt.datetime(2024, 12, 24)
        sheet.append(["Jane", "Doe", "Acme", "View profile" if links else url, note, added, i])
        if links:
            sheet.cell(row=i + 2, column=4).hyperlink = url
        sheet.cell(row=i + 2, column=6).number_format = "DD.MM.YYYY"
    book.save(path)


def timed(script: str, path: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    DATA_DIR.mkdir(exist_ok=True)
    for links in (False, True):
        path = DATA_DIR / f"prospects-{args.rows}{'-links' if links else ''}.xlsx"
        if not path.exists():
            build(path, args.rows, links)
        base, ours = [], []
        for _ in range(args.repeat):
            base.append(timed(BASELINE, path))
            ours.append(timed(LOADER, path))
        b, o = statistics.median(base), statistics.median(ours)
        print(f"{path.name}: openpyxl stream {b:.2f}s, load_prospects {o:.2f}s, ratio {o / b:.2f}")


if __name__ == "__main__":
    main()
