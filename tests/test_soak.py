"""The soak test: weeks of a `run --wait` campaign in virtual time, interrupted on the way.

Three senders with daily and weekly limits and working hours in two time zones, a stand-in
with faults on (server errors, rate limits, dropped answers), and three weeks' worth of
prospects. The run is killed with -9 on the first Wednesday and sent SIGTERM the next
Tuesday; each time the same command is started again later. Afterwards every row is
final, and the stand-in's own record (which survives each process: tests/virtual_cli.py)
shows nobody invited twice, no sender over its daily or weekly limit in any window, none
outside its hours, and no burst after either restart.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from helpers import frozen, latest, url, virtual_cli_env, write_prospects

from campaign_runner.sandbox.state import Invitation, read_record

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ENTRY = Path(__file__).resolve().parent / "virtual_cli.py"
KEY = "sk_live_SOAK_7d2e91"
DAY = 86_400.0
# Monday 13 November 2023, 06:00 UTC: before opening time in Berlin and in New York.
MONDAY = datetime(2023, 11, 13, 6, tzinfo=UTC).timestamp()
KILLED_AT = MONDAY + 2 * DAY + 8 * 3_600  # Wednesday 14:00 UTC: Berlin open, New York too
TERMED_AT = MONDAY + 8 * DAY + 9 * 3_600  # the next Tuesday, 15:00 UTC
PROSPECTS = 300
# (id, daily limit, weekly limit, time zone): about 100 a week together, three weeks' work.
SENDERS = [
    ("s1", 10, 40, "Europe/Berlin"),
    ("s2", 8, 30, "Europe/Berlin"),
    ("s3", 6, 100, "America/New_York"),
]
OPEN, CLOSE = 9, 17  # 09:00-17:00, Monday to Friday, in each sender's own zone
FAULTS = [
    "error:500:rate=0.05",
    "rate_limit:retry_after=2:rate=0.02",
    "drop:rate=0.01",  # the invitation exists, the answer never came: `unknown`
]


def setup(tmp_path: Path) -> None:
    write_prospects(tmp_path / "p.csv", [url(n) for n in range(PROSPECTS)])
    config = {
        # The URL is the stand-in's, set by virtual_cli.py once it listens.
        "api": {"base_url": "http://127.0.0.1:9/v1", "timeout_seconds": 2.0},
        "senders": [
            {"id": i, "daily_limit": d, "weekly_limit": w, "timezone": tz}
            for i, d, w, tz in SENDERS
        ],
        "pacing": {
            "window_seconds": DAY,
            "concurrency": 4,
            "hours": f"{OPEN:02}:00-{CLOSE:02}:00",
            "days": "mon-fri",
        },
        "retry": {"max_attempts": 3, "base_delay_seconds": 0.5, "max_delay_seconds": 5.0},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


async def start(
    tmp_path: Path, epoch: float, seed: int, freeze_at: float | None = None
) -> asyncio.subprocess.Process:
    """``campaign-runner run p.csv --config c.yaml --yes --wait``, time starting at ``epoch``."""
    stand_in = {
        "senders": [[i, 1_000] for i, *_ in SENDERS],  # the runner's own limits bind
        "window_seconds": DAY,
        "faults": FAULTS,
        "seed": seed,  # each process its own faults
    }
    database = str(tmp_path / "workspace.sqlite")
    env = virtual_cli_env(
        tmp_path, KEY, epoch, stand_in, freeze_at, CAMPAIGN_RUNNER_DATABASE=database
    )
    # Its output to a file: a pipe nobody reads fills up over weeks of rounds.
    with (tmp_path / f"out-{seed}.txt").open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            str(ENTRY),
            *("run", "p.csv", "--config", "c.yaml", "--yes", "--wait", "--no-progress"),
            cwd=tmp_path,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.PIPE,
        )


def invitations(tmp_path: Path) -> list[Invitation]:
    return read_record(str(tmp_path / "record.jsonl"))


async def test_weeks_of_waiting_with_a_kill_and_a_sigterm_on_the_way(tmp_path: Path) -> None:
    setup(tmp_path)

    first = await start(tmp_path, MONDAY, seed=1, freeze_at=KILLED_AT)
    await frozen(first, timeout=120)
    first.kill()  # kill -9, mid-campaign, in the middle of a working day
    await first.wait()
    before_kill = len(invitations(tmp_path))
    assert 0 < before_kill < PROSPECTS

    # Started again ten minutes later: continues on schedule.
    second = await start(tmp_path, KILLED_AT + 600, seed=2, freeze_at=TERMED_AT)
    await frozen(second, timeout=120)
    second.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(second.communicate(), 60)
    assert second.returncode == 130, err.decode()[-3_000:]
    said = (tmp_path / "out-2.txt").read_text(encoding="utf-8") + err.decode()
    assert "run p.csv --config c.yaml --wait" in said  # the command that continues
    assert before_kill < len(invitations(tmp_path)) < PROSPECTS

    # And again an hour later, to the end.
    third = await start(tmp_path, TERMED_AT + 3_600, seed=3)
    _, err = await asyncio.wait_for(third.communicate(), 240)
    assert third.returncode in (0, 1), err.decode()[-3_000:]

    record = invitations(tmp_path)
    # Every row is final: sent; left in doubt by a dropped answer (never sent again); or
    # failed after its retries.
    rows = latest(tmp_path / "p.results.csv")
    assert len(rows) == PROSPECTS
    statuses = {line["status"] for line in rows.values()}
    assert statuses <= {"sent", "unknown", "failed"}, statuses
    sent = {u for u, line in rows.items() if line["status"] == "sent"}
    # Nobody invited twice, across three processes and two interruptions; everyone the
    # results call sent, the stand-in invited.
    invited = [i.linkedin_url for i in record]
    assert len(invited) == len(set(invited))
    assert sent <= set(invited)
    assert len(sent) >= PROSPECTS * 0.9
    # The faults were met on the way: some rows took more than one attempt.
    assert any(int(line["attempts"]) > 1 for line in rows.values())
    # Weeks, not a burst: the last invitation left in the third week.
    assert max(i.created_at for i in record) >= MONDAY + 14 * DAY

    by_sender: dict[str, list[float]] = defaultdict(list)
    for invitation in record:
        by_sender[invitation.sender_id].append(invitation.created_at)
    assert set(by_sender) == {i for i, *_ in SENDERS}
    for sender_id, daily, weekly, zone in SENDERS:
        times = sorted(by_sender[sender_id])
        # Never over the daily or the weekly limit, in any rolling window.
        for t in times:
            assert sum(t - DAY < u <= t for u in times) <= daily, (sender_id, t)
            assert sum(t - 7 * DAY < u <= t for u in times) <= weekly, (sender_id, t)
        # Only inside its working hours, on working days, in its own zone.
        for t in times:
            local = datetime.fromtimestamp(t, ZoneInfo(zone))
            assert local.weekday() < 5 and OPEN <= local.hour < CLOSE, (sender_id, local)
        # Never a burst, restarts included: at most one per (open hours / daily limit).
        interval = (CLOSE - OPEN) * 3_600 / daily
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= interval * 0.99, (sender_id, min(gaps), interval)
