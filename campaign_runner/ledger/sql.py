"""The ledger's logic in SQL, shared by the SQLite and PostgreSQL backends.

Both run the same statements (written with ``?`` placeholders; the PostgreSQL backend
turns them into ``%s``) inside one transaction per call. A backend supplies the
connection, the schema's dialect (identity columns) and :meth:`SqlLedger._transaction`,
which must take the workspace's write lock for the transaction, so that every claim sees every
earlier claim of every process.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from campaign_runner.ledger.base import (
    ACCEPTED_EVENTS,
    LIVE,
    OUTCOMES,
    PENDING,
    RELEASED,
    SPENDING,
    WEEK_WINDOWS,
    Acceptance,
    CampaignInfo,
    Claim,
    ClaimRequest,
    Holder,
    ImportLine,
    Invitation,
    Ledger,
    SenderLimits,
    SenderUsage,
    Settle,
    Verdict,
    WebhookEvent,
)

SCHEMA_VERSION = "1"


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


_LIVE = _in(LIVE)
_SPENDING = _in(SPENDING)
_ACCEPTED = _in(ACCEPTED_EVENTS)


def schema(identity: str, real: str) -> list[str]:
    """The DDL, with the dialect's auto-numbered key and floating-point type."""
    return [
        f"""CREATE TABLE IF NOT EXISTS campaigns (
            id {identity},
            name TEXT NOT NULL,
            results_path TEXT NOT NULL UNIQUE,
            created_at {real} NOT NULL
        )""",
        f"""CREATE TABLE IF NOT EXISTS attempts (
            id {identity},
            url TEXT NOT NULL,
            sender_id TEXT NOT NULL,
            -- BIGINT, the width of PostgreSQL's identity key (in SQLite both are one type).
            campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
            row_number INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL,
            request_id TEXT NOT NULL DEFAULT '',
            error TEXT NOT NULL DEFAULT '',
            at {real} NOT NULL,
            settled_at {real}
        )""",
        # The promise itself: at most one live attempt per person, whoever makes it.
        f"CREATE UNIQUE INDEX IF NOT EXISTS attempts_one_live ON attempts (url) "
        f"WHERE status IN {_LIVE}",
        "CREATE INDEX IF NOT EXISTS attempts_by_sender ON attempts (sender_id, at)",
        # What a sender spent in the day and week (usage, claims), read from the index alone:
        # without it every attempt of the week is also looked up in the table for its status.
        f"CREATE INDEX IF NOT EXISTS attempts_spending "
        f"ON attempts (sender_id, at, campaign_id, status) WHERE status IN {_SPENDING}",
        # A campaign's attempts by person: bringing a results file in asks which of its
        # lines the campaign has, batch by batch (by campaign alone, each batch would scan
        # every attempt of the campaign so far).
        "DROP INDEX IF EXISTS attempts_by_campaign",
        "CREATE INDEX IF NOT EXISTS attempts_by_campaign_url ON attempts (campaign_id, url)",
        # The sender's next free slot, and the campaign whose invitation set it.
        f"""CREATE TABLE IF NOT EXISTS senders (
            sender_id TEXT PRIMARY KEY,
            next_slot_at {real} NOT NULL,
            campaign_id BIGINT NOT NULL
        )""",
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        # Campaigns whose results file from before the ledger has been brought in whole.
        f"""CREATE TABLE IF NOT EXISTS imports (
            campaign_id BIGINT PRIMARY KEY REFERENCES campaigns (id),
            done_at {real} NOT NULL
        )""",
        # SendPilot's webhook events, each once: the event id is what a redelivery repeats.
        f"""CREATE TABLE IF NOT EXISTS webhook_events (
            event_id TEXT PRIMARY KEY,
            event_type TEXT NOT NULL,
            received_at {real} NOT NULL,
            occurred_at {real},
            sender_id TEXT NOT NULL DEFAULT '',
            url TEXT NOT NULL DEFAULT '',
            payload TEXT NOT NULL
        )""",
        # Acceptances by person, read without the payloads.
        f"CREATE INDEX IF NOT EXISTS webhook_events_accepted "
        f"ON webhook_events (sender_id, url, received_at, occurred_at) "
        f"WHERE event_type IN {_ACCEPTED}",
    ]


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class SqlLedger(Ledger):
    """The ledger over a DB-API connection; subclasses bind a database."""

    @abstractmethod
    def _transaction(self) -> Any:
        """A context manager: a cursor inside one transaction holding the write lock,
        committed (durably) on success and rolled back on error."""

    def _sql(self, text: str) -> str:
        return text

    @abstractmethod
    def _text_list(self) -> str:
        """A query of one column, ``value``: the texts of one bound parameter, given as
        :meth:`_text_list_value` makes it (any number: no limit on parameters)."""

    @abstractmethod
    def _text_list_value(self, texts: Sequence[str]) -> Any:
        """The parameter :meth:`_text_list` reads."""

    @contextmanager
    def _tx(self) -> Iterator[_Q]:
        with self._transaction() as cursor:
            yield _Q(cursor, self._sql)

    # -- campaigns

    def campaign(self, name: str, results_path: str, now: float) -> CampaignInfo:
        with self._tx() as q:
            row = q.one(
                "SELECT id, name, results_path, created_at FROM campaigns WHERE results_path = ?",
                (results_path,),
            )
            if row is None:
                row = q.one(
                    "INSERT INTO campaigns (name, results_path, created_at) VALUES (?, ?, ?) "
                    "RETURNING id, name, results_path, created_at",
                    (name, results_path, now),
                )
            assert row is not None
            return CampaignInfo(int(row[0]), str(row[1]), str(row[2]), float(row[3]))

    def find_campaign(self, results_path: str) -> CampaignInfo | None:
        with self._tx() as q:
            row = q.one(
                "SELECT id, name, results_path, created_at FROM campaigns WHERE results_path = ?",
                (results_path,),
            )
        if row is None:
            return None
        return CampaignInfo(int(row[0]), str(row[1]), str(row[2]), float(row[3]))

    def campaigns(self) -> list[CampaignInfo]:
        with self._tx() as q:
            rows = q.all("SELECT id, name, results_path, created_at FROM campaigns ORDER BY id")
        return [CampaignInfo(int(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    def invitations(self) -> list[Invitation]:
        with self._tx() as q:
            # The live attempt first: an older campaign's failed line brought in after
            # another campaign's invitation must not hide that the person was invited.
            rows = q.all(
                f"SELECT url, sender_id, status, request_id, at FROM ("
                f"SELECT url, sender_id, status, request_id, at, id, ROW_NUMBER() OVER ("
                f"PARTITION BY url ORDER BY CASE WHEN status IN {_LIVE} THEN 0 ELSE 1 END, "
                f"id DESC) AS n FROM attempts) AS a WHERE n = 1 ORDER BY at, id"
            )
        return [Invitation(str(u), str(s), str(st), str(r), float(at)) for u, s, st, r, at in rows]

    # -- claims and outcomes

    def claim(
        self,
        campaign_id: int,
        requests: Sequence[ClaimRequest],
        limits: Mapping[str, SenderLimits],
        window_seconds: float,
        now: float | Callable[[], float],
    ) -> list[Claim]:
        with self._tx() as q:
            moment = now() if callable(now) else now  # inside the lock: see Ledger.claim
            return [
                self._claim_one(q, campaign_id, r, limits, window_seconds, moment) for r in requests
            ]

    def _claim_one(
        self,
        q: _Q,
        campaign_id: int,
        request: ClaimRequest,
        limits: Mapping[str, SenderLimits],
        window: float,
        now: float,
    ) -> Claim:
        live = q.one(
            f"SELECT a.id, a.campaign_id, a.status, a.sender_id, a.at, c.name "
            f"FROM attempts a JOIN campaigns c ON c.id = a.campaign_id "
            f"WHERE a.url = ? AND a.status IN {_LIVE}",
            (request.url,),
        )
        if live is not None:
            mine, status = int(live[1]) == campaign_id, str(live[2])
            if not (mine and status in (PENDING, "unknown")):
                holder = Holder(str(live[5]), status, str(live[3]), float(live[4]), int(live[1]))
                return Claim(Verdict.TAKEN, holder=holder)
        limit = limits[request.sender_id]
        full_until = self._full_until(q, request.sender_id, limit, window, now)
        if full_until is not None:
            return Claim(Verdict.FULL, not_before=full_until)
        slot = q.one(
            "SELECT next_slot_at, campaign_id FROM senders WHERE sender_id = ?",
            (request.sender_id,),
        )
        # A campaign's own slots are paced by its own limiter (one run per campaign at a
        # time: the results file is locked); the ledger paces campaigns against each other.
        # A slot more than an interval ahead was reserved before the clock was set back:
        # waiting for it would idle the sender for as long as the step, so it is passed.
        # (Planning's test for a step is a second ahead; a reserved slot is legitimately
        # up to one interval ahead, so only more than that is a step here.)
        next_slot = float(slot[0]) if slot is not None else now
        stepped = next_slot > now + limit.interval_seconds
        if slot is not None and now < next_slot and not stepped and int(slot[1]) != campaign_id:
            return Claim(Verdict.WAIT, not_before=next_slot)
        if live is not None:
            # This campaign's own attempt in doubt, sent again on purpose (--retry-unknown).
            q.run(
                "UPDATE attempts SET status = ?, settled_at = ? WHERE id = ?",
                (RELEASED, now, live[0]),
            )
        row = q.one(
            "INSERT INTO attempts (url, sender_id, campaign_id, row_number, status, at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (request.url, request.sender_id, campaign_id, request.row, PENDING, now),
        )
        assert row is not None
        q.run(
            "INSERT INTO senders (sender_id, next_slot_at, campaign_id) VALUES (?, ?, ?) "
            "ON CONFLICT (sender_id) DO UPDATE SET next_slot_at = excluded.next_slot_at, "
            "campaign_id = excluded.campaign_id",
            (request.sender_id, now + limit.interval_seconds, campaign_id),
        )
        return Claim(Verdict.CLAIMED, claim_id=int(row[0]))

    def _full_until(
        self, q: _Q, sender_id: str, limit: SenderLimits, window: float, now: float
    ) -> float | None:
        """When the sender's spent day or week frees a slot, or None while it has room.

        The span is full when it holds ``cap`` attempts; then the ``cap``-th newest is the
        one whose leaving frees a slot. Reading newest first, at most ``cap`` entries of the
        spending index are touched, however long the sender's history.
        """
        for span, cap in ((window, limit.daily_limit), (WEEK_WINDOWS * window, limit.weekly_limit)):
            if cap <= 0:
                return now + span  # a limit of zero: never, in effect
            row = q.one(
                f"SELECT at FROM attempts WHERE sender_id = ? AND status IN {_SPENDING} "
                f"AND at >= ? ORDER BY at DESC LIMIT 1 OFFSET ?",
                (sender_id, now - span, cap - 1),
            )
            if row is not None:
                return float(row[0]) + span
        return None

    def settle(self, outcomes: Sequence[Settle], now: float) -> None:
        bad = [o.status for o in outcomes if o.status not in OUTCOMES]
        if bad:
            raise ValueError(f"not an outcome: {bad[0]!r}")
        with self._tx() as q:
            q.many(
                "UPDATE attempts SET status = ?, request_id = ?, error = ?, settled_at = ? "
                "WHERE id = ?",
                [(o.status, o.request_id, o.error, now, o.claim_id) for o in outcomes],
            )

    def windows_sent(
        self, sender_ids: Iterable[str], window_seconds: float, now: float
    ) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._tx() as q:
            for sender in dict.fromkeys(sender_ids):
                stamps = [
                    float(row[0])
                    for row in q.all(
                        f"SELECT at FROM attempts WHERE sender_id = ? AND status IN {_SPENDING} "
                        f"ORDER BY at",
                        (sender,),
                    )
                ]
                if not stamps:
                    counts[sender] = 0
                    continue
                first = stamps[0]
                current = int((now - first) // window_seconds)
                windows = {int((t - first) // window_seconds) for t in stamps}
                counts[sender] = len({w for w in windows if w < current})
        return counts

    def release(self, urls: Iterable[str], now: float) -> int:
        wanted = list(dict.fromkeys(urls))
        with self._tx() as q:
            before = q.one(f"SELECT COUNT(*) FROM attempts WHERE status IN {_LIVE}")
            q.many(
                f"UPDATE attempts SET status = ?, settled_at = ? "
                f"WHERE url = ? AND status IN {_LIVE}",
                [(RELEASED, now, u) for u in wanted],
            )
            after = q.one(f"SELECT COUNT(*) FROM attempts WHERE status IN {_LIVE}")
        assert before is not None and after is not None
        return int(before[0]) - int(after[0])

    # -- what planning asks

    def holders(self, urls: Iterable[str]) -> dict[str, Holder]:
        wanted = list(dict.fromkeys(urls))
        if not wanted:
            return {}
        with self._tx() as q:
            # One statement for any number of URLs, the list bound as one value: each URL
            # is looked up in the live index (not one query per 500, each parsed anew).
            rows = q.all(
                f"SELECT a.url, c.name, a.status, a.sender_id, a.at, a.campaign_id "
                f"FROM attempts a JOIN campaigns c ON c.id = a.campaign_id "
                f"WHERE a.status IN {_LIVE} AND a.url IN ({self._text_list()})",
                (self._text_list_value(wanted),),
            )
        return {
            str(url): Holder(str(name), str(status), str(sender), float(at), int(owner))
            for url, name, status, sender, at, owner in rows
        }

    def usage(self, window_seconds: float, now: float) -> dict[str, SenderUsage]:
        day_start, week_start = now - window_seconds, now - WEEK_WINDOWS * window_seconds
        with self._tx() as q:
            # Each sender's week from the (sender_id, at) index: the senders found by
            # skipping from one to the next in the index (a few dozen steps), then one
            # range per sender, instead of reading every attempt the workspace ever made.
            rows = q.all(
                f"WITH RECURSIVE s (id) AS ("
                f"SELECT MIN(sender_id) FROM attempts UNION ALL "
                f"SELECT (SELECT MIN(sender_id) FROM attempts WHERE sender_id > s.id) "
                f"FROM s WHERE s.id IS NOT NULL) "
                f"SELECT a.sender_id, a.campaign_id, "
                f"SUM(CASE WHEN a.at >= ? THEN 1 ELSE 0 END), COUNT(*), MAX(a.at), "
                f"MIN(CASE WHEN a.at >= ? THEN a.at END), MIN(a.at) "
                f"FROM s JOIN attempts a ON a.sender_id = s.id AND a.at >= ? "
                f"WHERE a.status IN {_SPENDING} "
                f"GROUP BY a.sender_id, a.campaign_id",
                (day_start, day_start, week_start),
            )
        by_sender: dict[str, list[Any]] = {}
        for row in rows:
            by_sender.setdefault(str(row[0]), []).append(row)
        usage: dict[str, SenderUsage] = {}
        for sender, parts in by_sender.items():
            oldest = [float(p[5]) for p in parts if p[5] is not None]
            usage[sender] = SenderUsage(
                day=sum(int(p[2]) for p in parts),
                week=sum(int(p[3]) for p in parts),
                day_by_campaign={int(p[1]): int(p[2]) for p in parts if int(p[2])},
                week_by_campaign={int(p[1]): int(p[3]) for p in parts},
                last_at=max(float(p[4]) for p in parts),
                oldest_in_day=min(oldest) if oldest else None,
                oldest_in_week=min(float(p[6]) for p in parts),
            )
        return usage

    def totals(self) -> dict[str, int]:
        with self._tx() as q:
            rows = q.all(
                f"SELECT status, COUNT(*) FROM attempts WHERE status IN {_in((*LIVE, 'failed'))} "
                f"GROUP BY status"
            )
        return {str(status): int(count) for status, count in rows}

    # -- webhook events

    def record_event(self, event: WebhookEvent) -> bool:
        with self._tx() as q:
            row = q.one(
                "INSERT INTO webhook_events (event_id, event_type, received_at, occurred_at, "
                "sender_id, url, payload) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                (
                    event.event_id,
                    event.event_type,
                    event.received_at,
                    event.occurred_at,
                    event.sender_id,
                    event.url,
                    event.payload,
                ),
            )
        return row is not None

    def acceptances(self) -> list[Acceptance]:
        with self._tx() as q:
            rows = q.all(
                f"SELECT sender_id, url, accepted_at, event_id FROM ("
                f"SELECT sender_id, url, COALESCE(occurred_at, received_at) AS accepted_at, "
                f"event_id, ROW_NUMBER() OVER (PARTITION BY sender_id, url "
                f"ORDER BY COALESCE(occurred_at, received_at), event_id) AS n "
                f"FROM webhook_events WHERE event_type IN {_ACCEPTED} AND url <> '') AS e "
                f"WHERE n = 1 ORDER BY accepted_at, sender_id, url"
            )
        return [Acceptance(str(s), str(u), float(at), str(e)) for s, u, at, e in rows]

    # -- bringing in results from before the ledger

    def imported(self, campaign_id: int) -> bool:
        with self._tx() as q:
            return q.one("SELECT 1 FROM imports WHERE campaign_id = ?", (campaign_id,)) is not None

    def mark_imported(self, campaign_id: int, now: float) -> None:
        with self._tx() as q:
            q.run(
                "INSERT INTO imports (campaign_id, done_at) VALUES (?, ?) "
                "ON CONFLICT (campaign_id) DO NOTHING",
                (campaign_id, now),
            )

    def import_lines(self, campaign_id: int, lines: Sequence[ImportLine]) -> int:
        wanted = [line for line in lines if line.status in OUTCOMES]
        if not wanted:
            return 0
        urls = self._text_list_value(list(dict.fromkeys(line.url for line in wanted)))
        with self._tx() as q:
            # What the workspace already has, for all the lines in two queries (not two per
            # line): who is held by a live attempt, and this campaign's attempts by date.
            live = {
                str(row[0])
                for row in q.all(
                    f"SELECT url FROM attempts WHERE status IN {_LIVE} "
                    f"AND url IN ({self._text_list()})",
                    (urls,),
                )
            }
            seen = {
                (str(row[0]), float(row[1]))
                for row in q.all(
                    f"SELECT url, at FROM attempts WHERE campaign_id = ? "
                    f"AND url IN ({self._text_list()})",
                    (campaign_id, urls),
                )
            }
            new = _new_lines(wanted, live, seen)
            q.many(
                "INSERT INTO attempts (url, sender_id, campaign_id, row_number, status, "
                "request_id, error, at, settled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        line.url,
                        line.sender_id,
                        campaign_id,
                        line.row,
                        line.status,
                        line.request_id,
                        line.error,
                        line.at,
                        line.at,
                    )
                    for line in new
                ],
            )
        return len(new)


def _new_lines(
    lines: Sequence[ImportLine], live: set[str], seen: set[tuple[str, float]]
) -> list[ImportLine]:
    """The lines to bring in, in order, as if each were checked after the ones before it
    went in: a live outcome only for a person nobody holds, any other outcome only once
    per person and date. ``live`` and ``seen`` grow with the lines taken."""
    new = []
    for line in lines:
        if line.status in LIVE:
            if line.url in live:
                continue
            live.add(line.url)
        elif (line.url, line.at) in seen:
            continue
        seen.add((line.url, line.at))
        new.append(line)
    return new


class _Q:
    """A cursor with the backend's placeholder style."""

    def __init__(self, cursor: Cursor, sql: Any) -> None:
        self._cursor = cursor
        self._sql = sql

    def run(self, text: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(self._sql(text), params)

    def one(self, text: str, params: Sequence[Any] = ()) -> Any:
        self._cursor.execute(self._sql(text), params)
        return self._cursor.fetchone()

    def all(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        self._cursor.execute(self._sql(text), params)
        return list(self._cursor.fetchall())

    def many(self, text: str, rows: Iterable[Sequence[Any]]) -> None:
        self._cursor.executemany(self._sql(text), rows)
