"""A campaign's outcome as a spreadsheet (CSV or XLSX), and its days as a PNG chart.

The export has one line per input row, in input order: the input's own columns, then
:data:`EXPORT_COLUMNS`. No cell is one a spreadsheet would run as a formula
(:func:`campaign_runner.csvio.runs_as_formula` decides, for both formats):

- CSV (UTF-8 with a byte-order mark, which Excel needs to read it as UTF-8; CRLF): such a
  cell gets a leading apostrophe, as in every CSV the project writes.
- XLSX: every cell is written as text, never as a formula or a number; such a cell keeps
  its exact value and is marked "quote prefix", as Excel marks a cell typed with a
  leading apostrophe, so that editing it does not make it a formula either. A workbook
  cannot hold control characters other than tab and line breaks (nor U+FFFE, U+FFFF):
  they become U+FFFD, and a carriage return reads back as a line feed (XML keeps no CR).

Timestamps are the project's one format (ISO 8601 UTC with milliseconds). matplotlib
draws the chart, imported only here, only for a chart, on its Agg canvas (no display).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from campaign_runner.csvio import escape_cell, runs_as_formula
from campaign_runner.errors import ExportError
from campaign_runner.journal import ALREADY_INVITED, CAPACITY_STATUSES, ROW_VERDICTS
from campaign_runner.ledger import Invitation
from campaign_runner.prospects import Prospects
from campaign_runner.report import Day
from campaign_runner.timestamps import format_timestamp
from campaign_runner.validation import STATUS_VALID, Verdicts

EXPORT_COLUMNS = ("status", "sender_id", "request_id", "sent_at", "accepted_at")
EXPORT_FORMATS = (".csv", ".xlsx")
INPUT_SUFFIX = " (input)"  # added to an input column whose name is one of ours
CHART_SIZE = (800, 400)  # pixels
_CHART_DPI = 100
# Characters XML 1.0 (and so a workbook) cannot hold: the C0 controls but tab, LF and CR,
# lone surrogates, and the non-characters U+FFFE and U+FFFF.
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# Verdicts a results file keeps about a row as it once was: the input's own verdict on the
# row, made again now, says more. Another campaign's invitation of the person still counts.
_STALE_VERDICTS = ROW_VERDICTS - {ALREADY_INVITED}


@dataclass(frozen=True)
class ExportTable:
    header: tuple[str, ...]
    rows: list[list[str]]


def export_table(
    prospects: Prospects,
    verdicts: Verdicts,
    invitations: Mapping[str, Invitation],
    accepted_at: Mapping[tuple[str, str], float],
) -> ExportTable:
    """One line per input row, in input order: its own cells, then its status, sender,
    request id, when it was sent and when accepted.

    ``verdicts`` must be the verdicts on ``prospects`` (row for row); ``invitations`` the
    one per person by canonical URL, ``accepted_at`` the acceptances by (sender, URL). A
    row that is not valid has its verdict for status and nothing else; a valid row not
    invited yet has an empty status.
    """
    table = prospects.table
    ours = {c.casefold() for c in EXPORT_COLUMNS}
    header = tuple(
        f"{name}{INPUT_SUFFIX}" if name.strip().casefold() in ours else name
        for name in table.column_names
    )
    cells = [[v or "" for v in table[c].to_pylist()] for c in table.column_names]
    verdict = verdicts.table
    if verdict["row"].to_pylist() != prospects.rows.to_pylist():
        raise ValueError("the verdicts are not those of these prospects")
    rows: list[list[str]] = []
    urls, statuses = verdict["linkedin_url"].to_pylist(), verdict["status"].to_pylist()
    for i, (url, status) in enumerate(zip(urls, statuses, strict=True)):
        own = [column[i] for column in cells]
        inv = invitations.get(url) if status == STATUS_VALID else None
        if inv is not None and inv.status in _STALE_VERDICTS:
            inv = None
        if inv is None:
            rows.append([*own, "" if status == STATUS_VALID else status, "", "", "", ""])
            continue
        sent = format_timestamp(inv.at) if inv.status in CAPACITY_STATUSES else ""
        accepted = accepted_at.get((inv.sender_id, inv.url))
        rows.append(
            [
                *own,
                inv.status,
                inv.sender_id,
                inv.request_id,
                sent,
                format_timestamp(accepted) if accepted is not None else "",
            ]
        )
    return ExportTable(header=(*header, *EXPORT_COLUMNS), rows=rows)


def write_export(path: Path, table: ExportTable) -> None:
    """Write ``table`` as CSV or XLSX, chosen by the file's suffix."""
    suffix = path.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise ExportError(f"{path}: export to .csv or .xlsx (not {suffix or 'no suffix'!r})")
    try:
        if suffix == ".csv":
            _write_csv(path, table)
        else:
            _write_xlsx(path, table)
    except OSError as exc:
        raise ExportError(f"{path}: cannot write the export: {exc.strerror}") from None


def _write_csv(path: Path, table: ExportTable) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        # The excel dialect ends lines with CRLF, so that a CR inside a cell is quoted too.
        writer = csv.writer(f)
        writer.writerow([escape_cell(c) for c in table.header])
        writer.writerows([escape_cell(c) for c in row] for row in table.rows)


def _write_xlsx(path: Path, table: ExportTable) -> None:
    import openpyxl  # imported here: CSV users do not pay for it
    from openpyxl.cell import WriteOnlyCell

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("export")

    def text(value: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(sheet, value=_NOT_IN_XML.sub("\ufffd", value))
        # openpyxl takes a value starting with "=" for a formula: say it is text.
        cell.data_type = "s"
        if runs_as_formula(value):
            cell.quotePrefix = True
        return cell

    sheet.append([text(c) for c in table.header])
    for row in table.rows:
        sheet.append([text(c) for c in row])
    book.save(path)


def write_chart(path: Path, days: Sequence[Day], timezone: str, title: str = "") -> None:
    """A PNG of invitations and acceptances per day, :data:`CHART_SIZE` pixels."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ExportError(
            "--chart needs matplotlib: pip install 'campaign-runner[chart]'"
        ) from None
    width, height = CHART_SIZE
    figure = Figure(figsize=(width / _CHART_DPI, height / _CHART_DPI), dpi=_CHART_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(days)))
    axes.bar([p - 0.2 for p in positions], [d.invitations for d in days], 0.4, label="invitations")
    axes.bar([p + 0.2 for p in positions], [d.acceptances for d in days], 0.4, label="acceptances")
    step = max(1, len(days) // 10)  # at most about ten date labels
    axes.set_xticks(positions[::step], [d.date.isoformat() for d in days][::step])
    axes.tick_params(axis="x", labelrotation=30, labelsize=8)
    axes.set_ylabel("per day")
    axes.set_xlabel(f"date ({timezone})")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    # Above the bars, beside the title, where it covers none of them.
    axes.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, frameon=False)
    axes.set_title(title or "invitations and acceptances per day", loc="left")
    figure.tight_layout()
    try:
        figure.savefig(path, format="png")
    except OSError as exc:
        raise ExportError(f"{path}: cannot write the chart: {exc.strerror}") from None
