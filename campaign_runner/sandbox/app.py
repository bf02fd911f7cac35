"""The sandbox's HTTP face: routes, auth, fault application and the server wrapper.

Every answer has the real API's shape (``sendpilot-api.md``); errors are
``{"statusCode", "message", "error"}``. The order of checks on ``POST /v1/inbox/connect``:
API key (401) -> faults that act before handling -> body and field validation (400) ->
sender known (400 "Invalid request or sender not found") -> sender ``disconnected`` (400)
-> recipient already connected (200 ``already_connected``, no capacity spent) -> sender
``rate_limited`` or its capacity spent (429 "Daily connection limit exceeded", no
``Retry-After``: the quota resets at the window's end, which the quotas route reports) ->
invitation created (200 ``sent``) -> faults that act after handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import socket
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from aiohttp import web

from campaign_runner.sandbox.faults import FaultPlan, FaultRule
from campaign_runner.sandbox.profiles import is_member_urn, profile_slug
from campaign_runner.sandbox.state import (
    LIKE_LIMIT,
    MESSAGE_LIMIT,
    NOTE_MAX_CHARS,
    SandboxConfig,
    SandboxSender,
    SandboxState,
    iso_timestamp,
)
from campaign_runner.sandbox.webhooks import WebhookEmitter

DAILY_LIMIT_MESSAGE = "Daily connection limit exceeded"
# On every answer when the config announces the stand-in, so that a client pointed at it
# by its base URL alone (no --sandbox) knows its invitations are rehearsals.
STAND_IN_HEADER = "X-SendPilot-Stand-In"
RATE_LIMIT_MESSAGE = "Rate limit exceeded"
SENDER_NOT_FOUND_MESSAGE = "Invalid request or sender not found"


@dataclass
class Sandbox:
    """Everything one running application shares between its requests."""

    config: SandboxConfig
    state: SandboxState
    plan: FaultPlan
    webhooks: WebhookEmitter
    # Set when the server stops, so that hanging and slow handlers let go.
    closing: asyncio.Event = field(default_factory=asyncio.Event)


SANDBOX = web.AppKey("sandbox", Sandbox)


@dataclass(frozen=True)
class _Answer:
    status: int
    payload: dict[str, Any]


def create_app(config: SandboxConfig | None = None) -> web.Application:
    """The sandbox as an ``aiohttp.web.Application``; its state lives in ``app[SANDBOX]``.

    The capacity windows start when this is called. Use :class:`SandboxServer` to serve it
    on a socket, or mount it in an ``aiohttp`` test server.
    """
    config = config or SandboxConfig()
    state = SandboxState.create(config)
    sandbox = Sandbox(
        config=config,
        state=state,
        plan=FaultPlan.of(config.faults, config.seed),
        webhooks=WebhookEmitter(config, state.counters),
    )
    app = web.Application(middlewares=[_json_http_errors])
    app[SANDBOX] = sandbox
    app.router.add_post("/v1/inbox/connect", _route("connect", _connect))
    app.router.add_get("/v1/inbox/senders", _route("senders", _senders))
    app.router.add_get("/v1/senders/quotas", _route("quotas", _quotas))
    if config.announce:
        app.on_response_prepare.append(_mark_stand_in)
    app.on_startup.append(_start_webhooks)
    app.on_shutdown.append(_release_handlers)
    app.on_cleanup.append(_stop_webhooks)
    return app


async def _mark_stand_in(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[STAND_IN_HEADER] = "1"


async def _start_webhooks(app: web.Application) -> None:
    await app[SANDBOX].webhooks.start()


async def _release_handlers(app: web.Application) -> None:
    app[SANDBOX].closing.set()


async def _stop_webhooks(app: web.Application) -> None:
    await app[SANDBOX].webhooks.stop()


def _error(status: int, message: str) -> _Answer:
    phrase = HTTPStatus(status).phrase
    return _Answer(status, {"statusCode": status, "message": message, "error": phrase})


def _respond(answer: _Answer, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(answer.payload, status=answer.status, headers=headers)


@web.middleware
async def _json_http_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Unknown paths and methods answer in the API's JSON error shape, not aiohttp's text."""
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = f"Cannot {request.method} {request.path}"
        request.app[SANDBOX].state.counters[("unknown", str(exc.status))] += 1
        return _respond(_error(exc.status, message), headers=_allow_header(exc))
    return response


def _allow_header(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None


_Handler = Any  # (Sandbox, object) -> _Answer; Any keeps the route table readable


def _route(name: str, handle: _Handler) -> Any:
    """Wrap a pure handler with auth, counting, body parsing and fault injection."""

    async def serve(request: web.Request) -> web.StreamResponse:
        sandbox = request.app[SANDBOX]
        denied = _check_key(request, sandbox.config.api_key)
        if denied is not None:
            sandbox.state.counters[(name, "unauthorized")] += 1
            return _respond(denied)
        nth = sandbox.state.next_request(name)
        body = await _read_json(request) if name == "connect" else None
        sender, recipient = _peek(body)
        rule = sandbox.plan.select(name, nth, sender, recipient)
        if rule is not None:
            sandbox.state.counters[(name, rule.label)] += 1
            if rule.kind == "latency":
                await _wait(sandbox, rule.seconds)
            elif rule.kind == "disconnect":
                if sender is not None:
                    sandbox.state.disconnected.add(sender)
            elif not rule.after_handling:
                return _before_handling(request, rule, sandbox)
        answer: _Answer = handle(sandbox, body)
        if rule is not None and rule.after_handling:
            return await _after_handling(request, rule, sandbox, answer)
        return _respond(answer)

    return serve


def _check_key(request: web.Request, api_key: str) -> _Answer | None:
    given = request.headers.get("X-API-Key")
    if not given:
        return _error(401, "Missing API key")
    if not hmac.compare_digest(given.encode(), api_key.encode()):
        return _error(401, "Invalid API key")
    return None


_NOT_JSON = object()


async def _read_json(request: web.Request) -> object:
    raw = await request.read()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _NOT_JSON


def _peek(body: object) -> tuple[str | None, str | None]:
    """Sender and recipient of a connect body, if present, for fault selection."""
    if not isinstance(body, dict):
        return None, None
    sender, recipient = body.get("senderId"), body.get("recipientLinkedinUrl")
    return (
        sender if isinstance(sender, str) else None,
        recipient if isinstance(recipient, str) else None,
    )


async def _wait(sandbox: Sandbox, seconds: float) -> None:
    """Sleep ``seconds`` of real time, cut short when the server stops."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(sandbox.closing.wait(), timeout=seconds)


def _before_handling(request: web.Request, rule: FaultRule, sandbox: Sandbox) -> web.Response:
    if rule.kind == "drop_before":
        return _drop(request)
    if rule.kind == "rate_limit":
        headers = _retry_after(rule, sandbox.state.now())
        return _respond(_error(429, rule.message or RATE_LIMIT_MESSAGE), headers=headers)
    if rule.kind == "redirect":
        # Not request.url: aiohttp 3.10.0 builds it in a way newer yarl releases refuse.
        itself = f"{request.scheme}://{request.host}{request.path_qs}"
        return web.Response(status=rule.code, headers={"Location": rule.location or itself})
    if rule.kind == "body":
        return _raw_body(request, rule, _fault_error(rule))
    return _respond(_fault_error(rule))


def _fault_error(rule: FaultRule) -> _Answer:
    phrase = HTTPStatus(rule.code).phrase
    default = "Internal server error" if rule.code == 500 else phrase
    return _error(rule.code, rule.message or default)


def _raw_body(request: web.Request, rule: FaultRule, answer: _Answer) -> web.Response:
    """A body fault's answer: ``answer`` reshaped as the rule says (see the faults module)."""
    raw = _body_bytes(rule, answer.payload, request.headers.get("X-API-Key", ""))
    content_type = rule.content_type or "application/json"
    return web.Response(status=rule.code, body=raw, content_type=content_type)


def _body_bytes(rule: FaultRule, payload: dict[str, Any], key: str) -> bytes:
    if rule.text is not None:
        return rule.text.encode()
    if rule.echo_key:
        field = "message" if "statusCode" in payload else "error"
        said = payload.get(field)
        payload = {**payload, field: f"{said} {key}" if said else key}
    plain = json.dumps(payload).encode()
    if rule.nested is not None:
        # Written as bytes: json.dumps itself cannot serialise a list this deep.
        return _with_raw_field(plain, "detail", b"[" * rule.nested + b"]" * rule.nested)
    if rule.size is not None:
        room = rule.size - len(_with_raw_field(plain, "padding", b'""'))
        return _with_raw_field(plain, "padding", b'"' + b"x" * max(0, room) + b'"')
    if rule.invalid_utf8:
        return _with_raw_field(plain, "padding", b'"\xff"')
    return plain


def _with_raw_field(document: bytes, name: str, value: bytes) -> bytes:
    """``document`` (a non-empty JSON object) with one more field, its value as raw bytes."""
    return document[:-1] + f', "{name}": '.encode() + value + b"}"


def _retry_after(rule: FaultRule, now: float) -> dict[str, str] | None:
    if rule.retry_after is None:
        return None
    if rule.retry_after_date:
        return {"Retry-After": formatdate(now + rule.retry_after, usegmt=True)}
    return {"Retry-After": f"{rule.retry_after:g}"}


async def _after_handling(
    request: web.Request, rule: FaultRule, sandbox: Sandbox, answer: _Answer
) -> web.Response:
    if rule.kind == "hang":
        await sandbox.closing.wait()
        return _drop(request)
    if rule.kind == "drop":
        return _drop(request)
    if rule.kind == "body":
        return _raw_body(request, rule, answer)
    # malformed: the right status, but a body cut off halfway (as a broken proxy might).
    text = json.dumps(answer.payload)
    return web.Response(
        status=answer.status, text=text[: len(text) // 2], content_type="application/json"
    )


def _drop(request: web.Request) -> web.Response:
    """Close the connection unanswered; aiohttp discards the response returned after it."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=204)


def _connect(sandbox: Sandbox, body: object) -> _Answer:
    state = sandbox.state
    problem = _invalid_connect_body(body)
    if problem is not None:
        state.counters[("connect", "bad_request")] += 1
        return _error(400, f"Validation failed: {problem}")
    assert isinstance(body, dict)
    sender = sandbox.config.sender(body["senderId"])
    if sender is None:
        state.counters[("connect", "unknown_sender")] += 1
        return _error(400, SENDER_NOT_FOUND_MESSAGE)
    if state.status(sender) == "disconnected":
        state.counters[("connect", "sender_disconnected")] += 1
        return _error(400, f"Sender {sender.id} is disconnected")
    url: str = body["recipientLinkedinUrl"]
    if state.is_already_connected(url):
        state.counters[("connect", "already_connected")] += 1
        return _accepted(state.new_request_id(), url, "already_connected", state.now())
    if sender.status == "rate_limited" or state.used(sender.id) >= sender.capacity:
        state.counters[("connect", "daily_limit")] += 1
        return _error(429, DAILY_LIMIT_MESSAGE)
    return _send(sandbox, sender, url, body.get("message"))


def _send(sandbox: Sandbox, sender: SandboxSender, url: str, note: str | None) -> _Answer:
    state = sandbox.state
    invitation = state.record_invitation(sender, url, note)
    state.counters[("connect", "sent")] += 1
    sandbox.webhooks.invitation_created(invitation, state.accepted)
    return _accepted(invitation.request_id, url, "sent", invitation.created_at)


def _accepted(request_id: str, url: str, status: str, at: float) -> _Answer:
    payload = {
        "success": True,
        "requestId": request_id,
        "recipientLinkedinUrl": url,
        "status": status,
        "timestamp": iso_timestamp(at),
    }
    return _Answer(200, payload)


def _invalid_connect_body(body: object) -> str | None:
    """Why a connect body is unacceptable, or ``None`` when it is fine."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    sender_id = body.get("senderId")
    if not isinstance(sender_id, str) or not sender_id.strip():
        return "senderId is required"
    url = body.get("recipientLinkedinUrl")
    if not isinstance(url, str) or not url.strip():
        return "recipientLinkedinUrl is required"
    slug = profile_slug(url)
    if slug is None:
        return "recipientLinkedinUrl must be a LinkedIn profile URL like https://www.linkedin.com/in/john-doe"
    if is_member_urn(slug):
        return "recipientLinkedinUrl must be the profile's public URL, not a member URN"
    note = body.get("message")
    if note is not None and not isinstance(note, str):
        return "message must be a string"
    if note is not None and len(note) > NOTE_MAX_CHARS:
        return f"message must be at most {NOTE_MAX_CHARS} characters"
    return None


def _senders(sandbox: Sandbox, body: object) -> _Answer:
    items = [
        {
            "id": s.id,
            "name": s.name,
            "linkedinUrl": s.linkedin_url,
            "status": sandbox.state.status(s),
            # Message usage, as the real list reports it; the sandbox sends no messages.
            "dailyMessageLimit": MESSAGE_LIMIT,
            "messagesSentToday": 0,
            "remainingMessages": MESSAGE_LIMIT,
        }
        for s in sandbox.config.senders
    ]
    sandbox.state.counters[("senders", "ok")] += 1
    return _Answer(200, {"senders": items, "total": len(items)})


def _quotas(sandbox: Sandbox, body: object) -> _Answer:
    state = sandbox.state
    resets_at = iso_timestamp(state.window_end())
    items = []
    for sender in sandbox.config.senders:
        quota = state.connection_quota(sender)
        items.append(
            {
                "senderId": sender.id,
                "connections": {
                    "limit": quota.limit,
                    "used": quota.used,
                    "remaining": quota.remaining,
                    "resetsAt": resets_at,
                },
                "messages": _unused_quota(MESSAGE_LIMIT, resets_at),
                "likes": _unused_quota(LIKE_LIMIT, resets_at),
            }
        )
    state.counters[("quotas", "ok")] += 1
    return _Answer(200, {"senders": items, "total": len(items)})


def _unused_quota(limit: int, resets_at: str) -> dict[str, Any]:
    return {"limit": limit, "used": 0, "remaining": limit, "resetsAt": resets_at}


class SandboxServer:
    """The sandbox served on a real socket: ``async with SandboxServer(config) as server``.

    ``port=0`` picks a free ephemeral port; ``base_url`` then names it. ``start()`` and
    ``stop()`` may be called directly instead of using ``async with``. A server is started
    once; stopping releases hanging requests, cancels pending webhooks and closes the socket.
    """

    def __init__(
        self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or SandboxConfig()
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self._extra_faults: list[FaultRule] = []

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the sandbox server is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``: what a client's ``api.base_url`` should be."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def sandbox(self) -> Sandbox:
        if self._app is None:
            raise RuntimeError("the sandbox server is not started")
        return self._app[SANDBOX]

    @property
    def state(self) -> SandboxState:
        return self.sandbox.state

    def add_fault(self, rule: FaultRule) -> None:
        """Add ``rule`` after the configured ones; works before or after ``start()``."""
        if self._app is None:
            self._extra_faults.append(rule)
        else:
            self.sandbox.plan.add(rule)

    async def start(self) -> None:
        """Bind the socket and start serving (raises ``OSError`` if the port is taken)."""
        if self._app is not None:
            raise RuntimeError("the sandbox server is already started")
        app = create_app(self.config)
        for rule in self._extra_faults:
            app[SANDBOX].plan.add(rule)
        sock = _bind(self.host, self._requested_port)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        try:
            await runner.setup()
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._app, self._runner = app, runner
        self._port = sock.getsockname()[1]

    async def stop(self) -> None:
        """Release hanging requests, cancel webhooks and close the socket; idempotent."""
        if self._runner is None or self._app is None:
            return
        self._app[SANDBOX].closing.set()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def drain_webhooks(self) -> None:
        """Wait until every scheduled webhook delivery and acceptance has happened."""
        await self.sandbox.webhooks.idle()

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # A restarted sandbox may reuse its port at once despite TIME_WAIT connections.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock
