"""Shared fixtures: a real stand-in SendPilot server on loopback, and a clock tests drive.

Use the ``sandbox`` factory in any async test::

    async def test_something(sandbox, fake_clock):
        server = await sandbox(senders=(SandboxSender("s1", capacity=2),), clock=fake_clock)
        ...  # talk to server.base_url with server.api_key; inspect server.state

Every server the factory started is stopped when the test ends, hanging requests included.

``postgres_server`` is a throwaway PostgreSQL server for the session (see ``pg.py``); where
none can be started its tests skip, unless CAMPAIGN_RUNNER_REQUIRE_POSTGRES=1 (as in CI)
makes that a failure.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pg
import pytest

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
