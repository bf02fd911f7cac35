"""Which workspace ledger a run uses, and where it lives.

Every campaign of one SendPilot workspace must reach the same ledger, with no
configuration at all, whichever form of the base URL it uses (``/v1`` or ``/api/v1``). The
API key belongs to exactly one workspace, so the default ledger is chosen by the key: one
SQLite file per workspace in the user's data directory (``$XDG_DATA_HOME/campaign-runner/``
on Linux, the platform's equivalent elsewhere), named by an irreversible fingerprint of
the key (or by the workspace id, where the API reports one). ``workspace.database`` in
the config, or ``CAMPAIGN_RUNNER_DATABASE``, names another: a path, or a ``postgresql://``
URL that a team shares. Rehearsals (``--sandbox``) always use a ledger of their own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import platformdirs
import pyarrow.compute as pc

from campaign_runner.config import Secret, Settings
from campaign_runner.journal import JournalState
from campaign_runner.ledger import ImportLine, Ledger, SQLiteLedger
from campaign_runner.ledger import open_ledger as open_database
from campaign_runner.ledger.base import OUTCOMES, PENDING, UNKNOWN
from campaign_runner.ledger.dsn import is_postgres_url
from campaign_runner.timestamps import CANONICAL_TS, parse_timestamp

APP_NAME = "campaign-runner"


def data_dir() -> Path:
    """The user's data directory for campaign-runner (created when a ledger is)."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False)


def key_fingerprint(key: Secret) -> str:
    """A name for the key's workspace that does not reveal the key (SHA-256, truncated)."""
    digest = hashlib.sha256(b"campaign-runner workspace\x00" + key.reveal().encode("utf-8"))
    return digest.hexdigest()[:16]


def ledger_location(
    settings: Settings, *, rehearsal: bool, workspace_id: str | None = None
) -> str | None:
    """Where this run's ledger is: a path or URL; None when the workspace is not known
    (no API key and nothing configured: a dry run planned from the config alone)."""
    if rehearsal:
        return str(data_dir() / "sandbox.sqlite3")
    if settings.workspace.database:
        database = settings.workspace.database
        return database if is_postgres_url(database) else str(Path(database).expanduser())
    if workspace_id:
        return str(data_dir() / "workspaces" / f"{_safe(workspace_id)}.sqlite3")
    if settings.api.api_key is None:
        return None
    return str(data_dir() / "workspaces" / f"key-{key_fingerprint(settings.api.api_key)}.sqlite3")


def open_ledger(location: str, *, read_only: bool = False) -> Ledger | None:
    """The ledger at ``location``. For ``read_only`` (a dry run's view), an SQLite file is
    opened without being changed, and None is returned when it does not exist yet."""
    if is_postgres_url(location):
        return open_database(location)
    path = Path(location)
    if read_only:
        return SQLiteLedger(path, read_only=True) if path.exists() else None
    return SQLiteLedger(path)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:64]


def import_lines(state: JournalState, now: float) -> list[ImportLine]:
    """The outcome of each prospect of a results file, as the ledger takes them in.

    The latest send outcome per profile, dated as written (a line without a readable date
    is dated ``now``: it then counts against its sender, the safe side); a ``pending``
    line left by a crash is ``unknown``, since its invitation may exist.
    """
    table = state.outcome_table()
    if table.num_rows == 0:
        return []
    stamps = table["timestamp"].to_pylist()
    canonical = pc.match_substring_regex(table["timestamp"], CANONICAL_TS).to_pylist()
    lines = []
    for i, item in enumerate(table.to_pylist()):
        status = UNKNOWN if item["status"] == PENDING else item["status"]
        if status not in OUTCOMES:
            continue
        at = parse_timestamp(stamps[i]) if canonical[i] else now
        lines.append(
            ImportLine(
                url=item["linkedin_url"],
                sender_id=item["sender_id"],
                status=status,
                at=at,
                request_id=item["request_id"],
                error=item["error"],
                row=int(item["row"]),
            )
        )
    return lines
