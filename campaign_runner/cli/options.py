"""Option bundles shared by commands, and the command that continues a campaign."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from campaign_runner.cli.app import (
    F,
)

if TYPE_CHECKING:
    # The sending stack (aiohttp, the runner, the sandbox) is imported by the commands
    # that use it, so that `validate` on a large file starts fast.
    pass


def resume_command(
    input_path: Path,
    config_path: Path | None,
    results_path: Path | None,
    sandbox: bool,
    url_column: str | None,
    note_column: str | None,
    exclude: tuple[Path, ...] = (),
) -> list[str]:
    words = ["campaign-runner", "run", str(input_path)]
    if config_path is not None:
        words += ["--config", str(config_path)]
    if results_path is not None:
        words += ["--results", str(results_path)]
    if url_column:
        words += ["--url-column", url_column]
    if note_column:
        words += ["--note-column", note_column]
    for path in exclude:
        words += ["--exclude", str(path)]
    if sandbox:
        words.append("--sandbox")
    return words


def workspace_options(func: F) -> F:
    """--config and --sandbox, shared by the workspace commands."""
    func = click.option(
        "--sandbox", is_flag=True, help="The rehearsals' ledger instead of the workspace's."
    )(func)
    return click.option(
        "--config", "config_path", type=click.Path(path_type=Path), help="YAML config file."
    )(func)
