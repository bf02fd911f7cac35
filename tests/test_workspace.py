"""One workspace, one truth: campaigns sharing people and senders, one after the other and
at the same time (real subprocesses), on SQLite and PostgreSQL, counted from the
stand-in's own record."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FakeClock, SandboxFactory
from helpers import (
    ThreadedSandbox,
    final_counts,
    invited,
    latest,
    prospects,
    run_campaign,
    settings_for,
    url,
    write_config,
    write_prospects,
)

from campaign_runner.cli import cli
from campaign_runner.journal import load_journal
from campaign_runner.ledger import ImportLine
from campaign_runner.sandbox import SandboxConfig, SandboxSender, SandboxServer
from campaign_runner.workspace import import_lines

KEY = "sk_live_WORKSPACE_2b91"
pytestmark = [pytest.mark.slow]


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The workspace ledger both campaigns share: a file, or a real PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "team.sqlite3")
    return str(request.getfixturevalue("postgres_server").create_database())


def roomy(*ids: str) -> tuple[SandboxSender, ...]:
    # The stand-in never refuses: every limit seen here is campaign-runner's own.
    return tuple(SandboxSender(i, capacity=10_000) for i in ids)


async def test_a_second_campaign_skips_people_the_first_invited(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=roomy("a"))
    first = prospects(tmp_path / "prospects.csv", 8)
    # A re-export: the same eight in other forms, plus four new people.
    again = write_prospects(
        tmp_path / "prospects_v2.csv",
        [f"linkedin.com/in/Person-{n}/" for n in range(8)] + [url(n) for n in range(8, 12)],
    )
    settings = settings_for(server, [("a", 100)], window=0.5)
    await run_campaign(settings, first, tmp_path / "prospects.results.csv")
    campaign, summary = await run_campaign(settings, again, tmp_path / "prospects_v2.results.csv")

    assert campaign.plan.already_invited == 8
    assert summary.this_run == {"sent": 4}
    assert invited(server) == {url(n): 1 for n in range(12)}
    lines = latest(tmp_path / "prospects_v2.results.csv")
    assert lines[url(0)]["status"] == "already_invited"
    assert lines[url(0)]["error"].startswith("sent by campaign 'prospects' on ")
    assert summary.exit_code == 0  # already invited is done, not a problem


async def test_a_sender_s_day_and_week_count_every_campaign(
    sandbox: SandboxFactory, tmp_path: Path, fake_clock: FakeClock
) -> None:
    window = 0.5
    server = await sandbox(senders=roomy("a"), clock=fake_clock, window_seconds=window)
    settings = settings_for(server, [("a", 4)], window=window)
    settings = settings.__class__(
        **{**settings.__dict__, "senders": (settings.senders[0].__class__("a", 4, None, 6),)}
    )
    one, two = prospects(tmp_path / "one.csv", 10), prospects(tmp_path / "two.csv", 10, start=50)
    _, first = await run_campaign(settings, one, tmp_path / "one.results.csv", clock=fake_clock)
    campaign, second = await run_campaign(
        settings, two, tmp_path / "two.results.csv", clock=fake_clock
    )
    assert (first.this_run, second.this_run) == ({"sent": 4}, {})
    (sender,) = campaign.plan.senders
    assert (sender.used_in_window, sender.others_day, sender.capacity) == (4, 4, 0)

    fake_clock.advance(window * 1.5)  # a new day, the same week: two left of six
    campaign, third = await run_campaign(
        settings, two, tmp_path / "two.results.csv", clock=fake_clock
    )
    (sender,) = campaign.plan.senders
    assert (sender.used_in_week, sender.weekly_limit, sender.capacity) == (4, 6, 2)
    assert third.this_run == {"sent": 2}
    assert len(server.state.invitations) == 6


async def start_run(
    tmp_path: Path, name: str, config: Path, database: str
) -> asyncio.subprocess.Process:
    env = {**os.environ, "SENDPILOT_API_KEY": KEY, "CAMPAIGN_RUNNER_DATABASE": database}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "campaign_runner",
        "run",
        f"{name}.csv",
        "--config",
        str(config),
        "--yes",
        "--json",
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_two_campaigns_at_once_invite_nobody_twice_and_pace_a_sender_jointly(
    sandbox: SandboxFactory, tmp_path: Path, database: str
) -> None:
    server: SandboxServer = await sandbox(api_key=KEY, senders=roomy("a"))
    # Ten people on both lists, ten on each alone; one sender, sixteen a window, shared.
    # Eight seconds of sending: long enough that both processes are surely up meanwhile.
    write_prospects(tmp_path / "east.csv", [url(n) for n in [*range(10), *range(100, 110)]])
    write_prospects(tmp_path / "west.csv", [url(n) for n in [*range(10), *range(200, 210)]])
    window, limit = 8.0, 16
    config = write_config(tmp_path / "c.yaml", server.base_url, [("a", limit)], window=window)
    runs = [await start_run(tmp_path, name, config, database) for name in ("east", "west")]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in runs)), 60)
    summaries = [json.loads(out) for out, _ in outputs]

    assert all(p.returncode in (0, 3) for p in runs), [err.decode() for _, err in outputs]
    # Nobody twice.
    assert server.state.duplicates() == {}
    invitations = sorted(server.state.invitations, key=lambda i: i.created_at)
    times = [i.created_at for i in invitations]
    # Never more than the limit in any rolling window, across both campaigns together
    # (the ledger counts claims; a request reaches the stand-in a pending line's fsync
    # later, which varies, so the window seen here is narrowed by that much)...
    seen = window - 0.25
    assert max(sum(t <= u < t + seen for u in times) for t in times) <= limit
    # ...and paced jointly: one every window/limit, not twice as fast because two send.
    # (Claims are spaced exactly; a request reaches the stand-in after its pending line's
    # fsync, whose time varies, so a gap seen there may be a little shorter.)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    interval = window / limit
    assert min(gaps) >= interval * 0.75, gaps
    assert sum(gaps) / len(gaps) >= interval * 0.95, gaps
    # Both took part while the other ran: their invitations interleave.
    sent_by = {
        person: name
        for name in ("east", "west")
        for person, line in latest(tmp_path / f"{name}.results.csv").items()
        if line["status"] == "sent"
    }
    spans = {
        name: [i.created_at for i in invitations if sent_by[i.linkedin_url] == name]
        for name in ("east", "west")
    }
    assert all(spans.values()), spans
    assert max(min(t) for t in spans.values()) < min(max(t) for t in spans.values()), spans
    sent = sum(s["this_run"].get("sent", 0) for s in summaries)
    assert sent == len(invitations)
    east = final_counts(tmp_path / "east.results.csv")
    west = final_counts(tmp_path / "west.results.csv")
    assert east["sent"] + west["sent"] == len(invitations)
    # Every shared person invited once is recorded as such by the other campaign.
    shared = {url(n) for n in range(10)} & {i.linkedin_url for i in invitations}
    for person in shared:
        statuses = {
            latest(tmp_path / f"{name}.results.csv").get(person, {}).get("status")
            for name in ("east", "west")
        }
        assert "sent" in statuses
        assert statuses <= {"sent", "already_invited", None}


def test_a_results_file_from_before_the_ledger_is_brought_in(tmp_path: Path) -> None:
    old = tmp_path / "q3.results.csv"
    old.write_text(
        "row,linkedin_url,sender_id,status,request_id,error,attempts,timestamp\n"
        f"2,{url(1)},a,sent,conn_1,,1,2026-11-01T10:00:00.000Z\n"
        f"3,{url(2)},a,unknown,,timeout,1,2026-11-01T10:01:00.000Z\n"
        f"4,{url(3)},a,failed,,400,1,2026-11-01T10:02:00.000Z\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    env = {"SENDPILOT_API_KEY": KEY}
    result = runner.invoke(cli, ["workspace", "import", str(old)], env=env)
    assert result.exit_code == 0, result.output
    assert "3 invitations brought in (campaign 'q3')" in result.output
    again = runner.invoke(cli, ["workspace", "import", str(old)], env=env)
    assert "0 invitations brought in" in again.output
    shown = runner.invoke(cli, ["workspace", "--json"], env=env)
    payload = json.loads(shown.stdout)
    assert [c["name"] for c in payload["campaigns"]] == ["q3"]
    assert payload["totals"] == {"sent": 1, "unknown": 1, "failed": 1}


def test_import_lines_reads_each_latest_outcome_as_the_ledger_takes_it(tmp_path: Path) -> None:
    old = tmp_path / "old.results.csv"
    old.write_text(
        "row,linkedin_url,sender_id,status,request_id,error,attempts,timestamp\n"
        f"2,{url(1)},a,failed,,500,1,2026-11-01T10:00:00.000Z\n"
        f"2,{url(1)},b,sent,conn_1,,1,2026-11-01T10:00:01.250Z\n"
        f"3,{url(2)},a,pending,,,1,2026-11-01T10:01:00.000Z\n"
        f"4,{url(3)},a,failed,,400,1,yesterday\n"
        f"5,{url(4)},,invalid,,not a profile URL,0,2026-11-01T10:03:00.000Z\n",
        encoding="utf-8",
    )
    lines = import_lines(load_journal(old), now=1_800_000_000.5)
    expected = [
        ImportLine(url(1), "b", "sent", 1_793_527_201.25, request_id="conn_1", row=2),
        ImportLine(url(2), "a", "unknown", 1_793_527_260.0, row=3),  # it may exist
        ImportLine(url(3), "a", "failed", 1_800_000_000.5, error="400", row=4),  # dated now
    ]
    assert list(lines) == expected
    assert (len(lines), lines[-1], lines[1:]) == (3, expected[-1], expected[1:])


async def test_imported_people_are_not_invited_by_a_new_campaign(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await sandbox(senders=roomy("a"))
    old = tmp_path / "old.results.csv"
    old.write_text(
        "linkedin_url,status\n" + "".join(f"{url(n)},sent\n" for n in range(3)), encoding="utf-8"
    )
    settings = settings_for(server, [("a", 100)], window=0.5)
    runner = CliRunner()
    config = write_config(tmp_path / "c.yaml", server.base_url, [("a", 100)])
    env = {"SENDPILOT_API_KEY": server.api_key}
    imported = runner.invoke(
        cli, ["workspace", "import", str(old), "--config", str(config)], env=env
    )
    assert imported.exit_code == 0, imported.output
    _, summary = await run_campaign(settings, prospects(tmp_path / "p.csv", 5), tmp_path / "r.csv")
    assert summary.this_run == {"sent": 2}
    assert set(invited(server)) == {url(3), url(4)}


def test_rehearsals_have_a_ledger_of_their_own(tmp_path: Path) -> None:
    input_path = prospects(tmp_path / "p.csv", 3)
    runner = CliRunner()
    rehearsal = runner.invoke(cli, ["run", str(input_path), "--sandbox"], env={})
    assert rehearsal.exit_code == 0, rehearsal.output
    sandbox_view = json.loads(
        runner.invoke(cli, ["workspace", "--sandbox", "--json"], env={}).stdout
    )
    assert [c["name"] for c in sandbox_view["campaigns"]] == ["p"]
    assert sandbox_view["location"].endswith("sandbox.sqlite3")
    real_view = json.loads(
        runner.invoke(cli, ["workspace", "--json"], env={"SENDPILOT_API_KEY": KEY}).stdout
    )
    assert real_view["campaigns"] == []
    assert real_view["location"] != sandbox_view["location"]


def test_release_lets_a_person_be_invited_again(tmp_path: Path) -> None:
    old = tmp_path / "old.results.csv"
    old.write_text(f"linkedin_url,status\n{url(1)},sent\n", encoding="utf-8")
    runner = CliRunner()
    env = {"SENDPILOT_API_KEY": KEY}
    runner.invoke(cli, ["workspace", "import", str(old)], env=env)
    released = runner.invoke(
        cli, ["workspace", "release", "https://de.linkedin.com/in/PERSON-1/"], env=env
    )
    assert released.exit_code == 0, released.output
    assert "released 1 of 1" in released.output
    payload = json.loads(runner.invoke(cli, ["workspace", "--json"], env=env).stdout)
    assert payload["totals"] == {}


def test_a_dry_run_shows_who_another_campaign_invited(tmp_path: Path) -> None:
    old = tmp_path / "old.results.csv"
    old.write_text(
        "linkedin_url,status\n" + "".join(f"{url(n)},sent\n" for n in range(2)), encoding="utf-8"
    )
    runner = CliRunner()
    env = {"SENDPILOT_API_KEY": KEY}
    assert runner.invoke(cli, ["workspace", "import", str(old)], env=env).exit_code == 0
    input_path = prospects(tmp_path / "p.csv", 4)
    with ThreadedSandbox(SandboxConfig(api_key=KEY, senders=roomy("a"))) as server:
        config = write_config(tmp_path / "c.yaml", server.base_url, [("a", 10)])
        result = runner.invoke(
            cli, ["run", str(input_path), "--config", str(config), "--dry-run", "--json"], env=env
        )
        assert server.state.requests["connect"] == 0
    assert "2 already invited by another campaign of the workspace" in result.stderr
    payload = json.loads(result.stdout)
    assert payload["totals"] == {"already_invited": 2}
    assert payload["remaining"] == 2
    assert not (tmp_path / "p.results.csv").exists()


def test_bringing_in_is_marked_done_and_can_be_done_again(tmp_path: Path) -> None:
    from campaign_runner.ledger import SQLiteLedger
    from campaign_runner.workspace import bring_in

    old = tmp_path / "old.results.csv"
    old.write_text(
        "linkedin_url,status\n" + "".join(f"{url(n)},sent\n" for n in range(5)), encoding="utf-8"
    )
    state = load_journal(old)
    with SQLiteLedger(tmp_path / "w.sqlite3") as ledger:
        info = ledger.campaign("old", str(old), 0.0)
        assert not ledger.imported(info.id)
        assert bring_in(ledger, info.id, state, 100.0) == 5
        assert ledger.imported(info.id)
        # A run that died before marking it brings the file in again: nothing twice.
        assert bring_in(ledger, info.id, state, 200.0) == 0
        assert ledger.totals() == {"sent": 5}


async def test_a_warming_up_sender_starts_low_and_rises_with_each_window_it_sent_in(
    sandbox: SandboxFactory, tmp_path: Path, fake_clock: FakeClock
) -> None:
    from campaign_runner.config import SenderSettings, Warmup

    window = 0.5
    server = await sandbox(senders=roomy("a"), clock=fake_clock, window_seconds=window)
    settings = settings_for(server, [("a", 5)], window=window)
    warm = SenderSettings("a", 5, warmup=Warmup(start=2, step=1))
    settings = settings.__class__(**{**settings.__dict__, "senders": (warm,)})
    input_path = prospects(tmp_path / "p.csv", 20)
    results = tmp_path / "p.results.csv"
    sent = []
    for _ in range(5):
        campaign, summary = await run_campaign(settings, input_path, results, clock=fake_clock)
        sent.append(summary.this_run.get("sent", 0))
        fake_clock.advance(window * 1.01)  # past the rolling window's end: a new window
    # 2, then one more for each window it sent in, up to its daily limit of 5.
    assert sent == [2, 3, 4, 5, 5]
    assert len(server.state.invitations) == 19
    (plan,) = campaign.plan.senders
    assert plan.daily_limit == 5


def test_windows_sent_counts_whole_windows_since_the_first_invitation(tmp_path: Path) -> None:
    from campaign_runner.ledger import ClaimRequest, SenderLimits, SQLiteLedger

    limits = {"s": SenderLimits(daily_limit=100, weekly_limit=100, interval_seconds=0.0)}
    with SQLiteLedger(tmp_path / "w.sqlite3") as ledger:
        me = ledger.campaign("c", "/c.csv", 0.0).id
        for n, at in enumerate([1000.0, 1010.0, 1250.0, 1420.0]):  # windows 0, 0, 2, 4
            ledger.claim(me, [ClaimRequest(url(n), "s")], limits, 100.0, at)
        assert ledger.windows_sent(["s", "nobody"], 100.0, 1430.0) == {"s": 2, "nobody": 0}
        assert ledger.windows_sent(["s"], 100.0, 1530.0) == {"s": 3}
