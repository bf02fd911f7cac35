"""The results journal: an append-only CSV that says what happened to every prospect.

One module per job:

- :mod:`.format`: columns, status words, timestamps and the one cell encoder (the contract);
- :mod:`.writer`: :class:`Journal`: the lock, durable appends, group commit, and noticing
  when the file is replaced or deleted under a run;
- :mod:`.reader`: :func:`load_journal`, tolerant of hand-made files, strict about lines
  that would change their meaning;
- :mod:`.recovery`: the end of the file: which unfinished last line an interrupted append
  can have left (cut) and which a person wrote (refused);
- :mod:`.state`: :class:`JournalState`: the latest line per prospect, and capacity lines.
"""

from campaign_runner.journal.format import (
    ALREADY_CONNECTED,
    ALREADY_INVITED,
    CAPACITY_STATUSES,
    DEFERRED,
    DUPLICATE,
    EXCLUDED,
    FAILED,
    FINAL_STATUSES,
    INVALID,
    JOURNAL_COLUMNS,
    PENDING,
    ROW_VERDICTS,
    SENT,
    STATUSES,
    UNKNOWN,
    JournalRecord,
    format_timestamp,
    parse_timestamp,
)
from campaign_runner.journal.reader import load_journal
from campaign_runner.journal.state import JournalState
from campaign_runner.journal.writer import Journal, KeptLock

__all__ = [
    "ALREADY_CONNECTED",
    "ALREADY_INVITED",
    "CAPACITY_STATUSES",
    "DEFERRED",
    "DUPLICATE",
    "EXCLUDED",
    "FAILED",
    "FINAL_STATUSES",
    "INVALID",
    "JOURNAL_COLUMNS",
    "PENDING",
    "ROW_VERDICTS",
    "SENT",
    "STATUSES",
    "UNKNOWN",
    "Journal",
    "JournalRecord",
    "JournalState",
    "KeptLock",
    "format_timestamp",
    "load_journal",
    "parse_timestamp",
]
