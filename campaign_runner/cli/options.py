"""Option bundles shared by commands, and the command that continues a campaign."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from campaign_runner.cli.app import F


@dataclass(frozen=True)
class InputChoice:
    """How a command reads the spreadsheet: the options validate and run share."""

    url_column: str | None = None
    note_column: str | None = None
    note_template: str | None = None
    sheet: str | None = None
    exclude: tuple[Path, ...] = ()

    def words(self) -> list[str]:
        """These options as command-line words, for the command that continues a run."""
        words: list[str] = []
        for flag, value in (
            ("--url-column", self.url_column),
            ("--note-column", self.note_column),
            ("--note-template", self.note_template),
            ("--sheet", self.sheet),
        ):
            if value is not None:
                words += [flag, value]
        for path in self.exclude:
            words += ["--exclude", str(path)]
        return words


_INPUT_OPTIONS = (
    click.option("--url-column", help="Column holding the LinkedIn profile URL."),
    click.option("--note-column", help="Column holding the connection note."),
    click.option(
        "--note-template",
        metavar="TEXT",
        help="Note for rows without one, {column} filled from the row, {column|default} "
        "for a default (wins over campaign.note_template).",
    ),
    click.option("--sheet", metavar="NAME|NUMBER", help="The workbook's sheet (XLSX)."),
    click.option(
        "--exclude",
        multiple=True,
        type=click.Path(path_type=Path, dir_okay=False),
        help="A do-not-contact list (CSV/XLSX of profile URLs and/or a company column); "
        "repeatable, added to campaign.exclude of the config.",
    ),
)


def input_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--url-column, --note-column, --note-template, --sheet and --exclude, handed to the
    command as one ``inputs`` argument (an :class:`InputChoice`)."""

    @functools.wraps(func)
    def command(
        *args: Any,
        url_column: str | None,
        note_column: str | None,
        note_template: str | None,
        sheet: str | None,
        exclude: tuple[Path, ...],
        **kwargs: Any,
    ) -> Any:
        inputs = InputChoice(url_column, note_column, note_template, sheet, tuple(exclude))
        return func(*args, inputs=inputs, **kwargs)

    for option in reversed(_INPUT_OPTIONS):
        command = option(command)
    return command


def resume_command(
    input_path: Path,
    config_path: Path | None,
    results_path: Path | None,
    sandbox: bool,
    inputs: InputChoice,
    *,
    wait: bool = False,
) -> list[str]:
    """The exact command that continues this campaign."""
    words = ["campaign-runner", "run", str(input_path)]
    if config_path is not None:
        words += ["--config", str(config_path)]
    if results_path is not None:
        words += ["--results", str(results_path)]
    words += inputs.words()
    if sandbox:
        words.append("--sandbox")
    if wait:
        words.append("--wait")
    return words


def workspace_options(func: F) -> F:
    """--config and --sandbox, shared by the workspace commands."""
    func = click.option(
        "--sandbox", is_flag=True, help="The rehearsals' ledger instead of the workspace's."
    )(func)
    return click.option(
        "--config", "config_path", type=click.Path(path_type=Path), help="YAML config file."
    )(func)
