"""Every command is documented: its help has an example, and the README mentions it.

As sqlite-utils' own ``test_docs.py`` does: a command added without help, without an
example or without a word in the README fails here, by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from campaign_runner.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command's path below ``group``: ``("run",)``, ``("workspace", "import")``."""
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))


ALL = list(commands(cli))


def test_the_commands_are_found() -> None:
    assert {("run",), ("validate",), ("senders",), ("workspace", "import")} <= set(ALL)


@pytest.mark.parametrize("path", ALL, ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"campaign-runner {' '.join(path)} --help has no example"
    # The example uses the command it documents.
    assert f"campaign-runner {' '.join(path)}" in result.output


@pytest.mark.parametrize("path", ALL, ids=" ".join)
def test_the_readme_mentions_every_command(path: tuple[str, ...]) -> None:
    text = README.read_text(encoding="utf-8")
    name = " ".join(path)
    assert re.search(rf"`(campaign-runner )?{re.escape(name)}\b", text), f"README: no `{name}`"


@pytest.mark.parametrize("path", [("run",), ("validate",)], ids=" ".join)
def test_help_shows_the_exit_codes(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    text = " ".join(result.output.split())
    for code in ("0", "1", "2"):
        assert re.search(rf"\b{code}\b", text)
    assert re.search(r"Exit codes?", result.output)
    if path == ("run",):
        for code in ("3", "130"):
            assert re.search(rf"^\s+{code}\s", result.output, re.MULTILINE), code
