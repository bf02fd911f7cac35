"""The plan and the summary of a run, as text and as JSON."""

from __future__ import annotations

import json
import math
import shlex
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    # The sending stack (aiohttp, the runner, the sandbox) is imported by the commands
    # that use it, so that `validate` on a large file starts fast.
    from campaign_runner.campaign import Plan, Summary
    from campaign_runner.planning import NotePreview


class Output:
    """Human text to stdout, or (with --json) human text to stderr and JSON to stdout."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._warned: set[str] = set()

    def info(self, message: str) -> None:
        click.echo(message, err=self.as_json)

    def warn(self, message: str) -> None:
        self._warned.add(message)
        click.echo(f"warning: {message}", err=True)

    def round_plan(self, plan: Plan) -> None:
        """A later round of run --wait: only what it warns of that was not said before."""
        for warning in plan.warnings:
            if warning not in self._warned:
                self.warn(warning)

    def plan(self, plan: Plan) -> None:
        for warning in plan.warnings:
            self.warn(warning)
        if plan.rehearsal:
            self.info(
                "rehearsal: invitations go to the stand-in server, not to LinkedIn; "
                f"results in {plan.results_path}"
            )
        if plan.repaired:
            self.warn(plan.repaired)
        if plan.recovered_pending:
            self.warn(
                f"{plan.recovered_pending} rows were being sent when the last run stopped; "
                "recorded as unknown (the invitation may exist). Re-send them on purpose "
                "with --retry-unknown"
            )
        for note in plan.columns:
            self.info(f"{plan.input_path}: {note}")
        counts = plan.counts
        excluded = counts.get("excluded", 0)
        excluded_text = f", {excluded} excluded (do-not-contact)" if excluded else ""
        self.info(
            f"{plan.input_path}: {counts.get('valid', 0)} valid, {counts.get('invalid', 0)} "
            f"invalid, {counts.get('duplicate', 0)} duplicate rows{excluded_text}; "
            f"{plan.already_done} already done (results: {plan.results_path})"
        )
        for row, reason in plan.problems:
            self.info(f"{plan.input_path}:{row}: {reason}")
        hidden = counts.get("invalid", 0) + counts.get("duplicate", 0) - len(plan.problems)
        if hidden > 0:
            self.info(f"... and {hidden} more: campaign-runner validate {plan.input_path}")
        if plan.already_invited:
            self.info(
                f"{plan.already_invited} already invited by another campaign of the workspace: "
                "not invited again (see their lines in the results)"
            )
        if plan.workspace:
            self.info(f"workspace ledger: {plan.workspace}")
        self.info(f"plan: {plan.to_send} to send, {plan.now} now, {plan.later} later")
        for s in plan.senders:
            if s.skipped:
                self.info(f"  {s.sender_id}: skipped ({s.skipped})")
                continue
            api = "" if s.api_remaining is None else f", API reports {s.api_remaining} left"
            pace = f"one every {duration(s.interval_seconds)}" if s.capacity else "no capacity left"
            kind = {True: ", Premium", False: ", free: notes are dropped", None: ""}[s.premium]
            week = f", {s.used_in_week} of {s.weekly_limit} this week" if s.weekly_limit else ""
            others = (
                f", other campaigns used {s.others_day} today and {s.others_week} this week"
                if s.others_day or s.others_week
                else ""
            )
            self.info(
                f"  {s.sender_id}: {s.capacity} now (limit {s.daily_limit}, "
                f"{s.used_in_window} used in the window{week}{others}{api}{kind}); {pace}"
            )
        if plan.now and plan.estimated_seconds is not None:
            took = duration(plan.estimated_seconds)
            self.info(f"the {plan.now} invitations of this run take about {took}")
        if plan.later:
            if plan.windows_needed:
                self.info(
                    f"at current limits, the whole campaign needs about {plan.windows_needed} "
                    f"capacity windows of {duration(plan.window_seconds)}"
                )
            else:
                self.info("no usable sender: nothing can be sent with the current senders")
        if not plan.now and plan.next_send_at is not None:
            when = local_time(plan.next_send_at, time.time())
            why = f" ({plan.next_send_why})" if plan.next_send_why else ""
            self.info(f"next invitation can leave {_at(when)}{why}")
        # Last, so that it stands right above the question that sends them.
        self.preview(plan.preview, plan.to_send)

    def preview(self, preview: tuple[NotePreview, ...], to_send: int) -> None:
        """The first rows to send: each note as it will leave, and the sender of each."""
        if not preview:
            return
        shown = f"first {len(preview)} of {to_send}" if to_send > len(preview) else "rows"
        self.info(f"{shown} to send, as they will leave ({QUOTING}):")
        for p in preview:
            self.info(f"  row {p.row} {p.url} -> {sender_text(p)}: {note_text(p.note)}")

    def summary(self, summary: Summary, resume: list[str], exit_code: int) -> None:
        command = shlex.join(resume)
        renews = iso_utc(summary.renews_at) if summary.renews_at else None
        nothing_valid = no_valid_row(summary.plan)
        next_at = summary.next_send_at if summary.remaining and not summary.stopped_reason else None
        if self.as_json:
            payload = {
                "input": str(summary.plan.input_path),
                "results": str(summary.plan.results_path),
                "validation": summary.plan.counts,
                "this_run": dict(summary.this_run),
                "totals": dict(summary.final),
                "remaining": summary.remaining,
                "interrupted": summary.interrupted,
                "stopped_reason": summary.stopped_reason or nothing_valid or None,
                "exit_code": exit_code,
                "capacity_renews_at": renews,
                "next_send_at": None if next_at is None else iso_utc(next_at),
                "resume_command": command,
                "preview": [preview_payload(p) for p in summary.plan.preview],
            }
            click.echo(json.dumps(payload, indent=2, sort_keys=True))
            return
        this_run = ", ".join(f"{v} {k}" for k, v in sorted(summary.this_run.items())) or "nothing"
        totals = ", ".join(f"{v} {k}" for k, v in sorted(summary.final.items())) or "nothing yet"
        if summary.stopped_reason:
            self.info(f"stopped early: {summary.stopped_reason}")
        if nothing_valid:
            self.info(nothing_valid)
        self.info(f"this run: {this_run}")
        self.info(f"campaign so far: {totals}; {summary.remaining} still to send")
        self.info(f"results: {summary.plan.results_path}")
        if summary.final.get("unknown"):
            self.info(
                f"{summary.final['unknown']} rows are unknown (the invitation may exist): check "
                f"them in SendPilot, then to send them again: {command} --retry-unknown"
            )
        if summary.final.get("failed"):
            self.info(f"to try failed rows again: {command} --retry-failed")
        if summary.renews_at and (summary.remaining or summary.interrupted):
            self.info(f"capacity renews from {local_time(summary.renews_at, time.time())}")
        if next_at is not None:
            why = summary.plan.next_send_why if summary.plan.next_send_at == next_at else ""
            when = local_time(next_at, time.time())
            self.info(f"next invitation can leave {_at(when)}" + (f" ({why})" if why else ""))
        # Always the last line, so that scripts and people find it in the same place.
        self.info(f"to continue: {command}")


def duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "never"
    if seconds < 90:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f} days"


def no_valid_row(plan: Plan) -> str:
    """Why the spreadsheet gives a run nothing to send at all, or '' when it does.

    A file whose every row is excluded (on a do-not-contact list) is intended, not a
    problem; one whose rows are all invalid or duplicate, or that has no row, is.
    """
    counts = plan.counts
    if counts.get("valid", 0) or (counts.get("excluded", 0) and not _bad_rows(plan)):
        return ""
    return (
        f"no valid row: {counts.get('invalid', 0)} invalid, {counts.get('duplicate', 0)} "
        f"duplicate: {shlex.join(['campaign-runner', 'validate', str(plan.input_path)])}"
    )


def _bad_rows(plan: Plan) -> int:
    return plan.counts.get("invalid", 0) + plan.counts.get("duplicate", 0)


# How notes are shown: as a JSON string, so that leading and trailing spaces, line breaks,
# tabs and quotes are visible; the note sent is the text between the quotes, unescaped.
QUOTING = 'notes in JSON quotes: "\\n" is a line break'


def note_text(note: str) -> str:
    """A note as a person checks it before it leaves: quoted, every space and break shown."""
    return json.dumps(note, ensure_ascii=False) if note else "no note"


def notes_delivered(premium: bool | None) -> str:
    """Whether a sender delivers notes, in one word: premium, free or unknown."""
    return {True: "premium", False: "free", None: "unknown"}[premium]


def note_kind(premium: bool | None) -> str:
    """What a sender does with a note, in a few words."""
    return {
        True: "premium",
        False: "free: sent without the note",
        None: "the note goes if premium",
    }[premium]


def sender_text(p: NotePreview) -> str:
    """Who sends a previewed row, and whether the note goes with it."""
    if not p.sender_id:
        return "no sender free in this run"
    if p.exact:
        return f"{p.sender_id} ({note_kind(p.premium)})"
    return f"first free sender, probably {p.sender_id} ({note_kind(p.premium)})"


def preview_payload(p: NotePreview) -> dict[str, Any]:
    return {
        "row": p.row,
        "linkedin_url": p.url,
        "note": p.note,
        "sender_id": p.sender_id or None,
        "sender_certain": p.exact,
        "sender_kind": notes_delivered(p.premium) if p.sender_id else None,
    }


def local_time(epoch: float, now: float) -> str:
    """A moment as a person reads it: local time with its offset, never already past.

    ``2026-12-01 14:05 +01:00``. Rounded up to the minute, so that it is never early;
    ``now`` when it has come already.
    """
    if epoch <= now:
        return "now"
    moment = datetime.fromtimestamp(math.ceil(epoch / 60) * 60).astimezone()
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def iso_utc(epoch: float) -> str:
    """``2026-11-30T08:00:00+00:00``: a moment for machines (``--json``)."""
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds")


def _at(when: str) -> str:
    return when if when == "now" else f"at {when}"
