"""A real ``campaign-runner run`` subprocess, killed or interrupted mid-run, then resumed.

The stand-in server runs in the test's own event loop, so the test sees every request as
it arrives and knows when the run is mid-way. A ``latency`` fault keeps requests in flight
long enough to interrupt the run while some are on their way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import SandboxFactory
from helpers import (
    invited,
    latest,
    prospects,
    run_campaign,
    settings_for,
    until,
    url,
    write_config,
)

from campaign_runner.journal import load_journal
from campaign_runner.sandbox import FaultRule, SandboxSender, SandboxServer

pytestmark = [pytest.mark.slow]

KEY = "sk_live_RESILIENCE_0b7c3f"
ROWS = 24


async def start_run(
    tmp_path: Path, server: SandboxServer, *extra: str
) -> asyncio.subprocess.Process:
    """``campaign-runner run p.csv --config c.yaml --yes`` against ``server``, no terminal."""
    config = tmp_path / "c.yaml"
    if not config.exists():
        write_config(config, server.base_url, [("a", 100), ("b", 100)])
    env = {**os.environ, "SENDPILOT_API_KEY": KEY, "PYTHONUNBUFFERED": "1"}
    env.pop("CAMPAIGN_RUNNER_CONFIG", None)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "campaign_runner",
        "run",
        "p.csv",
        "--config",
        str(config),
        "--yes",
        *extra,
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process, timeout: float = 20) -> tuple[str, str]:
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=timeout)
    return stdout.decode(), stderr.decode()


async def wait_for(condition: Callable[[], bool], process: asyncio.subprocess.Process) -> None:
    """Poll ``condition`` until it holds; fail if the process ends or 20 s pass first."""
    try:
        await until(condition, timeout=20, gave_up=lambda: process.returncode is not None)
    except AssertionError:
        out, err = await finish(process)
        raise AssertionError(f"the run ended or stalled first:\n{out}\n{err}") from None


async def read_until(process: asyncio.subprocess.Process, marker: str) -> str:
    assert process.stdout is not None
    text = ""
    while marker not in text:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=10)
        if not line:
            raise AssertionError(f"the run ended before printing {marker!r}: {text}")
        text += line.decode()
    return text


def connects(server: SandboxServer) -> int:
    return server.state.requests["connect"]


async def slow_server(sandbox: SandboxFactory, *faults: FaultRule) -> SandboxServer:
    return await sandbox(
        api_key=KEY,
        senders=(SandboxSender("a", capacity=100), SandboxSender("b", capacity=100)),
        faults=faults or (FaultRule("latency", seconds=0.1),),
    )


async def test_kill_9_mid_run_then_resume_sends_nothing_twice(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    server = await slow_server(sandbox)
    prospects(tmp_path / "p.csv", ROWS)
    results = tmp_path / "p.results.csv"

    process = await start_run(tmp_path, server)
    await wait_for(lambda: connects(server) >= 6, process)
    process.kill()
    await finish(process)
    assert process.returncode == -signal.SIGKILL

    in_flight = set(load_journal(results).pending()["linkedin_url"])
    assert in_flight  # requests were on their way: their `pending` lines are durable

    resumed = await start_run(tmp_path, server)
    out, err = await finish(resumed)
    assert resumed.returncode == 1, out + err  # the rows in flight are unknown now
    assert f"{len(in_flight)} rows were being sent when the last run stopped" in err
    assert "recorded as unknown" in err

    final = latest(results)
    statuses = {u: line["status"] for u, line in final.items()}
    assert set(statuses) == {url(n) for n in range(ROWS)}
    assert {u for u, s in statuses.items() if s == "unknown"} == in_flight
    assert set(statuses.values()) <= {"sent", "unknown"}
    # Exactly one invitation per prospect at most, and every `sent` row has one.
    await server.stop()  # let requests the killed run left behind finish
    assert server.state.duplicates() == {}
    created = invited(server)
    sent = {u for u, s in statuses.items() if s == "sent"}
    assert sent <= set(created)
    assert set(created) <= sent | in_flight
    assert len(server.state.invitations) == len(sent) + len(in_flight & set(created))


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
async def test_a_signal_stops_new_requests_and_the_same_command_finishes(
    sandbox: SandboxFactory, tmp_path: Path, stop_signal: int
) -> None:
    server = await slow_server(sandbox)
    prospects(tmp_path / "p.csv", ROWS)
    results = tmp_path / "p.results.csv"

    process = await start_run(tmp_path, server)
    await wait_for(lambda: connects(server) >= 6, process)
    process.send_signal(stop_signal)
    at_signal = connects(server)
    out, err = await finish(process)

    assert process.returncode == 130, out + err
    assert "stopping" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("to continue: campaign-runner run p.csv --config ")
    # No new request after the signal, beyond one racing it per concurrency slot.
    assert connects(server) <= at_signal + 4
    # The requests in flight finished and were recorded: nothing is left pending.
    assert load_journal(results).pending().empty
    sent = {u for u, line in latest(results).items() if line["status"] == "sent"}
    assert sent == set(invited(server))
    assert len(sent) < ROWS
    if stop_signal == signal.SIGTERM:
        return  # the resume is the same as after SIGINT (below); one is enough

    again = await start_run(tmp_path, server)
    out, err = await finish(again)
    assert again.returncode == 0, out + err
    assert invited(server) == {url(n): 1 for n in range(ROWS)}
    assert server.state.duplicates() == {}


async def test_a_second_sigint_quits_at_once_and_loses_nothing(
    sandbox: SandboxFactory, tmp_path: Path
) -> None:
    # The first four requests take 3 s: the first Ctrl-C would wait for them.
    server = await slow_server(sandbox, FaultRule("latency", seconds=3.0, times=4))
    prospects(tmp_path / "p.csv", 12)
    results = tmp_path / "p.results.csv"

    process = await start_run(tmp_path, server)
    await wait_for(lambda: connects(server) >= 4, process)
    process.send_signal(signal.SIGINT)
    await read_until(process, "stopping")
    # Rows that were queued behind the four requests are deferred by the first Ctrl-C;
    # once their lines are durable, only the four requests on the wire remain pending.
    await wait_for(lambda: len(load_journal(results).pending()) == 4, process)
    process.send_signal(signal.SIGINT)
    second = time.monotonic()
    await finish(process)
    assert process.returncode == 130
    assert time.monotonic() - second < 1.5
    in_flight = set(load_journal(results).pending()["linkedin_url"])
    assert len(in_flight) == 4

    # Resumed in-process (the CLI's resume is covered by the kill -9 test above).
    settings = settings_for(server, [("a", 100), ("b", 100)], window=1.0)
    campaign, summary = await run_campaign(settings, tmp_path / "p.csv", results)
    assert campaign.plan.recovered_pending == 4
    assert summary.exit_code == 1
    statuses = {u: line["status"] for u, line in latest(results).items()}
    assert {u for u, s in statuses.items() if s == "unknown"} == in_flight
    assert {u for u, s in statuses.items() if s == "sent"} == {
        url(n) for n in range(12)
    } - in_flight
    await server.stop()
    assert server.state.duplicates() == {}


@pytest.mark.parametrize("how", ["replaced", "deleted"])
async def test_a_results_file_replaced_or_deleted_mid_run_loses_nothing(
    sandbox: SandboxFactory, tmp_path: Path, how: str
) -> None:
    server = await slow_server(sandbox)
    prospects(tmp_path / "p.csv", ROWS)
    results = tmp_path / "p.results.csv"

    process = await start_run(tmp_path, server)
    await wait_for(lambda: connects(server) >= 6, process)
    if how == "replaced":
        # What `sed -i`, an editor's save or a sync client does: a new file renamed over.
        edited = tmp_path / "p.results.csv.edit"
        edited.write_bytes(results.read_bytes())
        os.replace(edited, results)
    else:
        results.unlink()
    out, err = await finish(process)

    assert process.returncode == 2, out + err
    message = err.strip().splitlines()[-1]
    assert f"p.results.csv was {how} while this run was writing it" in message
    assert len(server.state.invitations) < ROWS  # it stopped
    # Every invitation made so far is in the file now at the path: nothing was lost.
    recorded = {u for u, line in latest(results).items() if line["status"] == "sent"}
    assert recorded == set(invited(server))
    assert load_journal(results).pending().empty

    again = await start_run(tmp_path, server)
    out, err = await finish(again)
    assert again.returncode == 0, out + err
    assert invited(server) == {url(n): 1 for n in range(ROWS)}
    assert server.state.duplicates() == {}
    assert {line["status"] for line in latest(results).values()} == {"sent"}
