"""Fault injection in the sandbox, each kind seen by a real client over loopback."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from conftest import FakeClock, SandboxFactory
from helpers import until

from campaign_runner.sandbox import (
    FaultPlan,
    FaultRule,
    SandboxSender,
    SandboxServer,
    parse_fault_spec,
)

SENDERS = (SandboxSender("s1", capacity=100), SandboxSender("s2", capacity=100))
SHORT = aiohttp.ClientTimeout(total=0.2)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def body(n: int = 0, sender: str = "s1", slug: str = "person") -> dict[str, Any]:
    return {"senderId": sender, "recipientLinkedinUrl": f"https://www.linkedin.com/in/{slug}-{n}"}


async def post(
    http: aiohttp.ClientSession,
    server: SandboxServer,
    payload: dict[str, Any],
    timeout: aiohttp.ClientTimeout | None = None,
) -> aiohttp.ClientResponse:
    """POST a connect request and return the response with its body already read."""
    response = await http.post(
        server.base_url + "/inbox/connect",
        json=payload,
        headers={"X-API-Key": server.api_key},
        timeout=timeout or aiohttp.ClientTimeout(total=5),
    )
    async with response:
        await response.read()
    return response


async def statuses(http: aiohttp.ClientSession, server: SandboxServer, count: int) -> list[int]:
    return [(await post(http, server, body(n))).status for n in range(count)]


@pytest.mark.parametrize(
    ("rule", "status", "message", "error"),
    [
        (FaultRule("error"), 500, "Internal server error", "Internal Server Error"),
        (FaultRule("error", status=503), 503, "Service Unavailable", "Service Unavailable"),
        (
            FaultRule("error", status=403, message="Missing scope"),
            403,
            "Missing scope",
            "Forbidden",
        ),
    ],
)
async def test_error_faults_answer_json_and_create_nothing(
    sandbox: SandboxFactory,
    http: aiohttp.ClientSession,
    rule: FaultRule,
    status: int,
    message: str,
    error: str,
) -> None:
    server = await sandbox(senders=SENDERS, faults=(rule,))
    response = await post(http, server, body())
    assert response.status == status
    assert await response.json() == {"statusCode": status, "message": message, "error": error}
    assert server.state.invitations == []
    assert server.state.counters == {("connect", f"fault:{status}"): 1}


async def test_rate_limit_fault_sends_retry_after_then_stops_after_times(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(
        senders=SENDERS, faults=(FaultRule("rate_limit", retry_after=2, times=2),)
    )
    for _ in range(2):
        response = await post(http, server, body())
        assert response.status == 429
        assert response.headers["Retry-After"] == "2"
        payload = await response.json()
        assert payload == {
            "statusCode": 429,
            "message": "Rate limit exceeded",
            "error": "Too Many Requests",
        }
        # Not the daily limit: a client must treat it as transient.
        assert "daily" not in payload["message"].lower()
    assert (await post(http, server, body())).status == 200
    assert server.state.counters[("connect", "fault:rate_limit")] == 2
    assert len(server.state.invitations) == 1


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (FaultRule("rate_limit", retry_after=0.05), "0.05"),
        (FaultRule("rate_limit", retry_after=None), None),
        (
            FaultRule("rate_limit", retry_after=30, retry_after_date=True),
            "Tue, 14 Nov 2023 22:13:50 GMT",
        ),
    ],
)
async def test_retry_after_forms(
    sandbox: SandboxFactory,
    http: aiohttp.ClientSession,
    fake_clock: FakeClock,
    rule: FaultRule,
    expected: str | None,
) -> None:
    server = await sandbox(senders=SENDERS, faults=(rule,), clock=fake_clock)
    response = await post(http, server, body())
    assert response.status == 429
    assert response.headers.get("Retry-After") == expected
    if rule.retry_after_date:
        when = email.utils.parsedate_to_datetime(expected or "")
        assert when.timestamp() == fake_clock.now + 30


async def test_latency_delays_then_answers_normally(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=SENDERS, faults=(FaultRule("latency", seconds=0.05),))
    started = time.monotonic()
    response = await post(http, server, body())
    assert time.monotonic() - started >= 0.05
    assert response.status == 200
    assert (await response.json())["status"] == "sent"
    assert len(server.state.invitations) == 1
    assert server.state.counters[("connect", "fault:latency")] == 1


async def test_hang_creates_the_invitation_and_never_answers(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=SENDERS, faults=(FaultRule("hang"),))
    with pytest.raises(TimeoutError):
        await post(http, server, body(), timeout=SHORT)
    assert [i.linkedin_url for i in server.state.invitations] == [body()["recipientLinkedinUrl"]]
    assert server.state.counters[("connect", "sent")] == 1
    assert server.state.counters[("connect", "fault:hang")] == 1


@pytest.mark.parametrize(("kind", "created"), [("drop", 1), ("drop_before", 0)])
async def test_dropped_connections(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, kind: str, created: int
) -> None:
    server = await sandbox(senders=SENDERS, faults=(FaultRule(kind, times=1),))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(http, server, body(1))
    assert len(server.state.invitations) == created
    assert server.state.counters[("connect", f"fault:{kind}")] == 1
    # The server is fine afterwards.
    assert (await post(http, server, body(2))).status == 200


async def test_malformed_body_after_creating_the_invitation(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=SENDERS, faults=(FaultRule("malformed"),))
    response = await post(http, server, body())
    assert response.status == 200
    assert response.content_type == "application/json"
    with pytest.raises(json.JSONDecodeError):
        await response.json()
    assert len(server.state.invitations) == 1


async def test_malformed_keeps_an_error_status(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=SENDERS, faults=(FaultRule("malformed"),))
    response = await post(http, server, body(sender="nobody"))
    assert response.status == 400
    with pytest.raises(json.JSONDecodeError):
        await response.json()
    assert server.state.invitations == []


@pytest.mark.parametrize(
    ("rule", "status"),
    [
        (FaultRule("redirect", location="http://127.0.0.1:9/v1/inbox/connect"), 307),
        (FaultRule("redirect", status=301, location="/elsewhere"), 301),
    ],
)
async def test_redirect_answers_a_location_and_creates_nothing(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, rule: FaultRule, status: int
) -> None:
    server = await sandbox(senders=SENDERS, faults=(rule,))
    async with http.post(
        server.base_url + "/inbox/connect",
        json=body(),
        headers={"X-API-Key": server.api_key},
        allow_redirects=False,
    ) as response:
        assert response.status == status
        assert response.headers["Location"] == rule.location
    assert server.state.invitations == []
    assert server.state.counters == {("connect", "fault:redirect"): 1}


async def test_redirect_defaults_to_the_request_itself(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    # A client that follows it comes back, and (the fault spent) is handled.
    server = await sandbox(senders=SENDERS, faults=(FaultRule("redirect", times=1),))
    async with http.post(
        server.base_url + "/inbox/connect", json=body(), headers={"X-API-Key": server.api_key}
    ) as response:
        assert response.status == 200
        assert [str(r.headers["Location"]) for r in response.history] == [
            server.base_url + "/inbox/connect"
        ]
    assert server.state.requests["connect"] == 2
    assert len(server.state.invitations) == 1


async def raw_answer(
    http: aiohttp.ClientSession, server: SandboxServer, path: str = "/inbox/connect"
) -> tuple[int, bytes]:
    headers = {"X-API-Key": server.api_key}
    if path == "/inbox/connect":
        request = http.post(server.base_url + path, json=body(), headers=headers)
    else:
        request = http.get(server.base_url + path, headers=headers)
    async with request as response:
        assert response.content_type == "application/json"
        return response.status, await response.read()


async def test_body_text_is_sent_verbatim_and_a_2xx_creates_the_invitation(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    text = '{"status": "queued", "note": "a=b:c"}'
    server = await sandbox(senders=SENDERS, faults=(FaultRule("body", text=text),))
    assert await raw_answer(http, server) == (200, text.encode())
    assert len(server.state.invitations) == 1
    assert server.state.counters[("connect", "fault:body")] == 1


async def test_body_with_an_error_status_creates_nothing(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=SENDERS, faults=(FaultRule("body", status=502),))
    status, raw = await raw_answer(http, server)
    assert status == 502
    assert json.loads(raw) == {"statusCode": 502, "message": "Bad Gateway", "error": "Bad Gateway"}
    assert server.state.invitations == []


async def test_body_nested_is_the_real_answer_too_deep_to_decode(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=SENDERS, faults=(FaultRule("body", nested=100_000),))
    status, raw = await raw_answer(http, server)
    assert status == 200
    assert raw.endswith(b"[" * 100_000 + b"]" * 100_000 + b"}")
    with pytest.raises(RecursionError):
        json.loads(raw)
    # Only the depth is wrong: at a shallow depth it is the real answer plus a field.
    (invitation,) = server.state.invitations
    assert raw.startswith(b'{"success": true, "requestId": "' + invitation.request_id.encode())


async def test_body_size_pads_the_real_answer_to_exactly_that_many_bytes(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    size = (1 << 20) + 1
    server = await sandbox(senders=SENDERS, faults=(FaultRule("body", size=size),))
    status, raw = await raw_answer(http, server)
    assert (status, len(raw)) == (200, size)
    payload = json.loads(raw)
    assert payload["status"] == "sent"
    assert set(payload["padding"]) == {"x"}


async def test_body_invalid_utf8_is_the_real_answer_with_a_stray_byte(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=SENDERS, faults=(FaultRule("body", invalid_utf8=True),))
    _, raw = await raw_answer(http, server)
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert json.loads(raw.decode("latin-1"))["status"] == "sent"


@pytest.mark.parametrize(
    ("rule", "field", "expected"),
    [
        (FaultRule("body", status=401, echo_key=True), "message", "Unauthorized sandbox-key"),
        (FaultRule("body", echo_key=True), "error", "sandbox-key"),
        (
            FaultRule("body", route="senders", status=403, message="No", echo_key=True),
            "message",
            "No sandbox-key",
        ),
    ],
)
async def test_body_echo_key_puts_the_callers_key_in_the_answer(
    sandbox: SandboxFactory,
    http: aiohttp.ClientSession,
    rule: FaultRule,
    field: str,
    expected: str,
) -> None:
    server = await sandbox(senders=SENDERS, faults=(rule,))
    path = "/inbox/senders" if rule.route == "senders" else "/inbox/connect"
    status, raw = await raw_answer(http, server, path)
    assert status == rule.status
    assert json.loads(raw)[field] == expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (FaultRule("error", nth=3), [200, 200, 500, 200, 200]),
        (FaultRule("error", times=2), [500, 500, 200, 200, 200]),
        (FaultRule("error", nth=2, times=0), [200] * 5),
        (FaultRule("error", recipient="person-1"), [200, 500, 200, 200, 200]),
        (
            FaultRule("error", recipient="https://www.linkedin.com/in/Person-3/"),
            [200, 200, 200, 500, 200],
        ),
        (FaultRule("error", sender="s2"), [200] * 5),
        (FaultRule("error", route="senders"), [200] * 5),
        (FaultRule("error", route="*", nth=1), [500, 200, 200, 200, 200]),
    ],
)
async def test_rule_selection(
    sandbox: SandboxFactory, http: aiohttp.ClientSession, rule: FaultRule, expected: list[int]
) -> None:
    server = await sandbox(senders=SENDERS, faults=(rule,))
    assert await statuses(http, server, 5) == expected


async def test_first_matching_rule_wins(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    rules = (FaultRule("error", status=502, times=1), FaultRule("error", status=503, times=2))
    server = await sandbox(senders=SENDERS, faults=rules)
    assert await statuses(http, server, 4) == [502, 503, 503, 200]


async def test_faults_on_listing_routes(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    rules = (FaultRule("error", route="senders"), FaultRule("malformed", route="quotas"))
    server = await sandbox(senders=SENDERS, faults=rules)
    headers = {"X-API-Key": server.api_key}
    async with http.get(server.base_url + "/inbox/senders", headers=headers) as response:
        assert response.status == 500
    async with http.get(server.base_url + "/senders/quotas", headers=headers) as response:
        assert response.status == 200
        with pytest.raises(json.JSONDecodeError):
            await response.json()
    assert (await post(http, server, body())).status == 200


async def test_add_fault_at_runtime(sandbox: SandboxFactory, http: aiohttp.ClientSession) -> None:
    server = await sandbox(senders=SENDERS)
    assert (await post(http, server, body(1))).status == 200
    server.add_fault(FaultRule("error", status=502, times=1))
    assert await statuses(http, server, 2) == [502, 200]


async def test_add_fault_before_start(http: aiohttp.ClientSession) -> None:
    server = SandboxServer()
    server.add_fault(FaultRule("error", status=504))
    async with server:
        response = await post(http, server, body(sender="sender_alice"))
    assert response.status == 504


async def test_same_seed_same_faults(sandbox: SandboxFactory, http: aiohttp.ClientSession) -> None:
    rules = (FaultRule("error", rate=0.3), FaultRule("rate_limit", rate=0.2))

    async def sequence(seed: int) -> list[int]:
        server = await sandbox(senders=SENDERS, faults=rules, seed=seed)
        return await statuses(http, server, 40)

    first, again, other = await sequence(7), await sequence(7), await sequence(8)
    assert first == again
    assert first != other
    assert {500, 429, 200} <= set(first)


def test_rate_draws_are_seeded_per_rule() -> None:
    """A rule's draws depend on the seed and its position, not on other rules firing."""
    alone = FaultPlan.of([FaultRule("drop", rate=0.5)], seed=3)
    with_other = FaultPlan.of([FaultRule("drop", rate=0.5)], seed=3)
    with_other.add(FaultRule("error", rate=0.5))
    picks = [_kind(alone.select("connect", n)) == "drop" for n in range(1, 50)]
    assert picks == [_kind(with_other.select("connect", n)) == "drop" for n in range(1, 50)]
    assert 10 < sum(picks) < 40


def _kind(rule: FaultRule | None) -> str | None:
    return rule.kind if rule else None


async def test_stop_releases_a_hanging_request(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=SENDERS, faults=(FaultRule("hang"),))
    request = asyncio.create_task(
        post(http, server, body(), timeout=aiohttp.ClientTimeout(total=10))
    )
    await until(lambda: bool(server.state.invitations))
    assert len(server.state.invitations) == 1
    started = time.monotonic()
    await server.stop()
    assert time.monotonic() - started < 1.0
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await request


async def test_stop_cuts_latency_short(
    sandbox: SandboxFactory, http: aiohttp.ClientSession
) -> None:
    server = await sandbox(senders=SENDERS, faults=(FaultRule("latency", seconds=60),))
    request = asyncio.create_task(
        post(http, server, body(), timeout=aiohttp.ClientTimeout(total=10))
    )
    await until(lambda: bool(server.state.counters[("connect", "fault:latency")]))
    started = time.monotonic()
    await server.stop()
    assert time.monotonic() - started < 1.0
    # The handler finished its work when released; the client may or may not get the answer.
    await asyncio.gather(request, return_exceptions=True)
    assert len(server.state.invitations) == 1


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("error", FaultRule("error")),
        ("error:503", FaultRule("error", status=503)),
        ("error:500:rate=0.1", FaultRule("error", rate=0.1)),
        ("error:status=429:message=slow down", FaultRule("error", status=429, message="slow down")),
        ("rate_limit:retry_after=2:times=3", FaultRule("rate_limit", retry_after=2, times=3)),
        ("rate_limit:retry_after=none", FaultRule("rate_limit", retry_after=None)),
        (
            "rate_limit:retry_after=5:retry_after_date=true",
            FaultRule("rate_limit", retry_after=5, retry_after_date=True),
        ),
        ("hang:nth=5", FaultRule("hang", nth=5)),
        ("latency:seconds=0.5:route=*", FaultRule("latency", seconds=0.5, route="*")),
        ("drop_before:sender=s1", FaultRule("drop_before", sender="s1")),
        (
            "drop:recipient=https://www.linkedin.com/in/x:times=1",
            FaultRule("drop", recipient="https://www.linkedin.com/in/x", times=1),
        ),
        ("malformed:route=quotas", FaultRule("malformed", route="quotas")),
        ("redirect", FaultRule("redirect", status=307)),
        (
            "redirect:308:location=http://127.0.0.1:9/v1",
            FaultRule("redirect", status=308, location="http://127.0.0.1:9/v1"),
        ),
        ("body:200:nested=100000", FaultRule("body", nested=100_000)),
        ("body:size=2000000:route=senders", FaultRule("body", size=2_000_000, route="senders")),
        ("body:201:invalid_utf8=true", FaultRule("body", status=201, invalid_utf8=True)),
        ("body:401:echo_key=yes", FaultRule("body", status=401, echo_key=True)),
        (
            "body:404:content_type=text/html:text=<html>Not Found</html>",
            FaultRule("body", status=404, content_type="text/html", text="<html>Not Found</html>"),
        ),
        (
            'body:times=1:text={"a": "b=c", "d": [1, 2]}:x',
            FaultRule("body", times=1, text='{"a": "b=c", "d": [1, 2]}:x'),
        ),
    ],
)
def test_parse_fault_spec(spec: str, expected: FaultRule) -> None:
    assert parse_fault_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("explode", "unknown fault kind 'explode'"),
        ("error:abc", "expected key=value"),
        ("error:200", "4xx or 5xx"),
        ("hang:when=later", "unknown key 'when'"),
        ("hang:nth=first", "nth must be a number"),
        ("hang:nth=0", "nth counts from 1"),
        ("error:rate=2", "rate must be between 0 and 1"),
        ("latency:seconds=-1", "seconds must not be negative"),
        ("error:route=inbox", "unknown route 'inbox'"),
        ("rate_limit:retry_after_date=maybe", "true or false"),
        ("hang:503", "expected key=value"),
        ("redirect:200", "3xx"),
        ("body:204", "allow a body"),
        ("body:nested=0", "nested must be at least 1"),
        ("body:size=-1", "size must not be negative"),
        ("body:nested=3:size=10", "at most one of"),
        ("body:echo_key=true:text=hello", "echo_key needs the JSON answer"),
        ("body:invalid_utf8=perhaps", "invalid_utf8 must be true or false"),
        ("error:text=hello", "are for body faults"),
        ("error:404:content_type=text/html", "are for body faults"),
        ("hang:location=/x", "location is for redirect faults"),
    ],
)
def test_parse_fault_spec_rejects(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        parse_fault_spec(spec)
    assert str(info.value).startswith(repr(spec))
