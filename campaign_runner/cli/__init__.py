"""The ``campaign-runner`` command line: one module per command (see :mod:`.app`).

:mod:`.app` holds the click group, the exit codes and the one way domain errors reach the
terminal; :mod:`.options` the option bundles and the "to continue" command; :mod:`.render`
the plan and summary; :mod:`.terminal` confirmation, signals and progress. This package is
the only code that prints to the terminal or exits.
"""

from campaign_runner.cli import report, run, sandbox, senders, validate, webhooks, workspace
from campaign_runner.cli.app import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_STOPPED,
    EXIT_UNUSABLE,
    cli,
)

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_STOPPED",
    "EXIT_UNUSABLE",
    "cli",
    "report",
    "run",
    "sandbox",
    "senders",
    "validate",
    "webhooks",
    "workspace",
]
