"""The results journal: durable appends, tolerant reading, lock, resume state."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from helpers import naughty_strings
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_runner.csvio import escape_cell
from campaign_runner.errors import JournalDisplacedError, JournalError, JournalLockedError
from campaign_runner.journal import (
    FINAL_STATUSES,
    JOURNAL_COLUMNS,
    ROW_VERDICTS,
    STATUSES,
    Journal,
    JournalRecord,
    format_timestamp,
    load_journal,
)
from campaign_runner.journal import format as journal_format
from campaign_runner.journal import reader as journal_reader
from campaign_runner.journal import state as journal_state
from campaign_runner.journal import writer as journal_writer
from campaign_runner.journal.format import LineEncoder

HEADER = ",".join(JOURNAL_COLUMNS) + "\n"
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def url(n: int) -> str:
    return f"https://www.linkedin.com/in/person-{n}"


def rec(n: int, status: str = "sent", **kw: object) -> JournalRecord:
    fields: dict[str, object] = {"row": n + 1, "linkedin_url": url(n), "sender_id": "s1"}
    fields.update(kw)
    return JournalRecord(status=status, **fields)  # type: ignore[arg-type]


def fixed_clock(t: float = T0) -> list[float]:
    return [t]


def open_journal(path: Path, now: list[float] | None = None, **kw: object) -> Journal:
    clock = now if now is not None else fixed_clock()
    return Journal.open(path, clock=lambda: clock[0], **kw)  # type: ignore[arg-type]


def roundtrip(tmp_path: Path, records: list[JournalRecord]) -> list[dict[str, object]]:
    path = tmp_path / "results.csv"
    with open_journal(path) as journal:
        journal.append_many(records)
    state = load_journal(path)
    assert state.lines == len(records)
    assert not state.repair
    return state.latest.to_dict("records")


# --------------------------------------------------------------------------- round trip

AWKWARD = [
    "plain",
    "comma, inside",
    'a "quoted" word',
    "two\nlines",
    "crlf\r\nline",
    "trailing newline\n",
    "  spaces  ",
    "emoji 👋🏽 and zwj 👩‍👩‍👧",
    "RTL עברית العربية",
    "NULL",
    "NaN",
    "nan",
    "True",
    "None",
    "N/A",
    "",
    "0",
    "-3",
    '=HYPERLINK("http://x")',
    "+1 555",
    "-cmd",
    "@SUM(A1)",
    "\tTabbed",
    "\rcarriage",
]


@pytest.mark.parametrize("status", STATUSES)
def test_every_status_round_trips(tmp_path: Path, status: str) -> None:
    [got] = roundtrip(tmp_path, [rec(1, status, request_id="conn_1", error="why", attempts=3)])
    assert (got["status"], got["request_id"], got["error"], got["attempts"]) == (
        status,
        "conn_1",
        "why",
        3,
    )


@pytest.mark.parametrize("value", AWKWARD)
def test_awkward_values_round_trip(tmp_path: Path, value: str) -> None:
    [got] = roundtrip(
        tmp_path, [rec(1, "failed", sender_id=value or "s", request_id=value, error=value)]
    )
    assert got["error"] == value
    assert got["request_id"] == value
    assert got["sender_id"] == (value or "s")


def test_blns_error_texts_round_trip(tmp_path: Path) -> None:
    texts = naughty_strings()
    records = [rec(i, "failed", error=t) for i, t in enumerate(texts)]
    got = roundtrip(tmp_path, records)
    assert [g["error"] for g in got] == texts


def test_extra_columns_round_trip_and_default_empty(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path, extra_columns=("note_delivered",)) as journal:
        journal.append(rec(1, extra={"note_delivered": "no"}))
        journal.append(rec(2))
        with pytest.raises(ValueError, match="nope"):
            journal.append(rec(3, extra={"nope": "x"}))
    latest = load_journal(path).latest
    assert list(latest.columns) == [*JOURNAL_COLUMNS, "note_delivered"]
    assert latest["note_delivered"].tolist() == ["no", ""]


def test_unknown_status_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="delivered"):
        rec(1, "delivered")


def test_final_statuses_exclude_pending_and_deferred() -> None:
    # Neither says what happened to the prospect: pending may have left, deferred did not.
    assert set(STATUSES) - FINAL_STATUSES == {"pending", "deferred"}


def test_timestamp_comes_from_the_injected_clock(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path, now=[T0 + 0.1239]) as journal:
        journal.append(rec(1))
        journal.append(rec(2, timestamp="2020-01-01T00:00:00.000Z"))
    stamps = load_journal(path).latest["timestamp"].tolist()
    assert stamps == ["2027-01-15T08:00:00.123Z", "2020-01-01T00:00:00.000Z"]


def test_file_format_is_utf8_lf_and_minimal_quoting(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path) as journal:
        journal.append(rec(1, "failed", error='bad, "x"\nnext', sender_id="ü"))
    raw = path.read_bytes()
    assert raw == (
        HEADER + '2,https://www.linkedin.com/in/person-1,ü,failed,,"bad, ""x""\nnext",0,'
        "2027-01-15T08:00:00.000Z\n"
    ).encode("utf-8")


def careful_encoding(journal: LineEncoder, records: list[JournalRecord]) -> bytes:
    return journal_format.encode_rows([journal._cells(r) for r in records])


@pytest.mark.parametrize("extra", [(), ("note_delivered",), ("note_delivered", "=odd")])
def test_fast_encoder_writes_what_the_careful_one_writes(extra: tuple[str, ...]) -> None:
    texts = naughty_strings()
    texts += AWKWARD
    urls = ["https://x.test/a,b", 'https://x.test/"q"', "https://x.test/\n", "http://x.test"]
    urls += ["=cmd", "-1", "", "https://www.linkedin.com/in/ok"]
    stamps = ["", "", "2027-01-15 08:00:10", "-1", "a,b", "=now()", "\t"]
    # Clock readings around second boundaries (and before 1970) exercise the stamp cache.
    readings = [T0, T0 + 0.9995, T0 + 1.0004, T0 + 1.5, -0.5, 0.0, T0 + 0.001, T0]
    records = [
        JournalRecord(
            row=(i % 7) - 3,
            linkedin_url=urls[i % len(urls)],
            sender_id=text,
            status=STATUSES[i % len(STATUSES)],
            request_id=texts[-1 - i % len(texts)],
            error=text,
            attempts=i % 5 - 1,
            timestamp=stamps[i % len(stamps)],
            extra={name: texts[(i + k) % len(texts)] for k, name in enumerate(extra) if i % 3},
        )
        for i, text in enumerate(texts)
    ]
    columns = (*JOURNAL_COLUMNS, *extra)

    def encoder() -> LineEncoder:
        ticks = iter(readings * len(records))
        return LineEncoder(Path("x"), columns, lambda: next(ticks))

    one_by_one = encoder()
    fast = b"".join(one_by_one.encode([r]) for r in records)
    assert fast == careful_encoding(encoder(), records)
    assert encoder().encode(records) == fast  # one batch or one by one: same bytes


@given(st.lists(st.floats(min_value=-1e9, max_value=4e9, allow_nan=False), max_size=20))
def test_cached_timestamp_equals_format_timestamp(readings: list[float]) -> None:
    journal = _encoder()  # one journal, so its per-second cache carries over between readings
    for epoch in [*readings, *(r + 0.0005 for r in readings)]:
        assert journal._stamp(epoch) == format_timestamp(epoch)


# --------------------------------------------------------------------------- escaping


@pytest.mark.parametrize("value", ["=1+1", "+cmd", "-cmd", "@x", "\tx", "\rx"])
def test_cells_a_spreadsheet_would_run_are_escaped_on_disk(tmp_path: Path, value: str) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path) as journal:
        journal.append(rec(1, "failed", sender_id=value, error=value, request_id=value))
    # Bytes, not text mode: reading text would turn a bare "\r" into "\n".
    line = path.read_bytes().decode("utf-8").split("\n", 1)[1]
    assert value not in line.replace("'" + value, "")  # every occurrence is escaped
    got = load_journal(path).latest.iloc[0]
    assert (got["sender_id"], got["error"], got["request_id"]) == (value, value, value)


def test_plain_numbers_are_not_escaped(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path) as journal:
        journal.append(rec(1, "failed", error="-3"))
    assert ",-3," in path.read_text(encoding="utf-8")


@given(st.text(max_size=30))
def test_load_undoes_exactly_what_escape_cell_did(value: str) -> None:
    if value.startswith("'") and escape_cell(value[1:]) == value:
        return  # the one documented ambiguity: an apostrophe the writer could have added
    escaped = pa.array([escape_cell(value)])
    assert journal_reader._unescape(escaped).to_pylist() == [value]


# --------------------------------------------------------------------------- latest wins


def test_latest_line_per_url_wins_in_file_order(tmp_path: Path) -> None:
    got = roundtrip(
        tmp_path,
        [rec(1, "pending"), rec(2, "pending"), rec(1, "unknown"), rec(2, "failed"), rec(1, "sent")],
    )
    assert [(g["linkedin_url"], g["status"]) for g in got] == [
        (url(2), "failed"),
        (url(1), "sent"),
    ]


def test_row_verdicts_never_hide_a_send_outcome(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path) as journal:
        journal.append(rec(1, "pending"))
        journal.append(rec(1, "sent"))
        # Row 9 repeats person-1; row 10 repeats person-2, which was never sent.
        journal.append(JournalRecord(9, url(1), "", "duplicate", error="same as row 2"))
        journal.append(JournalRecord(10, url(2), "", "duplicate", error="same as row 3"))
        journal.append(JournalRecord(11, "", "", "invalid", error="no URL"))
        journal.append(JournalRecord(12, "", "", "invalid", error="no URL"))
    state = load_journal(path)
    assert dict(state.status_by_url()) == {url(1): "sent"}
    statuses = dict(zip(state.latest["row"], state.latest["status"], strict=True))
    assert statuses == {2: "sent", 10: "duplicate", 11: "invalid", 12: "invalid"}
    assert sorted(state.problems["row"].tolist()) == [9, 10, 11, 12]


def test_pending_lists_rows_left_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path) as journal:
        journal.append_many(
            [rec(1, "pending"), rec(2, "pending"), rec(2, "sent"), rec(3, "pending")]
        )
    pending = load_journal(path).pending()
    assert pending["linkedin_url"].tolist() == [url(1), url(3)]
    assert pending["row"].tolist() == [2, 4]


# --------------------------------------------------------------------------- resume lookups


def test_lookup_gives_each_urls_latest_send_outcome_and_attempts(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path) as journal:
        journal.append_many(
            [
                rec(1, "pending", attempts=0),
                rec(1, "unknown", attempts=1),
                rec(2, "failed", attempts=2),
                rec(1, "sent", attempts=2),
                # Verdicts judge a row: they neither hide person-1's outcome nor give
                # person-3 (only ever judged) a status.
                JournalRecord(9, url(1), "", "duplicate", error="same as row 2", attempts=7),
                JournalRecord(10, url(3), "", "duplicate", error="same as row 4"),
                JournalRecord(11, "", "", "invalid", error="no URL"),
                rec(4, "deferred", attempts=1),
            ]
        )
    asked = [url(3), url(1), url(5), url(2), None, url(4), url(1), ""]
    state = load_journal(path)
    statuses, attempts = state.lookup(pa.chunked_array([asked[:3], asked[3:]], pa.string()))
    assert isinstance(statuses, pa.Array) and isinstance(attempts, pa.Array)
    assert statuses.to_pylist() == ["", "sent", "", "failed", "", "deferred", "sent", ""]
    assert attempts.to_pylist() == [0, 2, 0, 2, 0, 1, 2, 0]
    assert dict(state.status_by_url()) == {url(1): "sent", url(2): "failed", url(4): "deferred"}


def test_lookup_on_a_missing_journal_knows_nothing(tmp_path: Path) -> None:
    statuses, attempts = load_journal(tmp_path / "missing.csv").lookup(pa.array([url(1)]))
    assert (statuses.to_pylist(), attempts.to_pylist()) == ([""], [0])


LINE = st.tuples(st.integers(0, 4), st.sampled_from(STATUSES), st.integers(0, 3))


@settings(max_examples=60, deadline=None)
@given(st.lists(LINE, max_size=25))
def test_arrow_resume_answers_agree_with_the_pandas_latest(
    lines: list[tuple[int, str, int]],
) -> None:
    # `latest` is the reference; lookup, pending and problems must not need it.
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results.csv"
        with open_journal(path) as journal:
            journal.append_many(
                [
                    JournalRecord(n + 2, url(n) if n else "", "s", status, attempts=tries)
                    for n, status, tries in lines
                ]
            )
        state = load_journal(path)
        asked = [url(n) for n in range(6)]
        statuses, attempts = state.lookup(pa.array(asked))
        pending = state.pending()
        problems = state.problems
        assert "latest" not in vars(state)
        latest = state.latest
        outcomes = latest[(latest["linkedin_url"] != "") & ~latest["status"].isin(ROW_VERDICTS)]
        expected = dict(zip(outcomes["linkedin_url"], outcomes["status"], strict=True))
        tries_of = dict(zip(outcomes["linkedin_url"], outcomes["attempts"], strict=True))
        assert statuses.to_pylist() == [expected.get(u, "") for u in asked]
        assert attempts.to_pylist() == [tries_of.get(u, 0) for u in asked]
        assert dict(state.status_by_url()) == expected
        reference = latest[latest["status"] == "pending"].reset_index(drop=True)
        pd.testing.assert_frame_equal(pending, reference)
        assert len(problems) == len(
            {(n, s, url(n) if n else "") for n, s, _ in lines if s in ROW_VERDICTS}
        )


def test_resume_questions_never_build_the_pandas_latest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "results.csv"
    now = fixed_clock()
    with open_journal(path, now=now) as journal:
        journal.append_many([rec(1, "pending"), rec(2, "sent"), rec(3, "pending")])
        journal.append(JournalRecord(9, "", "", "invalid", error="no URL"))
        journal.append(rec(3, "unknown"))
    state = load_journal(path)
    built: list[int] = []
    real = journal_state._latest

    def counting(table: pa.Table) -> pd.DataFrame:
        built.append(table.num_rows)
        return real(table)

    monkeypatch.setattr(journal_state, "_latest", counting)
    assert state.lookup(pa.array([url(1), url(3)]))[0].to_pylist() == ["pending", "unknown"]
    assert state.capacity_lines().used(T0) == {"s1": 2}
    assert state.capacity_lines().next_renewal(T0, 60) == T0 + 60
    assert state.pending()["linkedin_url"].tolist() == [url(1)]
    assert state.problems["row"].tolist() == [9]
    assert state.columns == JOURNAL_COLUMNS
    assert built == []
    assert "latest" not in vars(state)
    assert len(state.latest) == 4
    assert len(state.latest) == 4  # built once, then kept
    assert built == [5]


def test_missing_or_empty_file_is_an_empty_state(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    for name in ("missing.csv", "empty.csv"):
        state = load_journal(tmp_path / name)
        assert (state.lines, state.repair, len(state.latest)) == (0, "", 0)
        assert list(state.latest.columns) == list(JOURNAL_COLUMNS)
        assert state.capacity_lines().used(0) == {}
        assert state.pending().empty


# --------------------------------------------------------------------------- hand-written


def test_hand_written_file_with_few_columns_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_bytes(
        "\ufeffLinkedIn_URL , Status,Campaign\r\n"
        "https://www.linkedin.com/in/a,Sent,spring\r\n"
        "\r\n"
        "https://www.linkedin.com/in/b, FAILED ,spring\r\n".encode()
    )
    state = load_journal(path)
    latest = state.latest
    assert list(latest.columns) == [*JOURNAL_COLUMNS, "Campaign"]
    assert latest["status"].tolist() == ["sent", "failed"]
    assert latest["row"].tolist() == [0, 0]
    assert latest["attempts"].tolist() == [0, 0]
    assert latest["request_id"].tolist() == ["", ""]
    assert latest["Campaign"].tolist() == ["spring", "spring"]


def test_opening_a_hand_written_file_adds_missing_columns_and_keeps_values(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text(
        "status,linkedin_url,campaign\nsent,https://x.test/a,=spring\nfailed,https://x.test/b,q\n",
        encoding="utf-8",
    )
    with open_journal(path, extra_columns=("note_delivered",)) as journal:
        assert journal.columns == (*JOURNAL_COLUMNS, "campaign", "note_delivered")
        journal.append(JournalRecord(4, "https://x.test/c", "s1", "sent"))
    text = path.read_text(encoding="utf-8")
    assert text.startswith(",".join(journal.columns) + "\n")
    assert "'=spring" in text  # rewritten cells are escaped too
    latest = load_journal(path).latest
    assert latest["status"].tolist() == ["sent", "failed", "sent"]
    assert latest["campaign"].tolist() == ["=spring", "q", ""]
    assert not list(tmp_path.glob(".*.tmp"))


def test_existing_header_order_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    order = ["status", *[c for c in JOURNAL_COLUMNS if c != "status"], "mine"]
    path.write_text(",".join(order) + "\n", encoding="utf-8")
    with open_journal(path) as journal:
        journal.append(rec(1, "failed", error="e"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(order)
    assert lines[1].startswith("failed,2,")
    assert load_journal(path).latest["error"].tolist() == ["e"]


def test_deleting_lines_by_hand_reopens_rows(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path) as journal:
        journal.append_many([rec(1, "failed"), rec(2, "sent")])
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0] + lines[2], encoding="utf-8")
    assert dict(load_journal(path).status_by_url()) == {url(2): "sent"}


# --------------------------------------------------------------------------- torn lines

LAST = rec(7, "failed", error='multi\nline, "quoted" 👋', request_id="conn_7")


def torn_cuts() -> list[int]:
    encoded = open_journal_bytes([LAST])
    # Every cut before the last field: the record lacks fields, a status or a closing quote.
    return [1, 5, 20, encoded.index(b"\n") + 1, encoded.rindex(b",0,") + 1]


def open_journal_bytes(records: list[JournalRecord]) -> bytes:
    return _encoder().encode(records)


def _encoder() -> LineEncoder:
    return LineEncoder(Path("x"), JOURNAL_COLUMNS, lambda: T0)


@pytest.mark.parametrize("cut", torn_cuts())
def test_torn_last_line_is_ignored_then_cut_on_open(tmp_path: Path, cut: int) -> None:
    # As the runner writes: a durable `pending` line, then the outcome, torn by a crash.
    path = tmp_path / "results.csv"
    with open_journal(path) as journal:
        journal.append_many([rec(1, "sent"), rec(2, "pending"), rec(7, "pending")])
    with path.open("ab") as f:
        f.write(open_journal_bytes([LAST])[:cut])

    state = load_journal(path)
    assert state.repair.startswith(f"{path}:5: removed ")
    assert state.lines == 3
    assert dict(state.status_by_url()) == {url(1): "sent", url(2): "pending", url(7): "pending"}

    with open_journal(path) as journal:
        assert journal.state.repair == state.repair  # what it found, before it cut
        journal.append(rec(2, "sent"))
    state = load_journal(path)
    assert not state.repair
    assert state.lines == 4
    assert state.status_by_url()[url(2)] == "sent"


@pytest.mark.parametrize("cut", [1, 5, 20, 60])
def test_a_torn_pending_line_is_cut_its_request_never_left(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path, extra_columns=RUNNER_EXTRA) as journal:
        journal.append(rec(1, "sent"))
        torn = journal.encode([rec(7, "pending")])[:cut]
    kept = path.read_bytes()
    path.write_bytes(kept + torn)
    with open_journal(path, extra_columns=RUNNER_EXTRA) as journal:
        assert journal.state.repair
    assert path.read_bytes() == kept


RUNNER_EXTRA = ("note_delivered",)  # the runner's results files have nine columns
TAILS = [
    # A hand-added line without its last field (note_delivered) and without a newline.
    (
        "7,https://www.linkedin.com/in/person-7,s1,sent,conn_7,,1,2027-01-15T08:00:00.000Z",
        "a 'sent' line with no 'pending' line for that profile before it",
    ),
    # Two fields missing, as a person typing it would leave it.
    ("7,https://www.linkedin.com/in/person-7,s1,already_connected", "'already_connected' line"),
    # A stray quote in the middle of a field: never what the encoder writes.
    ('7,https://www.linkedin.com/in/person-7,s1,sent,conn"7,,1', 'a quote (") in the middle'),
    # An opening quote that is never closed, on a line a person added.
    ('7,https://www.linkedin.com/in/person-7,s1,sent,"conn_7,,1\n', "'sent' line with no"),
    ("7,https://www.linkedin.com/in/Person-7/,s1,sen", "is not in the form campaign-runner"),
    ("seven,https://www.linkedin.com/in/person-7,s1", "row 'seven' is not a whole number"),
    ("7,https://www.linkedin.com/in/person-7,s1,sent,c,,1,2027/01/1", "timestamp '2027/01/1'"),
    ("7,https://www.linkedin.com/in/person-7,s1,done,c,,1", "unknown status 'done'"),
]


@pytest.mark.parametrize(("tail", "reason"), TAILS)
def test_a_hand_written_last_line_is_refused_and_the_file_left_as_it_was(
    tmp_path: Path, tail: str, reason: str
) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path, extra_columns=RUNNER_EXTRA) as journal:
        journal.append_many([rec(1, "sent"), rec(2, "pending")])
    path.write_bytes(path.read_bytes() + tail.encode("utf-8"))
    before = path.read_bytes()
    for read in (load_journal, open_journal):
        with pytest.raises(JournalError) as caught:
            read(path)
        message = str(caught.value)
        assert message.startswith(f"{path}:4: the last line is not a complete record")
        assert reason in message
        assert "\n" not in message  # one line
    assert path.read_bytes() == before


def test_an_outcome_line_cut_inside_its_url_is_ours_to_cut(tmp_path: Path) -> None:
    # Cut before its URL ends, a line cannot say whom it records: whichever of our lines it
    # was, cutting it loses nothing (a pending line's request had not left).
    path = tmp_path / "results.csv"
    with open_journal(path) as journal:
        journal.append(rec(1, "sent"))
    path.write_bytes(path.read_bytes() + b"7,https://www.linkedin.com/in/pers")
    assert load_journal(path).repair


@pytest.mark.parametrize("cut", [1, 3])
def test_complete_last_line_without_newline_is_kept_and_terminated(
    tmp_path: Path, cut: int
) -> None:
    # A file saved without its final newline, or a record torn inside its last field: all
    # fields and a valid status are there, and keeping it can only prevent a re-send.
    path = tmp_path / "results.csv"
    path.write_bytes(HEADER.encode() + open_journal_bytes([rec(1), LAST])[:-cut])
    state = load_journal(path)
    assert (state.lines, state.repair) == (2, "")
    assert state.latest["error"].tolist()[-1] == LAST.error
    assert state.latest["timestamp"].tolist()[-1] == format_timestamp(T0)[: 25 - cut]
    with open_journal(path) as journal:
        journal.append(rec(3))
    assert load_journal(path).lines == 3


def test_header_torn_while_creating_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_bytes(HEADER.encode()[:10])
    assert load_journal(path).repair
    with open_journal(path) as journal:
        journal.append(rec(1))
    assert path.read_text(encoding="utf-8").startswith(HEADER)
    assert load_journal(path).lines == 1


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("row,status\n1,sent\n", r"results\.csv: not a results file: no 'linkedin_url' column"),
        (
            "row,linkedin_url\n1,https://x\n",
            r"results\.csv: not a results file: no 'status' column",
        ),
        (
            HEADER + '1,https://x/a,s,failed,,"two\nlines",0,\n2,https://x/b,s,sent\n',
            r"results\.csv:4: expected 8 fields, found 4",
        ),
        (
            HEADER + "1,https://x/a,s,sent,,,0,\n\n2,https://x/b,s,done,,,0,\n",
            r"csv:4: unknown status 'done'",
        ),
        (
            HEADER + "1,https://x/a,s,sent,,,0,\nrow two,https://x/b,s,sent,,,0,\n",
            r"csv:3: row 'row two'",
        ),
        (
            HEADER + "1,https://x/a,s,sent,,,many,\n",
            r"csv:2: attempts 'many' is not a whole number",
        ),
        ("status,linkedin_url,Status\n", r"csv:1: column 'status' appears more than once"),
        (
            HEADER + '1,https://x/a,s,sent,,"open quote,0,\n2,https://x/b,s,sent,,,0,\n',
            r"csv:2: unterminated quoted field",
        ),
    ],
)
def test_unusable_files_name_file_line_and_problem(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "results.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(JournalError, match=message):
        load_journal(path)


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_bytes(
        HEADER.encode() + b"1,https://x/a,s,sent,,,0,\n2,https://x/b,s,failed,,\xff\xfe,0,\n"
    )
    with pytest.raises(JournalError, match=r"results\.csv:3: not valid UTF-8"):
        load_journal(path)


def test_open_refuses_a_file_that_is_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "prospects.csv"
    path.write_text("name,url\nAda,https://x\n", encoding="utf-8")
    with pytest.raises(JournalError, match="no 'linkedin_url' column"):
        Journal.open(path)
    assert path.read_text(encoding="utf-8") == "name,url\nAda,https://x\n"  # untouched
    Journal.open(path.with_name("other.csv")).close()  # and no lock or fd leaked


# --------------------------------------------------------------------------- lock

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from campaign_runner.journal import Journal
    journal = Journal.open(Path(sys.argv[1]))
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until killed
    """
)


def test_second_open_in_the_same_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path), pytest.raises(JournalLockedError, match=r"results\.csv: another"):
        Journal.open(path)
    Journal.open(path).close()  # released by close


def test_a_kept_lock_outlasts_its_journal_and_the_next_open_takes_it_over(
    tmp_path: Path,
) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path) as journal:
        journal.append(rec(1))
        kept = journal.keep_lock()
    # Closed, yet still locked: nobody else gets in between two rounds of run --wait.
    with pytest.raises(JournalLockedError):
        Journal.open(path)
    with open_journal(path, kept=kept) as again:
        assert again.state.lines == 1
        again.append(rec(2))
    Journal.open(path).close()  # released with the journal that took it over
    kept.close()  # harmless once taken over
    assert load_journal(path).lines == 2


@pytest.mark.parametrize("how", ["replaced", "deleted"])
def test_a_kept_lock_lets_go_when_the_path_no_longer_names_its_file(
    tmp_path: Path, how: str
) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path) as journal:
        journal.append_many([rec(1), rec(2)])
        kept = journal.keep_lock()
    if how == "replaced":  # an editor's save: the new file is the one to read now
        edited = tmp_path / "edited.csv"
        edited.write_bytes(path.read_bytes().rsplit(b"\n", 2)[0] + b"\n")
        os.replace(edited, path)
    else:  # deleted while the run waited: put back from the descriptor the lock kept
        path.unlink()
    with open_journal(path, kept=kept) as again:
        assert again.state.lines == (1 if how == "replaced" else 2)
    Journal.open(path).close()


def test_open_from_another_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path):
        code = "import sys; from campaign_runner.journal import Journal; Journal.open(sys.argv[1])"
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1
    assert "JournalLockedError" in done.stderr
    assert f"(pid {os.getpid()})" in done.stderr


def test_lock_dies_with_a_killed_holder(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(JournalLockedError, match=rf"\(pid {holder.pid}\)"):
            Journal.open(path)
        holder.send_signal(signal.SIGKILL)
        assert holder.wait(timeout=30) == -signal.SIGKILL
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=30)
        for stream in (holder.stdin, holder.stdout):
            if stream is not None:
                stream.close()
    with open_journal(path) as journal:
        journal.append(rec(1))
    assert load_journal(path).lines == 1


# --------------------------------------------------------------------------- group commit


async def test_concurrent_async_appends_keep_call_order_and_share_syncs(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    journal = open_journal(path)
    writes: list[int] = []
    real_write = journal._write

    def counting_write(data: bytes) -> None:
        writes.append(data.count(b"\n"))
        real_write(data)

    journal._write = counting_write  # type: ignore[method-assign]
    called: list[int] = []

    async def writer(w: int) -> None:
        for i in range(25):
            n = w * 1000 + i
            called.append(n)  # no await between this and the enqueue inside append_async
            await journal.append_async(rec(n, "pending"))
            await journal.append_async(rec(n, "sent"))

    async with journal:
        await asyncio.gather(*(writer(w) for w in range(8)))
    state = load_journal(path)
    assert state.lines == 400
    assert sum(writes) == 400
    assert len(writes) < 400 / 4  # records waiting together shared a write+sync
    lines = load_lines(path)
    pending_order = [int(u.rsplit("-", 1)[1]) for u, status in lines if status == "pending"]
    assert pending_order == called
    # Each writer's "sent" comes after its own "pending", in the writer's own order.
    sent_order = [int(u.rsplit("-", 1)[1]) for u, status in lines if status == "sent"]
    for w in range(8):
        assert [n for n in sent_order if n // 1000 == w] == [w * 1000 + i for i in range(25)]
    assert set(state.latest["status"]) == {"sent"}


def load_lines(path: Path) -> list[tuple[str, str]]:
    import csv

    with path.open(encoding="utf-8", newline="") as f:
        return [(r[1], r[3]) for r in list(csv.reader(f))[1:]]


async def test_write_errors_reach_every_waiting_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "results.csv"
    journal = open_journal(path)

    def disk_full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(journal_writer, "_write_all", disk_full)
    results = await asyncio.gather(
        *(journal.append_async(rec(i)) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, JournalError) for r in results)
    assert "No space left on device" in str(results[0])
    monkeypatch.undo()
    with pytest.raises(JournalError, match="an earlier write failed"):
        journal.append(rec(9))  # the file's state is unknown: refuse to go on
    await journal.aclose()


async def test_append_nowait_keeps_call_order_with_awaited_appends(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    journal = open_journal(path)
    tasks_before = len(asyncio.all_tasks())

    async def writer(w: int) -> None:
        for i in range(20):
            n = w * 1000 + i
            await journal.append_async(rec(n, "pending"))
            journal.append_nowait(rec(n, "sent"))  # no task, no await

    calls = [writer(w) for w in range(4)]
    journal.append_nowait(rec(9999, "failed"))
    assert len(asyncio.all_tasks()) == tasks_before
    await asyncio.gather(*calls)
    journal.append_nowait(rec(8888, "deferred"))
    await journal.aclose()  # waits for the records nobody awaited
    assert journal.closed
    lines = load_lines(path)
    assert len(lines) == 4 * 40 + 2
    assert lines[0] == (url(9999), "failed") and lines[-1] == (url(8888), "deferred")
    numbers = [(int(u.rsplit("-", 1)[1]), status) for u, status in lines]
    for w in range(4):
        mine = [(n, status) for n, status in numbers if n // 1000 == w]
        assert mine == [(w * 1000 + i, s) for i in range(20) for s in ("pending", "sent")]


async def test_close_refuses_while_nowait_records_are_queued(tmp_path: Path) -> None:
    journal = open_journal(tmp_path / "results.csv")
    journal.append_nowait(rec(1))
    with pytest.raises(RuntimeError, match="aclose"):
        journal.close()
    await journal.aflush()
    assert load_journal(tmp_path / "results.csv").lines == 1
    journal.close()


@pytest.mark.parametrize("surfaces_from", ["append_async", "aflush", "aclose"])
async def test_a_failed_nowait_record_surfaces_once_and_stops_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, surfaces_from: str
) -> None:
    journal = open_journal(tmp_path / "results.csv")

    def disk_full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(journal_writer, "_write_all", disk_full)
    journal.append_nowait(rec(1))
    # Whether rec(2) shares the failed batch or follows it, its caller hears of the failure.
    with pytest.raises(JournalError, match="No space left on device"):
        if surfaces_from == "append_async":
            await journal.append_async(rec(2))
        elif surfaces_from == "aflush":
            await journal.aflush()
        else:
            await journal.aclose()
    monkeypatch.undo()
    if surfaces_from == "aclose":
        assert journal.closed  # closed (lock released) even though the flush raised
        return
    await journal.aflush()  # already told: not raised a second time
    with pytest.raises(JournalError, match="an earlier write failed"):
        journal.append_nowait(rec(3))  # the file's state is unknown: refuse to go on
    await journal.aclose()
    assert load_journal(tmp_path / "results.csv").lines == 0


def test_append_many_is_one_write(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    with open_journal(path) as journal:
        journal.append_many([rec(i) for i in range(32)])
        journal.append_many([])
    assert load_journal(path).lines == 32


# --------------------------------------------------------------------------- capacity


def test_used_capacity_is_a_rolling_window_over_all_lines(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    now = fixed_clock()
    with open_journal(path, now=now) as journal:
        journal.append(rec(1, "sent", sender_id="a"))  # T0: outside the window below
        now[0] = T0 + 100
        journal.append(rec(2, "sent", sender_id="a"))  # exactly at the window's start
        journal.append(rec(3, "pending", sender_id="a"))  # pending never counts
        journal.append(rec(3, "unknown", sender_id="a"))  # may have left: counts
        journal.append(rec(4, "failed", sender_id="a"))  # did not leave
        journal.append(rec(5, "already_connected", sender_id="b"))
        now[0] = T0 + 150
        journal.append(rec(6, "unknown", sender_id="b"))
        journal.append(rec(6, "sent", sender_id="b"))  # retried on purpose: both count
    state = load_journal(path)
    assert state.capacity_lines().used(T0 + 100) == {"a": 2, "b": 2}
    assert state.capacity_lines().used(T0 + 100.001) == {"b": 2}
    assert state.capacity_lines().used(T0) == {"a": 3, "b": 2}
    assert state.capacity_lines().used(T0 + 151) == {}
    assert state.capacity_lines().next_renewal(T0 + 50, window_seconds=1000) == T0 + 1100
    assert state.capacity_lines().next_renewal(T0 + 151, window_seconds=1000) is None


def test_last_sent_is_each_senders_latest_capacity_line_in_the_window(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    now = fixed_clock()
    with open_journal(path, now=now) as journal:
        journal.append(rec(1, "sent", sender_id="a"))
        now[0] = T0 + 10.25
        journal.append(rec(2, "unknown", sender_id="a"))
        journal.append(rec(3, "failed", sender_id="b"))  # did not leave: not a send
        now[0] = T0 + 20
        journal.append(rec(4, "pending", sender_id="b"))  # not yet an outcome
        journal.append(rec(5, "sent", sender_id="c"))
    state = load_journal(path)
    assert state.capacity_lines().last_sent(T0) == {"a": T0 + 10.25, "c": T0 + 20}
    assert state.capacity_lines().last_sent(T0 + 15) == {"c": T0 + 20}
    assert state.capacity_lines().last_sent(T0 + 21) == {}


def test_used_capacity_reads_other_timestamp_forms_and_counts_undated(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text(
        "linkedin_url,status,sender_id,timestamp\n"
        "https://x/a,sent,s,2027-01-15T09:00:00+01:00\n"  # = T0, in another zone
        "https://x/b,sent,s,2027-01-15 08:00:10\n"  # naive: UTC
        "https://x/c,sent,s,\n"  # undated
        "https://x/d,sent,s,yesterday\n"  # unreadable
        f"https://x/e,sent,s,{format_timestamp(T0 + 5)}\n",
        encoding="utf-8",
    )
    state = load_journal(path)
    assert state.capacity_lines().used(T0) == {"s": 5}
    assert state.capacity_lines().used(T0 + 1) == {"s": 4}
    assert state.capacity_lines().used(T0 + 1, count_undated=False) == {"s": 2}
    assert state.capacity_lines().next_renewal(T0, 60) == T0 + 60


# --------------------------------------------------------------------------- displaced


async def test_a_replaced_file_refuses_pending_lines_and_keeps_outcomes(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    journal = open_journal(path, extra_columns=RUNNER_EXTRA)
    await journal.append_async(rec(1, "pending"))
    copy = tmp_path / "copy.csv"
    copy.write_bytes(path.read_bytes())
    os.replace(copy, path)

    journal.append_nowait(rec(1, "sent"))  # the outcome of a request already out
    await journal.aflush()
    with pytest.raises(JournalDisplacedError, match="was replaced while this run"):
        await journal.append_async(rec(2, "pending"))  # a new request must not leave
    with pytest.raises(JournalDisplacedError, match="appended to the new"):
        await journal.aclose()
    assert journal.closed
    statuses = dict(load_journal(path).status_by_url())
    assert statuses == {url(1): "sent"}


async def test_a_deleted_file_is_restored_with_every_line(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    journal = open_journal(path)
    journal.append(rec(0, "sent"))
    await journal.append_async(rec(1, "pending"))
    path.unlink()
    journal.append_nowait(rec(1, "sent"))
    with pytest.raises(JournalDisplacedError, match=r"was deleted.*restored at"):
        await journal.aclose()
    assert dict(load_journal(path).status_by_url()) == {url(0): "sent", url(1): "sent"}


async def test_a_replacement_that_is_no_results_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    journal = open_journal(path)
    await journal.append_async(rec(1, "pending"))
    path.unlink()
    path.write_bytes(b"name,company\nJane,Acme\n")
    journal.append_nowait(rec(1, "sent"))
    with pytest.raises(JournalDisplacedError, match=r"kept as .*results\.csv\.kept-") as caught:
        await journal.aclose()
    assert path.read_bytes() == b"name,company\nJane,Acme\n"
    kept = Path(str(caught.value).split("kept as ")[1].split(":")[0])
    assert dict(load_journal(kept).status_by_url()) == {url(1): "sent"}
