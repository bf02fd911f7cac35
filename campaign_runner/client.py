"""The SendPilot HTTP client: one call -> one typed outcome.

:meth:`SendPilotClient.connect` never raises for anything the network or the API can do;
it returns a :class:`ConnectResult` whose :class:`ResultKind` says what is known about
the invitation. The distinction that matters most is between failures where the request
*never left* (safe to retry) and failures after it was sent (the invitation may exist:
:attr:`ResultKind.AMBIGUOUS`, never re-sent automatically).

The listing calls (:meth:`senders`, :meth:`quotas`) raise :class:`~campaign_runner.errors.ApiError`
(or :class:`~campaign_runner.errors.AuthError`) because without them a run cannot be planned.
The API key travels only in the ``X-API-Key`` header and appears in no message.
"""

from __future__ import annotations

import email.utils
import enum
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from campaign_runner.config import DEFAULT_BASE_URL, Secret, Settings
from campaign_runner.errors import ApiError, AuthError

# The most of an answer's body that is read. SendPilot's answers are a few hundred bytes; a
# larger 2xx answer is not one the client can trust, and reading it whole could exhaust memory.
MAX_BODY_BYTES = 1 << 20
# How much of an unreadable body, or of a field, goes into a message (and the results file).
EXCERPT_CHARS = 200


class ResultKind(enum.Enum):
    ACCEPTED = "accepted"  # 2xx with a parseable body: sent, already_connected, or another word
    REJECTED = "rejected"  # 400, the API's own 404, other 4xx: this row will not work as it is
    AUTH = "auth"  # 401/403: the key is wrong or lacks a scope; stop the whole run
    # A redirect, or a 404/405 that is not the API's answer about the row (an HTML page, a
    # route the server does not have): api.base_url is wrong; stop the whole run.
    MISCONFIGURED = "misconfigured"
    DAILY_LIMIT = "daily_limit"  # 429 about the daily connection limit: sender done for the window
    # 400 saying the sender is disconnected: the sender, not the row, is at fault.
    SENDER_UNAVAILABLE = "sender_unavailable"
    RATE_LIMITED = "rate_limited"  # 429 rate limit of the API itself: back off, retry
    SERVER_ERROR = "server_error"  # 5xx: retry
    NOT_SENT = "not_sent"  # connection refused, DNS, connect timeout: the request never left
    # Read timeout, disconnect, unparseable 2xx, gateway timeout (504): it may exist.
    AMBIGUOUS = "ambiguous"


class UnreadableBody(ValueError):
    """A body that :func:`decode_json` cannot take; the text says why, in a few words."""


@dataclass(frozen=True)
class ConnectResult:
    kind: ResultKind
    status: str = ""  # the API's status word when ACCEPTED
    request_id: str = ""
    http_status: int | None = None
    message: str = ""  # the API's or the network's explanation, for the results' error column
    retry_after: float | None = None  # seconds, from a Retry-After header


@dataclass(frozen=True)
class SenderInfo:
    id: str
    name: str
    status: str  # active | disconnected | rate_limited | whatever the API says
    premium: bool | None  # None: the API did not say


@dataclass(frozen=True)
class Quota:
    sender_id: str
    limit: int | None
    used: int | None
    remaining: int | None
    resets_at: str | None


# The stand-in server marks every answer with it (campaign_runner.sandbox.app says why).
STAND_IN_HEADER = "X-SendPilot-Stand-In"


class SendPilotClient:
    """A thin, typed wrapper over one :class:`aiohttp.ClientSession`.

    The caller owns the session, so that connection pooling and its limits are decided
    once, by the runner. :attr:`stand_in` turns true once an answer came from the stand-in
    server rather than from SendPilot.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: Secret,
        timeout_seconds: float,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self.stand_in = False
        self._headers = {"X-API-Key": api_key.reveal(), "Accept": "application/json"}
        # Separate connect and read timeouts, so that "never left" and "left, no answer"
        # raise different exceptions. A single total timeout could not tell them apart.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout_seconds, sock_read=timeout_seconds
        )

    @classmethod
    def from_settings(cls, session: aiohttp.ClientSession, settings: Settings) -> SendPilotClient:
        """A client for the configured API; :class:`ConfigError` when no key is set."""
        api = settings.api
        return cls(session, api.base_url, settings.require_api_key(), api.timeout_seconds)

    async def connect(self, sender_id: str, linkedin_url: str, note: str | None) -> ConnectResult:
        """Send one connection request and classify whatever happens."""
        body: dict[str, str] = {"senderId": sender_id, "recipientLinkedinUrl": linkedin_url}
        if note:
            body["message"] = note
        try:
            # No redirects: aiohttp would forward X-API-Key to wherever a 307/308 points,
            # and turn the POST into a GET on a 301/302.
            async with self._session.post(
                f"{self._base}/inbox/connect",
                json=body,
                headers=self._headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                raw, complete = await _read_capped(response)
                result = _classify(response.status, response.headers, raw, complete, self._base)
                return replace(result, message=self._redact(result.message))
        except aiohttp.ClientConnectorError as exc:
            return ConnectResult(ResultKind.NOT_SENT, message=f"cannot connect: {exc.os_error}")
        except aiohttp.ConnectionTimeoutError:
            return ConnectResult(ResultKind.NOT_SENT, message="connect timeout")
        except aiohttp.SocketTimeoutError:
            return ConnectResult(
                ResultKind.AMBIGUOUS, message="no answer before the timeout (it may have been sent)"
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Disconnects, resets and truncated bodies after the request went out.
            what = type(exc).__name__
            return ConnectResult(
                ResultKind.AMBIGUOUS, message=f"connection lost before an answer ({what})"
            )

    async def senders(self) -> list[SenderInfo]:
        """``GET /inbox/senders``: the workspace's LinkedIn sender accounts."""
        payload = await self._get_json("/inbox/senders")
        items = payload.get("senders") if isinstance(payload, dict) else None
        if not isinstance(items, list):
            raise ApiError("GET /inbox/senders: unexpected answer (no 'senders' list)")
        out = []
        for item in items:
            sender_id = _scalar_text(item.get("id")) if isinstance(item, dict) else ""
            if not sender_id:
                continue
            premium = item.get("premium", item.get("isPremium"))
            out.append(
                SenderInfo(
                    id=sender_id,
                    name=_scalar_text(item.get("name")),
                    status=_scalar_text(item.get("status")) or "active",
                    premium=premium if isinstance(premium, bool) else None,
                )
            )
        return out

    async def quotas(self) -> dict[str, Quota]:
        """``GET /senders/quotas``: each sender's connection quota, by sender id.

        The item shape is assumed (see the API notes); anything missing becomes ``None``
        and the caller falls back on its own limits.
        """
        # The route is assumed (see above): the API's own 404 says it has none, not that
        # api.base_url is wrong, since the senders' listing answered from the same base.
        payload = await self._get_json("/senders/quotas", route_assumed=True)
        items = payload.get("senders") if isinstance(payload, dict) else None
        out: dict[str, Quota] = {}
        for item in items if isinstance(items, list) else []:
            sender_id = _scalar_text(item.get("senderId")) if isinstance(item, dict) else ""
            if not sender_id:
                continue
            raw_conn = item.get("connections")
            conn: dict[str, Any] = raw_conn if isinstance(raw_conn, dict) else {}
            out[sender_id] = Quota(
                sender_id=sender_id,
                limit=_int_or_none(conn.get("limit")),
                used=_int_or_none(conn.get("used")),
                remaining=_int_or_none(conn.get("remaining")),
                resets_at=_scalar_text(conn.get("resetsAt")) or None,
            )
        return out

    async def quotas_if_available(self) -> tuple[dict[str, Quota], str]:
        """:meth:`quotas`, or ``({}, why)`` when the route fails: the quotas are a second
        opinion on capacity, so only a rejected key (:class:`AuthError`) stops the caller."""
        try:
            return await self.quotas(), ""
        except AuthError:
            raise
        except ApiError as exc:
            return {}, str(exc)

    async def _get_json(self, path: str, *, route_assumed: bool = False) -> Any:
        try:
            async with self._session.get(
                f"{self._base}{path}",
                headers=self._headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                raw, complete = await _read_capped(response)
                status = response.status
                location = response.headers.get("Location", "")
                html = _is_html(response.headers, raw)
                self.stand_in = self.stand_in or STAND_IN_HEADER in response.headers
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ApiError(f"GET {path}: cannot reach the API at {self._base} ({exc})") from None
        message = self._redact(_error_message(raw))
        if status in (401, 403) and not html:
            raise AuthError(_auth_message(status, message), status)
        if 300 <= status < 400:
            raise ApiError(_redirect_message(status, location), status)
        if html:
            raise ApiError(f"GET {path}: HTTP {status}: {_html_message(self._base)}", status)
        if status == 404 and not (route_assumed and _api_error(raw)):
            raise ApiError(f"GET {path}: HTTP 404: {_not_found_message(self._base)}", status)
        if status >= 400:
            raise ApiError(f"GET {path}: HTTP {status}: {message}", status)
        try:
            return decode_json(raw, complete)
        except UnreadableBody as exc:
            raise ApiError(f"GET {path}: the answer cannot be read ({exc})", status) from None

    def _redact(self, text: str) -> str:
        """The text with the API key masked, in case a server echoes it back."""
        key = self._headers["X-API-Key"]
        return text.replace(key, "***") if key and key in text else text


async def _read_capped(response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
    """At most :data:`MAX_BODY_BYTES` of the body, and whether that was all of it."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_BODY_BYTES:
        chunk = await response.content.read(MAX_BODY_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:MAX_BODY_BYTES], size <= MAX_BODY_BYTES


def decode_json(raw: bytes, complete: bool = True) -> Any:
    """The JSON document in ``raw``, or :class:`UnreadableBody` saying why not.

    ``complete`` is false for a body cut at :data:`MAX_BODY_BYTES`. The one place where an
    answer is decoded, because ``json.loads`` raises more than ``ValueError``: a deeply
    nested document exhausts the recursion limit, and a run must not die of what a server
    sent.
    """
    if not complete:
        raise UnreadableBody(f"larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw)
    except RecursionError:
        raise UnreadableBody("JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise UnreadableBody("not UTF-8 text") from None
    except ValueError:
        raise UnreadableBody("not JSON") from None


def _classify(
    status: int, headers: Mapping[str, str], raw: bytes, complete: bool, base: str
) -> ConnectResult:
    html = _is_html(headers, raw)
    if 200 <= status < 300:
        if html:
            # Whatever served the page may have passed the request on: it may exist.
            return ConnectResult(
                ResultKind.AMBIGUOUS,
                http_status=status,
                message=f"the API answered success with {_html_message(base)}",
            )
        return _classify_success(status, raw, complete)
    if 300 <= status < 400:
        location = headers.get("Location", "")
        return ConnectResult(
            ResultKind.MISCONFIGURED,
            http_status=status,
            message=_redirect_message(status, location),
        )
    if status in (404, 405) and (html or not _api_error(raw) or _no_such_route(raw)):
        # Not the API speaking about this row, but a server without the route: every row
        # would meet the same answer, so the run stops, as for a redirect.
        return ConnectResult(
            ResultKind.MISCONFIGURED,
            http_status=status,
            message=f"HTTP {status}: "
            + (_html_message(base) if html else _not_found_message(base)),
        )
    message = _html_message(base) if html else _error_message(raw)
    if status == 504:
        # A gateway gave up waiting for the origin, which may well have created it.
        return ConnectResult(
            ResultKind.AMBIGUOUS,
            http_status=status,
            message=f"HTTP 504 (gateway timeout: the invitation may exist): {message}",
        )
    if status in (401, 403):
        return ConnectResult(
            ResultKind.AUTH, http_status=status, message=_auth_message(status, message)
        )
    if status == 429:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return ConnectResult(
            _kind_of_429(message, retry_after),
            http_status=status,
            message=message,
            retry_after=retry_after,
        )
    if status >= 500:
        return ConnectResult(
            ResultKind.SERVER_ERROR,
            http_status=status,
            message=f"HTTP {status}: {message}",
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )
    if status == 400 and _sender_unavailable(message):
        return ConnectResult(ResultKind.SENDER_UNAVAILABLE, http_status=status, message=message)
    return ConnectResult(ResultKind.REJECTED, http_status=status, message=message)


def _sender_unavailable(message: str) -> bool:
    """Whether a 400 says the sender cannot send (its LinkedIn session ended), not that
    the row is wrong.

    The wording is assumed ("Sender <id> is disconnected"). The documented 400, "Invalid
    request or sender not found", is not taken for it: it may well be about the row, and
    reading it as the sender's would stop a sender for every bad row.
    """
    lowered = message.lower()
    return "sender" in lowered and "disconnected" in lowered


def _classify_success(status: int, raw: bytes, complete: bool) -> ConnectResult:
    """A 2xx answer: accepted when its body says so, else ambiguous (it may exist)."""
    try:
        payload = decode_json(raw, complete)
        if not isinstance(payload, dict):
            raise UnreadableBody("not a JSON object")
        if not isinstance(payload.get("status"), str):
            raise UnreadableBody("no status word")
    except UnreadableBody as exc:
        return ConnectResult(
            ResultKind.AMBIGUOUS,
            http_status=status,
            message=f"the API answered success with a body that cannot be read ({exc})",
        )
    return ConnectResult(
        ResultKind.ACCEPTED,
        status=payload["status"][:EXCERPT_CHARS],
        request_id=_scalar_text(payload.get("requestId")),
        http_status=status,
        message=_scalar_text(payload.get("error")),
    )


def _scalar_text(value: object) -> str:
    """A string or number as text, cut to :data:`EXCERPT_CHARS`; anything else is ``""``.

    Containers are dropped rather than printed: ``str()`` of a deeply nested one can hit
    the recursion limit that decoding it did not.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return str(value)[:EXCERPT_CHARS]


def _kind_of_429(message: str, retry_after: float | None) -> ResultKind:
    """A 429 is either the sender's daily connection limit or the API's own rate limit.

    The daily limit's wording is assumed ("Daily connection limit exceeded"). A 429 that
    names neither, and gives no Retry-After, is taken as the daily limit: that stops one
    sender for the run, while the other reading would retry its rows and record them
    failed, one after the other.
    """
    lowered = message.lower()
    if "daily" in lowered:
        return ResultKind.DAILY_LIMIT
    if retry_after is not None or "rate" in lowered:
        return ResultKind.RATE_LIMITED
    return ResultKind.DAILY_LIMIT


def _error_message(raw: bytes) -> str:
    """The API's ``message`` field, or a short excerpt of whatever came back."""
    try:
        payload = decode_json(raw)
    except UnreadableBody:
        payload = None
    message = payload.get("message") if isinstance(payload, dict) else None
    # NestJS validation errors come as a list of messages.
    parts = message if isinstance(message, list) else [message]
    text = "; ".join(filter(None, (_scalar_text(part) for part in parts)))
    if text:
        return text
    excerpt = raw[:EXCERPT_CHARS].decode("utf-8", "replace").strip()
    return excerpt or "no message"


def _is_html(headers: Mapping[str, str], raw: bytes) -> bool:
    """Whether an answer is a web page (a proxy's, a website's) rather than the API's JSON."""
    content_type = headers.get("Content-Type", "").lower()
    return content_type.startswith(("text/html", "application/xhtml")) or raw.lstrip()[:1] == b"<"


def _api_error(raw: bytes) -> bool:
    """Whether ``raw`` is the API's JSON error shape (``statusCode``, ``message``)."""
    try:
        payload = decode_json(raw)
    except UnreadableBody:
        return False
    return isinstance(payload, dict) and "statusCode" in payload and "message" in payload


def _no_such_route(raw: bytes) -> bool:
    """NestJS's own answer for a path it has no route for: ``Cannot POST /v1/...``."""
    return _error_message(raw).startswith(("Cannot POST ", "Cannot GET "))


def _html_message(base: str) -> str:
    return (
        f"an HTML page, not the API's JSON: check api.base_url (now {base}; SendPilot's "
        f"is {DEFAULT_BASE_URL})"
    )


def _not_found_message(base: str) -> str:
    return (
        f"no such route: check api.base_url (now {base}; SendPilot's is {DEFAULT_BASE_URL}, "
        "with its /v1)"
    )


def _redirect_message(status: int, location: str) -> str:
    where = f" to {location}" if location else ""
    return (
        f"the API answered a redirect (HTTP {status}{where}); check api.base_url "
        "(campaign-runner does not follow redirects, which would send the key elsewhere)"
    )


def _auth_message(status: int, message: str) -> str:
    if status == 401:
        return (
            f"the API rejected the key (HTTP 401: {message}); check SENDPILOT_API_KEY "
            "or api.api_key, and that the key is not revoked"
        )
    return (
        f"the API key lacks a permission (HTTP 403: {message}); it needs the scopes for "
        "senders and inbox connect, and the senders must belong to its workspace"
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    reference = time.time() if now is None else now
    return max(0.0, when.timestamp() - reference)


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # JSON allows 1e999, which decodes to infinity: no count.
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return None
