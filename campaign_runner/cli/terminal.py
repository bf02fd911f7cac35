"""The terminal: confirmation, signals, the progress display."""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING, Protocol

import click

from campaign_runner.cli.app import (
    EXIT_INTERRUPTED,
)
from campaign_runner.cli.render import Output

if TYPE_CHECKING:
    # The sending stack (aiohttp, the runner, the sandbox) is imported by the commands
    # that use it, so that `validate` on a large file starts fast.
    from campaign_runner.campaign import Progress, WaitProgress


def confirm(question: str) -> bool:
    """Ask on the terminal; Ctrl-C or Ctrl-D there means no."""
    # asyncio.run's own SIGINT handler would only cancel the main task, which cannot
    # happen while input() blocks: restore Python's, so that Ctrl-C interrupts the prompt.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return click.confirm(question, default=False)
    except click.Abort:
        return False
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Stoppable(Protocol):
    """A run that a signal stops: a :class:`~campaign_runner.campaign.Campaign`, or
    :class:`~campaign_runner.campaign.UntilDone` (run --wait)."""

    def request_stop(self) -> None: ...


def install_signal_handlers(campaign: Stoppable, out: Output) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    received = 0

    def on_signal() -> None:
        nonlocal received
        received += 1
        if received == 1:
            out.info(
                "stopping: no new invitations; waiting for those in flight "
                "(press Ctrl-C again to quit at once)"
            )
            campaign.request_stop()
        else:
            # Every request that may have left has a durable `pending` line: the next run
            # records those rows as `unknown`, so quitting now loses nothing.
            out.info("quitting at once; rows in flight will be recorded as unknown next run")
            os._exit(EXIT_INTERRUPTED)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)


def make_progress(kind: str) -> Progress:
    from campaign_runner.engine import SilentProgress
    from campaign_runner.progress import BarProgress, LogProgress

    if kind == "bar":
        return BarProgress()
    if kind == "log":
        return LogProgress()
    return SilentProgress()


def make_wait_progress(kind: str) -> WaitProgress | None:
    """The display of a run --wait (None: nothing shown)."""
    from campaign_runner.progress import BarProgress, LogProgress

    if kind == "bar":
        return BarProgress()
    if kind == "log":
        return LogProgress()
    return None


def is_tty(stdin: bool = False) -> bool:
    stream = sys.stdin if stdin else sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
