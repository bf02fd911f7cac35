"""The HTTP client against the stand-in server over loopback: one call, one typed outcome."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
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
        # The documented 400 may be about the row: not taken for the sender's.
        (
            FaultRule("error", status=400, message="Invalid request or sender not found"),
            ResultKind.REJECTED,
            None,
        ),
        (FaultRule("disconnect"), ResultKind.SENDER_UNAVAILABLE, None),
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


async def test_redirects_are_not_followed_so_the_key_stays_home(
    sandbox: SandboxFactory, session: aiohttp.ClientSession
) -> None:
    server = await sandbox(api_key="sk_live_SECRET")
    # Were a redirect followed, the key would travel with it to a route of the same server
    # that answers normally (each fault fires once): its record shows whether that happened.
    for route in ("connect", "senders"):
        where = f"{server.base_url}/inbox/{route}?elsewhere=1"
        server.add_fault(FaultRule("redirect", route=route, status=308, location=where, times=1))
    sender = server.sandbox.config.senders[0].id
    client = client_for(server, session)
    result = await client.connect(sender, URL, None)
    assert result.kind is ResultKind.MISCONFIGURED
    assert "api.base_url" in result.message and "elsewhere=1" in result.message
    with pytest.raises(ApiError, match="redirect"):
        await client.senders()
    assert server.state.requests == {"connect": 1, "senders": 1}
    assert server.state.invitations == []


async def test_a_key_echoed_by_the_server_is_masked(
    sandbox: SandboxFactory, session: aiohttp.ClientSession
) -> None:
    rule = FaultRule("body", route="*", status=401, message="Invalid API key", echo_key=True)
    server = await sandbox(api_key="sk_live_SECRET", faults=(rule,))
    client = client_for(server, session)
    result = await client.connect("s1", URL, None)
    assert result.kind is ResultKind.AUTH
    assert "sk_live_SECRET" not in result.message and "Invalid API key ***" in result.message
    with pytest.raises(AuthError) as info:
        await client.senders()
    assert "sk_live_SECRET" not in str(info.value) and "***" in str(info.value)
    assert server.state.counters[("connect", "fault:body")] == 1


# -- answers the decoder cannot take ------------------------------------------------------

MIB = 1 << 20


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (FaultRule("body", nested=100_000), "JSON nested too deeply"),
        (FaultRule("body", size=MIB + 1), "larger than 1048576 bytes"),
        (FaultRule("body", invalid_utf8=True), "not UTF-8 text"),
        (FaultRule("body", text="[1, 2]"), "not a JSON object"),
        (FaultRule("body", text='{"status": 1}'), "no status word"),
        (FaultRule("body", text='{"requestId": "conn_1"}'), "no status word"),
        (FaultRule("body", status=201, text=""), "not JSON"),
    ],
    ids=[
        "nested",
        "oversized",
        "invalid-utf8",
        "list",
        "status-number",
        "no-status",
        "empty",
    ],
)
async def test_an_unreadable_success_is_ambiguous(
    sandbox: SandboxFactory, session: aiohttp.ClientSession, rule: FaultRule, reason: str
) -> None:
    server = await sandbox(faults=(rule,))
    sender = server.sandbox.config.senders[0].id
    result = await client_for(server, session).connect(sender, URL, None)
    assert result.kind is ResultKind.AMBIGUOUS
    assert result.http_status == rule.status
    assert f"cannot be read ({reason})" in result.message
    assert len(server.state.invitations) == 1  # ... rightly: it exists


async def test_a_success_of_exactly_the_cap_is_read(
    sandbox: SandboxFactory, session: aiohttp.ClientSession
) -> None:
    server = await sandbox(faults=(FaultRule("body", size=MIB),))
    sender = server.sandbox.config.senders[0].id
    result = await client_for(server, session).connect(sender, URL, None)
    assert (result.kind, result.status) == (ResultKind.ACCEPTED, "sent")
    assert result.request_id == server.state.invitations[0].request_id


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (FaultRule("body", status=500, nested=100_000), "HTTP 500: {"),
        (FaultRule("body", status=500, size=2 * MIB), "HTTP 500: {"),
        (FaultRule("body", status=500, invalid_utf8=True), "HTTP 500: {"),
        (FaultRule("body", status=500, text='{"message": [["a"], "b"]}'), "HTTP 500: b"),
        (FaultRule("body", status=500, text="\xff" * 300), "HTTP 500: "),
    ],
    ids=["nested", "oversized", "invalid-utf8", "nested-message", "garbage"],
)
async def test_an_unreadable_error_body_still_gives_a_short_message(
    sandbox: SandboxFactory, session: aiohttp.ClientSession, rule: FaultRule, message: str
) -> None:
    server = await sandbox(faults=(rule,))
    sender = server.sandbox.config.senders[0].id
    result = await client_for(server, session).connect(sender, URL, None)
    assert result.kind is ResultKind.SERVER_ERROR
    assert result.message.startswith(message)
    assert len(result.message) <= len("HTTP 500: ") + 200
    assert server.state.invitations == []


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (FaultRule("body", route="senders", nested=100_000), "JSON nested too deeply"),
        (FaultRule("body", route="senders", size=MIB + 1), "larger than 1048576 bytes"),
        (FaultRule("body", route="senders", invalid_utf8=True), "not UTF-8 text"),
    ],
    ids=["nested", "oversized", "invalid-utf8"],
)
async def test_an_unreadable_listing_is_an_api_error_of_one_line(
    sandbox: SandboxFactory, session: aiohttp.ClientSession, rule: FaultRule, reason: str
) -> None:
    server = await sandbox(faults=(rule,))
    with pytest.raises(ApiError) as info:
        await client_for(server, session).senders()
    assert str(info.value) == f"GET /inbox/senders: the answer cannot be read ({reason})"


async def test_unreadable_quotas_are_a_reason_not_a_crash(
    sandbox: SandboxFactory, session: aiohttp.ClientSession
) -> None:
    server = await sandbox(faults=(FaultRule("body", route="quotas", nested=100_000),))
    quotas, why = await client_for(server, session).quotas_if_available()
    assert (quotas, why) == (
        {},
        "GET /senders/quotas: the answer cannot be read (JSON nested too deeply)",
    )


async def test_odd_listing_fields_are_dropped_not_printed(
    sandbox: SandboxFactory, session: aiohttp.ClientSession
) -> None:
    # Containers where text belongs are dropped, not printed into names and messages.
    deep = "[" * 500 + "]" * 500
    senders = (
        '{"senders": [{"id": "s1", "name": '
        + deep
        + '}, {"id": [1]}, {"id": 7, "status": "active"}]}'
    )
    quotas = (
        '{"senders": [{"senderId": "s1", "connections": {"limit": 1e999, "used": 2.0,'
        ' "remaining": "3", "resetsAt": {"at": 1}}}]}'
    )
    server = await sandbox(
        faults=(
            FaultRule("body", route="senders", text=senders),
            FaultRule("body", route="quotas", text=quotas),
        )
    )
    client = client_for(server, session)
    assert [(s.id, s.name, s.status) for s in await client.senders()] == [
        ("s1", "", "active"),
        ("7", "", "active"),
    ]
    (quota,) = (await client.quotas()).values()
    assert (quota.limit, quota.used, quota.remaining, quota.resets_at) == (None, 2, None, None)


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


# -- answers that are not the API's: api.base_url is wrong ---------------------------------

PAGE = "<!DOCTYPE html><html><body><h1>Welcome to SendPilot</h1></body></html>"


def without_v1(server: SandboxServer) -> str:
    """The stand-in's address without the ``/v1``: a base URL a person easily writes."""
    return server.base_url.removesuffix("/v1")


async def test_a_base_url_without_its_route_says_to_check_it(
    sandbox: SandboxFactory, session: aiohttp.ClientSession
) -> None:
    server = await sandbox()
    base = without_v1(server)
    client = SendPilotClient(session, base, Secret(server.api_key), 5)
    with pytest.raises(ApiError) as info:
        await client.senders()
    assert str(info.value) == (
        f"GET /inbox/senders: HTTP 404: no such route: check api.base_url (now {base}; "
        "SendPilot's is https://api.sendpilot.ai/v1, with its /v1)"
    )
    # On connect, every row would meet the same 404: the run stops, as for a redirect.
    result = await client.connect(server.sandbox.config.senders[0].id, URL, "hello")
    assert result.kind is ResultKind.MISCONFIGURED
    assert result.http_status == 404
    assert f"no such route: check api.base_url (now {base};" in result.message
    assert server.state.invitations == []


@pytest.mark.parametrize(
    ("rule", "kind"),
    [
        # A website's or a proxy's page, with either sign of being one.
        (FaultRule("body", status=404, content_type="text/html", text="Not Found"), "stop"),
        (FaultRule("body", status=404, text=PAGE), "stop"),
        (FaultRule("body", status=405, content_type="text/html", text=PAGE), "stop"),
        # NestJS's own answer for a route it does not have.
        (FaultRule("error", status=404, message="Cannot POST /inbox/connect"), "stop"),
        # A page where success belongs: whatever served it may have passed the request on.
        (FaultRule("body", status=200, content_type="text/html", text=PAGE), "ambiguous"),
        # A CDN's error page is still a server error, retried as such.
        (FaultRule("body", status=502, content_type="text/html", text=PAGE), "server"),
    ],
    ids=["404-text/html", "404-starts-with-<", "405-html", "nest-404", "200-html", "502-html"],
)
async def test_an_html_page_or_a_missing_route_on_connect_names_the_base_url(
    sandbox: SandboxFactory, session: aiohttp.ClientSession, rule: FaultRule, kind: str
) -> None:
    server = await sandbox(faults=(rule,))
    sender = server.sandbox.config.senders[0].id
    result = await client_for(server, session).connect(sender, URL, "hello")
    expected = {
        "stop": ResultKind.MISCONFIGURED,
        "ambiguous": ResultKind.AMBIGUOUS,
        "server": ResultKind.SERVER_ERROR,
    }[kind]
    assert result.kind is expected
    assert f"check api.base_url (now {server.base_url}" in result.message
    assert "<" not in result.message  # the page itself is not copied into the results


async def test_the_apis_own_404_about_a_row_rejects_only_that_row(
    sandbox: SandboxFactory, session: aiohttp.ClientSession
) -> None:
    server = await sandbox(faults=(FaultRule("error", status=404, message="Profile not found"),))
    sender = server.sandbox.config.senders[0].id
    result = await client_for(server, session).connect(sender, URL, None)
    assert (result.kind, result.message) == (ResultKind.REJECTED, "Profile not found")


@pytest.mark.parametrize("route", ["senders", "quotas"])
async def test_an_html_listing_says_to_check_the_base_url(
    sandbox: SandboxFactory, session: aiohttp.ClientSession, route: str
) -> None:
    rule = FaultRule("body", route=route, content_type="text/html", text=PAGE)
    server = await sandbox(faults=(rule,))
    client = client_for(server, session)
    path = "/inbox/senders" if route == "senders" else "/senders/quotas"
    expected = (
        f"GET {path}: HTTP 200: an HTML page, not the API's JSON: check api.base_url "
        f"(now {server.base_url}; SendPilot's is https://api.sendpilot.ai/v1)"
    )
    if route == "senders":
        with pytest.raises(ApiError) as info:
            await client.senders()
        assert str(info.value) == expected
    else:
        assert await client.quotas_if_available() == ({}, expected)


async def test_the_apis_own_404_on_the_assumed_quotas_route_blames_no_base_url(
    sandbox: SandboxFactory, session: aiohttp.ClientSession
) -> None:
    server = await sandbox(faults=(FaultRule("error", route="quotas", status=404),))
    _, why = await client_for(server, session).quotas_if_available()
    assert why == "GET /senders/quotas: HTTP 404: Not Found"
