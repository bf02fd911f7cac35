"""The `report` command: after the send, who accepted, rates, what is left; export, chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from campaign_runner.cli.app import cli, user_errors
from campaign_runner.cli.options import InputChoice, input_options
from campaign_runner.cli.render import Output, duration, local_time, note_text
from campaign_runner.config import find_config, load_settings

if TYPE_CHECKING:
    from campaign_runner.report import Left, Tally
    from campaign_runner.reporting import Made

SHOWN_NOTES = 10  # note groups in the text; --json carries all of them


@cli.command()
@click.argument("results", metavar="[RESULTS]...", nargs=-1, type=click.Path(path_type=Path))
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML config file.")
@click.option(
    "--input",
    "input_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The campaign's spreadsheet: acceptance by note, what is left to send, --export.",
)
@click.option(
    "--sandbox", is_flag=True, help="The rehearsals' ledger (implied by a rehearsal's RESULTS)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--export",
    "export_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write one line per input row (.csv or .xlsx): its columns, status, sender_id, "
    "request_id, sent_at, accepted_at. Needs --input.",
)
@click.option(
    "--chart",
    "chart_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Draw invitations and acceptances per day as a PNG (needs matplotlib: "
    "pip install 'campaign-runner[chart]').",
)
@input_options
def report(
    results: tuple[Path, ...],
    config_path: Path | None,
    input_path: Path | None,
    sandbox: bool,
    as_json: bool,
    export_path: Path | None,
    chart_path: Path | None,
    inputs: InputChoice,
) -> None:
    """Report on a campaign after the send: who accepted, rates, what is left.

    Counts people by status and by sender, invitations and acceptances per day, the
    acceptance rate (accepted / sent) overall, by sender and by note when the notes
    differ, the median time to accept, and what is left to send and when it goes. An
    invitation still not accepted after 30 days counts as not accepted. Acceptances come
    from the workspace ledger, where `campaign-runner webhooks` records them; they are
    matched to invitations by sender and profile URL.

    RESULTS are results files; with none, the whole workspace (every campaign the
    ledger knows). --input INPUT adds the notes of its rows and the plan of what is left
    (a dry run: nothing is sent or written, no API is asked). Days are dates in
    pacing.timezone of the config, UTC without one.

    \b
    Examples:
        campaign-runner report
        campaign-runner report leads.results.csv --input leads.csv --export leads.export.xlsx
        campaign-runner report --input leads.csv --chart acceptances.png --json

    \b
    Exit codes:
      0    the report was made
      2    could not: usage, config, an unusable results file, input or ledger, an
           export or chart that cannot be written (--chart without matplotlib)
    """
    import asyncio
    import time

    from campaign_runner.export import write_chart, write_export
    from campaign_runner.reporting import ReportOptions, make_report

    if export_path is not None and input_path is None:
        raise click.UsageError("--export writes one line per input row: name it with --input")
    if chart_path is not None and chart_path.suffix.lower() != ".png":
        raise click.UsageError(f"--chart writes a PNG: name it *.png (not {chart_path})")
    out = Output(as_json)
    options = ReportOptions(
        results=results,
        input_path=input_path,
        url_column=inputs.url_column,
        note_column=inputs.note_column,
        note_template=inputs.note_template,
        sheet=inputs.sheet,
        exclude=inputs.exclude,
        sandbox=sandbox,
        export=export_path is not None,
    )
    with user_errors():
        settings = load_settings(find_config(config_path))
        for warning in settings.warnings:
            out.warn(warning)
        made = asyncio.run(make_report(settings, options, time.time()))
        if export_path is not None and made.export is not None:
            write_export(export_path, made.export)
        if chart_path is not None:
            write_chart(chart_path, made.report.per_day, made.report.timezone)
    for warning in made.warnings:
        out.warn(warning)
    if made.report.left is not None:
        for warning in made.report.left.warnings:
            out.warn(warning)
    if as_json:
        payload = report_payload(made)
        payload["export"] = str(export_path) if export_path is not None else None
        payload["chart"] = str(chart_path) if chart_path is not None else None
        click.echo(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False))
        return
    for line in report_lines(made):
        out.info(line)
    if export_path is not None and made.export is not None:
        out.info(f"export: {export_path} ({len(made.export.rows)} rows)")
    if chart_path is not None:
        out.info(f"chart: {chart_path}")


def report_payload(made: Made) -> dict[str, Any]:
    """The report as JSON: ``by_status``, ``by_sender``, ``accepted``, ``acceptance_rate``
    and the rest (times as the project's UTC timestamps, durations in seconds)."""
    from campaign_runner.report import NOT_ACCEPTED_AFTER_DAYS
    from campaign_runner.timestamps import format_timestamp

    r = made.report
    return {
        "generated_at": format_timestamp(r.now),
        "source": made.source,
        "workspace": made.workspace or None,
        "by_status": dict(r.by_status),
        **_tally(r.total),
        "not_accepted_after_days": NOT_ACCEPTED_AFTER_DAYS,
        "median_seconds_to_accept": r.median_seconds_to_accept,
        "unknown_accepted": r.unknown_accepted,
        "by_sender": {
            s.sender_id: {"by_status": dict(s.by_status), **_tally(s.tally)} for s in r.by_sender
        },
        "by_note": [
            {"note": n.note.text, "template": n.note.template, **_tally(n.tally)} for n in r.by_note
        ],
        "timezone": r.timezone,
        "per_day": [
            {"date": d.date.isoformat(), "invitations": d.invitations, "acceptances": d.acceptances}
            for d in r.per_day
        ],
        "left": _left_payload(r.left) if r.left is not None else None,
        "warnings": list(made.warnings),
    }


def _tally(t: Tally) -> dict[str, Any]:
    return {
        "sent": t.sent,
        "accepted": t.accepted,
        "acceptance_rate": t.acceptance_rate,
        "pending": t.pending,
        "not_accepted": t.not_accepted,
    }


def _left_payload(left: Left) -> dict[str, Any]:
    from campaign_runner.timestamps import format_timestamp

    return {
        "input": left.input_path,
        "to_send": left.to_send,
        "now": left.now,
        "later": left.later,
        "estimated_seconds": left.estimated_seconds,
        "windows_needed": left.windows_needed,
        "window_seconds": left.window_seconds,
        "capacity_renews_at": format_timestamp(left.renews_at) if left.renews_at else None,
        "next_send_at": format_timestamp(left.next_send_at) if left.next_send_at else None,
        "next_send_why": left.next_send_why,
    }


def report_lines(made: Made) -> list[str]:
    """The report as a person reads it."""
    from campaign_runner.report import NOT_ACCEPTED_AFTER_DAYS

    r = made.report
    lines = [f"report on {made.source}"]
    if made.workspace:
        lines.append(f"acceptances from the workspace ledger {made.workspace}")
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(r.by_status.items())) or "nobody yet"
    lines.append(f"people by status: {statuses}")
    lines.append(f"invitations: {_tally_text(r.total)}")
    lines.append(f"(not accepted: still pending after {NOT_ACCEPTED_AFTER_DAYS} days)")
    if r.median_seconds_to_accept is not None:
        lines.append(f"median time to accept: {duration(r.median_seconds_to_accept)}")
    if r.unknown_accepted:
        lines.append(
            f"{r.unknown_accepted} invitations recorded unknown were accepted: they exist "
            "(not counted as sent)"
        )
    if r.by_sender:
        lines.append("by sender:")
        for s in r.by_sender:
            others = ", ".join(f"{n} {st}" for st, n in sorted(s.by_status.items()) if st != "sent")
            lines.append(
                f"  {s.sender_id}: {_tally_text(s.tally)}" + (f"; {others}" if others else "")
            )
    if r.by_note:
        lines.append("by note (as it left; notes in JSON quotes):")
        for n in r.by_note[:SHOWN_NOTES]:
            said = (
                f"template {note_text(n.note.text)}" if n.note.template else note_text(n.note.text)
            )
            lines.append(f"  {said}: {_tally_text(n.tally)}")
        if len(r.by_note) > SHOWN_NOTES:
            lines.append(f"  ... and {len(r.by_note) - SHOWN_NOTES} more notes (--json has all)")
    active = [d for d in r.per_day if d.invitations or d.acceptances]
    if active:
        lines.append(f"per day ({r.timezone}):")
        lines += [
            f"  {d.date.isoformat()}: {d.invitations} invitations, {d.acceptances} acceptances"
            for d in active
        ]
    if r.left is not None:
        lines.append(_left_text(r.left, r.now))
    return lines


def _tally_text(t: Tally) -> str:
    rate = f" ({t.acceptance_rate:.1%})" if t.acceptance_rate is not None else ""
    return (
        f"sent {t.sent}, accepted {t.accepted}{rate}, pending {t.pending}, "
        f"not accepted {t.not_accepted}"
    )


def _left_text(left: Left, now: float) -> str:
    where = f"left to send from {left.input_path}: {left.to_send}"
    if not left.to_send:
        return f"{where}: nothing"
    parts = []
    if left.now:
        took = (
            f", taking about {duration(left.estimated_seconds)}" if left.estimated_seconds else ""
        )
        parts.append(f"{left.now} can go now{took}")
    if left.later:
        if not left.windows_needed:
            parts.append(f"{left.later} later: no usable sender can send them")
        else:
            parts.append(
                f"{left.later} later: about {left.windows_needed} capacity windows of "
                f"{duration(left.window_seconds)} at current limits"
            )
            if left.renews_at:
                parts.append(f"capacity renews from {local_time(left.renews_at, now)}")
    if not left.now and left.next_send_at is not None:
        why = f" ({left.next_send_why})" if left.next_send_why else ""
        parts.append(f"the next can leave {local_time(left.next_send_at, now)}{why}")
    return f"{where}: " + "; ".join(parts)
