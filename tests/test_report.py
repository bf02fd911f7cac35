"""``campaign-runner report``: counts, acceptances and rates; the export; the chart.

The pure rules run on hand-built invitations with exact figures. The command runs over
results files that real runs against the stand-in wrote, with the acceptances the
stand-in itself recorded, and its figures are counted from the stand-in's own record.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import json
import os
import re
import signal
import statistics
import struct
import subprocess
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import yaml
from click.testing import CliRunner, Result
from conftest import ThreadedFactory
from helpers import (
    ThreadedSandbox,
    latest,
    naughty_strings,
    url,
    write_config,
    write_prospects,
)

from campaign_runner.cli import cli
from campaign_runner.config import ApiSettings, Secret, Settings
from campaign_runner.csvio import escape_cell
from campaign_runner.journal import load_journal
from campaign_runner.ledger import Acceptance, Invitation, WebhookEvent, open_ledger
from campaign_runner.report import (
    Day,
    NoteKey,
    NoteReport,
    SenderReport,
    Tally,
    build_report,
    results_invitations,
)
from campaign_runner.sandbox import SandboxSender, SandboxServer
from campaign_runner.timestamps import format_timestamp, parse_timestamp
from campaign_runner.workspace import ledger_location

DAY = 86_400.0
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
KEY = "sk_live_REPORT_7c1d0e"
SENDERS = (SandboxSender("a", capacity=1000), SandboxSender("b", capacity=1000, premium=False))

pytestmark = pytest.mark.usefixtures("cli_isolated")


# -- the rules, on hand-built invitations ----------------------------------------------


def test_counts_rates_and_days_are_exact() -> None:
    now = T0 + 40 * DAY
    invitations = [
        Invitation(url(1), "a", "sent", "conn_1", T0),  # accepted after 2 days
        Invitation(url(2), "a", "sent", "conn_2", T0),  # 40 days, no acceptance: not accepted
        Invitation(url(3), "a", "sent", "conn_3", now - DAY),  # pending
        Invitation(url(4), "b", "sent", "conn_4", now - 5 * DAY),  # accepted after 1 day
        Invitation(url(5), "b", "unknown", "", now - 3 * DAY),  # accepted: it exists
        Invitation(url(6), "b", "sent", "conn_6", T0 + DAY),  # accepted after 4 days
        Invitation(url(7), "a", "failed", "", T0),
        Invitation(url(8), "", "invalid", "", T0),
        Invitation(url(9), "c", "already_invited", "", T0),  # another campaign's: no sender here
    ]
    acceptances = [
        Acceptance("a", url(1), T0 + 3 * DAY, "evt_late"),  # the earliest of two counts
        Acceptance("a", url(1), T0 + 2 * DAY, "evt_1"),
        Acceptance("b", url(2), T0 + DAY, "evt_other_sender"),  # b never invited person 2
        Acceptance("b", url(4), now - 4 * DAY, "evt_4"),
        Acceptance("b", url(5), now - 2 * DAY, "evt_5"),
        Acceptance("b", url(6), T0 + 5 * DAY, "evt_6"),
    ]
    report = build_report(invitations, acceptances, now=now)

    assert report.by_status == {
        "sent": 5,
        "failed": 1,
        "unknown": 1,
        "invalid": 1,
        "already_invited": 1,
    }
    assert report.total == Tally(sent=5, accepted=3, pending=1, not_accepted=1)
    assert report.total.acceptance_rate == 0.6
    assert report.by_sender == (
        SenderReport("a", {"sent": 3, "failed": 1}, Tally(3, 1, 1, 1)),
        SenderReport("b", {"sent": 2, "unknown": 1}, Tally(2, 2, 0, 0)),
    )
    assert report.median_seconds_to_accept == 2 * DAY
    assert report.unknown_accepted == 1
    assert report.by_note == ()  # no notes known
    assert report.timezone == "UTC"
    assert report.per_day[0] == Day(date(2026, 12, 1), 2, 0)
    assert report.per_day[-1] == Day(date(2027, 1, 9), 1, 0)
    assert len(report.per_day) == 40  # every day between, zeros included
    busy = {
        d.date: (d.invitations, d.acceptances) for d in report.per_day if d != Day(d.date, 0, 0)
    }
    assert busy == {
        date(2026, 12, 1): (2, 0),
        date(2026, 12, 2): (1, 0),
        date(2026, 12, 3): (0, 1),
        date(2026, 12, 6): (0, 1),
        date(2027, 1, 5): (1, 0),
        date(2027, 1, 6): (0, 1),
        date(2027, 1, 9): (1, 0),
    }


def test_a_sent_line_without_a_sender_counts_overall_and_by_no_sender() -> None:
    # A hand-edited results line may leave sender_id empty.
    invitations = [
        Invitation(url(1), "", "sent", "conn_1", T0),
        Invitation(url(2), "a", "sent", "", T0),
    ]
    report = build_report(invitations, [], now=T0 + DAY)
    assert report.total.sent == 2
    assert [s.sender_id for s in report.by_sender] == ["a"]


def test_a_pending_invitation_turns_not_accepted_after_thirty_days() -> None:
    sent = [Invitation(url(1), "a", "sent", "conn_1", T0)]
    assert build_report(sent, [], now=T0 + 30 * DAY).total == Tally(1, 0, 1, 0)
    assert build_report(sent, [], now=T0 + 30 * DAY + 1).total == Tally(1, 0, 0, 1)
    assert build_report([], [], now=T0).total.acceptance_rate is None


def test_days_are_dates_in_the_configured_timezone() -> None:
    late = datetime(2026, 12, 1, 23, 30, tzinfo=UTC).timestamp()  # 00:30 in Berlin
    sent = [Invitation(url(1), "a", "sent", "conn_1", late)]
    berlin = build_report(sent, [], now=late, zone=ZoneInfo("Europe/Berlin"))
    assert berlin.timezone == "Europe/Berlin"
    assert berlin.per_day == (Day(date(2026, 12, 2), 1, 0),)
    assert build_report(sent, [], now=late).per_day == (Day(date(2026, 12, 1), 1, 0),)


def test_by_note_groups_notes_as_they_left_and_only_when_they_differ() -> None:
    now = T0 + 40 * DAY
    invitations = [Invitation(url(n), "a", "sent", f"conn_{n}", T0) for n in (1, 2, 3, 4, 5)]
    accepted = [Acceptance("a", url(n), T0 + DAY, f"evt_{n}") for n in (1, 4)]
    notes = {
        url(1): NoteKey("hi"),
        url(2): NoteKey("hi"),
        url(3): NoteKey("Hi {first_name}", template=True),
        url(4): NoteKey(""),  # e.g. a free sender dropped it
    }  # person 5 is not in the input: in no group
    report = build_report(invitations, accepted, now=now, notes=notes)
    assert report.by_note == (
        NoteReport(NoteKey("hi"), Tally(2, 1, 0, 1)),
        NoteReport(NoteKey(""), Tally(1, 1, 0, 0)),
        NoteReport(NoteKey("Hi {first_name}", template=True), Tally(1, 0, 0, 1)),
    )
    same = {url(n): NoteKey("hi") for n in (1, 2, 3, 4, 5)}
    assert build_report(invitations, accepted, now=now, notes=same).by_note == ()


def test_a_results_file_gives_each_prospect_once(tmp_path: Path) -> None:
    results = tmp_path / "old.results.csv"
    results.write_text(
        "row,linkedin_url,sender_id,status,request_id,error,attempts,timestamp\n"
        f"2,{url(1)},a,pending,,,0,2026-12-01T12:00:00.000Z\n"
        f"2,{url(1)},a,sent,conn_1,,1,2026-12-01T12:00:01.000Z\n"
        f"3,{url(1)},,duplicate,,duplicate of row 2,0,2026-12-01T12:00:00.000Z\n"
        f"4,{url(2)},b,failed,,400,1,yesterday\n"
        "5,,,invalid,,not a URL,0,2026-12-01T12:00:00.000Z\n",
        encoding="utf-8",
    )
    assert results_invitations(load_journal(results), now=T0) == [
        Invitation(url(1), "a", "sent", "conn_1", T0 + 1),
        Invitation(url(2), "b", "failed", "", T0),  # an unreadable date: now
        Invitation("", "", "invalid", "", T0),
    ]


# -- the command, over real runs against the stand-in -----------------------------------


@pytest.fixture
def stand_in(threaded_sandbox: ThreadedFactory) -> ThreadedFactory:
    """Start threaded stand-ins: ``stand_in(**config)`` -> ThreadedSandbox (started)."""

    def start(**fields: Any) -> ThreadedSandbox:
        fields.setdefault("api_key", KEY)
        fields.setdefault("senders", SENDERS)
        threaded: ThreadedSandbox = threaded_sandbox(**fields)
        return threaded

    return start


def invoke(args: list[str], key: str | None = KEY) -> Result:
    return CliRunner().invoke(cli, args, env={"SENDPILOT_API_KEY": key}, catch_exceptions=False)


def report_json(args: list[str]) -> dict[str, Any]:
    result = invoke(["report", *args, "--json"])
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def config_for(tmp_path: Path, server: SandboxServer, **extra: Any) -> Path:
    """The stand-in's two senders, b known to be free (so that its notes are known dropped)."""
    path = write_config(
        tmp_path / "campaign.yaml", server.base_url, [("a", 1000), ("b", 1000)], **extra
    )
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["senders"][0]["premium"], config["senders"][1]["premium"] = True, False
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def run(input_path: Path, config: Path, results: Path, *more: str) -> Result:
    args = ["run", str(input_path), "--config", str(config), "--results", str(results)]
    result = invoke([*args, "--yes", "--no-progress", *more])
    assert result.exit_code in (0, 3), result.output
    return result


def workspace_ledger() -> str:
    """Where the workspace of KEY keeps its ledger (the stand-in plays SendPilot here)."""
    location = ledger_location(Settings(api=ApiSettings(api_key=Secret(KEY))), rehearsal=False)
    assert location is not None
    return location


def record_acceptances(threaded: ThreadedSandbox) -> dict[tuple[str, str], float]:
    """The acceptances the stand-in made, recorded in the workspace ledger as the webhook
    receiver records them; returns them by (sender, URL)."""
    threaded.drain_webhooks()
    state = threaded.server.state
    by_request = {i.request_id: i for i in state.invitations}
    accepted = {
        (by_request[rid].sender_id, by_request[rid].linkedin_url): at
        for rid, at in state.accepted.items()
    }
    with open_ledger(workspace_ledger()) as ledger:
        for (sender, who), at in accepted.items():
            event = WebhookEvent(
                f"evt_{sender}_{who}", "connection_request.accepted", at + 1, at, sender, who, "{}"
            )
            assert ledger.record_event(event)
    return accepted


def test_report_json_counts_a_real_run_with_the_stand_ins_acceptances(
    stand_in: Any, tmp_path: Path
) -> None:
    threaded = stand_in(accept_share=0.5, accept_delay_seconds=0.0, seed=7)
    server = threaded.server
    rows = [(url(n), "hello" if n % 3 else "") for n in range(12)] + [("not a url", "")]
    input_path = write_prospects(tmp_path / "leads.csv", rows)
    results = tmp_path / "leads.results.csv"
    run(input_path, config_for(tmp_path, server), results)
    accepted = record_acceptances(threaded)

    payload = report_json([str(results), "--input", str(input_path)])

    invitations = server.state.invitations
    assert len(invitations) == 12
    assert 0 < len(accepted) < 12  # the seed gives some acceptances, not all
    assert payload["by_status"] == {"sent": 12, "invalid": 1}
    assert (payload["sent"], payload["accepted"]) == (12, len(accepted))
    assert payload["acceptance_rate"] == len(accepted) / 12
    assert (payload["pending"], payload["not_accepted"]) == (12 - len(accepted), 0)
    sent_by = Counter(i.sender_id for i in invitations)
    accepted_by = Counter(sender for sender, _ in accepted)
    assert payload["by_sender"] == {
        s: {
            "by_status": {"sent": sent_by[s]},
            "sent": sent_by[s],
            "accepted": accepted_by[s],
            "acceptance_rate": accepted_by[s] / sent_by[s],
            "pending": sent_by[s] - accepted_by[s],
            "not_accepted": 0,
        }
        for s in ("a", "b")
    }
    # By note as it left: the stand-in's record of what each invitation said (b is free).
    said = {i.linkedin_url: i.note or "" for i in invitations}
    groups = Counter(said.values())
    took = Counter(said[who] for _, who in accepted)
    assert len(groups) == 2
    assert sorted((n["note"], n["sent"], n["accepted"]) for n in payload["by_note"]) == sorted(
        (note, groups[note], took[note]) for note in groups
    )
    left = {who: parse_timestamp(line["timestamp"]) for who, line in latest(results).items()}
    waits = [at - left[who] for (_, who), at in accepted.items()]
    assert payload["median_seconds_to_accept"] == statistics.median(waits)
    today = datetime.now(UTC).date().isoformat()
    assert payload["timezone"] == "UTC"
    assert payload["per_day"] == [{"date": today, "invitations": 12, "acceptances": len(accepted)}]
    assert payload["left"]["to_send"] == 0
    assert payload["workspace"] == workspace_ledger()


def test_by_note_puts_the_rows_a_template_wrote_under_the_template(
    stand_in: Any, tmp_path: Path
) -> None:
    threaded = stand_in(accept_share=1.0, accept_delay_seconds=0.0)
    template = "Hi {first_name}, glad to connect"
    rows = [(url(n), "Own words" if n < 3 else "", f"P{n}") for n in range(8)]
    input_path = write_prospects(
        tmp_path / "leads.csv", rows, ("linkedin_url", "note", "first_name")
    )
    results = tmp_path / "leads.results.csv"
    config = config_for(tmp_path, threaded.server)
    run(input_path, config, results, "--note-template", template)
    record_acceptances(threaded)

    payload = report_json(
        [
            str(results),
            "--input",
            str(input_path),
            "--note-template",
            template,
            "--config",
            str(config),
        ]
    )

    # The stand-in's record: what each invitation said, grouped as the report groups it.
    def group(note: str | None) -> tuple[str, bool]:
        if not note:
            return ("", False)  # b is free: nothing was said
        return ("Own words", False) if note == "Own words" else (template, True)

    expected = Counter(group(i.note) for i in threaded.server.state.invitations)
    assert len(expected) == 3
    got = {(n["note"], n["template"]): (n["sent"], n["accepted"]) for n in payload["by_note"]}
    assert got == {key: (count, count) for key, count in expected.items()}


def test_report_text_says_the_figures(stand_in: Any, tmp_path: Path) -> None:
    threaded = stand_in(accept_share=1.0, accept_delay_seconds=0.0)
    input_path = write_prospects(tmp_path / "leads.csv", [(url(n), "") for n in range(4)])
    results = tmp_path / "leads.results.csv"
    config = config_for(tmp_path, threaded.server)
    run(input_path, config, results, "--limit", "3")
    record_acceptances(threaded)

    result = invoke(["report", str(results), "--input", str(input_path), "--config", str(config)])

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"report on results {results}"
    assert "people by status: 3 sent" in lines
    assert "invitations: sent 3, accepted 3 (100.0%), pending 0, not accepted 0" in lines
    assert lines[-1].startswith(f"left to send from {input_path}: 1: 1 can go now")
    left = report_json([str(results), "--input", str(input_path), "--config", str(config)])["left"]
    assert parse_timestamp(left["next_send_at"]) <= time.time() + 1  # now: it can go now
    assert left["next_send_why"] == ""
    assert "by note" not in result.stdout  # one note for all (none): nothing to compare
    assert result.stderr == ""
    # Without the config, no sender plans what is left, and that is said.
    result = invoke(["report", str(results), "--input", str(input_path)])
    assert result.stdout.splitlines()[-1].endswith("1 later: no usable sender can send them")
    assert "the config names no senders" in result.stderr


def test_report_without_results_is_the_whole_workspace(stand_in: Any, tmp_path: Path) -> None:
    threaded = stand_in()
    config = config_for(tmp_path, threaded.server)
    first = write_prospects(tmp_path / "q3.csv", [url(n) for n in range(3)])
    second = write_prospects(tmp_path / "q4.csv", [url(n) for n in range(2, 6)])
    run(first, config, tmp_path / "q3.results.csv")
    run(second, config, tmp_path / "q4.results.csv")  # person 2 is q3's: already invited

    payload = report_json(["--config", str(config)])

    assert payload["source"] == f"workspace ledger {workspace_ledger()}"
    assert len(threaded.server.state.invitations) == 6
    assert payload["by_status"] == {"sent": 6}
    assert payload["sent"] == 6


def test_report_refuses_what_it_cannot_use(stand_in: Any, tmp_path: Path) -> None:
    real = tmp_path / "real.results.csv"
    real.write_text(
        "row,linkedin_url,sender_id,status,request_id,error,attempts,timestamp,note_delivered,api\n"
        f"2,{url(1)},a,sent,conn_1,,1,2026-12-01T12:00:00.000Z,,sendpilot\n",
        encoding="utf-8",
    )
    rehearsed = tmp_path / "rehearsal.results.csv"
    rehearsed.write_text(real.read_text().replace("sendpilot", "sandbox"), encoding="utf-8")
    cases = [
        (["report", str(real), "str(rehearsed)"], "no such results file"),
        (["report", str(real), str(rehearsed)], "report on them separately"),
        (["report", str(real), "--sandbox"], "holds real invitations"),
        (["report", str(real), "--export", "out.csv"], "--input"),
        (["report", str(real), "--chart", "chart.svg"], "PNG"),
        (["report", str(real), "--input", str(real), "--export", "out.txt"], ".csv or .xlsx"),
    ]
    for args, said in cases:
        result = invoke(args)
        assert result.exit_code == 2, (args, result.output)
        assert said in result.stderr, (args, result.stderr)
    # No key, no workspace.database, no results named: which workspace is it?
    result = invoke(["report"], key=None)
    assert result.exit_code == 2
    assert "which workspace?" in result.stderr


# -- the export ---------------------------------------------------------------------------

RISKY = {  # cell -> what the CSV holds
    "=1+1": "'=1+1",
    "+A1": "'+A1",
    "-2": "-2",  # a plain number: it cannot run, and stays a number
    "-2+3": "'-2+3",
    "@SUM(A1:A9)": "'@SUM(A1:A9)",
    "\tTAB": "'\tTAB",
    "\r=CR": "'\r=CR",
    '=HYPERLINK("http://x.example","y")': '\'=HYPERLINK("http://x.example","y")',
}


@pytest.fixture
def exported(stand_in: Any, tmp_path: Path) -> tuple[Path, Path, list[str], Any]:
    """A campaign whose first names are every risky and naughty string, two of them sent and
    accepted: its input, results, the names and the stand-in."""
    threaded = stand_in(accept_share=1.0, accept_delay_seconds=0.0)
    names = [*RISKY, *naughty_strings()]
    rows = [(url(n), name, "=cmd|' /C calc'!A0") for n, name in enumerate(names)]
    rows.append(("not a url", "=1+2", ""))
    input_path = tmp_path / "leads.csv"
    with input_path.open("w", encoding="utf-8", newline="") as f:
        # Every cell quoted: a bare CR in a cell must not end its line.
        writer = csv.writer(f, quoting=csv.QUOTE_ALL)
        writer.writerows([("linkedin_url", "first_name", "@company"), *rows])
    results = tmp_path / "leads.results.csv"
    run(input_path, config_for(tmp_path, threaded.server), results, "--limit", "2")
    record_acceptances(threaded)
    return input_path, results, names, threaded


HEADER = [
    "linkedin_url",
    "first_name",
    "@company",
    *(["status", "sender_id", "request_id"]),
    "sent_at",
    "accepted_at",
]


def would_run(cell: str) -> bool:
    """The risky-cell rule as the spreadsheets apply it, spelled out again on purpose: a
    test of the project's one definition must not use it to compute what it expects."""
    number = re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", cell)
    return cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not number


def expected_rows(names: list[str], threaded: Any, results: Path) -> list[list[str]]:
    """Each input row's own cells and campaign columns: the stand-in's record, and when
    the results file says each invitation left."""
    state = threaded.server.state
    left = {who: line["timestamp"] for who, line in latest(results).items()}
    sent = {i.linkedin_url: i for i in state.invitations}
    rows = []
    for n, name in enumerate(names):
        inv = sent.get(url(n))
        ours = ["", "", "", "", ""]
        if inv is not None:
            accepted_at = format_timestamp(state.accepted[inv.request_id])
            ours = ["sent", inv.sender_id, inv.request_id, left[inv.linkedin_url], accepted_at]
        rows.append([url(n), name, "=cmd|' /C calc'!A0", *ours])
    rows.append(["not a url", "=1+2", "", "invalid", "", "", "", ""])
    return rows


def test_the_csv_export_reads_back_with_no_cell_a_spreadsheet_would_run(
    exported: tuple[Path, Path, list[str], Any], tmp_path: Path
) -> None:
    input_path, results, names, threaded = exported
    out = tmp_path / "leads.export.csv"
    result = invoke(["report", str(results), "--input", str(input_path), "--export", str(out)])
    assert result.exit_code == 0, result.output
    assert f"export: {out} ({len(names) + 1} rows)" in result.stdout

    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with the mark
    with out.open(encoding="utf-8-sig", newline="") as f:
        header, *lines = list(csv.reader(f))
    assert header == [escape_cell(h) for h in HEADER] == [*HEADER[:2], "'@company", *HEADER[3:]]
    expected = expected_rows(names, threaded, results)
    assert len(lines) == len(expected)
    for line, want in zip(lines, expected, strict=True):
        assert line == [escape_cell(c) for c in want]
    # The rule itself, spelled out: no cell starts a formula.
    assert [line[1] for line in lines[: len(RISKY)]] == list(RISKY.values())
    for line in lines:
        for cell in line:
            assert not would_run(cell), cell


def test_the_xlsx_export_holds_every_cell_as_text(
    exported: tuple[Path, Path, list[str], Any], tmp_path: Path
) -> None:
    input_path, results, names, threaded = exported
    out = tmp_path / "leads.export.xlsx"
    result = invoke(["report", str(results), "--input", str(input_path), "--export", str(out)])
    assert result.exit_code == 0, result.output

    book = openpyxl.load_workbook(out)
    sheet = book.active
    assert sheet is not None
    cells = list(sheet.iter_rows())
    expected = [HEADER, *expected_rows(names, threaded, results)]
    assert len(cells) == len(expected)
    # What XML 1.0 cannot hold, spelled out from its Char production.
    control = {chr(c) for c in [*range(0, 9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF]}
    for row, want in zip(cells, expected, strict=True):
        for cell, value in zip(row, want, strict=True):
            if value == "":
                assert cell.value is None
                continue
            shown = "".join("\ufffd" if c in control else c for c in value)
            assert cell.value == shown.replace("\r\n", "\n").replace("\r", "\n")
            assert cell.data_type == "s"  # never a formula, never a number
            assert cell.quotePrefix is would_run(value), value
    with zipfile.ZipFile(out) as z:
        assert b"<f>" not in z.read("xl/worksheets/sheet1.xml")


# -- the chart ----------------------------------------------------------------------------


def test_the_chart_is_a_png_of_the_days(stand_in: Any, tmp_path: Path) -> None:
    import matplotlib.image

    threaded = stand_in(accept_share=1.0, accept_delay_seconds=0.0)
    input_path = write_prospects(tmp_path / "leads.csv", [url(n) for n in range(3)])
    results = tmp_path / "leads.results.csv"
    run(input_path, config_for(tmp_path, threaded.server), results)
    record_acceptances(threaded)
    chart = tmp_path / "days.png"

    result = invoke(["report", str(results), "--chart", str(chart)])

    assert result.exit_code == 0, result.output
    assert f"chart: {chart}" in result.stdout
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # IHDR, the first chunk
    assert (data[12:16], width, height) == (b"IHDR", 800, 400)
    pixels = matplotlib.image.imread(chart)
    assert pixels.shape[:2] == (400, 800)
    assert len({tuple(p) for p in pixels.reshape(-1, pixels.shape[2])[::97]}) > 2  # drawn


def test_the_chart_without_matplotlib_is_one_line_and_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "no-matplotlib" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("not installed here")\n')
    results = tmp_path / "old.results.csv"
    results.write_text(
        "row,linkedin_url,sender_id,status,request_id,error,attempts,timestamp\n"
        f"2,{url(1)},a,sent,conn_1,,1,2026-12-01T12:00:00.000Z\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(blocker.parent)}
    env.pop("SENDPILOT_API_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "campaign_runner", "report", str(results), "--chart", "c.png"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert errors == ["Error: --chart needs matplotlib: pip install 'campaign-runner[chart]'"]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "c.png").exists()


# -- end to end: the stand-in's webhooks -> `campaign-runner webhooks` -> `report` --------

SECRET = "whsec_" + base64.b64encode(b"the report's end-to-end secret").decode()


@contextlib.contextmanager
def receiver(tmp_path: Path) -> Iterator[str]:
    """A real `campaign-runner webhooks` process for KEY's workspace: yields its URL, and
    stops it (SIGTERM) when done."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "SENDPILOT_API_KEY": KEY,
        "SENDPILOT_WEBHOOK_SECRET": SECRET,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "campaign_runner", "webhooks", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        banner = ""
        while "press Ctrl-C to stop" not in banner:
            line = process.stdout.readline()
            assert line, (
                f"webhooks exited early: {banner}{process.stderr and process.stderr.read()}"
            )
            banner += line
        yield banner.split("receiving SendPilot webhooks at ")[1].split()[0]
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr


@pytest.mark.slow
def test_end_to_end_the_stand_ins_webhooks_through_the_receiver_into_the_report(
    stand_in: Any, tmp_path: Path
) -> None:
    with receiver(tmp_path) as hook:
        threaded = stand_in(
            accept_share=0.5,
            accept_delay_seconds=0.0,
            seed=3,
            webhook_url=hook,
            webhook_secret=SECRET,
            webhook_signing="standard",
            webhook_profile_urls="varied",  # the events write profiles in other forms
        )
        input_path = write_prospects(tmp_path / "leads.csv", [url(n) for n in range(10)])
        results = tmp_path / "leads.results.csv"
        run(input_path, config_for(tmp_path, threaded.server), results)
        threaded.drain_webhooks()
        state = threaded.server.state
        # Every event was answered 2xx: each was durable in the ledger before its answer.
        assert state.counters[("webhook", "delivered")] == 10 + len(state.accepted)

    payload = report_json([str(results)])

    by_request = {i.request_id: i for i in state.invitations}
    accepted_by = Counter(by_request[rid].sender_id for rid in state.accepted)
    sent_by = Counter(i.sender_id for i in state.invitations)
    assert 0 < len(state.accepted) < 10
    assert payload["by_status"] == {"sent": 10}
    assert (payload["sent"], payload["accepted"]) == (10, len(state.accepted))
    assert payload["acceptance_rate"] == len(state.accepted) / 10
    assert {s: v["accepted"] for s, v in payload["by_sender"].items()} == {
        s: accepted_by[s] for s in sent_by
    }
    assert sum(d["acceptances"] for d in payload["per_day"]) == len(state.accepted)
    assert payload["workspace"] == workspace_ledger()
