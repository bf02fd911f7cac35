"""The `campaign-runner validate` command: summary, exit codes, report, JSON."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from campaign_runner.cli import EXIT_OK, EXIT_PROBLEMS, EXIT_UNUSABLE, cli

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
URL = "https://www.linkedin.com/in/{}"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["validate", *args])


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["prospects.csv", "prospects.xlsx"])
def test_sample_data(name: str, tmp_path: Path) -> None:
    path = SAMPLE / name
    report = tmp_path / "report.csv"
    result = invoke(str(path), "--report", str(report))
    assert result.exit_code == EXIT_PROBLEMS, result.output
    lines = result.stdout.splitlines()
    # The columns used are said first, then the counts.
    assert lines[:3] == [
        f"{path}: profile URL from 'linkedin_url'",
        f"{path}: note from 'note'",
        f"{path}: 25 rows: 18 valid, 6 invalid, 1 duplicate",
    ]
    assert f"{path}:8: a company page (/company/), not a person's profile" in lines
    assert f"{path}:11: duplicate of row 2" in lines
    assert f"{path}:12: note is 396 characters, the limit is 300" in lines
    assert any(line.startswith(f"{path}:9: a Sales Navigator link") for line in lines)
    assert lines[-1] == f"report: {report}"
    assert "free accounts" in result.stderr
    with report.open(encoding="utf-8", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 25


def test_all_valid_exits_0(tmp_path: Path) -> None:
    path = write(tmp_path / "ok.csv", f"linkedin_url\n{URL.format('jane-doe')}\n")
    result = invoke(str(path))
    assert result.exit_code == EXIT_OK, result.output
    assert result.stdout == (
        f"{path}: profile URL from 'linkedin_url'\n"
        f"{path}: no note column: invitations go without a note\n"
        f"{path}: 1 row: 1 valid, 0 invalid, 0 duplicate\n"
    )
    assert result.stderr == ""


def test_problems_beyond_the_first_20_are_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "linkedin_url\n" + "nope\n" * 25)
    result = invoke(str(path))
    assert result.exit_code == EXIT_PROBLEMS
    shown = [line for line in result.stdout.splitlines() if line.endswith(": not a URL")]
    assert len(shown) == 20
    assert shown[0] == f"{path}:2: not a URL"
    assert "... and 5 more problems (list them all with --report FILE)" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        ("", "the file is empty"),
        ("first_name,company\nJane,Acme\n", "no LinkedIn URL column found (columns: "),
        ("linkedin_url\n", "has a header but no prospect rows"),
    ],
)
def test_unusable_input_exits_2_with_one_line(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "p.csv"
    if content is not None:
        write(path, content)
    result = invoke(str(path))
    assert result.exit_code == EXIT_UNUSABLE
    assert result.stdout == ""
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_named_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", f"page,intro\n{URL.format('jane-doe')},{'x' * 301}\n")
    assert invoke(str(path)).exit_code == EXIT_UNUSABLE
    result = invoke(str(path), "--url-column", "page", "--note-column", "intro")
    assert result.exit_code == EXIT_PROBLEMS, result.output
    assert f"{path}:2: note is 301 characters, the limit is 300" in result.stdout
    missing = invoke(str(path), "--url-column", "profile")
    assert missing.exit_code == EXIT_UNUSABLE
    assert "'page', 'intro'" in missing.stderr


def test_stray_header_spaces_and_long_notes_warn_on_stderr(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", f" linkedin_url ,note\n{URL.format('jane-doe')},{'x' * 250}\n")
    result = invoke(str(path))
    assert result.exit_code == EXIT_OK, result.output
    assert "column ' linkedin_url ' has spaces around its name" in result.stderr
    assert "1 note is over 200 characters (row 2)" in result.stderr
    assert "warning" not in result.stdout


def test_json_summary(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.csv",
        f"linkedin_url,note\n{URL.format('jane-doe')},hi\nbad,\n{URL.format('Jane-Doe')},\n",
    )
    result = invoke(str(path), "--json")
    assert result.exit_code == EXIT_PROBLEMS
    payload = json.loads(result.stdout)
    assert payload["counts"] == {"valid": 1, "invalid": 1, "duplicate": 1, "excluded": 0}
    assert payload["rows"] == 3
    assert payload["problems"] == [
        {"row": 3, "status": "invalid", "reason": "not a URL"},
        {"row": 4, "status": "duplicate", "reason": "duplicate of row 2"},
    ]
    assert payload["report"] is None


def test_preview_shows_the_first_valid_notes_exactly_as_they_leave(tmp_path: Path) -> None:
    rows = [
        ("bad", "never shown", ""),
        (URL.format("jane-doe"), " Hi Jane,\nglad we met ", ""),
        (URL.format("omer-k"), "", "b"),
        (URL.format("lee-park"), 'Say "hi"\t', "a"),
        (URL.format("last-one"), "not shown", ""),
    ]
    path = tmp_path / "p.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([("linkedin_url", "note", "sender_id"), *rows])
    config = write(
        tmp_path / "c.yaml",
        "senders:\n  - {id: a, daily_limit: 5, premium: true}\n"
        "  - {id: b, daily_limit: 5, premium: false}\n",
    )
    result = invoke(str(path), "--preview", "3", "--config", str(config))
    assert result.exit_code == EXIT_PROBLEMS, result.output
    lines = result.stdout.splitlines()
    start = lines.index(
        'first 3 of 4 valid rows, as they will leave (notes in JSON quotes: "\\n" is a line break):'
    )
    assert lines[start + 1 :] == [
        f'  row 3 {URL.format("jane-doe")} -> sender chosen when sent: " Hi Jane,\\nglad we met "',
        f"  row 4 {URL.format('omer-k')} -> sender b (free: sent without the note): no note",
        f'  row 5 {URL.format("lee-park")} -> sender a (premium): "Say \\"hi\\"\\t"',
    ]
    payload = json.loads(invoke(str(path), "--preview", "1", "--json").stdout)
    assert payload["preview"] == [
        {
            "row": 3,
            "linkedin_url": URL.format("jane-doe"),
            "note": " Hi Jane,\nglad we met ",
            "sender_id": None,
            "sender_kind": None,
        }
    ]
    assert "as they will leave" not in invoke(str(path)).stdout


def test_report_that_cannot_be_written(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", f"linkedin_url\n{URL.format('jane-doe')}\n")
    result = invoke(str(path), "--report", str(tmp_path / "missing-dir" / "r.csv"))
    assert result.exit_code == EXIT_UNUSABLE
    assert "cannot write the report" in result.stderr


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(cli, ["validate", "--help"])
    assert result.exit_code == 0
    assert "campaign-runner validate prospects.csv --report" in result.output
    for option in ("--report", "--url-column", "--note-column", "--json"):
        assert option in result.output


@pytest.mark.slow
def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    path = write(tmp_path / "p.csv", "linkedin_url\nnope\n")
    done = subprocess.run(
        [sys.executable, "-m", "campaign_runner", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == EXIT_PROBLEMS, done.stderr
    assert f"{path}:2: not a URL" in done.stdout
