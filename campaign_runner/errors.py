"""Every error campaign-runner raises on purpose.

The tree::

    CampaignError                 anything the user can fix; never shown as a traceback
    ├── InputError                the prospect spreadsheet cannot be used (exit 2)
    │   └── ColumnNotFoundError   no URL (or named) column; lists the columns found
    ├── ConfigError               the YAML config or environment is wrong (exit 2)
    ├── JournalError              the results file cannot be read or written (exit 2)
    │   ├── JournalLockedError    another run holds the results file's lock
    │   └── JournalDisplacedError the results file was replaced or deleted mid-run
    ├── LedgerError               the workspace ledger cannot be opened or written (exit 2)
    ├── ExportError               a report's export or chart cannot be written (exit 2)
    └── ApiError                  the SendPilot API refused the whole run
        └── AuthError             401/403: bad key or missing scope (exit 2)

Each error renders as one line that names where it happened (``file:row: reason`` or
``file: key: problem``). The command line turns them into messages and exit codes;
nothing below ``cli.py`` prints or exits.
"""

from __future__ import annotations

from pathlib import Path


class CampaignError(Exception):
    """Base of every error a user can act on."""


class InputError(CampaignError):
    """The prospect spreadsheet cannot be used at all."""

    def __init__(self, path: Path | str, reason: str, row: int | None = None) -> None:
        self.path = Path(path)
        self.reason = reason
        self.row = row
        where = f"{self.path}:{row}" if row is not None else str(self.path)
        super().__init__(f"{where}: {reason}")


class ColumnNotFoundError(InputError):
    """A required column is missing; the message names the columns that were found."""

    def __init__(self, path: Path | str, wanted: str, found: list[str]) -> None:
        self.wanted = wanted
        self.found = found
        shown = ", ".join(repr(c) for c in found) if found else "none"
        super().__init__(path, f"no {wanted} column found (columns: {shown})")


class ConfigError(CampaignError):
    """The configuration file or environment is invalid."""

    def __init__(self, source: Path | str, key: str | None, problem: str) -> None:
        self.source = str(source)
        self.key = key
        self.problem = problem
        where = f"{self.source}: {key}" if key else self.source
        super().__init__(f"{where}: {problem}")


class JournalError(CampaignError):
    """The results journal cannot be read or written."""


class JournalLockedError(JournalError):
    """Another process is running a campaign on the same results file."""


class JournalDisplacedError(JournalError):
    """The results file's path stopped naming the file the run locked and writes."""


class LedgerError(CampaignError):
    """The workspace ledger cannot be opened, read or written."""


class ExportError(CampaignError):
    """A report's export or chart cannot be written (a format not known, a missing
    library, a folder that cannot be written)."""


class ApiError(CampaignError):
    """The API refused the run as a whole (as opposed to one row)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class AuthError(ApiError):
    """The API key is missing, invalid, revoked, or lacks a scope."""
