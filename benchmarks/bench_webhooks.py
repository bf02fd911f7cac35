"""Benchmark the webhook receiver: how long SendPilot waits for its 2xx.

    .venv/bin/python benchmarks/bench_webhooks.py [--events 500] [--concurrency 16] [--dir DIR]

Posts ``--events`` signed acceptances over loopback, one at a time and then
``--concurrency`` at once, to the receiver (signature check, parse, durable SQLite
commit in a thread, answer) and, as the baseline, to an aiohttp route that answers 200
at once. Prints the median and 99th percentile of each, and their ratio. The commit's
fsync depends on the file system of ``--dir``: run it where the ledger will live.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from campaign_runner.config import Secret
from campaign_runner.ledger import SQLiteLedger
from campaign_runner.sandbox import sign
from campaign_runner.webhooks import Receiver, WebhookServer, signing_keys

SECRET = "whsec_YmVuY2htYXJrIHNlY3JldA=="


def body(n: int) -> bytes:
    event = {
        "eventId": f"evt_{n}",
        "eventType": "connection_request.accepted",
        "timestamp": "2026-11-27T10:00:00.000Z",
        "data": {
            "linkedinUrl": f"https://www.linkedin.com/in/person-{n}",
            "senderId": "s1",
            "acceptedAt": "2026-11-27T10:00:00.000Z",
        },
    }
    return json.dumps(event).encode()


async def post_all(url: str, bodies: list[bytes], concurrency: int) -> list[float]:
    """Each delivery's seconds from send to answer."""
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as http:

        async def one(raw: bytes) -> float:
            async with gate:
                headers = {"Webhook-Signature": sign(SECRET, int(time.time()), raw)}
                start = time.perf_counter()
                async with http.post(url, data=raw, headers=headers) as response:
                    await response.read()
                    assert response.status == 200, response.status
                return time.perf_counter() - start

        return list(await asyncio.gather(*(one(b) for b in bodies)))


async def baseline_url(runner_box: list[web.AppRunner]) -> str:
    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    runner_box.append(runner)
    port = runner.addresses[0][1]
    return f"http://127.0.0.1:{port}/hook"


def summary(name: str, seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    median = statistics.median(ordered) * 1000
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    print(f"  {name:<28} median {median:6.2f} ms   p99 {p99:6.2f} ms")
    return median, p99


async def main(events: int, concurrency: int, folder: Path) -> None:
    runners: list[web.AppRunner] = []
    base = await baseline_url(runners)
    with SQLiteLedger(folder / "bench-webhooks.sqlite3") as ledger:
        receiver = Receiver(ledger, signing_keys([Secret(SECRET)]))
        async with WebhookServer(receiver) as server:
            for label, width, offset in (("one at a time", 1, 0), ("at once", concurrency, 1)):
                bodies = [body(offset * events + n) for n in range(events)]
                print(f"{events} deliveries, {label} ({width} in flight):")
                got = summary(
                    "receiver (verify + commit)", await post_all(server.url, bodies, width)
                )
                ref = summary("baseline (200 at once)", await post_all(base, bodies, width))
                print(f"  ratio: median {got[0] / ref[0]:.1f}x, p99 {got[1] / ref[1]:.1f}x")
            assert len(ledger.acceptances()) == 2 * events
    for runner in runners:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        asyncio.run(main(args.events, args.concurrency, Path(tmp)))
