"""The progress display: per-sender counts while they fit on a line."""

from __future__ import annotations

import io

from campaign_runner.progress import SENDERS_SHOWN, BarProgress, LogProgress


def test_log_lines_count_each_sender_while_there_are_few() -> None:
    out = io.StringIO()
    progress = LogProgress(out, interval=0.0, clock=lambda: 0.0)
    progress.start(3, ["a", "b"])
    progress.advance("a", "sent")
    progress.advance("b", "failed")
    progress.close()
    assert out.getvalue().splitlines()[-1] == "progress: 2/3 failed=1 sent=1 (a=1 b=1)"


def test_log_lines_leave_out_a_thousand_senders() -> None:
    out = io.StringIO()
    progress = LogProgress(out, interval=0.0, clock=lambda: 0.0)
    progress.start(5, [f"s{n}" for n in range(1_000)])
    progress.advance("s7", "sent")
    progress.close()
    assert out.getvalue().splitlines()[-1] == "progress: 1/5 sent=1"


def test_the_bar_shows_the_latest_sender_alone_when_there_are_many() -> None:
    out = io.StringIO()
    progress = BarProgress(out)
    progress.start(5, [f"s{n}" for n in range(SENDERS_SHOWN + 1)])
    progress.advance("s3", "sent")
    progress.close()
    last = out.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert "s3=1" in last and "s0=" not in last and "sent=1" in last
