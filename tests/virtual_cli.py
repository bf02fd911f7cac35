"""``campaign-runner`` in a subprocess, in virtual time, with the stand-in server beside it.

A test hook, run only by the tests (``python tests/virtual_cli.py run p.csv ...``): nothing
in ``campaign_runner`` reads these variables. The CLI runs unchanged, on one
:class:`~campaign_runner.clock.VirtualTimeLoop` that ``asyncio.run`` is pointed at, so
that days of ``run --wait`` pass in a moment of real time. The stand-in server runs on
the same loop, since a peer in another process answers in real time, which a virtual
loop does not wait for.

Environment:

``VIRTUAL_EPOCH``
    The wall time (epoch seconds) the virtual clock starts at.
``VIRTUAL_FREEZE_AT``
    Optional: at this wall time, virtual time stops for good. The process goes on
    answering sockets and signals in real time (a never-released
    :func:`~campaign_runner.clock.hold_time`), and ``frozen at <epoch>`` is written to
    stderr: the moment for a test to signal or kill it.
``STAND_IN``
    The stand-in's settings as JSON: ``{"api_key": ..., "senders": [[id, capacity], ...],
    "window_seconds": ..., "faults": [<fault specs, as --fault takes them>], "seed": ...}``.
``STAND_IN_CONFIG``
    The YAML config the CLI is given: its ``api.base_url`` is set to the stand-in's, whose
    port is only known once it listens.
``STAND_IN_RECORD``
    The stand-in's record (``SandboxConfig.record_path``): every invitation it created, one
    JSON object a line, on disk before its answer leaves, and read back when it starts
    again. What a test counts from, across a ``kill -9`` and a restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import yaml

from campaign_runner.cli import cli
from campaign_runner.clock import TimeHold, VirtualClock, VirtualTimeLoop, hold_time
from campaign_runner.sandbox import SandboxConfig, SandboxSender, SandboxServer, parse_fault_spec


def main(argv: list[str]) -> None:
    loop = VirtualTimeLoop(epoch=float(os.environ["VIRTUAL_EPOCH"]))
    asyncio.set_event_loop(loop)
    spec = json.loads(os.environ["STAND_IN"])
    server = SandboxServer(
        SandboxConfig(
            api_key=spec["api_key"],
            senders=tuple(SandboxSender(i, capacity=c) for i, c in spec["senders"]),
            window_seconds=spec.get("window_seconds", 86_400.0),
            faults=tuple(parse_fault_spec(f) for f in spec.get("faults", ())),
            seed=spec.get("seed", 0),
            clock=VirtualClock(loop).now,
            record_path=os.environ["STAND_IN_RECORD"],
        )
    )
    loop.run_until_complete(server.start())
    config = Path(os.environ["STAND_IN_CONFIG"])
    settings = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    settings.setdefault("api", {})["base_url"] = server.base_url
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    holds: list[TimeHold] = []

    def freeze() -> None:
        holds.append(hold_time(loop))
        print(f"frozen at {loop.epoch + loop.time():.3f}", file=sys.stderr, flush=True)

    if os.environ.get("VIRTUAL_FREEZE_AT"):
        loop.call_at(float(os.environ["VIRTUAL_FREEZE_AT"]) - loop.epoch, freeze)

    def run(main: Coroutine[Any, Any, Any], **_: Any) -> Any:
        return loop.run_until_complete(main)

    asyncio.run = run  # type: ignore[assignment]
    try:
        cli.main(argv, prog_name="campaign-runner")
    finally:
        for hold in holds:
            hold.release()  # time moves again, for the stand-in's own shutdown
        loop.run_until_complete(server.stop())
        loop.close()


if __name__ == "__main__":
    main(sys.argv[1:])
