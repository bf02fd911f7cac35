"""Shared helpers for the sending engine's tests: prospect files, settings, results, and a
stand-in server that runs in its own thread (for code that calls ``asyncio.run`` itself).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from campaign_runner.campaign import Campaign, RunOptions, Summary
from campaign_runner.clock import VirtualClock, WallClock
from campaign_runner.config import (
    ApiSettings,
    PacingSettings,
    RetrySettings,
    Secret,
    SenderSettings,
    Settings,
)
from campaign_runner.hours import WorkingHours, parse_days, parse_hours, parse_zone
from campaign_runner.journal import JOURNAL_COLUMNS
from campaign_runner.sandbox import SandboxConfig, SandboxServer

# The Big List of Naughty Strings (MIT licence, tests/data/blns.LICENSE), vendored so
# that robustness tests run wherever the suite does.
BLNS = Path(__file__).parent / "data" / "blns.json"


def naughty_strings() -> list[str]:
    """Every string of the Big List of Naughty Strings."""
    strings = json.loads(BLNS.read_text(encoding="utf-8"))
    return [s for s in strings if isinstance(s, str)]


async def until(
    condition: Callable[[], bool],
    timeout: float = 5.0,
    gave_up: Callable[[], bool] = lambda: False,
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` s or once ``gave_up()``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if gave_up() or time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


RESULTS_HEADER = [*JOURNAL_COLUMNS, "note_delivered", "api"]
FINAL = {"sent", "already_connected", "failed", "unknown", "invalid", "duplicate"}


def url(n: int | str) -> str:
    """A valid canonical LinkedIn profile URL for prospect ``n``."""
    return f"https://www.linkedin.com/in/person-{n}"


def write_prospects(
    path: Path,
    rows: Iterable[Sequence[str] | str],
    header: Sequence[str] = ("linkedin_url", "note"),
) -> Path:
    """Write a prospect CSV; a bare string row is the URL alone (other cells empty)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            cells = [row] if isinstance(row, str) else list(row)
            writer.writerow(cells + [""] * (len(header) - len(cells)))
    return path


def prospects(path: Path, count: int, start: int = 0) -> Path:
    """A prospect CSV of ``count`` valid rows (``person-<start>`` ...) with short notes."""
    return write_prospects(path, [(url(n), f"hi {n}") for n in range(start, start + count)])


def settings_for(
    server: SandboxServer,
    senders: Sequence[tuple[str, int] | tuple[str, int, bool | None]],
    *,
    window: float = 1.0,
    concurrency: int = 4,
    timeout: float = 2.0,
    max_attempts: int = 3,
    api_key: str | None = None,
    max_delay: float = 0.01,
) -> Settings:
    """Settings that point at ``server`` with compressed pacing and fast retries."""
    return Settings(
        api=ApiSettings(
            base_url=server.base_url,
            api_key=Secret(api_key if api_key is not None else server.api_key),
            timeout_seconds=timeout,
        ),
        senders=tuple(SenderSettings(*s) for s in senders),
        pacing=PacingSettings(window_seconds=window, concurrency=concurrency),
        retry=RetrySettings(
            max_attempts=max_attempts, base_delay_seconds=0.001, max_delay_seconds=max_delay
        ),
    )


async def run_campaign(
    settings: Settings, input_path: Path, results_path: Path, **options: Any
) -> tuple[Campaign, Summary]:
    """Prepare and execute one run in the current loop, with a session of its own."""
    clock = options.pop("clock", None)
    if callable(clock):  # a wall-time reading alone (FakeClock): real pacing beside it
        clock = WallClock(clock)
    extra = {"clock": clock} if clock is not None else {}
    async with aiohttp.ClientSession() as session:
        campaign = await Campaign.prepare(
            settings,
            RunOptions(input_path=input_path, results_path=results_path, **options),
            session,
            **extra,
        )
        return campaign, await campaign.execute()


def read_results(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The results file's header and lines, exactly as written (escapes included)."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        lines = [dict(zip(header, fields, strict=True)) for fields in reader if fields]
    return header, lines


def latest(path: Path) -> dict[str, dict[str, str]]:
    """The last line per prospect URL (lines without a URL keyed by ``row:<n>``)."""
    out: dict[str, dict[str, str]] = {}
    for line in read_results(path)[1]:
        out[line["linkedin_url"] or f"row:{line['row']}"] = line
    return out


def final_counts(path: Path) -> Counter[str]:
    """Latest status per prospect, counted (statuses compared case-insensitively)."""
    return Counter(line["status"].strip().lower() for line in latest(path).values())


def invited(server: SandboxServer) -> Counter[str]:
    """How many invitations the server created per recipient URL."""
    return Counter(i.linkedin_url for i in server.state.invitations)


def connect_requests(server: SandboxServer) -> int:
    """Authenticated ``POST /inbox/connect`` requests the server received."""
    return server.state.requests["connect"]


def write_config(
    path: Path, server_url: str, senders: Sequence[tuple[str, int]], **extra: Any
) -> Path:
    """A YAML config pointing at ``server_url`` with compressed pacing and fast retries."""
    config: dict[str, Any] = {
        "api": {"base_url": server_url, "timeout_seconds": extra.pop("timeout", 2.0)},
        "senders": [{"id": s, "daily_limit": limit} for s, limit in senders],
        "pacing": {"window_seconds": extra.pop("window", 1.0), "concurrency": 4},
        "retry": {"max_attempts": 3, "base_delay_seconds": 0.001, "max_delay_seconds": 0.01},
    }
    for section, values in extra.items():
        config.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class ThreadedSandbox:
    """A :class:`SandboxServer` serving from its own thread and event loop.

    For code under test that runs ``asyncio.run`` itself (the CLI through ``CliRunner``).
    Read ``server.state`` only while the code under test is not running, or via :meth:`call`.
    """

    def __init__(self, config: SandboxConfig) -> None:
        self.server = SandboxServer(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> SandboxServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=10)
        return self.server

    def drain_webhooks(self) -> None:
        """Wait until every scheduled webhook delivery and acceptance has happened."""
        future = asyncio.run_coroutine_threadsafe(self.server.drain_webhooks(), self._loop)
        future.result(timeout=10)

    def __exit__(self, *exc_info: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


async def frozen(process: asyncio.subprocess.Process, timeout: float = 30) -> str:
    """A ``tests/virtual_cli.py`` process's stderr up to the moment its time froze
    (``VIRTUAL_FREEZE_AT``): from then on it only answers sockets and signals."""
    assert process.stderr is not None
    text = ""
    while "frozen at " not in text:
        line = await asyncio.wait_for(process.stderr.readline(), timeout=timeout)
        if not line:
            out = await process.stdout.read() if process.stdout else b""
            raise AssertionError(f"it ended before freezing:\n{out.decode()}\n{text[-3_000:]}")
        text += line.decode()
    return text


def working_hours(hours: str, days: str = "mon-sun", zone: str = "UTC") -> WorkingHours:
    """Working hours as the config writes them: ``working_hours("09:00-18:00", "mon-fri")``."""
    start, end = parse_hours(hours, "hours")
    return WorkingHours(start, end, parse_days(days, "days"), parse_zone(zone, "timezone"))


def with_hours(
    settings: Settings, hours: WorkingHours | None = None, **per_sender: WorkingHours
) -> Settings:
    """``settings`` with ``pacing.hours`` (when given) and senders' own hours."""
    if hours is not None:
        settings = dataclasses.replace(
            settings, pacing=dataclasses.replace(settings.pacing, hours=hours)
        )
    senders = tuple(
        dataclasses.replace(s, hours=per_sender[s.id]) if s.id in per_sender else s
        for s in settings.senders
    )
    return dataclasses.replace(settings, senders=senders)


def start_at(clock: VirtualClock, epoch: float) -> None:
    """Move a virtual clock's wall time to ``epoch`` (monotonic time goes on as it was)."""
    clock.loop.epoch = epoch - clock.loop.time()


def virtual_cli_env(
    tmp_path: Path,
    key: str,
    epoch: float,
    stand_in: dict[str, Any],
    freeze_at: float | None = None,
    **extra: str,
) -> dict[str, str]:
    """The environment of a ``tests/virtual_cli.py`` run in ``tmp_path`` (see its docs):
    time from ``epoch``, the stand-in ``stand_in`` describes, its record and the config
    ``c.yaml`` beside the files, frozen at ``freeze_at`` if given."""
    env = {
        **os.environ,
        "SENDPILOT_API_KEY": key,
        "PYTHONUNBUFFERED": "1",
        "VIRTUAL_EPOCH": repr(epoch),
        "STAND_IN": json.dumps({"api_key": key, **stand_in}),
        "STAND_IN_CONFIG": str(tmp_path / "c.yaml"),
        "STAND_IN_RECORD": str(tmp_path / "record.jsonl"),
        **extra,
    }
    env.pop("CAMPAIGN_RUNNER_CONFIG", None)
    env.pop("VIRTUAL_FREEZE_AT", None)
    if freeze_at is not None:
        env["VIRTUAL_FREEZE_AT"] = repr(freeze_at)
    return env
