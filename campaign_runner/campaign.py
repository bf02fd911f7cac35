"""A campaign run: prepare (validate, ask the API, read the results, plan), then execute.

:meth:`Campaign.prepare` does the I/O that planning needs and nothing else: it validates
the spreadsheet, asks the API for senders and quotas, opens and locks the results file
(refusing one that belongs to the other kind of run: a rehearsal's for a real run, or a
real one for a rehearsal), hands everything to :func:`~campaign_runner.planning.plan_run`,
and appends the records the plan asks for. :meth:`Campaign.execute` hands the plan to the
:class:`~campaign_runner.engine.Engine`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import aiohttp

from campaign_runner.client import SendPilotClient
from campaign_runner.config import Settings
from campaign_runner.engine import Engine, Progress, SilentProgress, Summary
from campaign_runner.errors import JournalError
from campaign_runner.exclusions import load_exclusions
from campaign_runner.journal import Journal, JournalState, load_journal
from campaign_runner.planning import (
    EXTRA_COLUMNS,
    ApiView,
    Plan,
    RowChoice,
    default_results_path,
    plan_run,
    results_file_problem,
)
from campaign_runner.validation import check_file

__all__ = ["Campaign", "Plan", "Progress", "RunOptions", "SilentProgress", "Summary"]


@dataclass(frozen=True)
class RunOptions:
    input_path: Path
    results_path: Path | None = None  # None: beside the input (see default_results_path)
    url_column: str | None = None
    note_column: str | None = None
    limit: int | None = None
    retry_failed: bool = False
    retry_unknown: bool = False
    dry_run: bool = False
    # Invitations go to the stand-in server. Also true when the API answers as the
    # stand-in does, whatever the flag says.
    sandbox: bool = False
    # Do-not-contact lists, on top of the config's campaign.exclude.
    exclude: tuple[Path, ...] = ()


class Campaign:
    """One run of a campaign; build it with :meth:`prepare`."""

    def __init__(self, settings: Settings, options: RunOptions, engine: Engine) -> None:
        self.settings = settings
        self.options = options
        self.plan = engine.plan
        self._engine = engine

    @classmethod
    async def prepare(
        cls,
        settings: Settings,
        options: RunOptions,
        session: aiohttp.ClientSession | None,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> Campaign:
        """Validate, ask the API, read the results, and plan. Takes the results lock
        unless this is a dry run; call :meth:`close` (or :meth:`execute`) to release it."""
        exclusions = load_exclusions([*settings.campaign.exclude, *options.exclude])
        verdicts = check_file(
            options.input_path,
            url_column=options.url_column,
            note_column=options.note_column,
            exclusions=exclusions,
        )
        client = None
        if session is not None and settings.api.api_key is not None:
            client = SendPilotClient.from_settings(session, settings)
        elif not options.dry_run:
            settings.require_api_key()  # a real run needs the API: raises without a key
        api = ApiView(senders=None, quotas={})
        if client is not None:
            senders = await client.senders()
            quotas, why = await client.quotas_if_available()
            api = ApiView(senders=senders, quotas=quotas, quotas_problem=why)
        rehearsal = options.sandbox or (client is not None and client.stand_in)
        results_path = options.results_path or default_results_path(options.input_path, rehearsal)
        journal = None
        if options.dry_run:
            state = load_journal(results_path)
            _accept(state, rehearsal=rehearsal)
        else:
            journal = Journal.open(
                results_path,
                extra_columns=EXTRA_COLUMNS,
                clock=clock,
                accept=partial(_accept, rehearsal=rehearsal),
            )
            state = journal.state
        try:
            planned = plan_run(
                verdicts=verdicts,
                state=state,
                api=api,
                settings=settings,
                choice=RowChoice(options.retry_failed, options.retry_unknown, options.limit),
                input_path=options.input_path,
                results_path=results_path,
                rehearsal=rehearsal,
                now=clock(),
            )
            if journal is not None:
                journal.append_many(planned.records)
        except BaseException:
            if journal is not None:
                journal.close()
            raise
        engine = Engine(
            settings,
            planned,
            client,
            journal,
            limit=options.limit,
            clock=clock,
            rng=rng or random.Random(),
        )
        return cls(settings, options, engine)

    def request_stop(self) -> None:
        """Stop starting requests; those in flight finish and are recorded."""
        self._engine.request_stop()

    def close(self) -> None:
        """Release the results file (only needed when :meth:`execute` is not called)."""
        self._engine.close()

    async def execute(self, progress: Progress | None = None) -> Summary:
        """Send what the plan allows now and return what happened (see
        :meth:`Engine.execute`)."""
        return await self._engine.execute(progress)


def _accept(state: JournalState, *, rehearsal: bool) -> None:
    problem = results_file_problem(state, rehearsal)
    if problem:
        raise JournalError(problem)
