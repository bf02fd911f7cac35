"""Regenerate ``sample_data/prospects.xlsx``, the Excel twin of ``sample_data/prospects.csv``.

Usage: ``.venv/bin/python benchmarks/make_sample_xlsx.py``
"""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def main() -> None:
    with (SAMPLE / "prospects.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Prospects"
    for row in rows:
        sheet.append(row)
    book.save(SAMPLE / "prospects.xlsx")


if __name__ == "__main__":
    main()
