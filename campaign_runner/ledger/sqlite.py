"""The workspace ledger in one SQLite file: the default, for one machine.

WAL journal with ``synchronous=FULL``, so that a committed claim survives a crash or a
power cut before its request leaves; ``BEGIN IMMEDIATE`` takes the file's write lock at the
start of every transaction, so that processes sharing the file claim one after another
and each sees the others' claims. A busy file is waited for (``busy_timeout``), not
refused: claims are short.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from campaign_runner.errors import LedgerError
from campaign_runner.ledger.sql import SCHEMA_VERSION, Cursor, SqlLedger, schema

BUSY_TIMEOUT_MS = 60_000


class SQLiteLedger(SqlLedger):
    """The ledger in the SQLite file at ``path`` (created with its folder if missing).

    ``read_only`` opens an existing file without changing it (a dry run's view).
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._read_only = read_only
        try:
            if read_only:
                target = f"{self.path.resolve().as_uri()}?mode=ro"
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                target = str(self.path)
            # Autocommit mode: transactions are begun explicitly, as BEGIN IMMEDIATE.
            self._db = sqlite3.connect(
                target, isolation_level=None, check_same_thread=False, timeout=60, uri=read_only
            )
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not read_only:
                _switch_to_wal(self._db)
                self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(f"{self.path}: cannot open the workspace ledger: {exc}") from None
        self._lock = threading.Lock()  # one connection, used from the loop and a thread
        if read_only:
            self._stand_in_for_missing_tables()
            return
        with self._transaction() as cursor:
            for statement in schema("INTEGER PRIMARY KEY", "REAL"):
                cursor.execute(statement)
            cursor.execute(
                "INSERT INTO meta (key, value) VALUES ('schema', ?) ON CONFLICT (key) DO NOTHING",
                (SCHEMA_VERSION,),
            )

    def _stand_in_for_missing_tables(self) -> None:
        """A file written by an older release lacks the newer tables (webhook events):
        read-only, it cannot be given them, so empty TEMP tables of the same shape stand in
        (SQLite looks in the temp schema first; only missing ones are made)."""
        present = {
            name
            for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        for statement in schema("INTEGER PRIMARY KEY", "REAL"):
            words = statement.split()
            if words[:5] != ["CREATE", "TABLE", "IF", "NOT", "EXISTS"] or words[5] in present:
                continue
            self._db.execute(statement.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))

    def _text_list(self) -> str:
        return "SELECT value FROM json_each(?)"

    def _text_list_value(self, texts: Sequence[str]) -> str:
        return json.dumps(list(texts))

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        with self._lock:
            cursor = self._db.cursor()
            try:
                cursor.execute("BEGIN" if self._read_only else "BEGIN IMMEDIATE")
                yield cursor
                cursor.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(cursor)
                raise LedgerError(f"{self.path}: the workspace ledger failed: {exc}") from None
            except BaseException:
                self._rollback(cursor)
                raise
            finally:
                cursor.close()

    def _rollback(self, cursor: sqlite3.Cursor) -> None:
        if self._db.in_transaction:
            cursor.execute("ROLLBACK")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _switch_to_wal(db: sqlite3.Connection) -> None:
    """Put the file in WAL mode, waiting for other processes doing the same.

    Changing the journal mode can answer "database is locked" at once, without the busy
    handler, while another process creates or converts the same new file (several
    runners starting together on a new workspace): try again for the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
