"""``campaign-runner sandbox``: options, and a real server started as a subprocess."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from campaign_runner.cli import cli
from campaign_runner.config import load_settings


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--host", "0.0.0.0"], "not a loopback address; add --allow-remote"),
        (["--host", "example.com"], "not a loopback address"),
        (["--senders", "a"], "expected ID:CAPACITY"),
        (["--senders", "a:1", "--free", "b"], "not a sender of this sandbox: b"),
        (["--senders", "a:1,a:2"], "unique"),
        (["--fault", "explode"], "unknown fault kind 'explode'"),
        (["--fault", "hang:nth=0"], "nth counts from 1"),
        (["--webhook-url", "http://127.0.0.1:9/hook"], "webhook_secret"),
        (
            [
                *("--webhook-url", "http://127.0.0.1:9/hook", "--webhook-secret", "plain"),
                *("--webhook-signing", "standard"),
            ],
            "needs a whsec_<base64> webhook_secret",
        ),
        (["--webhook-signing", "svix"], "--webhook-signing"),
        (["--accept-share", "2"], "--accept-share"),
        (["--window-seconds", "0"], "--window-seconds"),
    ],
)
def test_bad_options_are_one_line_usage_errors(args: list[str], problem: str) -> None:
    result = CliRunner().invoke(cli, ["sandbox", "--port", "0", *args])
    assert result.exit_code == 2, result.output
    assert problem in result.output
    assert "Traceback" not in result.output


def test_a_taken_port_is_a_one_line_error() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["sandbox", "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


def test_help_documents_the_fault_language() -> None:
    result = CliRunner().invoke(cli, ["sandbox", "--help"])
    assert result.exit_code == 0, result.output
    for word in ("error", "rate_limit", "latency", "hang", "drop_before", "malformed", "nth="):
        assert word in result.output
    assert "--webhook-secret" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
async def test_serves_until_stopped(stop_signal: int, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "campaign_runner",
        "sandbox",
        "--port",
        "0",
        "--api-key",
        "k-123",
        "--senders",
        "a:1,b:3",
        "--free",
        "b",
        "--already-connected",
        "https://www.linkedin.com/in/known",
        "--fault",
        "error:503:nth=2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        banner = await _read_until(process, "press Ctrl-C to stop")
        assert "export SENDPILOT_API_KEY=k-123" in banner
        assert "sender b: free, 3 invitations per 86400s" in banner
        assert "fault: error:503:nth=2" in banner
        # The snippet between the blank lines pastes into a config as it is.
        match = re.search(r"YAML config .*\n\n((?:.+\n)+)\n", banner)
        assert match, banner
        config = tmp_path / "campaign-runner.yaml"
        config.write_text(f"senders:\n  - id: a\n    daily_limit: 1\n{match.group(1)}")
        base_url = load_settings(config).api.base_url
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base_url), banner
        got = [await _connect(base_url, "k-123", "a", f"p{n}") for n in range(3)]
        got.append(await _connect(base_url, "k-123", "a", "known"))
        got.append(await _connect(base_url, "wrong", "a", "p9"))
        assert got == [
            (200, "sent"),
            (503, None),
            (429, None),
            (200, "already_connected"),
            (401, None),
        ]
    finally:
        if process.returncode is None:
            process.send_signal(stop_signal)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=10)
    assert process.returncode == 0, stderr.decode()
    summary = "sandbox stopped: 1 invitation created (connect already_connected: 1, "
    assert summary in stdout.decode()
    assert "Traceback" not in stderr.decode()


async def _read_until(process: asyncio.subprocess.Process, marker: str) -> str:
    assert process.stdout is not None
    text = ""
    while marker not in text:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        if not line:
            raise AssertionError(f"sandbox exited early: {text}")
        text += line.decode()
    return text


async def _connect(base_url: str, key: str, sender: str, slug: str) -> tuple[int, Any]:
    body = {"senderId": sender, "recipientLinkedinUrl": f"https://www.linkedin.com/in/{slug}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/inbox/connect", json=body, headers={"X-API-Key": key}) as r,
    ):
        payload = await r.json()
        return r.status, payload.get("status")
