"""``campaign-runner run --wait`` as a real subprocess, in virtual time (``virtual_cli.py``).

Days pass in a moment; at a chosen wall time the subprocess's time freezes (it goes on
answering sockets and signals), and the test signals it, kills it, or runs a second
command beside it. What was sent is counted from the stand-in's own record, which
survives ``kill -9`` and the restart.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import frozen, latest, prospects, url, virtual_cli_env, write_config

pytestmark = [pytest.mark.slow]

ENTRY = Path(__file__).resolve().parent / "virtual_cli.py"
KEY = "sk_live_WAIT_41c9e0d2"
START = datetime(2023, 11, 14, 0, 0, tzinfo=UTC).timestamp()  # a Tuesday, midnight UTC
DAY = 86_400.0
HOUR = 3_600.0


def setup(tmp_path: Path, rows: int, limit: int) -> None:
    prospects(tmp_path / "p.csv", rows)
    # The URL is the stand-in's, set by virtual_cli.py once it listens.
    write_config(tmp_path / "c.yaml", "http://127.0.0.1:9/v1", [("a", limit)], window=DAY)


async def start(
    tmp_path: Path, epoch: float, freeze_at: float | None = None
) -> asyncio.subprocess.Process:
    """``campaign-runner run p.csv --config c.yaml --yes --wait``, time starting at ``epoch``."""
    stand_in = {"senders": [["a", 10_000]]}
    env = virtual_cli_env(tmp_path, KEY, epoch, stand_in, freeze_at, TZ="UTC")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(ENTRY),
        *("run", "p.csv", "--config", "c.yaml", "--yes", "--wait"),
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process) -> tuple[str, str]:
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    return out.decode(), err.decode()


def record(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "record.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def hours(tmp_path: Path) -> list[float]:
    """When each invitation was created, in hours since START."""
    return [round((float(str(i["created_at"])) - START) / HOUR, 3) for i in record(tmp_path)]


async def test_sigterm_while_idle_exits_130_with_the_command_that_continues(
    tmp_path: Path,
) -> None:
    setup(tmp_path, rows=5, limit=2)
    process = await start(tmp_path, START, freeze_at=START + 18 * HOUR)
    err = await frozen(process)  # two sent (00h, 12h), waiting for the day to renew
    assert "waiting: next invitation at Wed 2023-11-15 00:01 (UTC); 3 left" in err
    process.send_signal(signal.SIGTERM)
    out, rest = await finish(process)

    assert process.returncode == 130, out + err + rest
    assert "stopping" in out
    assert "this run: 2 sent" in out
    last = out.strip().splitlines()[-1]
    assert last == "to continue: campaign-runner run p.csv --config c.yaml --wait"
    assert hours(tmp_path) == [0, 12]
    statuses = [line["status"] for line in latest(tmp_path / "p.results.csv").values()]
    assert statuses == ["sent", "sent"]  # nothing pending: nothing was in flight


@pytest.mark.parametrize("later", [HOUR, 3 * DAY], ids=["an-hour-later", "days-later"])
async def test_kill_9_while_idle_then_a_restart_goes_on_on_schedule_without_a_burst(
    tmp_path: Path, later: float
) -> None:
    # Four a day: one every six hours. Killed at 27h, between 24h and 30h.
    setup(tmp_path, rows=10, limit=4)
    killed_at = START + 27 * HOUR
    process = await start(tmp_path, START, freeze_at=killed_at)
    await frozen(process)
    process.kill()
    await finish(process)
    assert process.returncode == -signal.SIGKILL
    assert hours(tmp_path) == [0, 6, 12, 18, 24]

    again = await start(tmp_path, killed_at + later)
    out, err = await finish(again)
    assert again.returncode == 0, out + err

    sent = record(tmp_path)
    assert sorted(str(i["linkedin_url"]) for i in sent) == sorted(url(n) for n in range(10))
    times = sorted(float(str(i["created_at"])) for i in sent)
    # Never closer than the pace (no jitter is configured), never five in a day.
    assert min(b - a for a, b in itertools.pairwise(times)) >= 6 * HOUR - 1
    assert max(bisect.bisect_left(times, t + DAY) - n for n, t in enumerate(times)) == 4
    if later == HOUR:
        # Restarted before the next slot: that slot is kept, as if nothing had happened.
        assert hours(tmp_path) == [0, 6, 12, 18, 24, 30, 36, 42, 48, 54]
    else:
        # Days later: the day is free again; the first leaves at once, then the pace.
        back = (killed_at + later - START) / HOUR
        assert hours(tmp_path)[5:] == [round(back + 6 * n, 3) for n in range(5)]


async def test_a_second_run_while_wait_idles_is_refused_as_locked(tmp_path: Path) -> None:
    setup(tmp_path, rows=5, limit=2)
    waiting = await start(tmp_path, START, freeze_at=START + 18 * HOUR)
    await frozen(waiting)
    env = {**os.environ, "SENDPILOT_API_KEY": KEY}
    env.pop("CAMPAIGN_RUNNER_CONFIG", None)
    # What a cron line would run, in real time, against the waiting run's stand-in.
    cron = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "campaign_runner", "run", "p.csv", "--config", "c.yaml", "--yes"),
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await finish(cron)
    assert cron.returncode == 2, out + err
    assert f"another campaign-runner run is using this results file (pid {waiting.pid})" in err

    waiting.send_signal(signal.SIGTERM)
    await finish(waiting)
    assert waiting.returncode == 130
    assert hours(tmp_path) == [0, 12]
