"""The `validate` command: check a spreadsheet, send nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from campaign_runner.cli.app import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UserError,
    cli,
    user_errors,
)
from campaign_runner.cli.options import InputChoice, input_options
from campaign_runner.config import Settings, find_config, load_settings

if TYPE_CHECKING:
    # The sending stack (aiohttp, the runner, the sandbox) is imported by the commands
    # that use it, so that `validate` on a large file starts fast.
    from campaign_runner.validation import Verdicts


# Problems listed in the text summary; --report and --json carry all of them.
SHOWN_PROBLEMS = 20


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a CSV with one line per row: row, linkedin_url, status, reason, warning.",
)
@input_options
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML config file.")
@click.option(
    "--preview",
    "preview",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Show the first N valid rows' notes exactly as they will leave.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def validate(
    input_path: Path,
    report_path: Path | None,
    inputs: InputChoice,
    config_path: Path | None,
    preview: int,
    as_json: bool,
) -> None:
    """Check a prospect spreadsheet (CSV or XLSX) without sending anything.

    Normalises every LinkedIn profile URL, checks notes against the 300-character limit and
    finds people listed twice. Rows on a do-not-contact list (--exclude, campaign.exclude)
    are `excluded`: intended, not problems. Prints the counts and the first problems as
    FILE:ROW: REASON lines (rows numbered as a spreadsheet shows them, header = 1). Exit
    code 0: every row is valid or excluded; 1: some rows are invalid or duplicate; 2: the
    file (or the config, or a list) cannot be used at all.

    --preview N shows the first N valid rows' notes as they will leave, in JSON quotes so
    that spaces at either end and line breaks show.

    \b
    Example:
        campaign-runner validate prospects.csv --report prospects.report.csv
        campaign-runner validate prospects.csv --exclude do-not-contact.csv
        campaign-runner validate prospects.csv --preview 5
    """
    # Imported here so that other commands do not pay for Arrow at startup.
    from campaign_runner.validation import check_with_settings, write_report

    with user_errors():
        settings = load_settings(find_config(config_path))
        verdicts = check_with_settings(
            input_path,
            settings,
            url_column=inputs.url_column,
            note_column=inputs.note_column,
            note_template=inputs.note_template,
            sheet=inputs.sheet,
            exclude=inputs.exclude,
        )
    if report_path is not None:
        try:
            write_report(verdicts, report_path)
        except OSError as exc:
            raise UserError(f"{report_path}: cannot write the report ({exc.strerror})") from None
    for warning in _validate_warnings(verdicts):
        click.echo(f"warning: {warning}", err=True)
    counts = verdicts.counts
    shown = _preview_rows(verdicts, preview, settings)
    if as_json:
        payload = _validate_payload(input_path, verdicts, report_path)
        click.echo(json.dumps({**payload, "preview": shown}, indent=2))
    else:
        _print_validate_summary(input_path, verdicts, counts, report_path)
        _print_preview(shown, counts["valid"])
    sys.exit(EXIT_OK if counts["invalid"] + counts["duplicate"] == 0 else EXIT_PROBLEMS)


def _preview_rows(verdicts: Verdicts, count: int, settings: Settings) -> list[dict[str, Any]]:
    """The first ``count`` valid rows: their note as it will leave, and a pinned sender
    with whether it delivers notes (as far as the config says; the API is not asked)."""
    from campaign_runner.cli.render import notes_delivered
    from campaign_runner.validation import STATUS_VALID

    if count == 0:
        return []
    import pyarrow.compute as pc

    table = verdicts.table
    valid = table.filter(pc.equal(table["status"], STATUS_VALID)).slice(0, count)
    rows = []
    for item in valid.select(["row", "linkedin_url", "note", "sender_id"]).to_pylist():
        configured = settings.sender(item["sender_id"]) if item["sender_id"] else None
        premium = configured.premium if configured else None
        rows.append(
            {
                "row": item["row"],
                "linkedin_url": item["linkedin_url"],
                "note": item["note"],
                "sender_id": item["sender_id"] or None,
                "sender_kind": notes_delivered(premium) if item["sender_id"] else None,
            }
        )
    return rows


def _print_preview(rows: list[dict[str, Any]], valid: int) -> None:
    from campaign_runner.cli.render import QUOTING, note_kind, note_text

    if not rows:
        return
    shown = f"first {len(rows)} of {valid}" if valid > len(rows) else f"the {len(rows)}"
    click.echo(f"{shown} valid rows, as they will leave ({QUOTING}):")
    for r in rows:
        sender = "sender chosen when sent"
        if r["sender_id"]:
            premium = {"premium": True, "free": False}.get(r["sender_kind"])
            sender = f"sender {r['sender_id']} ({note_kind(premium)})"
        click.echo(f"  row {r['row']} {r['linkedin_url']} -> {sender}: {note_text(r['note'])}")


def _validate_warnings(verdicts: Verdicts) -> list[str]:
    from campaign_runner.validation import FREE_NOTE_LIMIT

    warnings = list(verdicts.notices)
    long_notes = verdicts.count_warnings()
    if long_notes:
        rows = ", ".join(str(w["row"]) for w in verdicts.warnings(limit=5))
        more = ", ..." if long_notes > 5 else ""
        notes = "1 note is" if long_notes == 1 else f"{long_notes} notes are"
        where = "row" if long_notes == 1 else "rows"
        warnings.append(
            f"{notes} over {FREE_NOTE_LIMIT} characters ({where} {rows}{more}): "
            f"LinkedIn free accounts cap notes at {FREE_NOTE_LIMIT}"
        )
    if verdicts.has_notes():
        warnings.append(
            "notes are sent only from LinkedIn Premium accounts: "
            "free accounts send the invitation without the note"
        )
    return warnings


def _print_validate_summary(
    input_path: Path, verdicts: Verdicts, counts: dict[str, int], report_path: Path | None
) -> None:
    total = sum(counts.values())
    problems = counts["invalid"] + counts["duplicate"]
    excluded = f", {counts['excluded']} excluded" if counts["excluded"] else ""
    for note in verdicts.column_notes:
        click.echo(f"{input_path}: {note}")
    click.echo(
        f"{input_path}: {total} {'row' if total == 1 else 'rows'}: {counts['valid']} valid, "
        f"{counts['invalid']} invalid, {counts['duplicate']} duplicate{excluded}"
    )
    for problem in verdicts.problems(limit=SHOWN_PROBLEMS):
        click.echo(f"{input_path}:{problem['row']}: {problem['reason']}")
    hidden = problems - SHOWN_PROBLEMS
    if hidden > 0:
        where = f"see {report_path}" if report_path else "list them all with --report FILE"
        click.echo(f"... and {hidden} more problems ({where})")
    if report_path is not None:
        click.echo(f"report: {report_path}")


def _validate_payload(
    input_path: Path, verdicts: Verdicts, report_path: Path | None
) -> dict[str, Any]:
    return {
        "input": str(input_path),
        "rows": int(verdicts.table.num_rows),
        "counts": verdicts.counts,
        "url_column": verdicts.url_column,
        "note_column": verdicts.note_column,
        "sender_column": verdicts.sender_column,
        "problems": [
            {"row": p["row"], "status": p["status"], "reason": p["reason"]}
            for p in verdicts.problems()
        ],
        "excluded": [{"row": p["row"], "reason": p["reason"]} for p in verdicts.excluded()],
        "warnings": [{"row": w["row"], "warning": w["warning"]} for w in verdicts.warnings()],
        "notices": list(verdicts.notices),
        "columns": list(verdicts.column_notes),
        "report": str(report_path) if report_path is not None else None,
    }
