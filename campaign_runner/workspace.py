"""Which workspace ledger a run uses, and where it lives.

Every campaign of one SendPilot workspace must reach the same ledger, with no
configuration at all, whichever form of the base URL it uses (``/v1`` or ``/api/v1``). The
API key belongs to exactly one workspace, so the default ledger is chosen by the key: one
SQLite file per workspace in the user's data directory (``$XDG_DATA_HOME/campaign-runner/``
on Linux, the platform's equivalent elsewhere), named by an irreversible fingerprint of
the key (the API reports no workspace id to name it by). ``workspace.database`` in
the config, or ``CAMPAIGN_RUNNER_DATABASE``, names another: a path, or a ``postgresql://``
URL that a team shares. Rehearsals (``--sandbox``) always use a ledger of their own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

import numpy as np
import numpy.typing as npt
import platformdirs
import pyarrow as pa
import pyarrow.compute as pc

from campaign_runner.arrowkit import to_numpy
from campaign_runner.config import Secret, Settings
from campaign_runner.journal import JournalState
from campaign_runner.ledger import ImportLine, Ledger, SQLiteLedger
from campaign_runner.ledger import open_ledger as open_database
from campaign_runner.ledger.base import OUTCOMES, PENDING, UNKNOWN
from campaign_runner.ledger.dsn import is_postgres_url
from campaign_runner.timestamps import CANONICAL_TS

APP_NAME = "campaign-runner"


def data_dir() -> Path:
    """The user's data directory for campaign-runner (created when a ledger is)."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False)


def key_fingerprint(key: Secret) -> str:
    """A name for the key's workspace that does not reveal the key (SHA-256, truncated)."""
    digest = hashlib.sha256(b"campaign-runner workspace\x00" + key.reveal().encode("utf-8"))
    return digest.hexdigest()[:16]


def ledger_location(settings: Settings, *, rehearsal: bool) -> str | None:
    """Where this run's ledger is: a path or URL; None when the workspace is not known
    (no API key and nothing configured: a dry run planned from the config alone)."""
    if rehearsal:
        return str(data_dir() / "sandbox.sqlite3")
    if settings.workspace.database:
        database = settings.workspace.database
        return database if is_postgres_url(database) else str(Path(database).expanduser())
    if settings.api.api_key is None:
        return None
    return str(data_dir() / "workspaces" / f"key-{key_fingerprint(settings.api.api_key)}.sqlite3")


def open_ledger(location: str, *, read_only: bool = False) -> Ledger | None:
    """The ledger at ``location``. For ``read_only`` (a dry run's view), an SQLite file is
    opened without being changed, and None is returned when it does not exist yet."""
    if read_only and not is_postgres_url(location):
        path = Path(location)
        return SQLiteLedger(path, read_only=True) if path.exists() else None
    return open_database(location)


def import_lines(state: JournalState, now: float) -> ImportLines:
    """The outcome of each prospect of a results file, as the ledger takes them in.

    The latest send outcome per profile, dated as written (a line without a readable date
    is dated ``now``: it then counts against its sender, the safe side); a ``pending``
    line left by a crash is ``unknown``, since its invitation may exist.
    """
    table = state.outcome_table()
    if table.num_rows == 0:
        return ImportLines(table, np.empty(0))
    status = pc.if_else(pc.equal(table["status"], PENDING), UNKNOWN, table["status"])
    table = table.set_column(table.schema.get_field_index("status"), "status", status)
    table = table.filter(pc.is_in(table["status"], value_set=pa.array(sorted(OUTCOMES))))
    stamps = table["timestamp"]
    canonical = pc.fill_null(pc.match_substring_regex(stamps, CANONICAL_TS), False)
    # Parsed in Arrow, not by a strptime per line: the same epoch seconds (microseconds
    # divided by 10**6, as datetime.timestamp does), a second less for a million lines.
    placeholder = pc.if_else(canonical, stamps, "1970-01-01T00:00:00.000Z")
    micros = pc.cast(pc.cast(placeholder, pa.timestamp("us", tz="UTC")), pa.int64())
    at = np.where(to_numpy(canonical), to_numpy(micros) / 1e6, now)
    return ImportLines(table, at)


IMPORT_BATCH = 50_000


def bring_in(ledger: Ledger, campaign_id: int, state: JournalState, now: float) -> int:
    """Bring a results file's outcomes into the ledger, a batch per transaction, then say
    it is done; how many were new.

    Batches keep a million lines from being held at once. A crash between two of them
    leaves the campaign not yet marked imported, so the next run brings the file in again:
    lines the ledger has are skipped, so that changes nothing twice.
    """
    lines = import_lines(state, now)
    added = sum(
        ledger.import_lines(campaign_id, lines[start : start + IMPORT_BATCH])
        for start in range(0, len(lines), IMPORT_BATCH)
    )
    ledger.mark_imported(campaign_id, now)
    return added


class ImportLines(Sequence[ImportLine]):
    """A results file's outcomes for the ledger, made a slice at a time as they are read,
    so that a million of them (or a Python dict per line) never exist at once."""

    CHUNK = 10_000

    def __init__(self, table: pa.Table, at: npt.NDArray[np.float64]) -> None:
        self._table = table
        self._at = at

    def __len__(self) -> int:
        return int(self._table.num_rows)

    @overload
    def __getitem__(self, index: int) -> ImportLine: ...

    @overload
    def __getitem__(self, index: slice) -> list[ImportLine]: ...

    def __getitem__(self, index: int | slice) -> ImportLine | list[ImportLine]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:  # a batch: made in one go, not line by line
                return self._lines(start, max(0, stop - start))
            return [self[i] for i in range(start, stop, step)]
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(index)
        return self._lines(position, 1)[0]

    def __iter__(self) -> Iterator[ImportLine]:
        for start in range(0, len(self), self.CHUNK):
            yield from self._lines(start, self.CHUNK)

    def _lines(self, start: int, length: int) -> list[ImportLine]:
        part = self._table.slice(start, length)
        columns = ("linkedin_url", "sender_id", "status", "request_id", "error", "row")
        url, sender, status, request, error, row = (part[c].to_pylist() for c in columns)
        at = self._at[start : start + length].tolist()
        return [
            ImportLine(
                url=url[i],
                sender_id=sender[i],
                status=status[i],
                at=at[i],
                request_id=request[i],
                error=error[i],
                row=int(row[i]),
            )
            for i in range(len(url))
        ]
