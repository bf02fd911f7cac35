"""The ``campaign-runner`` click group, its exit codes, and how errors reach the terminal.

Exit codes (a contract: users' scripts and cron jobs depend on them):

====  ==========================================================================
0     done: nothing left to send, nothing failed or unknown (``validate``: all rows valid)
1     finished, but some rows are failed or unknown, or no row is valid (``validate``: some
      invalid/duplicate)
2     could not run: usage, config, unusable input, API key rejected, results file locked,
      refused or replaced mid-run, workspace ledger unusable
3     stopped with rows still to send: capacity spent, ``--limit``, no usable sender
130   interrupted (Ctrl-C / SIGTERM); run the same command again to continue
====  ==========================================================================

This package is the only code that prints to the terminal or exits; everything below it
raises :mod:`campaign_runner.errors` exceptions, which become one-line messages here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from campaign_runner import __version__
from campaign_runner.errors import CampaignError

if TYPE_CHECKING:
    # The sending stack (aiohttp, the runner, the sandbox) is imported by the commands
    # that use it, so that `validate` on a large file starts fast.
    pass


EXIT_OK = 0


EXIT_PROBLEMS = 1


EXIT_UNUSABLE = 2


EXIT_STOPPED = 3


EXIT_INTERRUPTED = 130


F = TypeVar("F", bound=Callable[..., Any])


class UserError(click.ClickException):
    """A :class:`CampaignError` on its way to the terminal: one line, exit 2, no traceback."""

    exit_code = EXIT_UNUSABLE


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn domain errors into one-line messages with exit code 2."""
    try:
        yield
    except CampaignError as exc:
        raise UserError(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="campaign-runner")
def cli() -> None:
    """Run bulk LinkedIn connection campaigns through the SendPilot API.

    Check a prospect spreadsheet with `validate`, rehearse against a local stand-in
    with `run --sandbox`, then `run` it for real. Every outcome is recorded in a
    results CSV, and running the same command again continues where it stopped.
    """
