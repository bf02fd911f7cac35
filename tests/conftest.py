"""Shared fixtures: a real stand-in SendPilot server on loopback, and clocks tests drive.

Use the ``sandbox`` factory in any async test::

    async def test_something(sandbox, fake_clock):
        server = await sandbox(senders=(SandboxSender("s1", capacity=2),), clock=fake_clock)
        ...  # talk to server.base_url with server.api_key; inspect server.state

Every server the factory started is stopped when the test ends, hanging requests included.

An async test runs in virtual time (on a :class:`~campaign_runner.clock.VirtualTimeLoop`)
when it asks for the ``virtual_clock`` fixture or is marked ``@pytest.mark.virtual_time``:
sleeps, limiter turns and timeouts then take no real time, and the stand-in started by
``sandbox`` runs in the same virtual loop (pass it ``clock=virtual_clock.now``)::

    async def test_a_day(virtual_clock, sandbox):
        server = await sandbox(clock=virtual_clock.now)
        await virtual_clock.sleep(86_400)  # returns at once; virtual_clock.now() is a day on

``postgres_server`` is a throwaway PostgreSQL server for the session (see ``pg.py``); where
none can be started its tests skip, unless CAMPAIGN_RUNNER_REQUIRE_POSTGRES=1 (as in CI)
makes that a failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pg
import pytest

from campaign_runner.clock import VirtualClock, VirtualTimeLoop
from campaign_runner.sandbox import SandboxConfig, SandboxServer

SandboxFactory = Callable[..., Awaitable[SandboxServer]]


class FakeClock:
    """A clock that moves only when told to: ``clock()`` reads it, ``advance(s)`` moves it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def own_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test has a data directory of its own (the workspace ledgers live there), so
    that no test sees another's workspace, nor the machine's."""
    home = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    monkeypatch.delenv("CAMPAIGN_RUNNER_DATABASE", raising=False)
    return home


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "virtual_time: run this async test on a loop in virtual time"
    )


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The loop an async test runs on: virtual when it asks for it, asyncio's default else.

    pytest-asyncio (1.4+) parametrises each async test over the factories returned here,
    so exactly one is returned per test: the suite is not run twice.
    """
    wants_virtual = item.get_closest_marker("virtual_time") is not None or (
        "virtual_clock" in getattr(item, "fixturenames", ())
    )
    if wants_virtual:
        return {"virtual": VirtualTimeLoop}
    return {"asyncio": asyncio.new_event_loop}


@pytest.fixture
async def virtual_clock() -> VirtualClock:
    """The clock of the test's virtual loop: wall time starts at 2023-11-14T22:13:20Z."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop), "the loop factory hook did not pick virtual time"
    return VirtualClock(loop)


@pytest.fixture
def fake_clock() -> FakeClock:
    """A :class:`FakeClock` starting at 2023-11-14T22:13:20Z."""
    return FakeClock()


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxFactory]:
    """Start sandboxes: ``await sandbox(config=None, **config_overrides)``.

    Overrides are :class:`SandboxConfig` fields (``senders=...``, ``faults=...``,
    ``clock=...``); the server listens on an ephemeral loopback port.
    """
    servers: list[SandboxServer] = []

    async def start(config: SandboxConfig | None = None, **overrides: Any) -> SandboxServer:
        chosen = dataclasses.replace(config or SandboxConfig(), **overrides)
        server = SandboxServer(chosen)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        await server.stop()


ThreadedFactory = Callable[..., Any]  # (**SandboxConfig fields) -> helpers.ThreadedSandbox


@pytest.fixture
def threaded_sandbox() -> Iterator[ThreadedFactory]:
    """Start stand-ins on threads of their own, for commands that run ``asyncio.run``
    themselves (the CLI through ``CliRunner``): ``threaded_sandbox(**config_fields)``
    returns the started :class:`helpers.ThreadedSandbox`; all are stopped at the end."""
    from helpers import ThreadedSandbox

    started: list[ThreadedSandbox] = []

    def start(**fields: Any) -> ThreadedSandbox:
        threaded = ThreadedSandbox(SandboxConfig(**fields))
        threaded.__enter__()
        started.append(threaded)
        return threaded

    yield start
    for threaded in reversed(started):
        threaded.__exit__(None, None, None)


@pytest.fixture
def cli_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in ``tmp_path``, with no ./campaign-runner.yaml, $CAMPAIGN_RUNNER_CONFIG or
    API key leaking in from outside the test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CAMPAIGN_RUNNER_CONFIG", raising=False)
    monkeypatch.delenv("SENDPILOT_API_KEY", raising=False)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[pg.PgServer]:
    """A PostgreSQL server on 127.0.0.1 for the whole session; ``create_database()`` per test."""
    reason = pg.unavailable()
    if reason is not None:
        if os.environ.get(pg.REQUIRE) == "1":
            pytest.fail(f"{pg.REQUIRE}=1, but {reason}", pytrace=False)
        pytest.skip(reason)
    server, _ = pg.start_server()
    yield server
    server.stop()
