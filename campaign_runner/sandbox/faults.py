"""Deterministic fault injection for the sandbox.

A :class:`FaultRule` selects requests and says what goes wrong with them. Rules are checked
in order for every authenticated request; the first one that fires wins.

Selecting (all given conditions must hold):

``route``
    ``"connect"`` (default), ``"senders"``, ``"quotas"`` or ``"*"`` for any route.
``nth``
    Only the nth request (1-based) to that route since the server started.
``sender`` / ``recipient``
    Only connect requests for that sender id / that profile (a URL or a bare slug).
``times``
    Fire at most this many times, then never again (``None``: no limit).
``rate``
    Fire with this probability. Each rule draws from its own ``random.Random`` seeded from
    the server's ``seed`` and the rule's position, only for requests that matched the
    conditions above, so the same seed and the same request sequence give the same faults.

Doing (``kind``):

``error``
    Answer ``status`` (default 500) with the API's JSON error body; ``message`` overrides
    the text. Nothing is created.
``rate_limit``
    Answer 429 ``{"message": "Rate limit exceeded"}`` with ``Retry-After: <retry_after>``
    (seconds, ``:g``-formatted so that tests may use fractions; an HTTP date instead when
    ``retry_after_date``; no header when ``retry_after`` is ``None``). Nothing is created.
``latency``
    Wait ``seconds`` (real time), then handle the request normally.
``drop_before``
    Close the connection without answering and without creating anything.
``hang``
    Handle the request (the invitation is created), then never answer: the handler waits
    until the server stops, so the client's own timeout is what ends the request.
``drop``
    Handle the request (the invitation is created), then close the connection unanswered.
``malformed``
    Handle the request (the invitation is created), then answer with its status but a
    truncated, unparseable JSON body.

``redirect``
    Answer ``status`` (default 307) with ``Location: <location>`` and no body; without a
    ``location``, the request's own URL, so that a client that follows it comes straight
    back. Nothing is created: a client must not follow it (it would carry the key along).
``body``
    Answer ``status`` (default 200) with a raw body of the fault's choosing, served as
    ``application/json`` whatever it holds. With a 2xx status the request is handled first
    (the invitation is created when the request is valid), as when a proxy garbles the real
    answer; with any other status nothing is created. The body is, by the first key given:

    - ``text``: exactly this text, UTF-8 encoded;
    - ``nested``: the route's real answer with a ``"detail"`` field holding lists
      ``nested`` deep (``[[[...]]]``), deeper than a recursive decoder can follow;
    - ``size``: the real answer padded with a ``"padding"`` string to exactly ``size``
      bytes (or the answer alone when it is longer);
    - ``invalid_utf8``: the real answer with a raw ``0xFF`` byte inside a string;
    - none of them: the real answer (for a 2xx) or the API's JSON error shape.

    ``echo_key`` adds the request's ``X-API-Key`` to the answer's ``message`` (error
    shape) or ``error`` (success shape) field, as a careless server might; not with ``text``.
    ``content_type`` serves the body under another type than ``application/json``
    (``text/html``: a website's or a proxy's page, as a wrong ``api.base_url`` meets).

``disconnect``
    From this request on, the request's sender is disconnected, as when its LinkedIn
    session ends mid-campaign: this request and every later one for that sender answer
    400 ``"Sender <id> is disconnected"``, and the senders list shows it so. Select the
    sender with ``sender`` and the moment with ``nth``.

``hang``, ``drop``, ``malformed`` and a 2xx ``body`` are the ambiguous outcomes a client
must survive: the invitation exists, but the client cannot know it.

The compact text form used by ``campaign-runner sandbox --fault`` is
``KIND[:STATUS][:key=value]...``, e.g. ``error:500:rate=0.1``, ``rate_limit:retry_after=2:times=3``,
``hang:nth=5``, ``latency:seconds=0.5``, ``drop:recipient=john-doe``, ``redirect:308``,
``body:200:nested=100000``, ``body:text={"status": "queued"}``; see :func:`parse_fault_spec`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields

from campaign_runner.sandbox.profiles import profile_key

FAULT_KINDS = (
    "error",
    "rate_limit",
    "latency",
    "hang",
    "drop",
    "drop_before",
    "malformed",
    "redirect",
    "body",
    "disconnect",
)
ROUTES = ("connect", "senders", "quotas", "*")
# Faults that let the request create its invitation before going wrong (``body`` too, when
# its status is 2xx: see FaultRule.after_handling).
AFTER_HANDLING = frozenset({"hang", "drop", "malformed"})
# The status a kind answers when none is given; kinds not listed answer none of their own.
DEFAULT_STATUS = {"error": 500, "redirect": 307, "body": 200}
# Statuses that carry no body in HTTP, so a body fault cannot use them.
_NO_BODY = frozenset({204, 205, 304})


@dataclass(frozen=True)
class FaultRule:
    """One fault: which requests it selects and what it does to them (see module docs)."""

    kind: str
    route: str = "connect"
    nth: int | None = None
    sender: str | None = None
    recipient: str | None = None
    times: int | None = None
    rate: float = 1.0
    # None: the kind's default (DEFAULT_STATUS), filled in on construction so that equal
    # rules compare equal however they were written.
    status: int | None = None
    message: str | None = None
    retry_after: float | None = 1.0
    retry_after_date: bool = False
    seconds: float = 0.0
    location: str | None = None
    text: str | None = None
    nested: int | None = None
    size: int | None = None
    invalid_utf8: bool = False
    echo_key: bool = False
    content_type: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(FAULT_KINDS)})")
        if self.status is None:
            object.__setattr__(self, "status", DEFAULT_STATUS.get(self.kind))
        if self.route not in ROUTES:
            raise ValueError(f"unknown route {self.route!r} (known: {', '.join(ROUTES)})")
        if self.nth is not None and self.nth < 1:
            raise ValueError("nth counts from 1")
        if self.times is not None and self.times < 0:
            raise ValueError("times must not be negative")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if self.kind == "error" and not 400 <= self.code <= 599:
            raise ValueError("an error fault's status must be a 4xx or 5xx code")
        if self.kind == "redirect" and not 300 <= self.code <= 399:
            raise ValueError("a redirect fault's status must be a 3xx code")
        if self.kind == "body" and (not 200 <= self.code <= 599 or self.code in _NO_BODY):
            raise ValueError("a body fault's status must be 200-599 and allow a body")
        self._check_body_options()
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must not be negative")
        if self.seconds < 0:
            raise ValueError("seconds must not be negative")

    def _check_body_options(self) -> None:
        if self.location is not None and self.kind != "redirect":
            raise ValueError("location is for redirect faults")
        sources = [self.text is not None, self.nested is not None, self.size is not None]
        sources.append(self.invalid_utf8)
        if self.kind != "body" and (any(sources) or self.echo_key or self.content_type):
            raise ValueError(
                "text, nested, size, invalid_utf8, echo_key and content_type are for body faults"
            )
        if sum(sources) > 1:
            raise ValueError("give at most one of text, nested, size and invalid_utf8")
        if self.nested is not None and self.nested < 1:
            raise ValueError("nested must be at least 1")
        if self.size is not None and self.size < 0:
            raise ValueError("size must not be negative")
        if self.echo_key and self.text is not None:
            raise ValueError("echo_key needs the JSON answer, not text")

    @property
    def code(self) -> int:
        """The HTTP status this rule answers (its kind's default when none was given)."""
        if self.status is None:
            raise ValueError(f"a {self.kind} fault answers no status of its own")
        return self.status

    @property
    def after_handling(self) -> bool:
        """Whether the request is handled (its invitation created) before the fault acts."""
        return self.kind in AFTER_HANDLING or (self.kind == "body" and 200 <= self.code < 300)

    @property
    def label(self) -> str:
        """The outcome name used in the server's counters: ``fault:500``, ``fault:hang``..."""
        return f"fault:{self.status}" if self.kind == "error" else f"fault:{self.kind}"

    def matches(self, route: str, nth: int, sender: str | None, recipient: str | None) -> bool:
        """Whether this rule's selecting conditions (all but ``times`` and ``rate``) hold."""
        if self.route not in ("*", route):
            return False
        if self.nth is not None and self.nth != nth:
            return False
        if self.sender is not None and self.sender != sender:
            return False
        if self.recipient is None:
            return True
        return recipient is not None and profile_key(self.recipient) == profile_key(recipient)


@dataclass
class _Armed:
    rule: FaultRule
    draws: random.Random
    fired: int = 0


@dataclass
class FaultPlan:
    """The rules of one server, with the state that makes them deterministic."""

    seed: int = 0
    _armed: list[_Armed] = field(default_factory=list)

    @classmethod
    def of(cls, rules: tuple[FaultRule, ...] | list[FaultRule], seed: int) -> FaultPlan:
        plan = cls(seed=seed)
        for rule in rules:
            plan.add(rule)
        return plan

    def add(self, rule: FaultRule) -> None:
        """Append ``rule``; its random stream depends only on the seed and its position."""
        position = len(self._armed)
        self._armed.append(_Armed(rule, random.Random(f"{self.seed}/fault/{position}")))

    def select(
        self, route: str, nth: int, sender: str | None = None, recipient: str | None = None
    ) -> FaultRule | None:
        """The rule that fires for this request, if any, spending one of its ``times``."""
        for armed in self._armed:
            rule = armed.rule
            if not rule.matches(route, nth, sender, recipient):
                continue
            if rule.times is not None and armed.fired >= rule.times:
                continue
            if rule.rate < 1.0 and armed.draws.random() >= rule.rate:
                continue
            armed.fired += 1
            return rule
        return None


_INT_FIELDS = {"nth", "times", "status", "nested", "size"}
_FLOAT_FIELDS = {"rate", "seconds"}
_BOOL_FIELDS = {"retry_after_date", "invalid_utf8", "echo_key"}
_TEXT_FIELDS = {"route", "sender", "recipient", "message", "location", "text", "content_type"}
# The key whose value runs to the end of the spec, so that a body may hold ':' and '='.
_REST_KEY = ":text="


def parse_fault_spec(spec: str) -> FaultRule:
    """Parse ``KIND[:STATUS][:key=value]...`` into a :class:`FaultRule`.

    Keys are the rule's field names (``route``, ``nth``, ``sender``, ``recipient``,
    ``times``, ``rate``, ``status``, ``message``, ``retry_after`` (a number or ``none``),
    ``retry_after_date``, ``invalid_utf8`` and ``echo_key`` (``true``/``false``),
    ``seconds``, ``location``, ``nested``, ``size``, ``content_type``, ``text``). A bare
    number after
    ``error``, ``redirect`` or ``body`` is the status. Values may contain colons
    (``recipient=https://...``); ``text=`` must come last and takes the rest of the spec
    verbatim, ``=`` included. Raises ``ValueError`` with a readable reason.
    """
    head, found, text = spec.strip().partition(_REST_KEY)
    kind, *rest = head.split(":")
    tokens: list[str] = []
    for token in rest:
        # A token without "=" continues the previous value (a URL's colon), except the
        # error status right after the kind.
        if "=" not in token and tokens and "=" in tokens[-1]:
            tokens[-1] += ":" + token
        else:
            tokens.append(token)
    values: dict[str, object] = {}
    for position, token in enumerate(tokens):
        if "=" not in token:
            if position == 0 and kind in DEFAULT_STATUS and token.isdigit():
                values["status"] = int(token)
                continue
            raise ValueError(f"{spec!r}: expected key=value, got {token!r}")
        key, _, raw = token.partition("=")
        values[key.strip()] = _convert(spec, key.strip(), raw.strip())
    if found:
        values["text"] = text
    try:
        return FaultRule(kind=kind.strip(), **values)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValueError(f"{spec!r}: {exc}") from None


def _convert(spec: str, key: str, raw: str) -> object:
    known = {f.name for f in fields(FaultRule)} - {"kind"}
    if key not in known:
        raise ValueError(f"{spec!r}: unknown key {key!r} (known: {', '.join(sorted(known))})")
    try:
        if key in _INT_FIELDS:
            return int(raw)
        if key in _FLOAT_FIELDS:
            return float(raw)
        if key == "retry_after":
            return None if raw.lower() == "none" else float(raw)
    except ValueError:
        raise ValueError(f"{spec!r}: {key} must be a number, not {raw!r}") from None
    if key in _BOOL_FIELDS:
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{spec!r}: {key} must be true or false")
        return raw.lower() in ("true", "1", "yes")
    assert key in _TEXT_FIELDS
    return raw
