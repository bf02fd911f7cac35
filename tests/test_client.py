"""The HTTP client against the stand-in server over loopback: one call, one typed outcome."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from conftest import SandboxFactory

from campaign_runner.client import ResultKind, SendPilotClient
from campaign_runner.config import Secret
from campaign_runner.errors import ApiError, AuthError
from campaign_runner.sandbox import FaultRule, SandboxSender, SandboxServer

URL = "https://www.linkedin.com/in/jane-doe-example"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def client_for(
    server: SandboxServer,
    session: aiohttp.ClientSession,
    key: str | None = None,
    timeout: float = 5,
) -> SendPilotClient:
    return SendPilotClient(session, server.base_url, Secret(key or server.api_key), timeout)


async def test_sent_and_wire_body(sandbox: SandboxFactory, session: aiohttp.ClientSession) -> None:
    server = await sandbox(senders=(SandboxSender("s1", premium=True),))
    result = await client_for(server, session).connect("s1", URL, "Hi Jane")
    assert result.kind is ResultKind.ACCEPTED
    assert result.status == "sent"
    assert result.request_id
    (invitation,) = server.state.invitations
    assert (invitation.sender_id, invitation.linkedin_url, invitation.note) == (
        "s1",
        URL,
        "Hi Jane",
    )
    assert invitation.request_id == result.request_id


async def test_empty_note_is_not_sent(
    sandbox: SandboxFactory, session: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=(SandboxSender("s1", premium=True),))
    await client_for(server, session).connect("s1", URL, None)
    assert server.state.invitations[0].note is None


async def test_already_connected(sandbox: SandboxFactory, session: aiohttp.ClientSession) -> None:
    server = await sandbox(already_connected=frozenset({URL}))
    sender = server.sandbox.config.senders[0].id
    result = await client_for(server, session).connect(sender, URL, None)
    assert (result.kind, result.status) == (ResultKind.ACCEPTED, "already_connected")


@pytest.mark.parametrize(
    ("rule", "kind", "retry_after"),
    [
        (FaultRule("error", status=500), ResultKind.SERVER_ERROR, None),
        (FaultRule("error", status=503), ResultKind.SERVER_ERROR, None),
        (FaultRule("error", status=400, message="Invalid request"), ResultKind.REJECTED, None),
        (FaultRule("error", status=404), ResultKind.REJECTED, None),
        (FaultRule("error", status=403), ResultKind.AUTH, None),
        (FaultRule("rate_limit", retry_after=3), ResultKind.RATE_LIMITED, 3.0),
        (FaultRule("rate_limit", retry_after=None), ResultKind.RATE_LIMITED, None),
        (FaultRule("malformed"), ResultKind.AMBIGUOUS, None),
        (FaultRule("drop"), ResultKind.AMBIGUOUS, None),
        (FaultRule("drop_before"), ResultKind.AMBIGUOUS, None),
    ],
)
async def test_fault_classification(
    sandbox: SandboxFactory,
    session: aiohttp.ClientSession,
    rule: FaultRule,
    kind: ResultKind,
    retry_after: float | None,
) -> None:
    server = await sandbox(faults=(rule,))
    sender = server.sandbox.config.senders[0].id
    result = await client_for(server, session).connect(sender, URL, "hello")
    assert result.kind is kind
    assert result.retry_after == retry_after


async def test_hang_past_the_timeout_is_ambiguous(
    sandbox: SandboxFactory, session: aiohttp.ClientSession
) -> None:
    server = await sandbox(faults=(FaultRule("hang"),))
    sender = server.sandbox.config.senders[0].id
    result = await client_for(server, session, timeout=0.2).connect(sender, URL, None)
    assert result.kind is ResultKind.AMBIGUOUS
    # ... and rightly so: the invitation was created.
    assert len(server.state.invitations) == 1


async def test_daily_limit(sandbox: SandboxFactory, session: aiohttp.ClientSession) -> None:
    server = await sandbox(senders=(SandboxSender("s1", capacity=1),))
    client = client_for(server, session)
    assert (await client.connect("s1", URL, None)).status == "sent"
    result = await client.connect("s1", URL + "-2", None)
    assert result.kind is ResultKind.DAILY_LIMIT
    assert "daily" in result.message.lower()


async def test_bad_key_is_auth_and_never_echoed(
    sandbox: SandboxFactory, session: aiohttp.ClientSession
) -> None:
    server = await sandbox()
    secret = "sp_live_TOPSECRET_123"
    client = client_for(server, session, key=secret)
    result = await client.connect("s1", URL, None)
    assert result.kind is ResultKind.AUTH
    assert result.http_status == 401
    assert secret not in result.message and secret not in repr(result)
    with pytest.raises(AuthError) as info:
        await client.senders()
    assert secret not in str(info.value)


async def test_connection_refused_means_not_sent(session: aiohttp.ClientSession) -> None:
    # A port nobody listens on: bind one, note it, close it.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = SendPilotClient(session, f"http://127.0.0.1:{port}/v1", Secret("k"), 1)
    result = await client.connect("s1", URL, None)
    assert result.kind is ResultKind.NOT_SENT
    with pytest.raises(ApiError, match="cannot reach"):
        await client.senders()


async def test_senders_and_quotas(sandbox: SandboxFactory, session: aiohttp.ClientSession) -> None:
    server = await sandbox(
        senders=(
            SandboxSender("s1", name="Ann", capacity=3),
            SandboxSender("s2", capacity=5, status="disconnected"),
        )
    )
    client = client_for(server, session)
    assert (await client.connect("s1", URL, None)).status == "sent"
    senders = {s.id: s for s in await client.senders()}
    assert senders["s1"].name == "Ann"
    assert (senders["s1"].status, senders["s2"].status) == ("active", "disconnected")
    quotas = await client.quotas()
    assert (quotas["s1"].limit, quotas["s1"].used, quotas["s1"].remaining) == (3, 1, 2)
    assert quotas["s1"].resets_at


async def test_gateway_timeout_is_ambiguous(
    sandbox: SandboxFactory, session: aiohttp.ClientSession
) -> None:
    # A 504 says a gateway gave up on the origin, which may have created the invitation.
    server = await sandbox(faults=(FaultRule("error", status=504),))
    sender = server.sandbox.config.senders[0].id
    result = await client_for(server, session).connect(sender, URL, None)
    assert result.kind is ResultKind.AMBIGUOUS


@pytest.fixture
async def odd_server() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback server that misbehaves as no SendPilot should: it redirects, and it
    echoes the key. Yields its base URL and the X-API-Key headers it received."""
    seen: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        seen.append(request.headers.get("X-API-Key", ""))
        raise web.HTTPPermanentRedirect(f"http://127.0.0.1:{port}/elsewhere/inbox/connect")

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append("followed:" + request.headers.get("X-API-Key", ""))
        return web.json_response({"success": True, "status": "sent", "requestId": "x"})

    async def echo(request: web.Request) -> web.Response:
        key = request.headers.get("X-API-Key", "")
        body = {"statusCode": 401, "message": f"Invalid API key {key}", "error": "Unauthorized"}
        return web.json_response(body, status=401)

    app = web.Application()
    app.router.add_post("/moved/inbox/connect", redirect)
    app.router.add_get("/moved/inbox/senders", redirect)
    app.router.add_post("/elsewhere/inbox/connect", elsewhere)
    app.router.add_post("/echo/inbox/connect", echo)
    app.router.add_get("/echo/inbox/senders", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_redirects_are_not_followed_so_the_key_stays_home(
    odd_server: tuple[str, list[str]], session: aiohttp.ClientSession
) -> None:
    base, seen = odd_server
    client = SendPilotClient(session, f"{base}/moved", Secret("sk_live_SECRET"), 5)
    result = await client.connect("s1", URL, None)
    assert result.kind is ResultKind.MISCONFIGURED
    assert "api.base_url" in result.message and "/elsewhere/" in result.message
    assert seen == ["sk_live_SECRET"]  # nothing was sent to the redirect's target
    with pytest.raises(ApiError, match="redirect"):
        await client.senders()


async def test_a_key_echoed_by_the_server_is_masked(
    odd_server: tuple[str, list[str]], session: aiohttp.ClientSession
) -> None:
    base, _ = odd_server
    client = SendPilotClient(session, f"{base}/echo", Secret("sk_live_SECRET"), 5)
    result = await client.connect("s1", URL, None)
    assert result.kind is ResultKind.AUTH
    assert "sk_live_SECRET" not in result.message and "***" in result.message
    with pytest.raises(AuthError) as info:
        await client.senders()
    assert "sk_live_SECRET" not in str(info.value)


@pytest.mark.parametrize(
    ("rule", "kind"),
    [
        (FaultRule("error", status=429, message="Daily connection limit exceeded"), "daily"),
        # Wording we did not expect and no Retry-After: stop the sender, do not burn rows.
        (FaultRule("error", status=429, message="Too many invitations today"), "daily"),
        (FaultRule("error", status=429, message="Rate limit exceeded"), "rate"),
        (FaultRule("rate_limit", retry_after=2), "rate"),
        (FaultRule("rate_limit", retry_after=2, message="Slow down"), "rate"),
    ],
)
async def test_which_429_is_which(
    sandbox: SandboxFactory, session: aiohttp.ClientSession, rule: FaultRule, kind: str
) -> None:
    server = await sandbox(faults=(rule,))
    sender = server.sandbox.config.senders[0].id
    result = await client_for(server, session).connect(sender, URL, None)
    expected = ResultKind.DAILY_LIMIT if kind == "daily" else ResultKind.RATE_LIMITED
    assert result.kind is expected
