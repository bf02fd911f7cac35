"""The workspace ledger: claims, capacity and joint pacing, across campaigns and processes.

Every test runs against both backends: an SQLite file, and a fresh database on the session's
throwaway PostgreSQL server (conftest's ``postgres_server``).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from campaign_runner import ledger as workspace
from campaign_runner.ledger import (
    Acceptance,
    ClaimRequest,
    ImportLine,
    Invitation,
    Ledger,
    SenderLimits,
    Settle,
    SQLiteLedger,
    Verdict,
    WebhookEvent,
)

T0 = 1_800_000_000.0
DAY = 86_400.0
ROOMY = SenderLimits(daily_limit=1000, weekly_limit=5000, interval_seconds=0.0)


def url(n: int) -> str:
    return f"https://www.linkedin.com/in/person-{n}"


OpenLedger = Callable[[], Ledger]


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty workspace ledger's name: an SQLite path or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "workspace.sqlite3")
    return str(request.getfixturevalue("postgres_server").create_database())


@pytest.fixture
def open_ledger(database: str) -> Iterator[OpenLedger]:
    opened: list[Ledger] = []

    def make() -> Ledger:
        ledger = workspace.open_ledger(database)
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


def claim(
    ledger: Ledger,
    campaign: int,
    n: int,
    sender: str = "s1",
    now: float = T0,
    limits: SenderLimits = ROOMY,
):  # type: ignore[no-untyped-def]
    return ledger.claim(campaign, [ClaimRequest(url(n), sender)], {sender: limits}, DAY, now)[0]


def test_a_person_claimed_by_one_campaign_is_taken_for_another(open_ledger: OpenLedger) -> None:
    ledger = open_ledger()
    first = ledger.campaign("q3-list", "/data/q3.results.csv", T0).id
    second = ledger.campaign("q3-list-v2", "/data/q3v2.results.csv", T0).id
    assert claim(ledger, first, 1).verdict is Verdict.CLAIMED
    taken = claim(ledger, second, 1, now=T0 + 5)
    assert taken.verdict is Verdict.TAKEN
    assert taken.holder is not None
    assert (taken.holder.campaign, taken.holder.status, taken.holder.at) == (
        "q3-list",
        "pending",
        T0,
    )


@pytest.mark.parametrize(
    ("outcome", "again"),
    [
        ("sent", Verdict.TAKEN),
        ("already_connected", Verdict.TAKEN),
        ("unknown", Verdict.TAKEN),
        ("failed", Verdict.CLAIMED),
        ("deferred", Verdict.CLAIMED),
    ],
)
def test_only_live_attempts_hold_a_person(
    open_ledger: OpenLedger, outcome: str, again: Verdict
) -> None:
    ledger = open_ledger()
    first = ledger.campaign("a", "/a.csv", T0).id
    second = ledger.campaign("b", "/b.csv", T0).id
    granted = claim(ledger, first, 1)
    assert granted.claim_id is not None
    ledger.settle([Settle(granted.claim_id, outcome, request_id="conn_1")], T0 + 1)
    assert claim(ledger, second, 1, now=T0 + 2).verdict is again


def test_a_campaign_may_send_its_own_unknown_again_but_not_its_sent(
    open_ledger: OpenLedger,
) -> None:
    ledger = open_ledger()
    mine = ledger.campaign("a", "/a.csv", T0).id
    unknown, sent = claim(ledger, mine, 1), claim(ledger, mine, 2)
    assert unknown.claim_id is not None and sent.claim_id is not None
    ledger.settle([Settle(unknown.claim_id, "unknown"), Settle(sent.claim_id, "sent")], T0)
    assert claim(ledger, mine, 1, now=T0 + 1).verdict is Verdict.CLAIMED  # --retry-unknown
    assert claim(ledger, mine, 2, now=T0 + 1).verdict is Verdict.TAKEN


def test_release_lets_a_person_be_invited_again(open_ledger: OpenLedger) -> None:
    ledger = open_ledger()
    first = ledger.campaign("a", "/a.csv", T0).id
    granted = claim(ledger, first, 1)
    assert granted.claim_id is not None
    ledger.settle([Settle(granted.claim_id, "sent")], T0)
    assert ledger.release([url(1), url(2)], T0 + 10) == 1
    assert claim(ledger, ledger.campaign("b", "/b.csv", T0).id, 1).verdict is Verdict.CLAIMED


def test_the_daily_and_weekly_limits_count_every_campaign(open_ledger: OpenLedger) -> None:
    ledger = open_ledger()
    a, b = ledger.campaign("a", "/a.csv", T0).id, ledger.campaign("b", "/b.csv", T0).id
    limits = SenderLimits(daily_limit=2, weekly_limit=3, interval_seconds=0.0)
    assert claim(ledger, a, 1, limits=limits).verdict is Verdict.CLAIMED
    assert claim(ledger, b, 2, now=T0 + 60, limits=limits).verdict is Verdict.CLAIMED
    full = claim(ledger, a, 3, now=T0 + 120, limits=limits)
    assert (full.verdict, full.not_before) == (Verdict.FULL, T0 + DAY)
    # A day later the day has room, but the week's three are spent once one more leaves.
    assert claim(ledger, b, 3, now=T0 + DAY + 60, limits=limits).verdict is Verdict.CLAIMED
    week = claim(ledger, a, 4, now=T0 + DAY + 120, limits=limits)
    assert (week.verdict, week.not_before) == (Verdict.FULL, T0 + 7 * DAY)
    usage = ledger.usage(DAY, T0 + DAY + 120)["s1"]
    assert (usage.day, usage.week) == (1, 3)
    assert usage.week_by_campaign == {a: 1, b: 2}


def test_a_failed_or_deferred_attempt_spends_no_capacity(open_ledger: OpenLedger) -> None:
    ledger = open_ledger()
    a = ledger.campaign("a", "/a.csv", T0).id
    limits = SenderLimits(daily_limit=1, weekly_limit=1, interval_seconds=0.0)
    granted = claim(ledger, a, 1, limits=limits)
    assert granted.claim_id is not None
    ledger.settle([Settle(granted.claim_id, "failed", error="400")], T0)
    assert claim(ledger, a, 2, limits=limits).verdict is Verdict.CLAIMED


def test_claims_keep_the_senders_interval_whichever_campaign_takes_them(
    open_ledger: OpenLedger,
) -> None:
    ledger = open_ledger()
    a, b = ledger.campaign("a", "/a.csv", T0).id, ledger.campaign("b", "/b.csv", T0).id
    paced = SenderLimits(daily_limit=100, weekly_limit=100, interval_seconds=60.0)
    assert claim(ledger, a, 1, limits=paced).verdict is Verdict.CLAIMED
    wait = claim(ledger, b, 2, now=T0 + 10, limits=paced)
    assert (wait.verdict, wait.not_before) == (Verdict.WAIT, T0 + 60)
    assert claim(ledger, b, 2, now=T0 + 60, limits=paced).verdict is Verdict.CLAIMED
    assert claim(ledger, a, 3, now=T0 + 60, limits=paced).verdict is Verdict.WAIT
    # A campaign's own next slot is its own limiter's business.
    assert claim(ledger, b, 4, now=T0 + 61, limits=paced).verdict is Verdict.CLAIMED
    # Another sender is paced on its own.
    assert claim(ledger, a, 3, sender="s2", now=T0 + 60, limits=paced).verdict is Verdict.CLAIMED


def test_holders_name_the_campaign_of_each_live_attempt(open_ledger: OpenLedger) -> None:
    ledger = open_ledger()
    a, b = ledger.campaign("a", "/a.csv", T0).id, ledger.campaign("b", "/b.csv", T0).id
    claim(ledger, a, 1)
    claim(ledger, b, 2)
    holders = ledger.holders([url(n) for n in range(1200)])
    assert {u: (h.campaign, h.campaign_id) for u, h in holders.items()} == {
        url(1): ("a", a),
        url(2): ("b", b),
    }
    assert ledger.find_campaign("/a.csv") == ledger.campaigns()[0]
    assert ledger.find_campaign("/c.csv") is None


def test_import_brings_in_outcomes_once(open_ledger: OpenLedger) -> None:
    ledger = open_ledger()
    a = ledger.campaign("old", "/old.csv", T0).id
    lines = [
        ImportLine(url(1), "s1", "sent", T0 - 3600, request_id="conn_1"),
        ImportLine(url(2), "s1", "failed", T0 - 3000),
        ImportLine(url(3), "s1", "invalid", T0 - 3000),
    ]
    assert ledger.import_lines(a, lines) == 2
    assert ledger.import_lines(a, lines) == 0
    assert ledger.usage(DAY, T0)["s1"].day == 1
    b = ledger.campaign("new", "/new.csv", T0).id
    assert claim(ledger, b, 1).verdict is Verdict.TAKEN
    assert claim(ledger, b, 2).verdict is Verdict.CLAIMED


def test_two_processes_never_claim_one_person_or_overspend_a_sender(
    tmp_path: Path, database: str
) -> None:
    script = textwrap.dedent(
        f"""
        import pathlib, sys, time
        from campaign_runner.ledger import ClaimRequest, SenderLimits, open_ledger
        ledger = open_ledger(sys.argv[2])
        me = ledger.campaign(sys.argv[1], "/" + sys.argv[1], 0.0).id
        limits = {{"s1": SenderLimits(daily_limit=75, weekly_limit=75, interval_seconds=0.0)}}
        # Start together, so that the claims interleave.
        pathlib.Path({str(tmp_path)!r}, "ready-" + sys.argv[1]).touch()
        while len(list(pathlib.Path({str(tmp_path)!r}).glob("ready-*"))) < 2:
            time.sleep(0.001)
        won = 0
        order = range(100) if sys.argv[1] == "a" else range(99, -1, -1)  # meet midway
        for i, n in enumerate(order):
            url = f"https://www.linkedin.com/in/person-{{n}}"
            got = ledger.claim(me, [ClaimRequest(url, "s1")], limits, 86400.0, 1000.0 + i)
            won += got[0].verdict.value == "claimed"
            time.sleep(0.01)  # paced, as senders are: the other process gets its turns
        print(won)
        """
    )
    workspace.open_ledger(database).close()  # the schema exists before both start
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, name, database], stdout=subprocess.PIPE, text=True
        )
        for name in ("a", "b")
    ]
    won = [int(p.communicate(timeout=60)[0]) for p in runs]
    assert all(p.returncode == 0 for p in runs)
    with workspace.open_ledger(database) as ledger:
        totals = ledger.totals()
        usage = ledger.usage(86400.0, 1200.0)["s1"]
    assert sum(won) == 75  # the sender's limit, split between the two
    assert totals == {"pending": 75}
    assert usage.day == 75
    assert min(won) > 0  # both took part


def test_runners_starting_at_once_on_a_new_ledger_all_open_it(
    tmp_path: Path, database: str
) -> None:
    script = textwrap.dedent(
        f"""
        import pathlib, sys, time
        from campaign_runner.ledger import open_ledger
        # Start together, so that the schema is created by all of them at once.
        pathlib.Path({str(tmp_path)!r}, "ready-" + sys.argv[1]).touch()
        while len(list(pathlib.Path({str(tmp_path)!r}).glob("ready-*"))) < 4:
            time.sleep(0.001)
        open_ledger(sys.argv[2]).close()
        """
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", script, str(n), database], stderr=subprocess.PIPE)
        for n in range(4)
    ]
    errors = [p.communicate(timeout=60)[1] for p in runs]
    assert [p.returncode for p in runs] == [0, 0, 0, 0], errors
    with workspace.open_ledger(database) as ledger:
        assert ledger.campaigns() == []


def test_holders_take_more_urls_than_a_statement_has_parameters(open_ledger: OpenLedger) -> None:
    ledger = open_ledger()
    a = ledger.campaign("a", "/a.csv", T0).id
    claim(ledger, a, 7)
    claim(ledger, a, 69_999)
    # SQLite binds at most 32,766 parameters and PostgreSQL 65,535; duplicates count once.
    asked = [url(n) for n in range(70_000)] + [url(7)] * 3
    assert sorted(ledger.holders(asked)) == [url(69_999), url(7)]
    assert ledger.holders([]) == {}


def test_usage_counts_each_sender_and_campaign_in_the_day_and_week(
    open_ledger: OpenLedger,
) -> None:
    ledger = open_ledger()
    a, b = ledger.campaign("a", "/a.csv", T0).id, ledger.campaign("b", "/b.csv", T0).id
    now = T0 + 10 * DAY
    lines = [
        ImportLine(url(1), "s1", "sent", now - 8 * DAY),  # before the week
        ImportLine(url(2), "s1", "sent", now - 3 * DAY),
        ImportLine(url(3), "s1", "unknown", now - 3600),
        ImportLine(url(4), "s1", "failed", now - 60),  # spends nothing
        ImportLine(url(5), "s1", "already_connected", now - 60),  # spends nothing
        ImportLine(url(6), "s2", "sent", now - 7200),
        ImportLine(url(7), "s3", "sent", now - 9 * DAY),  # a sender idle all week
    ]
    assert ledger.import_lines(a, lines) == 7
    ledger.import_lines(b, [ImportLine(url(8), "s2", "sent", now - 2 * DAY)])
    usage = ledger.usage(DAY, now)
    assert sorted(usage) == ["s1", "s2"]
    s1, s2 = usage["s1"], usage["s2"]
    assert (s1.day, s1.week, s1.last_at, s1.oldest_in_day) == (1, 2, now - 3600, now - 3600)
    assert (s1.oldest_in_week, s2.oldest_in_week) == (now - 3 * DAY, now - 2 * DAY)
    assert (s1.day_by_campaign, s1.week_by_campaign) == ({a: 1}, {a: 2})
    assert (s2.day, s2.week, s2.last_at, s2.oldest_in_day) == (1, 2, now - 7200, now - 7200)
    assert (s2.day_by_campaign, s2.week_by_campaign) == ({a: 1}, {a: 1, b: 1})


def test_invitations_are_each_persons_live_attempt_else_the_newest(
    open_ledger: OpenLedger,
) -> None:
    ledger = open_ledger()
    a, b = ledger.campaign("a", "/a.csv", T0).id, ledger.campaign("b", "/b.csv", T0).id
    sent, failed, released = claim(ledger, a, 1), claim(ledger, a, 2), claim(ledger, a, 3)
    assert sent.claim_id and failed.claim_id and released.claim_id
    ledger.settle(
        [
            Settle(sent.claim_id, "sent", request_id="conn_1"),
            Settle(failed.claim_id, "failed", error="400"),
            Settle(released.claim_id, "sent", request_id="conn_3"),
        ],
        T0 + 1,
    )
    ledger.release([url(3)], T0 + 2)
    # Campaign b's old results say person 1 failed (brought in after a's invitation, and
    # newer): the live invitation still stands for the person.
    ledger.import_lines(b, [ImportLine(url(1), "s2", "failed", T0 + 3)])
    again = claim(ledger, b, 2, sender="s2", now=T0 + 4)  # person 2 tried again, still pending
    assert again.verdict is Verdict.CLAIMED
    assert ledger.invitations() == [
        Invitation(url(1), "s1", "sent", "conn_1", T0),
        Invitation(url(3), "s1", "released", "conn_3", T0),
        Invitation(url(2), "s2", "pending", "", T0 + 4),
    ]


def test_import_checks_each_line_against_the_lines_before_it(open_ledger: OpenLedger) -> None:
    ledger = open_ledger()
    other = ledger.campaign("other", "/other.csv", T0).id
    claim(ledger, other, 9)
    a = ledger.campaign("old", "/old.csv", T0).id
    lines = [
        ImportLine(url(1), "s1", "sent", T0 - 100),
        ImportLine(url(1), "s1", "unknown", T0 - 50),  # url(1) is held by the line above
        ImportLine(url(1), "s1", "failed", T0 - 100),  # that line's person and date
        ImportLine(url(2), "s1", "failed", T0 - 100),
        ImportLine(url(2), "s1", "failed", T0 - 100),  # the same line twice
        ImportLine(url(2), "s1", "deferred", T0 - 90),
        ImportLine(url(2), "s1", "sent", T0 - 100),  # a failure holds nobody
        ImportLine(url(9), "s1", "sent", T0 - 100),  # held by another campaign
        ImportLine(url(10), "s1", "invalid", T0 - 100),  # not an outcome
    ]
    assert ledger.import_lines(a, lines) == 4
    assert ledger.import_lines(a, lines) == 0
    assert ledger.totals() == {"pending": 1, "sent": 2, "failed": 1}
    holders = ledger.holders([url(1), url(2), url(9)])
    assert {u: (h.campaign, h.status) for u, h in holders.items()} == {
        url(1): ("old", "sent"),
        url(2): ("old", "sent"),
        url(9): ("other", "pending"),
    }


def test_import_takes_more_lines_than_a_statement_has_parameters(
    open_ledger: OpenLedger,
) -> None:
    ledger = open_ledger()
    a = ledger.campaign("old", "/old.csv", T0).id
    lines = [ImportLine(url(n), "s1", "sent", T0 - 8 * DAY + n) for n in range(40_000)]
    assert ledger.import_lines(a, lines) == 40_000
    assert ledger.import_lines(a, [*lines, ImportLine(url(40_000), "s1", "sent", T0)]) == 1
    assert ledger.totals() == {"sent": 40_001}


def test_a_slot_reserved_before_the_clock_was_set_back_is_not_waited_for(
    open_ledger: OpenLedger,
) -> None:
    ledger = open_ledger()
    a, b = ledger.campaign("a", "/a.csv", T0).id, ledger.campaign("b", "/b.csv", T0).id
    paced = SenderLimits(daily_limit=100, weekly_limit=100, interval_seconds=60.0)
    assert claim(ledger, a, 1, limits=paced).verdict is Verdict.CLAIMED  # next slot T0 + 60
    # An hour earlier by the clock now: waiting for T0 + 60 would idle the sender an hour.
    assert claim(ledger, b, 2, now=T0 - 3_600, limits=paced).verdict is Verdict.CLAIMED


def event(
    event_id: str,
    event_type: str = "connection_request.accepted",
    *,
    sender: str = "s1",
    n: int | None = 1,
    at: float | None = T0,
    received: float = T0 + 5,
) -> WebhookEvent:
    return WebhookEvent(
        event_id=event_id,
        event_type=event_type,
        received_at=received,
        occurred_at=at,
        sender_id=sender,
        url=url(n) if n is not None else "",
        payload=f'{{"eventId": "{event_id}"}}',
    )


def test_a_webhook_event_is_kept_once_by_its_id(open_ledger: OpenLedger) -> None:
    ledger = open_ledger()
    assert ledger.record_event(event("evt_1")) is True
    # A redelivery (same id, even with a later arrival) changes nothing.
    assert ledger.record_event(event("evt_1", received=T0 + 60, at=T0 + 50)) is False
    assert ledger.acceptances() == [Acceptance("s1", url(1), T0, "evt_1")]


def test_acceptances_are_the_earliest_per_sender_and_person_of_both_event_types(
    open_ledger: OpenLedger,
) -> None:
    ledger = open_ledger()
    events = [
        event("evt_new", "connection_request.accepted", at=T0 + 100),
        event("evt_old", "connection.accepted", at=T0 + 40),  # the same acceptance, older name
        event("evt_other_sender", sender="s2", at=T0 + 10),
        event("evt_no_time", n=2, at=None, received=T0 + 7),  # dated by its arrival
        event("evt_sent", "connection_request.sent", n=3, at=T0),
        event("evt_legacy_sent", "connection.sent", n=3, at=T0),
        event("evt_reply", "reply.received", n=3, at=T0),
        event("evt_no_url", n=None, at=T0),  # kept, but says nobody
        event("evt_no_sender", sender="", n=4, at=T0 + 3),
    ]
    assert [ledger.record_event(e) for e in events] == [True] * len(events)
    assert ledger.acceptances() == [
        Acceptance("", url(4), T0 + 3, "evt_no_sender"),
        Acceptance("s1", url(2), T0 + 7, "evt_no_time"),
        Acceptance("s2", url(1), T0 + 10, "evt_other_sender"),
        Acceptance("s1", url(1), T0 + 40, "evt_old"),
    ]


def test_webhook_events_survive_reopening_the_ledger(open_ledger: OpenLedger) -> None:
    first = open_ledger()
    assert first.record_event(event("evt_1", n=5))
    # Another connection, as another process would open it, after the schema statements
    # ran again on an existing ledger.
    again = open_ledger()
    assert again.record_event(event("evt_1", n=5)) is False
    assert again.acceptances() == [Acceptance("s1", url(5), T0, "evt_1")]


def test_a_ledger_of_an_older_release_reads_as_having_no_webhook_events(tmp_path: Path) -> None:
    # A file from before the webhook_events table, opened read-only (a dry run, a
    # report): it cannot be given the table, and reads as having no events yet.
    path = tmp_path / "old.sqlite3"
    SQLiteLedger(path).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE webhook_events")
    with SQLiteLedger(path, read_only=True) as old:
        assert old.acceptances() == []
    with sqlite3.connect(path) as db:  # and it was left as it was
        tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "webhook_events" not in tables


def test_a_claim_is_stamped_once_it_holds_the_lock_not_before(tmp_path: Path) -> None:
    # Another process holds the ledger's write lock for a while (its commit, its fsync):
    # the claim that waited for it is stamped when it got the lock, so that the sender's
    # next slot, for any campaign, counts from then and not from before the wait.
    path = tmp_path / "ws.sqlite3"
    with SQLiteLedger(path) as ledger:
        campaign = ledger.campaign("a", "/a.csv", T0).id
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # the other process's transaction
        released: list[float] = []

        def release() -> None:
            released.append(time.time())
            other.execute("COMMIT")

        releasing = threading.Timer(0.3, release)
        releasing.start()
        asked = time.time()
        (granted,) = ledger.claim(
            campaign, [ClaimRequest(url(1), "s1")], {"s1": ROOMY}, DAY, time.time
        )
        releasing.join()
        other.close()
        assert granted.verdict is Verdict.CLAIMED
        stamped = ledger.usage(DAY, time.time() + 1)["s1"].last_at
        assert stamped is not None and stamped >= released[0] > asked
