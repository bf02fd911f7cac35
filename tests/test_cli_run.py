"""``campaign-runner run`` and ``senders`` through click's CliRunner.

``run`` calls ``asyncio.run`` itself, so the stand-in server runs in a thread of its own
(:class:`helpers.ThreadedSandbox`); its state is read only after the command returned.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import ThreadedFactory
from helpers import (
    RESULTS_HEADER,
    connect_requests,
    final_counts,
    invited,
    latest,
    prospects,
    url,
    write_config,
    write_prospects,
)

from campaign_runner.cli import cli
from campaign_runner.journal import Journal
from campaign_runner.sandbox import FaultRule, SandboxSender, SandboxServer

KEY = "sk_live_CLI_5e8b2d7a91c4"
SENDERS = (SandboxSender("a", capacity=100), SandboxSender("b", capacity=100, premium=False))

Serve = Callable[..., SandboxServer]


pytestmark = pytest.mark.usefixtures("cli_isolated")


@pytest.fixture
def serve(threaded_sandbox: ThreadedFactory) -> Serve:
    """Start threaded sandboxes: ``serve(senders=..., faults=...)``; all stopped at the end."""

    def start(**fields: Any) -> SandboxServer:
        fields.setdefault("api_key", KEY)
        fields.setdefault("senders", SENDERS)
        server: SandboxServer = threaded_sandbox(**fields).server
        return server

    return start


def invoke(args: list[str], key: str | None = KEY) -> Result:
    env = {"SENDPILOT_API_KEY": key}
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def config_for(tmp_path: Path, server: SandboxServer, senders: Any = None, **extra: Any) -> Path:
    return write_config(
        tmp_path / "campaign.yaml", server.base_url, senders or [("a", 100), ("b", 100)], **extra
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- run -----------------------------------------------------------------------------------


def test_run_sends_everything_and_writes_results_beside_the_input(
    serve: Serve, tmp_path: Path
) -> None:
    server = serve()
    input_path = write_prospects(
        tmp_path / "leads.csv", [(url(n), f"hi {n}") for n in range(6)] + [("not a url", "")]
    )
    config = config_for(tmp_path, server)
    result = invoke(["run", str(input_path), "--config", str(config), "--yes"])

    assert result.exit_code == 0, result.output
    results = tmp_path / "leads.results.csv"
    assert results.is_file()
    assert final_counts(results) == {"sent": 6, "invalid": 1}
    assert invited(server) == {url(n): 1 for n in range(6)}
    assert "this run: 6 sent" in result.stdout
    assert "progress: 6/6" in result.stderr  # plain log lines when not on a terminal
    # The summary always ends with the command that continues the campaign (new rows).
    last = result.stdout.strip().splitlines()[-1]
    assert last == f"to continue: campaign-runner run {input_path} --config {config}"
    assert "Traceback" not in result.output


def test_run_without_a_terminal_or_yes_refuses(serve: Serve, tmp_path: Path) -> None:
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 3)
    result = invoke(["run", str(input_path), "--config", str(config_for(tmp_path, server))])

    assert result.exit_code == 2, result.output
    assert "--yes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert connect_requests(server) == 0


@pytest.mark.parametrize(("answer", "sent"), [("y\n", 3), ("n\n", 0)])
def test_on_a_terminal_run_asks_before_sending(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str, sent: int
) -> None:
    from campaign_runner.cli import run as run_command

    monkeypatch.setattr(run_command, "is_tty", lambda stdin=False: True)
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 3)
    config = config_for(tmp_path, server)
    result = CliRunner().invoke(
        cli,
        ["run", str(input_path), "--config", str(config)],
        input=answer,
        env={"SENDPILOT_API_KEY": KEY},
    )
    # The question names where the invitations go: the API, and the workspace's ledger.
    ledger = Path(os.environ["XDG_DATA_HOME"])
    question = re.search(r"Send 3 invitations now to (\S+) \(workspace (.+)\)\?", result.stdout)
    assert question, result.stdout
    assert question.group(1) == server.base_url
    assert Path(question.group(2)).is_relative_to(ledger)
    assert len(server.state.invitations) == sent
    assert (result.exit_code == 0) == (sent == 3), result.output


def test_dry_run_sends_nothing_and_writes_nothing(serve: Serve, tmp_path: Path) -> None:
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 3)
    result = invoke(
        ["run", str(input_path), "--config", str(config_for(tmp_path, server)), "--dry-run"]
    )
    assert result.exit_code == 3, result.output  # rows remain to send: nothing was sent
    assert "plan: 3 to send, 3 now" in result.output
    assert connect_requests(server) == 0
    assert not (tmp_path / "p.results.csv").exists()


def test_dry_run_works_offline_without_a_key(tmp_path: Path) -> None:
    input_path = prospects(tmp_path / "p.csv", 3)
    config = write_config(
        tmp_path / "c.yaml", f"http://127.0.0.1:{free_port()}/v1", [("a", 2), ("b", 5)]
    )
    result = invoke(["run", str(input_path), "--config", str(config), "--dry-run"], key=None)
    assert result.exit_code == 3, result.output
    assert "a: 2 now" in result.output
    assert "b: 5 now" in result.output
    assert result.stderr.splitlines() == [
        "warning: SENDPILOT_API_KEY is not set (nor api.api_key in the config): planned from "
        "the config's senders and limits, without the API's word on their status and quotas"
    ]
    assert not (tmp_path / "p.results.csv").exists()


def test_dry_run_without_a_key_or_configured_senders_names_the_key(tmp_path: Path) -> None:
    input_path = prospects(tmp_path / "p.csv", 3)
    result = invoke(["run", str(input_path), "--dry-run"], key=None)
    assert result.exit_code == 3, result.output
    assert result.stderr.splitlines() == [
        "warning: SENDPILOT_API_KEY is not set (nor api.api_key in the config): no sender to "
        "plan with (list them under senders: in the config)"
    ]
    assert "plan: 3 to send, 0 now, 3 later" in result.stdout


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_spreadsheet_without_a_valid_row_exits_1_and_says_why(
    serve: Serve, tmp_path: Path, dry_run: bool
) -> None:
    server = serve()
    input_path = write_prospects(
        tmp_path / "p.csv", [("not a url", "hi"), ("https://example.com/x", "a")]
    )
    args = ["run", str(input_path), "--config", str(config_for(tmp_path, server)), "--yes"]
    result = invoke([*args, "--dry-run"] if dry_run else args)
    assert result.exit_code == 1, result.output
    why = f"no valid row: 2 invalid, 0 duplicate: campaign-runner validate {input_path}"
    assert why in result.stdout.splitlines()
    assert connect_requests(server) == 0
    payload = json.loads(invoke([*args, "--json"]).stdout)
    assert (payload["exit_code"], payload["stopped_reason"]) == (1, why)


def test_a_spreadsheet_wholly_excluded_is_intended_and_exits_0(
    serve: Serve, tmp_path: Path
) -> None:
    server = serve()
    input_path = write_prospects(tmp_path / "p.csv", [url(1), url(2)])
    blocked = write_prospects(tmp_path / "dnc.csv", [url(1), url(2)], header=("linkedin_url",))
    config = config_for(tmp_path, server)
    args = ["run", str(input_path), "--config", str(config), "--yes", "--exclude", str(blocked)]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert "no valid row" not in result.output


def test_json_summary_parses_and_matches_the_exit_code(serve: Serve, tmp_path: Path) -> None:
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 4)
    config = config_for(tmp_path, server)
    result = invoke(["run", str(input_path), "--config", str(config), "--yes", "--json"])

    payload = json.loads(result.stdout)  # nothing else on stdout
    assert "progress:" not in result.stderr
    assert payload["exit_code"] == result.exit_code == 0
    assert payload["this_run"] == {"sent": 4}
    assert payload["remaining"] == 0
    assert payload["resume_command"].startswith("campaign-runner run ")
    assert str(config) in payload["resume_command"]


def test_limit_stops_with_exit_3_and_the_printed_command_continues(
    serve: Serve, tmp_path: Path
) -> None:
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 5)
    config = config_for(tmp_path, server)
    results = tmp_path / "out" / "results.csv"
    results.parent.mkdir()
    args = ["run", str(input_path), "--config", str(config), "--results", str(results)]
    result = invoke([*args, "--yes", "--limit", "2"])

    assert result.exit_code == 3, result.output
    assert len(server.state.invitations) == 2
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("to continue: ")
    command = shlex.split(last.removeprefix("to continue: "))
    assert command[:2] == ["campaign-runner", "run"]
    assert command[1:] == args  # the same input, config and results file

    rest = invoke([*command[1:], "--yes"])
    assert rest.exit_code == 0, rest.output
    assert invited(server) == {url(n): 1 for n in range(5)}


def test_spent_capacity_exits_3_and_says_when_it_renews(serve: Serve, tmp_path: Path) -> None:
    server = serve(senders=(SandboxSender("a", capacity=2),))
    input_path = prospects(tmp_path / "p.csv", 5)
    config = config_for(tmp_path, server, senders=[("a", 2)], pacing={"window_seconds": 0.2})
    result = invoke(["run", str(input_path), "--config", str(config), "--yes"])

    assert result.exit_code == 3, result.output
    assert "capacity renews from" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("to continue: campaign-runner run")
    assert ("connect", "daily_limit") not in server.state.counters


def test_failed_rows_exit_1_and_retry_failed_sends_them(serve: Serve, tmp_path: Path) -> None:
    server = serve(faults=(FaultRule("error", status=400, message="Recipient rejected", times=1),))
    input_path = prospects(tmp_path / "p.csv", 3)
    config = config_for(tmp_path, server)
    first = invoke(["run", str(input_path), "--config", str(config), "--yes"])
    assert first.exit_code == 1, first.output
    assert "--retry-failed" in first.stdout
    assert final_counts(tmp_path / "p.results.csv") == {"sent": 2, "failed": 1}

    again = invoke(["run", str(input_path), "--config", str(config), "--yes"])
    assert again.exit_code == 1
    assert connect_requests(server) == 3

    retried = invoke(["run", str(input_path), "--config", str(config), "--yes", "--retry-failed"])
    assert retried.exit_code == 0, retried.output
    assert invited(server) == {url(n): 1 for n in range(3)}


def test_unknown_rows_are_resent_only_with_retry_unknown(serve: Serve, tmp_path: Path) -> None:
    server = serve(faults=(FaultRule("drop", times=1),))
    input_path = prospects(tmp_path / "p.csv", 3)
    config = config_for(tmp_path, server)
    first = invoke(["run", str(input_path), "--config", str(config), "--yes"])
    assert first.exit_code == 1, first.output
    assert "--retry-unknown" in first.stdout
    again = invoke(["run", str(input_path), "--config", str(config), "--yes"])
    assert (again.exit_code, connect_requests(server)) == (1, 3)
    retried = invoke(["run", str(input_path), "--config", str(config), "--yes", "--retry-unknown"])
    assert retried.exit_code == 0, retried.output
    assert connect_requests(server) == 4


def test_a_locked_results_file_is_a_one_line_error_naming_it(serve: Serve, tmp_path: Path) -> None:
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 3)
    results = tmp_path / "p.results.csv"
    with Journal.open(results):
        result = invoke(
            ["run", str(input_path), "--config", str(config_for(tmp_path, server)), "--yes"]
        )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(results) in lines[0]
    assert "another campaign-runner run" in lines[0]
    assert connect_requests(server) == 0


def test_a_missing_key_is_a_one_line_error(serve: Serve, tmp_path: Path) -> None:
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 1)
    result = invoke(
        ["run", str(input_path), "--config", str(config_for(tmp_path, server)), "--yes"], key=None
    )
    assert result.exit_code == 2, result.output
    assert "SENDPILOT_API_KEY" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_missing_input_is_a_one_line_error(serve: Serve, tmp_path: Path) -> None:
    server = serve()
    result = invoke(["run", "nowhere.csv", "--config", str(config_for(tmp_path, server)), "--yes"])
    assert result.exit_code == 2, result.output
    assert "nowhere.csv" in result.stderr
    assert "Traceback" not in result.output


def test_a_rejected_key_mid_run_exits_2_at_once(serve: Serve, tmp_path: Path) -> None:
    server = serve(
        senders=(SandboxSender("a", capacity=100),),
        faults=(FaultRule("error", status=401, nth=3),),
    )
    input_path = prospects(tmp_path / "p.csv", 8)
    # One request at a time, so the third request is the last one.
    config = config_for(tmp_path, server, senders=[("a", 100)], pacing={"concurrency": 1})
    result = invoke(["run", str(input_path), "--config", str(config), "--yes"])

    assert result.exit_code == 2, result.output
    assert "401" in result.stderr
    assert "key" in result.stderr
    assert KEY not in result.output
    assert connect_requests(server) == 3
    assert "failed" not in final_counts(tmp_path / "p.results.csv")


# -- the key never shows ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "exit_code"),
    [
        ("success", 0),
        ("wrong key", 2),
        ("401 mid-run", 2),
        ("403 mid-run", 2),
        ("400", 1),
        ("500", 1),
        ("unreachable", 2),
        ("json", 0),
    ],
)
def test_the_api_key_appears_nowhere(
    serve: Serve, tmp_path: Path, scenario: str, exit_code: int
) -> None:
    faults: tuple[FaultRule, ...] = ()
    if scenario in ("401 mid-run", "403 mid-run"):
        faults = (FaultRule("error", status=int(scenario[:3]), nth=2),)
    elif scenario in ("400", "500"):
        faults = (FaultRule("error", status=int(scenario)),)
    server = serve(api_key="another-key" if scenario == "wrong key" else KEY, faults=faults)
    base_url = f"http://127.0.0.1:{free_port()}/v1" if scenario == "unreachable" else None
    config = write_config(
        tmp_path / "c.yaml", base_url or server.base_url, [("a", 100), ("b", 100)]
    )
    input_path = prospects(tmp_path / "p.csv", 4)
    extra = ["--json"] if scenario == "json" else []
    result = invoke(["run", str(input_path), "--config", str(config), "--yes", *extra])

    assert result.exit_code == exit_code, result.output
    if scenario != "unreachable":
        # The key really went out on the wire: the server saw requests carrying it.
        assert sum(server.state.counters.values()) > 0
    assert KEY not in result.stdout
    assert KEY not in result.stderr
    results = tmp_path / "p.results.csv"
    if results.exists():
        assert KEY not in results.read_text(encoding="utf-8")


# -- the sandbox demo ------------------------------------------------------------------------


def test_sandbox_demo_runs_offline_and_writes_results(tmp_path: Path) -> None:
    input_path = write_prospects(
        tmp_path / "demo.csv",
        [(url("anna"), "Hi Anna"), (url("bo"), ""), ("not a url", ""), (url("cara"), "Hey")],
    )
    started = time.monotonic()
    result = invoke(["run", str(input_path), "--sandbox"], key=None)
    took = time.monotonic() - started

    assert result.exit_code == 0, result.output
    assert took < 10
    assert "sandbox:" in result.output
    assert "127.0.0.1" in result.output
    # A rehearsal never writes the file a real run reads.
    assert not (tmp_path / "demo.results.csv").exists()
    results = tmp_path / "demo.sandbox.results.csv"
    counts = final_counts(results)
    assert counts == {"invalid": 1, "sent": 3}
    assert {line["api"] for line in latest(results).values()} == {"sandbox"}
    assert all(line["sender_id"] for u, line in latest(results).items() if u.startswith("http"))


SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "prospects.csv"


@pytest.mark.skipif(not SAMPLE.is_file(), reason="sample_data/prospects.csv is not there yet")
def test_sandbox_demo_on_the_sample_data(tmp_path: Path) -> None:
    # The demo senders pace one invitation per 0.8 s (about 7 s for the sample); configured
    # senders with a higher limit keep this test fast and still exercise the whole path.
    input_path = tmp_path / "prospects.csv"
    input_path.write_bytes(SAMPLE.read_bytes())
    config = write_config(
        tmp_path / "c.yaml", "http://127.0.0.1:9/v1", [("sender_alice", 400), ("sender_bob", 400)]
    )
    started = time.monotonic()
    result = invoke(["run", str(input_path), "--sandbox", "--config", str(config)], key=None)
    assert result.exit_code in (0, 1), result.output
    assert time.monotonic() - started < 30
    counts = final_counts(tmp_path / "prospects.sandbox.results.csv")
    assert counts["sent"] + counts["already_connected"] > 0
    assert not {"pending", "deferred"} & set(counts)


# -- senders -------------------------------------------------------------------------------


@pytest.fixture
def local_zone() -> Iterator[None]:
    """Local time is UTC+05:30 (a POSIX zone rule: no tz database needed)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "IST-5:30")
        time.tzset()
        yield
    time.tzset()


LOCAL_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d \+05:30"


def test_senders_shows_the_config_beside_the_api(
    serve: Serve, tmp_path: Path, local_zone: None
) -> None:
    server = serve(
        senders=(
            SandboxSender("a", capacity=5, name="Alice"),
            SandboxSender("gone", capacity=5, status="disconnected"),
        )
    )
    config = config_for(
        tmp_path, server, senders=[("a", 5), ("typo", 3)], pacing={"default_weekly_limit": 40}
    )
    before = invoke(["senders", "--config", str(config)])
    assert before.exit_code == 0, before.output
    header, *lines, footnote = before.stdout.strip().splitlines()
    assert header.split() == ["id", "status", "daily", "weekly", "remaining", "resets", "name"]
    rows = {line.split()[0]: line for line in lines}
    assert set(rows) == {"a", "gone", "typo"}
    assert re.fullmatch(rf"a +active +5 +40 +5 of 5 +{LOCAL_TIME} +Alice", rows["a"])
    # Not in the config: the defaults, marked, as a run would use them.
    assert re.fullmatch(rf"gone +disconnected +25\* +40\* +5 of 5 +{LOCAL_TIME}.*", rows["gone"])
    assert re.fullmatch(r"typo +not listed +3 +40 +\? +\?", rows["typo"])
    assert footnote.startswith("* not in the config")
    assert before.stderr.splitlines() == [
        f"warning: sender typo ({config}) is not listed by GET /inbox/senders: a run skips "
        "it; check its id in SendPilot"
    ]

    input_path = prospects(tmp_path / "p.csv", 2)
    config = config_for(tmp_path, server, senders=[("a", 5)])
    assert invoke(["run", str(input_path), "--config", str(config), "--yes"]).exit_code == 0
    after = invoke(["senders", "--config", str(config), "--json"])
    assert after.exit_code == 0, after.output
    payload = {r["id"]: r for r in json.loads(after.stdout)}
    assert payload["a"] == {
        "id": "a",
        "name": "Alice",
        "status": "active",
        "premium": None,  # the API does not say
        "limit": 5,
        "remaining": 3,
        "resets_at": payload["a"]["resets_at"],
        "configured_daily_limit": 5,
        "configured": True,
        "listed": True,
        "daily_limit": 5,
        "weekly_limit": 100,
    }
    assert payload["a"]["resets_at"].endswith("Z")  # the API's own words, in JSON
    assert KEY not in after.output


def test_times_shown_to_a_person_are_local_and_never_past(local_zone: None) -> None:
    from campaign_runner.cli.render import local_time

    moment = 1_796_114_670.5  # 2026-12-01T08:44:30.5Z
    assert local_time(moment, now=moment - 3600) == "2026-12-01 14:15 +05:30"  # rounded up
    assert local_time(moment, now=moment) == "now"
    assert local_time(moment, now=moment + 1) == "now"


def test_spent_capacity_says_when_it_renews_in_local_time(
    serve: Serve, tmp_path: Path, local_zone: None
) -> None:
    server = serve(senders=(SandboxSender("a", capacity=2),))
    input_path = prospects(tmp_path / "p.csv", 5)
    config = config_for(tmp_path, server, senders=[("a", 2)], pacing={"window_seconds": 3600})
    result = invoke(["run", str(input_path), "--config", str(config), "--yes", "--limit", "1"])
    assert result.exit_code == 3, result.output
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("capacity renews from ")]
    assert re.fullmatch(f"capacity renews from {LOCAL_TIME}", line), line


def test_senders_with_a_wrong_key_is_a_one_line_error(serve: Serve, tmp_path: Path) -> None:
    server = serve(api_key="another-key")
    result = invoke(["senders", "--config", str(config_for(tmp_path, server))])
    assert result.exit_code == 2, result.output
    assert "401" in result.stderr
    assert KEY not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


# -- rehearsals apart ---------------------------------------------------------------------


def test_a_rehearsal_then_the_real_run_sends_every_row(serve: Serve, tmp_path: Path) -> None:
    input_path = prospects(tmp_path / "p.csv", 5)
    rehearsal = invoke(["run", str(input_path), "--sandbox"], key=None)
    assert rehearsal.exit_code == 0, rehearsal.output
    assert "rehearsal: invitations go to the stand-in server" in rehearsal.output
    assert final_counts(tmp_path / "p.sandbox.results.csv") == {"sent": 5}

    server = serve()
    real = invoke(["run", str(input_path), "--config", str(config_for(tmp_path, server)), "-y"])
    assert real.exit_code == 0, real.output
    assert "0 already done" in real.output
    assert invited(server) == {url(n): 1 for n in range(5)}
    results = tmp_path / "p.results.csv"
    assert final_counts(results) == {"sent": 5}
    assert {line["api"] for line in latest(results).values()} == {"sendpilot"}


def test_a_real_run_refuses_a_rehearsals_results(serve: Serve, tmp_path: Path) -> None:
    input_path = prospects(tmp_path / "p.csv", 3)
    assert invoke(["run", str(input_path), "--sandbox"], key=None).exit_code == 0
    rehearsed = tmp_path / "p.sandbox.results.csv"
    before = rehearsed.read_bytes()
    server = serve()
    config = config_for(tmp_path, server)
    args = ["run", str(input_path), "--config", str(config), "--yes", "--results", str(rehearsed)]
    result = invoke(args)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"Error: {rehearsed} was written by a --sandbox rehearsal, whose invitations went to "
        "the stand-in server, not to LinkedIn: give the real campaign its own results file "
        "(leave out --results, or name another file)"
    ]
    assert rehearsed.read_bytes() == before
    assert connect_requests(server) == 0


def test_a_rehearsal_refuses_a_real_results_file(serve: Serve, tmp_path: Path) -> None:
    input_path = prospects(tmp_path / "p.csv", 3)
    server = serve()
    config = config_for(tmp_path, server)
    assert invoke(["run", str(input_path), "--config", str(config), "--yes"]).exit_code == 0
    real = tmp_path / "p.results.csv"
    before = real.read_bytes()
    result = invoke(["run", str(input_path), "--sandbox", "--results", str(real)], key=None)
    assert result.exit_code == 2, result.output
    assert "holds real invitations (written without --sandbox)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert real.read_bytes() == before


def test_a_results_file_from_before_the_api_column_counts_as_real(
    serve: Serve, tmp_path: Path
) -> None:
    input_path = prospects(tmp_path / "p.csv", 3)
    results = tmp_path / "p.results.csv"
    old_header = ",".join(RESULTS_HEADER[:-1])  # without `api`
    results.write_text(
        f"{old_header}\n2,{url(0)},a,sent,conn_0,,1,2026-11-01T10:00:00.000Z,yes\n",
        encoding="utf-8",
    )
    sandbox_run = invoke(["run", str(input_path), "--sandbox", "--results", str(results)])
    assert sandbox_run.exit_code == 2, sandbox_run.output
    server = serve()
    config = config_for(tmp_path, server)
    real_run = invoke(["run", str(input_path), "--config", str(config), "--yes"])
    assert real_run.exit_code == 0, real_run.output
    assert invited(server) == {url(1): 1, url(2): 1}


def test_a_stand_in_that_says_so_gets_rehearsal_results(serve: Serve, tmp_path: Path) -> None:
    # `campaign-runner sandbox` announces itself: a config pointed at it is a rehearsal.
    server = serve(announce=True)
    input_path = prospects(tmp_path / "p.csv", 2)
    result = invoke(["run", str(input_path), "--config", str(config_for(tmp_path, server)), "-y"])
    assert result.exit_code == 0, result.output
    assert "rehearsal:" in result.output
    assert not (tmp_path / "p.results.csv").exists()
    rehearsal = latest(tmp_path / "p.sandbox.results.csv")
    assert {line["api"] for line in rehearsal.values()} == {"sandbox"}


# -- hand edits and unfinished lines --------------------------------------------------------


def test_an_unfinished_pending_line_is_cut_and_the_plan_says_so(
    serve: Serve, tmp_path: Path
) -> None:
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 3)
    config = config_for(tmp_path, server)
    results = tmp_path / "p.results.csv"
    header = ",".join(RESULTS_HEADER)
    # What a kill during the pending line's write leaves: its request never left.
    results.write_text(f"{header}\n2,{url(0)},a,pend", encoding="utf-8")
    result = invoke(["run", str(input_path), "--config", str(config), "--yes"])
    assert result.exit_code == 0, result.output
    assert f"warning: {results}:2: removed a line for row 2 that an interrupted run" in (
        result.stderr
    )
    assert invited(server) == {url(n): 1 for n in range(3)}


def test_a_hand_added_last_line_is_refused_with_its_line_number(
    serve: Serve, tmp_path: Path
) -> None:
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 3)
    config = config_for(tmp_path, server)
    results = tmp_path / "p.results.csv"
    header = ",".join(RESULTS_HEADER)
    # Typed by a person: no final newline, and no note_delivered or api field.
    content = f"{header}\n2,{url(0)},a,sent,conn_1,,1,2026-11-30T10:00:00.000Z"
    results.write_text(content, encoding="utf-8")
    result = invoke(["run", str(input_path), "--config", str(config), "--yes"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: {results}:2: the last line is not a complete record")
    assert len(result.stderr.strip().splitlines()) == 1
    assert results.read_text(encoding="utf-8") == content
    assert connect_requests(server) == 0


def test_excluded_rows_are_recorded_and_never_invited(serve: Serve, tmp_path: Path) -> None:
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 4)
    dnc = write_prospects(tmp_path / "dnc.csv", ["linkedin.com/in/PERSON-1/"])
    config = config_for(tmp_path, server)
    args = ["run", str(input_path), "--config", str(config), "--yes", "--exclude", str(dnc)]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert "1 excluded (do-not-contact)" in result.output
    assert f"--exclude {dnc}" in result.output.strip().splitlines()[-1]
    assert set(invited(server)) == {url(0), url(2), url(3)}
    line = latest(tmp_path / "p.results.csv")[url(1)]
    assert (line["status"], line["error"]) == ("excluded", "on the do-not-contact list dnc.csv")


# -- see before sending -------------------------------------------------------------------

QUOTES = '(notes in JSON quotes: "\\n" is a line break)'


def preview_lines(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "as they will leave" in line)
    return [line.strip() for line in lines[start + 1 : start + 4] if line.startswith("  row ")]


def test_the_plan_shows_the_first_notes_as_they_leave_and_who_sends_them(
    serve: Serve, tmp_path: Path
) -> None:
    server = serve(
        senders=(SandboxSender("a", capacity=100), SandboxSender("b", capacity=100, premium=False))
    )
    notes = [" Hi Jane,\nglad we met ", "", "Hallo \t Ömer 👋", "not shown"]
    input_path = write_prospects(
        tmp_path / "p.csv",
        [(url(1), notes[0], "b"), (url(2), notes[1], "a"), (url(3), notes[2], "a"), url(4)],
        header=("linkedin_url", "note", "sender_id"),
    )
    config = config_for(tmp_path, server, senders=[("a", 100), ("b", 100)])
    config.write_text(config.read_text().replace("id: b", "id: b\n  premium: false"))
    dry = invoke(["run", str(input_path), "--config", str(config), "--dry-run"])
    assert dry.exit_code == 3, dry.output
    assert f"first 3 of 4 to send, as they will leave {QUOTES}:" in dry.stdout
    # In the order they leave: a and b start at the same moment, a first (the config's
    # order), each with its own pinned rows first.
    assert preview_lines(dry.stdout) == [
        f"row 3 {url(2)} -> a (the note goes if premium): no note",
        f'row 2 {url(1)} -> b (free: sent without the note): " Hi Jane,\\nglad we met "',
        f'row 4 {url(3)} -> a (the note goes if premium): "Hallo \\t Ömer 👋"',
    ]

    sent = invoke(["run", str(input_path), "--config", str(config), "--yes", "--json"])
    assert sent.exit_code == 0, sent.output
    preview = json.loads(sent.stdout)["preview"]
    assert [(p["row"], p["sender_id"], p["sender_certain"]) for p in preview] == [
        (3, "a", True),
        (2, "b", True),
        (4, "a", True),
    ]
    # What the stand-in received is what the preview showed: sender, and note as delivered.
    received = {i.linkedin_url: i for i in server.state.invitations}
    for p in preview:
        invitation = received[p["linkedin_url"]]
        assert invitation.sender_id == p["sender_id"]
        # a is premium at the stand-in; b is free, and the stand-in drops its notes.
        assert invitation.note == ((p["note"] or None) if p["sender_id"] == "a" else None)
    assert preview[1]["note"] == notes[0]  # exactly as written: the spaces and the break


def test_shared_rows_go_to_the_first_free_sender_in_the_engines_order(
    serve: Serve, tmp_path: Path
) -> None:
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 4)
    # b paces twice as fast as a: a and b start at once, then b's next slot comes first.
    config = config_for(tmp_path, server, senders=[("a", 50), ("b", 100)])
    result = invoke(["run", str(input_path), "--config", str(config), "--dry-run"])
    assert preview_lines(result.stdout) == [
        f'row 2 {url(0)} -> first free sender, probably a (the note goes if premium): "hi 0"',
        f'row 3 {url(1)} -> first free sender, probably b (the note goes if premium): "hi 1"',
        f'row 4 {url(2)} -> first free sender, probably b (the note goes if premium): "hi 2"',
    ]


def test_a_single_sender_sends_every_row_so_the_preview_is_certain(
    serve: Serve, tmp_path: Path
) -> None:
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 2)
    config = config_for(tmp_path, server, senders=[("a", 10)])
    config.write_text(config.read_text().replace("id: a", "id: a\n  premium: true"))
    result = invoke(["run", str(input_path), "--config", str(config), "--dry-run", "--limit", "1"])
    # --limit 1: only the one row this run sends.
    assert f"first 1 of 2 to send, as they will leave {QUOTES}:" in result.stdout
    assert preview_lines(result.stdout) == [f'row 2 {url(0)} -> a (premium): "hi 0"']


# -- a wrong api.base_url -----------------------------------------------------------------


def test_a_base_url_without_its_v1_is_a_one_line_error_naming_the_setting(
    serve: Serve, tmp_path: Path
) -> None:
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 2)
    base = server.base_url.removesuffix("/v1")
    config = write_config(tmp_path / "c.yaml", base, [("a", 100)])
    for args in (["run", str(input_path), "--yes"], ["senders"]):
        result = invoke([*args, "--config", str(config)])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [
            f"Error: GET /inbox/senders: HTTP 404: no such route: check api.base_url (now "
            f"{base}; SendPilot's is https://api.sendpilot.ai/v1, with its /v1)"
        ]
    assert connect_requests(server) == 0


def test_an_html_404_on_connect_stops_the_run_instead_of_failing_every_row(
    serve: Serve, tmp_path: Path
) -> None:
    page = FaultRule("body", status=404, content_type="text/html", text="<h1>Not Found</h1>")
    server = serve(senders=(SandboxSender("a", capacity=100),), faults=(page,))
    input_path = prospects(tmp_path / "p.csv", 5)
    config = config_for(tmp_path, server, senders=[("a", 100)], pacing={"concurrency": 1})
    result = invoke(["run", str(input_path), "--config", str(config), "--yes"])
    assert result.exit_code == 2, result.output
    assert "HTTP 404: an HTML page, not the API's JSON: check api.base_url" in result.stderr
    assert connect_requests(server) == 1
    assert server.state.invitations == []
    assert final_counts(tmp_path / "p.results.csv") == {"deferred": 1}


def test_a_note_template_is_rendered_and_sent_as_shown(serve: Serve, tmp_path: Path) -> None:
    server = serve()
    input_path = write_prospects(
        tmp_path / "p.csv",
        [(url(1), "Jane", ""), (url(2), "Bo", "My own note, Bo"), (url(3), "", "")],
        header=("linkedin_url", "First Name", "note"),
    )
    config = config_for(tmp_path, server, senders=[("a", 100)])
    template = "Hi {first_name|there}, glad to connect!"
    args = ["run", str(input_path), "--config", str(config), "--yes", "--note-template", template]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    notes = {i.linkedin_url: i.note for i in server.state.invitations}
    assert notes == {
        url(1): "Hi Jane, glad to connect!",
        url(2): "My own note, Bo",  # a row's own note wins
        url(3): "Hi there, glad to connect!",
    }
    assert '"Hi Jane, glad to connect!"' in result.output  # the preview showed it first
    assert f"--note-template '{template}'" in result.output.strip().splitlines()[-1]


def test_an_unfilled_placeholder_never_leaves(serve: Serve, tmp_path: Path) -> None:
    server = serve()
    input_path = write_prospects(
        tmp_path / "p.csv", [(url(1), "Hi {first_name}, ..."), (url(2), "Hello!")]
    )
    config = config_for(tmp_path, server, senders=[("a", 100)])
    result = invoke(["run", str(input_path), "--config", str(config), "--yes"])
    assert result.exit_code == 0, result.output
    assert [i.linkedin_url for i in server.state.invitations] == [url(2)]
    assert "unfilled placeholder" in latest(tmp_path / "p.results.csv")[url(1)]["error"]


def test_a_workbook_sheet_is_chosen_and_said(serve: Serve, tmp_path: Path) -> None:
    import openpyxl

    server = serve()
    book = openpyxl.Workbook()
    summary = book.active
    assert summary is not None
    summary.title = "Summary"
    summary.append(["Q3 totals", 3])
    leads = book.create_sheet("Leads")
    leads.append(["Q3 Prospects – DACH"])  # a title row above the header
    leads.append(["Name", "LinkedIn", "message"])
    for n in range(3):
        leads.append([f"P{n}", url(n), f"Hi P{n}"])
    path = tmp_path / "book.xlsx"
    book.save(path)
    config = config_for(tmp_path, server, senders=[("a", 100)])  # a Premium sender

    result = invoke(["run", str(path), "--config", str(config), "--yes", "--sheet", "Leads"])
    assert result.exit_code == 0, result.output
    assert f"{path}: sheet 'Leads' (2 of 2)" in result.output
    assert f"{path}: row 1 is a title: the header is row 2" in result.output
    assert f"{path}: note from 'message'" in result.output
    assert "--sheet Leads" in result.output.strip().splitlines()[-1]
    assert {i.linkedin_url: i.note for i in server.state.invitations} == {
        url(n): f"Hi P{n}" for n in range(3)
    }
    rows = {
        line["linkedin_url"]: line["row"] for line in latest(tmp_path / "book.results.csv").values()
    }
    assert rows == {url(0): "3", url(1): "4", url(2): "5"}  # as the sheet shows them

    wrong = invoke(["run", str(path), "--config", str(config), "--yes", "--sheet", "Leeds"])
    assert wrong.exit_code == 2
    assert "Leads" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1


def test_a_rehearsal_keeps_a_configured_warm_up(tmp_path: Path) -> None:
    input_path = prospects(tmp_path / "p.csv", 4)
    config = tmp_path / "c.yaml"
    config.write_text(
        "senders:\n  - {id: sender_alice, daily_limit: 25, warmup: {start: 1, step: 1}}\n",
        encoding="utf-8",
    )
    result = invoke(["run", str(input_path), "--sandbox", "--config", str(config)], key=None)
    assert result.exit_code == 3, result.output  # one today, the rest later
    assert "sender sender_alice: warming up, 1 this window" in result.stderr
    assert final_counts(tmp_path / "p.sandbox.results.csv") == {"sent": 1}


# -- when the next invitation leaves, and run --wait ----------------------------------------


def closed_hours() -> dict[str, str]:
    """Working hours (UTC) that open in two hours and close an hour later: closed now."""
    hour = (time.gmtime().tm_hour + 2) % 24
    return {"hours": f"{hour:02d}:00-{(hour + 1) % 24:02d}:00", "timezone": "UTC"}


def test_outside_working_hours_the_summary_says_when_the_next_invitation_leaves(
    serve: Serve, tmp_path: Path, local_zone: None
) -> None:
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 3)
    config = config_for(tmp_path, server, senders=[("a", 10)], pacing=closed_hours())
    result = invoke(["run", str(input_path), "--config", str(config), "--yes"])
    opens = closed_hours()["hours"][:5]

    assert result.exit_code == 3, result.output
    assert connect_requests(server) == 0
    said = [x for x in result.stdout.splitlines() if x.startswith("next invitation can leave")]
    # Once in the plan, once in the summary: local time, then the sender's own words.
    assert len(said) == 2, result.stdout
    why = rf"sender a: its working hours open \w\w\w {opens} UTC"
    pattern = rf"next invitation can leave at {LOCAL_TIME} \({why}\)"
    assert all(re.fullmatch(pattern, line) for line in said), said
    # Closed for now is not "no usable sender": the estimate counts its later windows.
    assert "no usable sender" not in result.stdout
    assert "the whole campaign needs about 2 capacity windows" in result.stdout

    payload = json.loads(invoke(["run", str(input_path), "--config", str(config), "--json"]).stdout)
    assert payload["next_send_at"].endswith(f"T{opens}:00+00:00")


def test_wait_with_dry_run_shows_the_plan_and_when_the_next_invitation_leaves(
    serve: Serve, tmp_path: Path
) -> None:
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 3)
    config = config_for(tmp_path, server, senders=[("a", 10)], pacing=closed_hours())
    result = invoke(["run", str(input_path), "--config", str(config), "--wait", "--dry-run"])

    assert result.exit_code == 3, result.output  # as --dry-run alone: it does not wait
    assert "next invitation can leave at " in result.stdout
    assert connect_requests(server) == 0
    assert not (tmp_path / "p.results.csv").exists()
    assert result.stdout.strip().splitlines()[-1].endswith(" --wait")


def test_wait_asks_once_for_the_whole_campaign(
    serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from campaign_runner.cli import run as run_command

    monkeypatch.setattr(run_command, "is_tty", lambda stdin=False: True)
    server = serve()
    input_path = prospects(tmp_path / "p.csv", 5)
    config = config_for(tmp_path, server, senders=[("a", 2)], pacing={"window_seconds": 3600})
    result = CliRunner().invoke(
        cli,
        ["run", str(input_path), "--config", str(config), "--wait"],
        input="n\n",
        env={"SENDPILOT_API_KEY": KEY},
    )
    assert f"Send 5 invitations to {server.base_url} (workspace " in result.stdout
    assert "): 2 now, the rest as capacity renews (--wait)?" in result.stdout
    assert result.exit_code == 130
    assert connect_requests(server) == 0
