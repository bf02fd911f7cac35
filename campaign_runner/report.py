"""After the send: counts, acceptances and rates of a campaign or a workspace. Pure: no I/O.

:func:`build_report` is a function of the invitations (one per person: a results file's
latest line per prospect, or the workspace ledger's attempt per person), the acceptances
the webhook receiver recorded, optionally the notes of the input's rows and what the
planner says is left, and the time. The rules, in one place:

- An invitation is **accepted** when an acceptance of the same sender and canonical
  profile URL exists (accept events carry no request id: sender and person are all there is).
- The **acceptance rate** is accepted / sent, ``sent`` being the invitations whose status is
  ``sent``. An ``unknown`` invitation that was accepted did exist; it is counted apart
  (``unknown_accepted``) rather than made to look sent.
- A sent invitation not accepted after :data:`NOT_ACCEPTED_AFTER_DAYS` days is **not
  accepted**; a younger one is **pending**. So ``sent = accepted + pending + not_accepted``.
- **Per day**: dates in the zone given (the config's ``pacing.timezone``), UTC without one.
- **By note**: the note as it left (nothing, when a free sender dropped it), or the
  template for rows whose note it rendered; shown only when the notes differ.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

import pyarrow as pa

from campaign_runner.journal import ROW_VERDICTS, SENT, UNKNOWN, JournalState
from campaign_runner.ledger import Acceptance, Invitation
from campaign_runner.planning import NOTE_DELIVERED, NOTE_DROPPED
from campaign_runner.timestamps import parse_timestamp
from campaign_runner.validation import STATUS_VALID, Verdicts

NOT_ACCEPTED_AFTER_DAYS = 30
_DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class NoteKey:
    """What a group of invitations said: a note as it left, or the template that wrote it."""

    text: str  # '' for no note
    template: bool = False


@dataclass(frozen=True)
class Tally:
    """Sent invitations and what became of them."""

    sent: int = 0
    accepted: int = 0
    pending: int = 0  # not accepted yet, younger than NOT_ACCEPTED_AFTER_DAYS
    not_accepted: int = 0  # not accepted, older than that

    @property
    def acceptance_rate(self) -> float | None:
        """accepted / sent; None when nothing was sent."""
        return self.accepted / self.sent if self.sent else None


@dataclass(frozen=True)
class SenderReport:
    sender_id: str
    by_status: Mapping[str, int]  # its invitations' statuses (row verdicts are no sender's)
    tally: Tally


@dataclass(frozen=True)
class NoteReport:
    note: NoteKey
    tally: Tally


@dataclass(frozen=True)
class Day:
    date: date
    invitations: int  # sent that day
    acceptances: int  # of sent invitations, accepted that day


@dataclass(frozen=True)
class Left:
    """What is left to send and when it goes, as the planner sees it (a dry run's plan)."""

    input_path: str
    to_send: int
    now: int  # of those, how many current capacity takes
    later: int
    estimated_seconds: float | None  # until the `now` ones are sent, at the paced rate
    windows_needed: int | None  # capacity windows for all of them (None: never)
    window_seconds: float
    renews_at: float | None  # when some capacity frees up again, epoch seconds
    warnings: tuple[str, ...] = ()
    # When the next invitation can leave (now, when some can go now), and why not before
    # (its working hours open, its quota resets); None: nothing left, or no sender ever can.
    next_send_at: float | None = None
    next_send_why: str = ""


@dataclass(frozen=True)
class Report:
    now: float
    by_status: Mapping[str, int]  # people per latest status
    total: Tally
    by_sender: tuple[SenderReport, ...]  # by sender id
    by_note: tuple[NoteReport, ...]  # most sent first; empty unless the notes differ
    per_day: tuple[Day, ...]  # every day from the first to the last that saw either
    timezone: str  # the zone of per_day's dates
    median_seconds_to_accept: float | None
    unknown_accepted: int  # invitations recorded unknown that were accepted: they exist
    left: Left | None = None


class _Counts:
    def __init__(self) -> None:
        self.sent = self.accepted = self.pending = self.not_accepted = 0

    def add(self, accepted: bool, old: bool) -> None:
        self.sent += 1
        if accepted:
            self.accepted += 1
        elif old:
            self.not_accepted += 1
        else:
            self.pending += 1

    def frozen(self) -> Tally:
        return Tally(self.sent, self.accepted, self.pending, self.not_accepted)


def build_report(
    invitations: Sequence[Invitation],
    acceptances: Sequence[Acceptance],
    *,
    now: float,
    notes: Mapping[str, NoteKey] | None = None,
    zone: tzinfo | None = None,
    left: Left | None = None,
) -> Report:
    """The report of ``invitations`` (see the module docstring for every rule).

    ``notes`` maps a canonical profile URL to what its invitation said (from the input:
    :func:`notes_of_input`); invitations of people it does not name are in no note group.
    """
    accepted_at = acceptance_times(acceptances)
    cutoff = now - NOT_ACCEPTED_AFTER_DAYS * _DAY_SECONDS
    total = _Counts()
    senders: dict[str, _Counts] = {}
    sender_statuses: dict[str, Counter[str]] = {}
    by_note: dict[NoteKey, _Counts] = {}
    sent_days: Counter[date] = Counter()
    accept_days: Counter[date] = Counter()
    waits: list[float] = []
    unknown_accepted = 0
    for inv in invitations:
        if inv.sender_id and inv.status not in ROW_VERDICTS:
            sender_statuses.setdefault(inv.sender_id, Counter())[inv.status] += 1
            senders.setdefault(inv.sender_id, _Counts())
        when = accepted_at.get((inv.sender_id, inv.url))
        if inv.status == UNKNOWN and when is not None:
            unknown_accepted += 1
        if inv.status != SENT:
            continue
        accepted, old = when is not None, inv.at < cutoff
        total.add(accepted, old)
        if inv.sender_id:  # a hand-edited line may name none: counted, but by no sender
            senders[inv.sender_id].add(accepted, old)
        if notes is not None and inv.url in notes:
            by_note.setdefault(notes[inv.url], _Counts()).add(accepted, old)
        sent_days[_date(inv.at, zone)] += 1
        if when is not None:
            accept_days[_date(when, zone)] += 1
            # Two machines' clocks (ours, SendPilot's) may put an acceptance a moment
            # before its invitation: that is no negative wait.
            waits.append(max(0.0, when - inv.at))
    notes_shown = (
        tuple(
            NoteReport(key, counts.frozen())
            for key, counts in sorted(
                by_note.items(), key=lambda kv: (-kv[1].sent, kv[0].template, kv[0].text)
            )
        )
        if len(by_note) > 1
        else ()
    )
    return Report(
        now=now,
        by_status=dict(Counter(inv.status for inv in invitations)),
        total=total.frozen(),
        by_sender=tuple(
            SenderReport(s, dict(sender_statuses[s]), senders[s].frozen()) for s in sorted(senders)
        ),
        by_note=notes_shown,
        per_day=_days(sent_days, accept_days),
        timezone=zone_name(zone),
        median_seconds_to_accept=statistics.median(waits) if waits else None,
        unknown_accepted=unknown_accepted,
        left=left,
    )


def notes_of_input(
    verdicts: Verdicts, own_notes: pa.ChunkedArray | None, dropped: Collection[str] = ()
) -> dict[str, NoteKey]:
    """What each valid row's invitation said, by canonical profile URL.

    ``own_notes`` are the input's note cells, aligned with ``verdicts`` (None: the input has
    no note column): a row whose cell is blank took its note from the template, when there
    is one, and is grouped under the template rather than under its rendered text.
    ``dropped`` are the URLs whose note a free sender did not deliver: they said nothing.
    """
    template = verdicts.note_template
    table = verdicts.table
    urls = table["linkedin_url"].to_pylist()
    statuses = table["status"].to_pylist()
    sent_notes = table["note"].to_pylist()
    own = own_notes.to_pylist() if own_notes is not None else [None] * len(urls)
    keys: dict[str, NoteKey] = {}
    for url, status, note, cell in zip(urls, statuses, sent_notes, own, strict=True):
        if status != STATUS_VALID:
            continue
        if url in dropped or not note:
            keys[url] = NoteKey("")
        elif template is not None and not (cell or "").strip():
            keys[url] = NoteKey(template, template=True)
        else:
            keys[url] = NoteKey(note)
    return keys


def results_invitations(state: JournalState, now: float) -> list[Invitation]:
    """Every prospect of a results file once, as its latest line says (a send outcome
    over a row verdict; lines without a URL by their row). A line whose timestamp is not
    one of ours is dated ``now``, as bringing the file into the workspace dates it."""
    latest = state.latest
    stamps = [_epoch(t, now) for t in latest["timestamp"]]
    return [
        Invitation(str(url), str(sender), str(status), str(request), at)
        for url, sender, status, request, at in zip(
            latest["linkedin_url"],
            latest["sender_id"],
            latest["status"],
            latest["request_id"],
            stamps,
            strict=True,
        )
    ]


def dropped_notes(state: JournalState) -> set[str]:
    """The URLs whose latest line says a free sender sent the invitation without its note."""
    latest = state.latest
    if NOTE_DELIVERED not in latest.columns:
        return set()
    return set(latest["linkedin_url"][latest[NOTE_DELIVERED] == NOTE_DROPPED])


def zone_name(zone: tzinfo | None) -> str:
    """The name of the zone per-day dates are in: its IANA key, or UTC."""
    if zone is None:
        return "UTC"
    return str(getattr(zone, "key", None) or datetime.now(zone).strftime("%Z") or zone)


def acceptance_times(acceptances: Sequence[Acceptance]) -> dict[tuple[str, str], float]:
    """When each (sender, canonical URL) was first accepted."""
    earliest: dict[tuple[str, str], float] = {}
    for a in acceptances:
        key = (a.sender_id, a.url)
        if key not in earliest or a.accepted_at < earliest[key]:
            earliest[key] = a.accepted_at
    return earliest


def _epoch(stamp: str, now: float) -> float:
    try:
        return parse_timestamp(stamp)
    except ValueError:
        return now


def _date(epoch: float, zone: tzinfo | None) -> date:
    return datetime.fromtimestamp(epoch, zone or UTC).date()


def _days(sent: Counter[date], accepted: Counter[date]) -> tuple[Day, ...]:
    seen = sent.keys() | accepted.keys()
    if not seen:
        return ()
    first, last = min(seen), max(seen)
    span = (last - first).days + 1
    return tuple(
        Day(d, sent[d], accepted[d]) for d in (first + timedelta(days=i) for i in range(span))
    )
