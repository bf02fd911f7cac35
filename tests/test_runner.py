"""The sending engine (``Campaign.prepare`` / ``execute``) against the stand-in server.

Every test runs a real campaign over loopback HTTP with compressed pacing windows, then
checks three witnesses that must agree: the :class:`Summary`, the results CSV on disk (read
with the ``csv`` module, escapes included) and what the server saw (``state.invitations``,
``state.requests``, ``state.counters``). The promise under test: every valid row is sent at
most once, and exactly once when nothing goes wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import re
import time
from pathlib import Path

import aiohttp
import pytest
from conftest import FakeClock, SandboxFactory
from helpers import (
    FINAL,
    RESULTS_HEADER,
    connect_requests,
    final_counts,
    invited,
    latest,
    naughty_strings,
    prospects,
    read_results,
    run_campaign,
    settings_for,
    until,
    url,
    with_hours,
    working_hours,
    write_prospects,
)

from campaign_runner.campaign import Campaign, RunOptions
from campaign_runner.clock import VirtualClock, WallClock
from campaign_runner.errors import AuthError, JournalError, JournalLockedError
from campaign_runner.journal import Journal, JournalRecord, format_timestamp, load_journal
from campaign_runner.journal import writer as journal_writer
from campaign_runner.ledger import SQLiteLedger
from campaign_runner.sandbox import FaultRule, SandboxSender
from campaign_runner.workspace import ledger_location

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
KEY = "sk_live_RUNNER_7f3a9c1e5b"


def roomy(*ids: str, capacity: int = 100, premium: bool = True) -> tuple[SandboxSender, ...]:
    """Sandbox senders with enough capacity that pacing does not bind."""
    return tuple(SandboxSender(i, capacity=capacity, premium=premium) for i in ids)


# -- the happy path ------------------------------------------------------------------------


async def test_happy_path_sends_every_valid_row_once_across_senders(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(
        senders=(
            SandboxSender("a", capacity=100, premium=True),
            SandboxSender("b", capacity=100, premium=False),
            SandboxSender("c", capacity=100, premium=True),
        )
    )
    rows = [(url(n), f"hello {n}", "") for n in range(9)]
    rows.insert(4, ("linkedin.com/company/acme", "x", ""))  # row 6: invalid
    rows.insert(6, ("https://www.linkedin.com/in/Person-1/", "again", ""))  # row 8: duplicate
    rows.append((url("pinned"), "pinned note", "b"))  # row 12: pinned to the free sender
    input_path = write_prospects(
        tmp_path / "p.csv", rows, header=("linkedin_url", "note", "sender_id")
    )
    results = tmp_path / "p.results.csv"
    settings = settings_for(server, [("a", 100, True), ("b", 100, False), ("c", 100, True)])

    campaign, summary = await run_campaign(settings, input_path, results)

    valid = {url(n) for n in range(9)} | {url("pinned")}
    assert summary.exit_code == 0
    assert campaign.plan.counts == {"valid": 10, "invalid": 1, "duplicate": 1, "excluded": 0}
    assert summary.this_run == {"sent": 10}
    assert summary.final == {"sent": 10}
    assert summary.remaining == 0
    # The server created exactly one invitation per valid row, and nothing else.
    assert invited(server) == dict.fromkeys(valid, 1)
    assert server.state.duplicates() == {}
    assert connect_requests(server) == 10
    # Rotation used every sender; the pinned row went to its sender.
    by_sender = {i.sender_id for i in server.state.invitations}
    assert by_sender == {"a", "b", "c"}
    assert (
        next(i for i in server.state.invitations if i.linkedin_url == url("pinned")).sender_id
        == "b"
    )

    header, _ = read_results(results)
    assert header == RESULTS_HEADER
    final = latest(results)
    server_ids = {i.linkedin_url: (i.request_id, i.sender_id) for i in server.state.invitations}
    for prospect in valid:
        line = final[prospect]
        assert line["status"] == "sent"
        assert (line["request_id"], line["sender_id"]) == server_ids[prospect]
        assert line["attempts"] == "1"
        assert line["error"] == ""
        assert TIMESTAMP.match(line["timestamp"])
        assert line["note_delivered"] == ("no (free sender)" if line["sender_id"] == "b" else "yes")
    invalid = final["row:6"]
    assert (invalid["status"], invalid["linkedin_url"], invalid["sender_id"]) == ("invalid", "", "")
    assert invalid["error"]  # the validation reason
    duplicates = [line for line in read_results(results)[1] if line["status"] == "duplicate"]
    assert [(d["row"], d["linkedin_url"], d["error"]) for d in duplicates] == [
        ("8", url(1), "duplicate of row 3")
    ]
    # Free senders drop notes on the server; premium ones deliver them as written.
    written = {cells[0]: cells[1] for cells in rows}
    for invitation in server.state.invitations:
        expected = None if invitation.sender_id == "b" else written[invitation.linkedin_url]
        assert invitation.note == expected

    # Running the same campaign again sends nothing and records nothing twice.
    lines_before = len(read_results(results)[1])
    _, again = await run_campaign(settings, input_path, results)
    assert again.exit_code == 0
    assert again.this_run == {}
    assert connect_requests(server) == 10
    assert len(read_results(results)[1]) == lines_before


async def test_a_row_pinned_to_an_unknown_sender_fails_with_the_reason(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=roomy("a"))
    input_path = write_prospects(
        tmp_path / "p.csv",
        [(url(1), "", "ghost"), (url(2), "", "")],
        header=("linkedin_url", "note", "sender_id"),
    )
    results = tmp_path / "r.csv"
    _, summary = await run_campaign(settings_for(server, [("a", 100)]), input_path, results)

    assert summary.exit_code == 1
    assert summary.final == {"sent": 1, "failed": 1}
    line = latest(results)[url(1)]
    assert line["status"] == "failed"
    assert "ghost" in line["error"]
    assert invited(server) == {url(2): 1}


async def test_already_connected_is_a_final_outcome_that_spends_no_capacity(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=roomy("a", capacity=2), already_connected=frozenset({url(0)}))
    input_path = prospects(tmp_path / "p.csv", 3)
    results = tmp_path / "r.csv"
    _, summary = await run_campaign(
        settings_for(server, [("a", 2)], window=0.2), input_path, results
    )

    assert summary.exit_code == 0
    assert summary.final == {"already_connected": 1, "sent": 2}
    assert latest(results)[url(0)]["status"] == "already_connected"
    assert latest(results)[url(0)]["request_id"].startswith("conn_")
    assert invited(server) == {url(1): 1, url(2): 1}


async def test_limit_sends_that_many_and_exits_3(sandbox: SandboxFactory, tmp_path: Path) -> None:
    server = await sandbox(senders=roomy("a", "b"))
    input_path = prospects(tmp_path / "p.csv", 5)
    results = tmp_path / "r.csv"
    settings = settings_for(server, [("a", 100), ("b", 100)])

    _, summary = await run_campaign(settings, input_path, results, limit=2)
    assert (summary.exit_code, summary.this_run, summary.remaining) == (3, {"sent": 2}, 3)
    assert len(server.state.invitations) == 2

    _, rest = await run_campaign(settings, input_path, results)
    assert (rest.exit_code, rest.this_run) == (0, {"sent": 3})
    assert invited(server) == {url(n): 1 for n in range(5)}


# -- capacity ------------------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [1, 3])
async def test_each_sender_uses_its_whole_capacity(
    sandbox: SandboxFactory, tmp_path: Path, capacity: int
) -> None:
    server = await sandbox(senders=roomy("a", capacity=capacity))
    input_path = prospects(tmp_path / "p.csv", capacity + 2)
    campaign, summary = await run_campaign(
        settings_for(server, [("a", capacity)], window=0.2), input_path, tmp_path / "r.csv"
    )
    assert campaign.plan.now == capacity
    assert summary.this_run == {"sent": capacity}
    assert (summary.remaining, summary.exit_code) == (2, 3)
    assert len(server.state.invitations) == capacity


async def test_capacity_is_shared_by_runs_in_one_window_and_renews_after_it(
    sandbox: SandboxFactory, tmp_path: Path, fake_clock: FakeClock
) -> None:
    # One clock drives the sandbox's quota windows and the journal's rolling window; it
    # does not move during a run, so only the pacing (real time) uses the short window.
    window = 0.3
    server = await sandbox(
        senders=roomy("a", "b", capacity=3), clock=fake_clock, window_seconds=window
    )
    input_path = prospects(tmp_path / "p.csv", 10)
    results = tmp_path / "r.csv"
    settings = settings_for(server, [("a", 3), ("b", 3)], window=window)

    _, first = await run_campaign(settings, input_path, results, clock=fake_clock)
    assert (first.exit_code, first.this_run, first.remaining) == (3, {"sent": 6}, 4)
    assert first.renews_at == pytest.approx(fake_clock() + window, abs=0.002)
    per_sender = {s: sum(i.sender_id == s for i in server.state.invitations) for s in "ab"}
    assert per_sender == {"a": 3, "b": 3}

    # Same window: the journal shows both senders spent, so nothing is even attempted.
    fake_clock.advance(window / 3)
    campaign, second = await run_campaign(settings, input_path, results, clock=fake_clock)
    assert [s.capacity for s in campaign.plan.senders] == [0, 0]
    assert [s.used_in_window for s in campaign.plan.senders] == [3, 3]
    assert (second.exit_code, second.this_run, second.remaining) == (3, {}, 4)
    assert connect_requests(server) == 6

    # The window has passed: the campaign continues with the rows still to send.
    fake_clock.advance(window)
    _, third = await run_campaign(settings, input_path, results, clock=fake_clock)
    assert (third.exit_code, third.this_run, third.remaining) == (0, {"sent": 4}, 0)
    assert invited(server) == {url(n): 1 for n in range(10)}
    assert ("connect", "daily_limit") not in server.state.counters


async def test_journal_counts_sends_in_the_window_even_without_quotas(
    sandbox: SandboxFactory, tmp_path: Path, fake_clock: FakeClock
) -> None:
    # The API reports no quotas at all; only the results file knows what was sent today.
    server = await sandbox(
        senders=roomy("a"),
        clock=fake_clock,
        faults=(FaultRule("error", route="quotas", status=404),),
    )
    results = tmp_path / "r.csv"
    with Journal.open(results, extra_columns=("note_delivered",), clock=fake_clock) as journal:
        for n in range(100, 103):  # another list, sent earlier in this window
            journal.append(JournalRecord(row=n, linkedin_url=url(n), sender_id="a", status="sent"))
        # Outside the window: does not count.
        journal.append(
            JournalRecord(
                row=99,
                linkedin_url=url(99),
                sender_id="a",
                status="sent",
                timestamp="2000-01-01T00:00:00.000Z",
            )
        )
    input_path = prospects(tmp_path / "p.csv", 5)
    campaign, summary = await run_campaign(
        settings_for(server, [("a", 5)], window=0.5), input_path, results, clock=fake_clock
    )
    assert any("quotas unavailable" in w for w in campaign.plan.warnings)
    assert campaign.plan.senders[0].capacity == 2
    assert (summary.exit_code, summary.this_run) == (3, {"sent": 2})
    assert connect_requests(server) == 2


async def test_api_remaining_lower_than_daily_limit_is_respected(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=(SandboxSender("a", capacity=2), SandboxSender("b", capacity=8)))
    input_path = prospects(tmp_path / "p.csv", 12)
    results = tmp_path / "r.csv"
    # The config allows 10 each; the API says a has 2 left and b 8.
    campaign, summary = await run_campaign(
        settings_for(server, [("a", 10), ("b", 10)], window=0.25), input_path, results
    )
    assert [(s.api_remaining, s.capacity) for s in campaign.plan.senders] == [(2, 2), (8, 8)]
    assert (summary.exit_code, summary.this_run, summary.remaining) == (3, {"sent": 10}, 2)
    assert sum(i.sender_id == "a" for i in server.state.invitations) == 2
    assert ("connect", "daily_limit") not in server.state.counters  # never pushed past it


async def test_daily_limit_answer_stops_that_sender_and_defers_its_row(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    # Quotas are unavailable, so the plan trusts the config (10 for a) but a can only do 2.
    server = await sandbox(
        senders=(SandboxSender("a", capacity=2), SandboxSender("b", capacity=30)),
        faults=(FaultRule("error", route="quotas", status=500),),
    )
    input_path = prospects(tmp_path / "p.csv", 14)
    results = tmp_path / "r.csv"
    _, summary = await run_campaign(
        settings_for(server, [("a", 10), ("b", 20)], window=0.5), input_path, results
    )

    # a stopped at once: no turn after the 429 (a request already on its way when the
    # answer came, on a slow machine, meets the limit too, and is deferred as well).
    limited = server.state.counters[("connect", "daily_limit")]
    assert 1 <= limited <= 2
    assert sum(i.sender_id == "a" for i in server.state.invitations) == 2
    statuses = [line["status"] for line in read_results(results)[1]]
    assert statuses.count("deferred") == limited
    assert "failed" not in statuses
    # b carried on and sent everything else, the deferred row included.
    assert summary.final == {"sent": 14}
    assert invited(server) == {url(n): 1 for n in range(14)}
    assert summary.exit_code == 0


async def test_a_deferred_row_is_taken_by_another_sender_with_capacity(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    # a's only request is slow and then refused for its daily limit; by then b has taken
    # the other rows and, seeing an empty queue, would have nothing left to do.
    server = await sandbox(
        senders=(SandboxSender("a", capacity=0), SandboxSender("b", capacity=30)),
        faults=(
            FaultRule("error", route="quotas", status=500),
            FaultRule("latency", sender="a", seconds=0.3),
        ),
    )
    input_path = prospects(tmp_path / "p.csv", 3)
    results = tmp_path / "r.csv"
    _, summary = await run_campaign(
        settings_for(server, [("a", 10), ("b", 20)], window=1.0), input_path, results
    )
    assert server.state.counters[("connect", "daily_limit")] == 1
    assert summary.final == {"sent": 3}
    assert summary.exit_code == 0


async def test_disconnected_and_rate_limited_senders_are_skipped_with_a_warning(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(
        senders=(
            SandboxSender("a", capacity=50),
            SandboxSender("gone", capacity=50, status="disconnected"),
            SandboxSender("slow", capacity=50, status="rate_limited"),
        )
    )
    input_path = prospects(tmp_path / "p.csv", 4)
    campaign, summary = await run_campaign(
        settings_for(server, [("a", 50), ("gone", 50), ("slow", 50)], window=0.5),
        input_path,
        tmp_path / "r.csv",
    )
    skipped = {s.sender_id: s.skipped for s in campaign.plan.senders if s.skipped}
    assert set(skipped) == {"gone", "slow"}
    assert any("gone" in w for w in campaign.plan.warnings)
    assert summary.exit_code == 0
    assert {i.sender_id for i in server.state.invitations} == {"a"}


async def test_rows_left_pending_by_a_crash_count_against_capacity(
    sandbox: SandboxFactory, tmp_path: Path, fake_clock: FakeClock
) -> None:
    # No quotas from the API: the journal is the only guard of the daily limit.
    server = await sandbox(
        senders=roomy("a"),
        clock=fake_clock,
        faults=(FaultRule("error", route="quotas", status=404),),
    )
    results = tmp_path / "r.csv"
    with Journal.open(results, extra_columns=("note_delivered",), clock=fake_clock) as journal:
        journal.append(JournalRecord(row=2, linkedin_url=url(0), sender_id="a", status="sent"))
        journal.append(JournalRecord(row=3, linkedin_url=url(1), sender_id="a", status="sent"))
        # A crash while this one was on its way: it may well exist.
        journal.append(JournalRecord(row=4, linkedin_url=url(2), sender_id="a", status="pending"))
    input_path = prospects(tmp_path / "p.csv", 8)
    async with aiohttp.ClientSession() as session:
        campaign = await Campaign.prepare(
            settings_for(server, [("a", 4)], window=0.4),
            RunOptions(input_path=input_path, results_path=results),
            session,
            clock=WallClock(fake_clock),
        )
        campaign.close()
    assert campaign.plan.recovered_pending == 1
    (plan,) = campaign.plan.senders
    assert (plan.used_in_window, plan.capacity) == (3, 1)


async def test_a_sender_is_paced_evenly_and_never_bursts(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=roomy("a"))
    input_path = prospects(tmp_path / "p.csv", 4)
    # Capacity 10 over a 2 s window: one invitation every 0.2 s, however many are waiting.
    _, summary = await run_campaign(
        settings_for(server, [("a", 10)], window=2.0), input_path, tmp_path / "r.csv"
    )
    assert summary.this_run == {"sent": 4}
    times = [i.created_at for i in server.state.invitations]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Turns are exact; a request leaves after its claim's and its pending line's fsyncs,
    # whose latency on a loaded machine can shift one departure by a tenth of a second.
    # A burst would leave gaps near zero.
    assert min(gaps) >= 0.05, gaps
    assert times[-1] - times[0] >= 0.55


async def test_the_global_concurrency_cap_holds(sandbox: SandboxFactory, tmp_path: Path) -> None:
    server = await sandbox(
        senders=roomy("a", "b", "c"), faults=(FaultRule("latency", seconds=0.05),)
    )
    input_path = prospects(tmp_path / "p.csv", 12)
    in_flight: list[int] = []

    async def watch() -> None:
        while True:
            in_flight.append(connect_requests(server) - len(server.state.invitations))
            await asyncio.sleep(0.001)

    watcher = asyncio.ensure_future(watch())
    try:
        _, summary = await run_campaign(
            settings_for(server, [("a", 100), ("b", 100), ("c", 100)], window=0.3, concurrency=2),
            input_path,
            tmp_path / "r.csv",
        )
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    assert summary.final == {"sent": 12}
    assert max(in_flight) == 2


# -- retries ---------------------------------------------------------------------------------


async def test_server_errors_are_retried_until_success(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=roomy("a"), faults=(FaultRule("error", status=500, times=2),))
    input_path = prospects(tmp_path / "p.csv", 1)
    results = tmp_path / "r.csv"
    _, summary = await run_campaign(settings_for(server, [("a", 10)]), input_path, results)

    assert summary.exit_code == 0
    assert server.state.counters[("connect", "fault:500")] == 2
    line = latest(results)[url(0)]
    assert (line["status"], line["attempts"], line["error"]) == ("sent", "3", "")
    assert invited(server) == {url(0): 1}


async def test_server_errors_past_max_attempts_fail(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=roomy("a"), faults=(FaultRule("error", status=503, times=3),))
    input_path = prospects(tmp_path / "p.csv", 1)
    results = tmp_path / "r.csv"
    _, summary = await run_campaign(settings_for(server, [("a", 10)]), input_path, results)

    assert summary.exit_code == 1
    assert summary.final == {"failed": 1}
    line = latest(results)[url(0)]
    assert (line["status"], line["attempts"]) == ("failed", "3")
    assert "503" in line["error"]
    assert connect_requests(server) == 3

    # --retry-failed sends it again once the API has recovered.
    _, again = await run_campaign(
        settings_for(server, [("a", 10)]), input_path, results, retry_failed=True
    )
    assert again.exit_code == 0
    assert latest(results)[url(0)]["status"] == "sent"
    assert latest(results)[url(0)]["attempts"] == "4"
    assert invited(server) == {url(0): 1}


async def test_rate_limit_retry_after_pauses_every_sender(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    pause = 0.3
    server = await sandbox(
        senders=roomy("a", "b", "c"),
        faults=(FaultRule("rate_limit", nth=1, retry_after=pause),),
    )
    input_path = prospects(tmp_path / "p.csv", 9)
    results = tmp_path / "r.csv"
    started = time.time()
    _, summary = await run_campaign(
        settings_for(server, [("a", 100), ("b", 100), ("c", 100)], window=0.5, max_delay=1.0),
        input_path,
        results,
    )

    assert summary.exit_code == 0
    assert summary.final == {"sent": 9}
    assert server.state.counters[("connect", "fault:rate_limit")] == 1
    assert sorted(line["attempts"] for line in latest(results).values()) == ["1"] * 8 + ["2"]
    # The back-off (base 0.001 s) was stretched to Retry-After, for every sender: only
    # requests that were already on their way may have landed meanwhile.
    early = [i for i in server.state.invitations if i.created_at < started + pause - 0.02]
    assert len(early) <= 3
    assert time.time() - started >= pause


async def test_a_retry_after_longer_than_max_delay_stops_the_run_for_later(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    # Waiting an hour inside a cron job's run helps nobody: stop, keep the row, exit 3.
    server = await sandbox(
        senders=roomy("a"), faults=(FaultRule("rate_limit", nth=1, retry_after=3600),)
    )
    input_path = prospects(tmp_path / "p.csv", 3)
    results = tmp_path / "r.csv"
    started = time.monotonic()
    _, summary = await run_campaign(
        # One request at a time, so that no other row is already on the wire.
        settings_for(server, [("a", 100)], window=0.3, max_delay=5, concurrency=1),
        input_path,
        results,
    )
    assert time.monotonic() - started < 2
    assert summary.exit_code == 3
    assert not summary.interrupted
    assert "3600s" in summary.stopped_reason
    assert latest(results)[url(0)]["status"] == "deferred"
    assert connect_requests(server) == 1

    _, later = await run_campaign(settings_for(server, [("a", 100)]), input_path, results)
    assert later.exit_code == 0
    assert invited(server) == {url(n): 1 for n in range(3)}


async def test_a_row_out_of_retries_on_rate_limits_is_deferred_to_the_next_run(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    limited = FaultRule("rate_limit", retry_after=0.01, times=3)
    server = await sandbox(senders=roomy("a"), faults=(limited,))
    input_path = prospects(tmp_path / "p.csv", 1)
    results = tmp_path / "r.csv"
    settings = settings_for(server, [("a", 10)])
    _, summary = await run_campaign(settings, input_path, results)
    assert summary.final == {"deferred": 1}
    assert (summary.remaining, summary.exit_code) == (1, 3)  # more later, not a failure
    assert connect_requests(server) == 3
    assert latest(results)[url(0)]["error"] == "rate limited, retries ran out: Rate limit exceeded"
    assert invited(server) == {}

    _, again = await run_campaign(settings, input_path, results)
    assert again.exit_code == 0
    assert invited(server) == {url(0): 1}


async def test_connection_refused_fails_after_max_attempts_and_is_not_unknown(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=roomy("a"))
    input_path = prospects(tmp_path / "p.csv", 2)
    results = tmp_path / "r.csv"
    settings = settings_for(server, [("a", 10)], window=0.2)
    async with aiohttp.ClientSession() as session:
        campaign = await Campaign.prepare(
            settings, RunOptions(input_path=input_path, results_path=results), session
        )
        await server.stop()  # planned against the API, which is now gone
        summary = await campaign.execute()

    assert summary.exit_code == 1
    assert summary.final == {"failed": 2}
    for n in range(2):
        line = latest(results)[url(n)]
        assert (line["status"], line["attempts"]) == ("failed", "3")
        assert "cannot connect" in line["error"]
    # Nothing may exist, so the capacity is not spent: a later run can use it.
    assert load_journal(results).capacity_lines().used(0) == {}


async def test_a_400_fails_with_the_api_message_and_is_not_retried(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    message = "Validation failed: recipient cannot be invited"
    server = await sandbox(
        senders=roomy("a"), faults=(FaultRule("error", status=400, message=message, times=1),)
    )
    input_path = prospects(tmp_path / "p.csv", 1)
    results = tmp_path / "r.csv"
    _, summary = await run_campaign(settings_for(server, [("a", 10)]), input_path, results)

    assert summary.exit_code == 1
    assert connect_requests(server) == 1
    line = latest(results)[url(0)]
    assert (line["status"], line["error"], line["attempts"]) == ("failed", message, "1")
    assert server.state.invitations == []


# -- ambiguous outcomes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        (FaultRule("hang", times=1), "no answer before the timeout"),
        (FaultRule("drop", times=1), "connection lost before an answer"),
        (FaultRule("malformed", times=1), "cannot be read"),
    ],
    ids=["hang", "drop", "malformed"],
)
async def test_ambiguous_outcomes_are_unknown_and_never_resent_without_asking(
    sandbox: SandboxFactory, tmp_path: Path, rule: FaultRule, error: str
) -> None:
    server = await sandbox(senders=roomy("a"), faults=(rule,))
    input_path = prospects(tmp_path / "p.csv", 3)
    results = tmp_path / "r.csv"
    settings = settings_for(server, [("a", 10)], timeout=0.2, window=0.3)

    _, first = await run_campaign(settings, input_path, results)
    assert first.exit_code == 1
    assert first.final == {"sent": 2, "unknown": 1}
    line = latest(results)[url(0)]
    assert (line["status"], line["attempts"]) == ("unknown", "1")
    assert error in line["error"]
    assert invited(server) == {url(n): 1 for n in range(3)}  # the invitation does exist
    assert connect_requests(server) == 3  # and it was not retried

    _, second = await run_campaign(settings, input_path, results)
    assert (second.exit_code, second.this_run) == (1, {})
    assert connect_requests(server) == 3

    _, third = await run_campaign(settings, input_path, results, retry_unknown=True)
    assert (third.exit_code, third.this_run) == (0, {"sent": 1})
    assert latest(results)[url(0)]["status"] == "sent"
    assert latest(results)[url(0)]["attempts"] == "2"
    assert connect_requests(server) == 4


async def test_an_unknown_success_status_is_unknown(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    # A 2xx with a status word nobody documented: probably sent; only a person can tell.
    answer = '{"success": true, "requestId": "conn_1", "status": "queued"}'
    server = await sandbox(senders=roomy("a"), faults=(FaultRule("body", text=answer),))
    settings = settings_for(server, [("a", 10)], window=0.2)
    input_path = prospects(tmp_path / "p.csv", 1)
    results = tmp_path / "r.csv"
    _, summary = await run_campaign(settings, input_path, results)
    assert summary.final == {"unknown": 1}
    assert summary.exit_code == 1
    line = latest(results)[url(0)]
    assert (line["status"], line["request_id"]) == ("unknown", "conn_1")
    assert "queued" in line["error"]


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (FaultRule("body", nested=100_000, times=1), "JSON nested too deeply"),
        (FaultRule("body", size=(1 << 20) + 1, times=1), "larger than 1048576 bytes"),
        (FaultRule("body", invalid_utf8=True, times=1), "not UTF-8 text"),
    ],
    ids=["nested", "oversized", "undecodable"],
)
async def test_an_unreadable_success_is_unknown_and_the_run_goes_on(
    sandbox: SandboxFactory, tmp_path: Path, rule: FaultRule, reason: str
) -> None:
    server = await sandbox(senders=roomy("a"), faults=(rule,))
    settings = settings_for(server, [("a", 10)], window=0.3, concurrency=1)
    input_path = prospects(tmp_path / "p.csv", 3)
    results = tmp_path / "r.csv"
    _, summary = await run_campaign(settings, input_path, results)
    assert (summary.exit_code, summary.final) == (1, {"sent": 2, "unknown": 1})
    line = latest(results)[url(0)]
    assert (line["status"], line["attempts"]) == ("unknown", "1")
    assert f"cannot be read ({reason})" in line["error"]
    assert invited(server) == {url(n): 1 for n in range(3)}
    assert connect_requests(server) == 3  # the unreadable one was not re-sent


# -- the key is rejected ---------------------------------------------------------------------


async def test_a_rejected_key_at_planning_sends_nothing(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=roomy("a"))
    input_path = prospects(tmp_path / "p.csv", 3)
    results = tmp_path / "r.csv"
    with pytest.raises(AuthError) as caught:
        await run_campaign(settings_for(server, [("a", 10)], api_key=KEY), input_path, results)
    assert caught.value.status == 401
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value)
    assert connect_requests(server) == 0
    assert server.state.counters[("senders", "unauthorized")] == 1
    # The lock was released: a run with the right key works.
    _, summary = await run_campaign(settings_for(server, [("a", 10)]), input_path, results)
    assert summary.exit_code == 0


@pytest.mark.parametrize("status", [401, 403])
async def test_a_rejected_key_mid_run_stops_at_once(
    sandbox: SandboxFactory, tmp_path: Path, status: int
) -> None:
    server = await sandbox(senders=roomy("a"), faults=(FaultRule("error", status=status, nth=3),))
    input_path = prospects(tmp_path / "p.csv", 8)
    results = tmp_path / "r.csv"
    # One sender, one request at a time: the third request is the last one.
    settings = settings_for(server, [("a", 100)], window=0.5, concurrency=1)
    with pytest.raises(AuthError) as caught:
        await run_campaign(settings, input_path, results)

    assert caught.value.status == status
    assert server.api_key not in str(caught.value)
    assert connect_requests(server) == 3
    counts = final_counts(results)
    # No row burnt as failed. The next row may already have had its pending line (it is
    # then deferred too) when the refusal came: that depends on timing, not on the rule.
    assert counts["sent"] == 2
    assert set(counts) == {"sent", "deferred"}
    assert latest(results)[url(2)]["status"] == "deferred"

    # With the key fixed (the fault fired on request 3 only), the next run picks up.
    _, summary = await run_campaign(settings, input_path, results)
    assert summary.exit_code == 0
    assert summary.this_run == {"sent": 6}
    assert invited(server) == {url(n): 1 for n in range(8)}


async def test_a_rejected_key_with_several_senders_stops_new_requests(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(
        senders=roomy("a", "b", "c"), faults=(FaultRule("error", status=401, nth=4),)
    )
    input_path = prospects(tmp_path / "p.csv", 30)
    results = tmp_path / "r.csv"
    with pytest.raises(AuthError):
        await run_campaign(
            settings_for(server, [("a", 100), ("b", 100), ("c", 100)], window=1.0),
            input_path,
            results,
        )
    # At most the requests already on their way when the 401 came back (concurrency 4).
    assert connect_requests(server) <= 4 + 3
    assert "failed" not in final_counts(results)
    assert "pending" not in final_counts(results)


# -- interruption (library level) ------------------------------------------------------------


async def test_request_stop_finishes_in_flight_requests_and_journals_them(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=roomy("a", "b"), faults=(FaultRule("latency", seconds=0.1),))
    input_path = prospects(tmp_path / "p.csv", 20)
    results = tmp_path / "r.csv"
    settings = settings_for(server, [("a", 100), ("b", 100)], window=0.5)
    async with aiohttp.ClientSession() as session:
        campaign = await Campaign.prepare(
            settings, RunOptions(input_path=input_path, results_path=results), session
        )
        running = asyncio.ensure_future(campaign.execute())
        await until(lambda: connect_requests(server) >= 3)
        campaign.request_stop()
        at_stop = connect_requests(server)
        summary = await asyncio.wait_for(running, timeout=5)

    assert summary.interrupted
    assert summary.exit_code == 130
    assert connect_requests(server) == at_stop  # nothing new after the stop
    assert load_journal(results).pending().empty  # in-flight ones were recorded
    sent = {u for u, line in latest(results).items() if line["status"] == "sent"}
    assert sent == set(invited(server))
    assert summary.remaining == 20 - len(sent)

    _, rest = await run_campaign(settings, input_path, results)
    assert rest.exit_code == 0
    assert invited(server) == {url(n): 1 for n in range(20)}


@pytest.mark.parametrize("waiting_for", ["rate limit back-off", "pacing turn"])
async def test_a_stop_does_not_wait_for_back_offs_or_pacing(
    sandbox: SandboxFactory, tmp_path: Path, waiting_for: str, virtual_clock: VirtualClock
) -> None:
    # In virtual time: the run waits 30 s (a Retry-After, or a pacing turn) in none.
    faults: tuple[FaultRule, ...] = ()
    if waiting_for == "rate limit back-off":
        faults = (FaultRule("rate_limit", retry_after=30),)
        window, rows = 0.2, 1
    else:
        window, rows = 60.0, 3  # capacity 2: the second invitation is due in 30 s
    server = await sandbox(senders=roomy("a"), faults=faults, clock=virtual_clock.now)
    input_path = prospects(tmp_path / "p.csv", rows)
    results = tmp_path / "r.csv"
    settings = settings_for(server, [("a", 2)], window=window, max_delay=30)
    async with aiohttp.ClientSession() as session:
        campaign = await Campaign.prepare(
            settings,
            RunOptions(input_path=input_path, results_path=results),
            session,
            clock=virtual_clock,
        )
        running = asyncio.ensure_future(campaign.execute())
        await until(
            lambda: connect_requests(server) >= 1 and not load_journal(results).latest.empty
        )
        await virtual_clock.sleep(5)  # well into the 30 s wait
        stopped_at = virtual_clock.monotonic()
        campaign.request_stop()
        summary = await asyncio.wait_for(running, timeout=2)
        assert virtual_clock.monotonic() - stopped_at < 1  # it did not wait the 30 s out

    assert summary.exit_code == 130
    assert connect_requests(server) == 1
    counts = final_counts(results)
    assert "failed" not in counts  # a row stopped before its retry is not burnt
    assert "pending" not in counts
    if waiting_for == "rate limit back-off":
        assert latest(results)[url(0)]["status"] == "deferred"


async def test_no_usable_sender_exits_3(sandbox: SandboxFactory, tmp_path: Path) -> None:
    server = await sandbox(senders=(SandboxSender("a", status="disconnected"),))
    input_path = prospects(tmp_path / "p.csv", 2)
    campaign, summary = await run_campaign(
        settings_for(server, [("a", 10)]), input_path, tmp_path / "r.csv"
    )
    assert (campaign.plan.now, campaign.plan.later) == (0, 2)
    assert (summary.exit_code, summary.remaining) == (3, 2)
    assert connect_requests(server) == 0


# -- the journal: torn lines, lock, escaping ------------------------------------------------


def _cut_last_line(path: Path, how: str) -> None:
    data = path.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    last = data[start:]
    if how == "half":
        path.write_bytes(data[: start + len(last) // 2])
    elif how == "one byte":
        path.write_bytes(data[: start + 1])
    elif how == "no newline":
        path.write_bytes(data[:-1])
    else:
        raise ValueError(how)


@pytest.mark.parametrize(
    ("how", "expected"), [("half", "unknown"), ("one byte", "unknown"), ("no newline", "sent")]
)
async def test_a_torn_last_line_is_tolerated_without_duplicates(
    sandbox: SandboxFactory, tmp_path: Path, how: str, expected: str
) -> None:
    server = await sandbox(senders=roomy("a"))
    input_path = prospects(tmp_path / "p.csv", 6)
    results = tmp_path / "r.csv"
    settings = settings_for(server, [("a", 100)], window=0.2)
    await run_campaign(settings, input_path, results, limit=3)
    last = read_results(results)[1][-1]
    assert last["status"] == "sent"
    # A crash while the last outcome was being written: only its `pending` line survives.
    _cut_last_line(results, how)

    _, summary = await run_campaign(settings, input_path, results)

    assert latest(results)[last["linkedin_url"]]["status"] == expected
    assert summary.this_run == {"sent": 3}
    assert invited(server) == {url(n): 1 for n in range(6)}
    assert server.state.duplicates() == {}
    assert summary.exit_code == (1 if expected == "unknown" else 0)
    # The file is whole again: every line has every column and a known status.
    header, lines = read_results(results)
    assert header == RESULTS_HEADER
    assert all(line["status"] in FINAL | {"pending"} for line in lines)
    assert results.read_bytes().endswith(b"\n")


async def test_a_torn_pending_line_means_the_request_never_left(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=roomy("a"))
    input_path = prospects(tmp_path / "p.csv", 3)
    results = tmp_path / "r.csv"
    settings = settings_for(server, [("a", 100)], window=0.2)
    await run_campaign(settings, input_path, results, limit=2)
    sent = set(invited(server))
    (unsent,) = {url(n) for n in range(3)} - sent
    with results.open("ab") as f:  # torn inside a quoted cell, as a crash might leave it
        f.write(f'4,{unsent},a,pending,,"half, a quo'.encode())

    _, summary = await run_campaign(settings, input_path, results)
    assert summary.exit_code == 0
    assert summary.this_run == {"sent": 1}
    assert invited(server) == {url(n): 1 for n in range(3)}


async def test_a_second_run_on_a_locked_results_file_is_refused(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=roomy("a"))
    input_path = prospects(tmp_path / "p.csv", 2)
    results = tmp_path / "r.csv"
    with Journal.open(results), pytest.raises(JournalLockedError) as caught:
        await run_campaign(settings_for(server, [("a", 10)]), input_path, results)
    assert str(results) in str(caught.value)
    assert connect_requests(server) == 0


async def test_a_hand_written_results_file_is_accepted_and_released_people_are_retried(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=roomy("a"))
    results = tmp_path / "r.csv"
    # Another tool's export: fewer columns, CRLF, odd capitals, no timestamps.
    results.write_bytes(
        b" LinkedIn_URL ,Status\r\n" + f"{url(0)},sent\r\n{url(1)},Already_Connected\r\n".encode()
    )
    input_path = prospects(tmp_path / "p.csv", 4)
    settings = settings_for(server, [("a", 100)], window=0.2)
    campaign, summary = await run_campaign(settings, input_path, results)

    assert campaign.plan.already_done == 2
    assert summary.this_run == {"sent": 2}
    assert invited(server) == {url(2): 1, url(3): 1}
    header, _ = read_results(results)
    assert header == RESULTS_HEADER  # rewritten once with every column
    assert final_counts(results) == {"sent": 3, "already_connected": 1}

    # Deleting person-3's lines does not make them new: the workspace remembers.
    kept = [line for line in results.read_text().splitlines(keepends=True) if url(3) not in line]
    results.write_text("".join(kept))
    campaign, again = await run_campaign(settings, input_path, results)
    assert (campaign.plan.already_invited, again.this_run) == (1, {})
    assert "though this results file does not show it" in latest(results)[url(3)]["error"]

    # Released on purpose (a withdrawn invitation), they are invited again.
    location = ledger_location(settings, rehearsal=False)
    assert location is not None
    with SQLiteLedger(Path(location)) as ledger:
        assert ledger.release([url(3)], time.time()) == 1
    _, third = await run_campaign(settings, input_path, results)
    assert third.this_run == {"sent": 1}
    assert invited(server) == {url(2): 1, url(3): 2}


async def test_a_resorted_and_extended_spreadsheet_resumes_by_profile(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=roomy("a", "b"))
    results = tmp_path / "r.csv"
    settings = settings_for(server, [("a", 100), ("b", 100)], window=0.2)
    await run_campaign(settings, prospects(tmp_path / "p.csv", 5), results, limit=3)
    sent_first = set(invited(server))
    assert len(sent_first) == 3

    # The same people in another order and spelling, with two more appended.
    order = [4, 3, 2, 1, 0, 5, 6]
    cells = [f"https://linkedin.com/in/Person-{n}/?trk=x" for n in order]
    input_path = write_prospects(tmp_path / "p.csv", [(c, "") for c in cells])
    _, summary = await run_campaign(settings, input_path, results)

    assert summary.this_run == {"sent": 4}
    assert invited(server) == {url(n): 1 for n in range(7)}
    final = latest(results)
    assert {final[url(n)]["status"] for n in range(7)} == {"sent"}
    # Rows sent by this run are numbered as the new spreadsheet shows them.
    for n in order:
        if url(n) not in sent_first:
            assert final[url(n)]["row"] == str(order.index(n) + 2)


@pytest.mark.parametrize(
    "message",
    ['=HYPERLINK("http://evil.example","x")', "+SUM(A1:A9)", "-2+3", "@cmd", "\tTAB", "\rCR"],
)
async def test_api_messages_that_look_like_formulas_are_escaped(
    sandbox: SandboxFactory, tmp_path: Path, message: str
) -> None:
    server = await sandbox(
        senders=roomy("a"), faults=(FaultRule("error", status=400, message=message),)
    )
    input_path = prospects(tmp_path / "p.csv", 1)
    results = tmp_path / "r.csv"
    await run_campaign(settings_for(server, [("a", 10)]), input_path, results)

    assert latest(results)[url(0)]["error"] == "'" + message  # as a spreadsheet gets it
    assert load_journal(results).latest["error"].tolist() == [message]  # and as we read it


async def test_sender_ids_that_look_like_formulas_are_escaped(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=(SandboxSender("@team", capacity=10),))
    input_path = write_prospects(
        tmp_path / "p.csv",
        [(url(1), "", "@team"), (url(2), "", "=cmd|' /C calc'!A0")],
        header=("linkedin_url", "note", "sender_id"),
    )
    results = tmp_path / "r.csv"
    await run_campaign(settings_for(server, [("@team", 10)]), input_path, results)

    _, lines = read_results(results)
    assert all(not line[c].startswith(("=", "+", "-", "@")) for line in lines for c in line)
    assert latest(results)[url(1)]["sender_id"] == "'@team"
    assert latest(results)[url(1)]["status"] == "sent"
    assert latest(results)[url(2)]["sender_id"] == "'=cmd|' /C calc'!A0"
    assert invited(server) == {url(1): 1}


async def test_planning_a_fresh_campaign_warns_nothing(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=(SandboxSender("a", capacity=5),))
    input_path = prospects(tmp_path / "p.csv", 2)
    # Python warnings are errors suite-wide (pyproject); this checks the plan's own.
    campaign, summary = await run_campaign(
        settings_for(server, [("a", 5)]), input_path, tmp_path / "r.csv"
    )
    assert campaign.plan.warnings == ()
    assert summary.exit_code == 0


# -- notes arrive exactly as written ---------------------------------------------------------


def _blns_notes(count: int = 50) -> list[str]:
    strings = naughty_strings()
    fits = [
        s
        for s in strings
        if s.strip() and len(s.encode("utf-16-le")) // 2 <= 300 and "\x00" not in s
    ]
    wanted = ["NULL", "NaN", "True", "null", "-1", "0", "' OR 1=1 -- 1"]
    wanted += [s for s in fits if any("\u0590" <= ch <= "\u06ff" for ch in s)][:2]  # RTL
    wanted += [s for s in fits if any(ord(ch) > 0xFFFF for ch in s)][:3]  # emoji, astral
    wanted += [s for s in fits if any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in s)][:4]
    rest = [s for s in fits if s not in wanted]
    step = max(1, len(rest) // (count - len(wanted)))
    return (wanted + rest[::step])[:count]


async def test_notes_reach_the_server_byte_identical(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    notes = _blns_notes()
    assert len(notes) == 50
    server = await sandbox(senders=roomy("p1", "p2", capacity=100))
    input_path = write_prospects(tmp_path / "p.csv", [(url(n), s) for n, s in enumerate(notes)])
    results = tmp_path / "r.csv"
    campaign, summary = await run_campaign(
        settings_for(server, [("p1", 100, True), ("p2", 100, True)], window=0.2),
        input_path,
        results,
    )
    assert campaign.plan.counts["valid"] == 50, campaign.plan.counts
    assert summary.exit_code == 0
    got = {i.linkedin_url: i.note for i in server.state.invitations}
    mismatched = {n: (s, got.get(url(n))) for n, s in enumerate(notes) if got.get(url(n)) != s}
    assert mismatched == {}


async def test_a_journal_that_cannot_be_written_stops_the_run(
    sandbox: SandboxFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The disk fills up after a few lines: the run must stop with the journal's error
    # (not go on taking paced turns it cannot record), and nothing may leave unrecorded.
    server = await sandbox(senders=roomy("a", "b"))
    input_path = prospects(tmp_path / "p.csv", 20)
    real_write = journal_writer._write_all
    writes = 0

    def write_until_full(fd: int, data: bytes) -> None:
        nonlocal writes
        writes += 1
        if writes > 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(fd, data)

    monkeypatch.setattr(journal_writer, "_write_all", write_until_full)
    started = time.monotonic()
    with pytest.raises((JournalError, OSError)):
        await run_campaign(
            settings_for(server, [("a", 20), ("b", 20)], window=4.0),
            input_path,
            tmp_path / "r.csv",
        )
    # Stopped at the failure, long before the 4 s window's paced turns ran out.
    assert time.monotonic() - started < 2.0
    _, lines = read_results(tmp_path / "r.csv")
    recorded = {line["linkedin_url"] for line in lines}
    assert set(invited(server)) <= recorded  # every invitation had its pending line


async def test_retry_unknown_leaves_rows_a_crash_just_left_in_doubt(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    # A cron line carrying --retry-unknown must not re-send, in the very run that finds
    # them, rows whose request may have left before a crash: a person checks them first.
    server = await sandbox(senders=roomy("a"))
    results = tmp_path / "r.csv"
    with Journal.open(results, extra_columns=("note_delivered",)) as journal:
        journal.append(JournalRecord(row=2, linkedin_url=url(0), sender_id="a", status="pending"))
        journal.append(JournalRecord(row=3, linkedin_url=url(1), sender_id="a", status="unknown"))
    input_path = prospects(tmp_path / "p.csv", 3)
    settings = settings_for(server, [("a", 100)])

    campaign, summary = await run_campaign(settings, input_path, results, retry_unknown=True)
    assert campaign.plan.recovered_pending == 1
    assert invited(server) == {url(1): 1, url(2): 1}
    assert latest(results)[url(0)]["status"] == "unknown"
    assert summary.exit_code == 1

    # Once a person has seen it (a later run), the flag sends it on purpose.
    _, again = await run_campaign(settings, input_path, results, retry_unknown=True)
    assert invited(server) == {url(0): 1, url(1): 1, url(2): 1}
    assert again.exit_code == 0


async def test_the_plan_counts_pinned_rows_against_their_own_sender_only(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=roomy("a", "b"))
    rows = [(url(n), "", "a") for n in range(10)] + [(url(n), "", "") for n in range(10, 13)]
    input_path = write_prospects(
        tmp_path / "p.csv", rows, header=("linkedin_url", "note", "sender_id")
    )
    campaign, summary = await run_campaign(
        settings_for(server, [("a", 2), ("b", 2)]), input_path, tmp_path / "r.csv"
    )
    # a takes 2 of its 10 pinned rows; b takes 2 of the 3 shared ones.
    assert (campaign.plan.now, campaign.plan.later) == (4, 9)
    assert summary.this_run == {"sent": 4}
    assert summary.exit_code == 3


async def test_a_hand_written_results_file_matches_prospects_by_canonical_url(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    # Another tool wrote the URLs as people paste them; they are the same prospects.
    server = await sandbox(senders=roomy("a"))
    results = tmp_path / "r.csv"
    results.write_text(
        "linkedin_url,status\n"
        "https://www.linkedin.com/in/Person-0/,sent\n"
        "linkedin.com/in/person-1?trk=abc,sent\n"
        "https://uk.linkedin.com/in/PERSON-2/detail/,already_connected\n",
        encoding="utf-8",
    )
    input_path = prospects(tmp_path / "p.csv", 4)
    campaign, summary = await run_campaign(settings_for(server, [("a", 100)]), input_path, results)
    assert campaign.plan.already_done == 3
    assert invited(server) == {url(3): 1}
    assert summary.exit_code == 0


async def test_a_new_run_keeps_the_spacing_from_the_last_runs_invitation(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    # Restarted right after an invitation left (a cron job, a Ctrl-C and a rerun), a
    # sender waits out its interval instead of inviting again at once.
    server = await sandbox(senders=roomy("a"))
    input_path = prospects(tmp_path / "p.csv", 2)
    results = tmp_path / "r.csv"
    settings = settings_for(server, [("a", 4)], window=2.0)  # one every 0.5 s
    _, first = await run_campaign(settings, input_path, results, limit=1)
    assert first.this_run == {"sent": 1}
    _, second = await run_campaign(settings, input_path, results)
    assert second.this_run == {"sent": 1}
    one, two = (i.created_at for i in server.state.invitations)
    assert two - one >= 0.45


# -- every capacity slot is used -----------------------------------------------------------


@pytest.mark.parametrize("handed_back", ["already_connected", "rejected"])
async def test_turns_handed_back_are_used_again_in_the_same_run(
    sandbox: SandboxFactory, tmp_path: Path, handed_back: str
) -> None:
    # 12 rows, a limit of 5, every other row hands its turn back. The answers come after
    # all five turns were taken, so the sender must wait for them rather than stop.
    back = frozenset(url(n) for n in range(0, 12, 2))
    faults = [FaultRule("latency", seconds=0.2)]
    if handed_back == "rejected":
        faults = [FaultRule("error", status=400, recipient=u) for u in sorted(back)] + faults
    server = await sandbox(
        senders=roomy("a"),
        faults=tuple(faults),
        already_connected=back if handed_back == "already_connected" else frozenset(),
    )
    input_path = prospects(tmp_path / "p.csv", 12)
    settings = settings_for(server, [("a", 5)], window=0.05, concurrency=8)
    _, summary = await run_campaign(settings, input_path, tmp_path / "r.csv")

    assert summary.this_run["sent"] == 5
    assert len(server.state.invitations) == 5
    assert server.state.duplicates() == {}
    back_status = "already_connected" if handed_back == "already_connected" else "failed"
    assert summary.this_run[back_status] >= 3


# -- virtual time ----------------------------------------------------------------------------


async def test_invitations_leave_at_exactly_the_paced_times_in_virtual_time(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    # A day's window and four invitations: one every six hours, in milliseconds of real time.
    server = await sandbox(senders=roomy("a"), clock=virtual_clock.now, window_seconds=86_400)
    input_path = prospects(tmp_path / "p.csv", 6)
    settings = settings_for(server, [("a", 4)], window=86_400)
    started = virtual_clock.now()
    real = time.monotonic()
    _, summary = await run_campaign(settings, input_path, tmp_path / "r.csv", clock=virtual_clock)

    assert (summary.this_run, summary.remaining, summary.exit_code) == ({"sent": 4}, 2, 3)
    times = [i.created_at - started for i in server.state.invitations]
    assert times == pytest.approx([0.0, 21_600.0, 43_200.0, 64_800.0], abs=0.01)
    assert time.monotonic() - real < 5
    # A second run the same day keeps the spacing, instead of sending at once.
    fresh = prospects(tmp_path / "q.csv", 2, start=100)
    more = settings_for(server, [("a", 8)], window=86_400)
    await run_campaign(more, fresh, tmp_path / "q.results.csv", clock=virtual_clock)
    gap = server.state.invitations[4].created_at - server.state.invitations[3].created_at
    assert gap == pytest.approx(86_400 / 4, abs=0.01)


async def test_a_run_ends_as_soon_as_its_last_row_is_final(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    # Two senders at 4 and 2 a minute: the last invitation leaves well before the slower
    # sender's next slot, and the run must not wait for that slot with nothing to send.
    # Three rows: a sends at 0 s and 15 s, b at 0 s and would next send at 30 s.
    server = await sandbox(senders=roomy("a", "b"), clock=virtual_clock.now, window_seconds=60)
    input_path = prospects(tmp_path / "p.csv", 3)
    settings = settings_for(server, [("a", 4), ("b", 2)], window=60)
    started = virtual_clock.monotonic()
    _, summary = await run_campaign(settings, input_path, tmp_path / "r.csv", clock=virtual_clock)
    ended = virtual_clock.monotonic() - started

    assert summary.this_run == {"sent": 3}
    last = max(i.created_at for i in server.state.invitations) - virtual_clock.loop.epoch
    assert ended == pytest.approx(last, abs=0.5), (ended, last)


async def test_a_clock_set_back_is_said_and_pacing_goes_on_from_now(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    # The last run's invitation is dated two hours ahead: the clock has since been set back.
    server = await sandbox(senders=roomy("a"), clock=virtual_clock.now, window_seconds=86_400)
    results = tmp_path / "r.csv"
    ahead = virtual_clock.now() + 7_200
    with Journal.open(results, extra_columns=("note_delivered", "api")) as journal:
        journal.append(
            JournalRecord(
                row=2,
                linkedin_url=url(0),
                sender_id="a",
                status="sent",
                timestamp=format_timestamp(ahead),
                extra={"api": "sendpilot"},
            )
        )
    input_path = prospects(tmp_path / "p.csv", 3)
    settings = settings_for(server, [("a", 24)], window=86_400)
    started = virtual_clock.now()
    campaign, summary = await run_campaign(settings, input_path, results, clock=virtual_clock)

    assert any("was the clock set back?" in w for w in campaign.plan.warnings)
    assert summary.this_run == {"sent": 2}
    # Paced from now: the first goes one interval from now (23 left of 24 a day, the line
    # ahead counting as sent), not that plus the two hours.
    first = min(i.created_at for i in server.state.invitations) - started
    assert first == pytest.approx(86_400 / 23, abs=1)


async def test_invitations_leave_only_in_working_hours_spread_across_them(
    sandbox: SandboxFactory, tmp_path: Path, virtual_clock: VirtualClock
) -> None:
    from datetime import UTC, datetime

    # The virtual clock starts on Tuesday 2023-11-14 at 22:13:20 UTC; the sender works
    # an hour on Tuesdays from 22:30, four invitations a day: one every 15 minutes.
    server = await sandbox(senders=roomy("a"), clock=virtual_clock.now, window_seconds=86_400)
    settings = with_hours(
        settings_for(server, [("a", 4)], window=86_400), working_hours("22:30-23:30", "tue")
    )
    input_path = prospects(tmp_path / "p.csv", 6)
    results = tmp_path / "r.csv"

    campaign, early = await run_campaign(settings, input_path, results, clock=virtual_clock)
    assert early.this_run == {} and early.exit_code == 3
    (sender,) = campaign.plan.senders
    assert sender.skipped == "outside its working hours: the next window opens Tue 22:30 UTC"

    opens = datetime(2023, 11, 14, 22, 30, tzinfo=UTC).timestamp()
    await virtual_clock.sleep(opens - virtual_clock.now())
    _, inside = await run_campaign(settings, input_path, results, clock=virtual_clock)
    assert inside.this_run == {"sent": 4}
    times = [i.created_at - opens for i in server.state.invitations]
    assert times == pytest.approx([0, 900, 1800, 2700], abs=1)  # within 22:30-23:30
