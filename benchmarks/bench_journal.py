"""Benchmark the results journal: resume-time loading and durable append throughput.

    .venv/bin/python benchmarks/bench_journal.py [--lines 1000000] [--dir DIR] [--repeat 3]

Loading: writes a journal of ``--lines`` lines (one per prospect, mostly ``sent``, some
``failed`` with commas and newlines in the error, some ``pending``), then times, each in a
fresh subprocess, ``load_journal`` (and the resume questions asked of it) against the
baseline ``pandas.read_csv(path, dtype=str, keep_default_na=False)`` of the same file, with
the peak RSS of each process.

Resume: in a fresh process, ``load_journal`` + ``lookup`` of ``--lines`` input URLs (90% of
them in the journal) + ``used_capacity`` + ``pending()`` + ``problems``, against the same
questions answered through ``status_by_url()`` and ``latest`` (a dict and a pandas frame of
every prospect, the runner's way before ``lookup``): time and peak RSS above the imports and
input.

Appending: lines per second with fsync for ``append`` (one sync per line), ``append_many``
of 32, and ``append_async`` with 8 concurrent writers; the runner's pattern (16 requests in
flight, each an awaited ``pending`` line then an outcome line nobody waits for) with
``append_nowait`` against one task per outcome line; and the encoder's cost per line against
the careful per-cell encoder. Fsync cost depends on the file system of ``--dir``: run it
where results files will live.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from campaign_runner import journal as journal_module
from campaign_runner.journal import Journal, JournalRecord

LOAD = """
import json, resource, sys, time
from pathlib import Path
import pandas as pd, pyarrow  # both sides pay for the same imports
from campaign_runner.journal import load_journal
path = Path(sys.argv[1])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
state = load_journal(path)
loaded = time.perf_counter()
done = state.status_by_url()
used = state.used_capacity(time.time() - 86400)
pending = state.pending()
end = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": loaded - start, "resume_seconds": end - start,
                  "rows": len(state.latest), "peak_mib": peak / 1024, "base_mib": base / 1024}))
"""

BASELINE = """
import json, resource, sys, time
import pandas as pd, pyarrow
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
frame = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
end = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": end - start, "rows": len(frame),
                  "peak_mib": peak / 1024, "base_mib": base / 1024}))
"""


RESUME = """
import json, resource, sys, time
from pathlib import Path
import pandas as pd, pyarrow as pa
from campaign_runner.journal import load_journal
path, mode, lines = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
# The input spreadsheet's valid URLs: 90% already in the journal, 10% new.
first = lines // 10
urls = pa.array([f"https://www.linkedin.com/in/prospect-{i:07d}"
                 for i in range(first, first + lines)])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
state = load_journal(path)
if mode == "lookup":
    statuses, attempts = state.lookup(urls)
    sent = pa.compute.sum(pa.compute.equal(statuses, "sent")).as_py()
else:  # a dict and a pandas frame of every prospect
    by_url = dict(state.status_by_url())
    asked = pd.Series(urls.to_pandas())
    statuses = asked.map(by_url).fillna("")
    attempts = asked.map(state.latest.set_index("linkedin_url")["attempts"]).fillna(0)
    sent = int((statuses == "sent").sum())
used = state.used_capacity(time.time() - 86400)
pending = state.pending()
problems = state.problems
end = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": end - start, "peak_mib": peak / 1024, "base_mib": base / 1024,
                  "sent": sent, "pending": len(pending)}))
"""


def write_journal(path: Path, lines: int) -> None:
    now = time.time()
    with Journal.open(path, fsync=False, clock=lambda: now) as journal:
        batch: list[JournalRecord] = []
        for i in range(lines):
            url = f"https://www.linkedin.com/in/prospect-{i:07d}"
            sender = f"sender_{i % 12:02d}"
            if i % 50 == 0:
                record = JournalRecord(
                    i + 2,
                    url,
                    sender,
                    "failed",
                    error='Invalid request, "sender"\nnot found',
                    attempts=1,
                )
            elif i % 997 == 0:
                record = JournalRecord(i + 2, url, sender, "pending")
            else:
                record = JournalRecord(
                    i + 2, url, sender, "sent", request_id=f"conn_{i:09d}", attempts=1
                )
            batch.append(record)
            if len(batch) == 10_000:
                journal.append_many(batch)
                batch = []
        journal.append_many(batch)


def run_child(code: str, path: Path, *args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), *args], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def bench_load(path: Path, repeat: int) -> None:
    ours = [run_child(LOAD, path) for _ in range(repeat)]
    base = [run_child(BASELINE, path) for _ in range(repeat)]
    ours_s = statistics.median(r["seconds"] for r in ours)
    resume_s = statistics.median(r["resume_seconds"] for r in ours)
    base_s = statistics.median(r["seconds"] for r in base)
    ours_peak = max(r["peak_mib"] for r in ours)
    base_peak = max(r["peak_mib"] for r in base)
    print(f"file: {path} ({path.stat().st_size / 2**20:.0f} MiB, {int(base[0]['rows']):,} lines)")
    print(f"median of {repeat} runs, each in a fresh process:")
    print(f"  load_journal            {ours_s:6.2f} s   peak RSS {ours_peak:6.0f} MiB")
    print(f"  + status/capacity/pend. {resume_s:6.2f} s")
    print(f"  pandas.read_csv(str)    {base_s:6.2f} s   peak RSS {base_peak:6.0f} MiB")
    print(
        f"  ratio load_journal / read_csv: time {ours_s / base_s:.2f}x, "
        f"peak RSS {ours_peak / base_peak:.2f}x (imports alone: {ours[0]['base_mib']:.0f} MiB)"
    )


def bench_resume(path: Path, lines: int, repeat: int) -> None:
    runs = {
        mode: [run_child(RESUME, path, mode, str(lines)) for _ in range(repeat)]
        for mode in ("lookup", "dict")
    }
    assert len({(r["sent"], r["pending"]) for rs in runs.values() for r in rs}) == 1
    print(f"resume: load + lookup of {lines:,} URLs + capacity + pending + problems")
    print(f"median of {repeat} runs, each in a fresh process (peak RSS above imports and input):")
    result = {}
    for mode, label in (("lookup", "lookup (Arrow)"), ("dict", "status_by_url + latest")):
        seconds = statistics.median(r["seconds"] for r in runs[mode])
        extra = max(r["peak_mib"] - r["base_mib"] for r in runs[mode])
        result[mode] = (seconds, extra)
        print(f"  {label:24}{seconds:6.2f} s   +{extra:5.0f} MiB")
    (fast_s, fast_mib), (slow_s, slow_mib) = result["lookup"], result["dict"]
    print(f"  ratio lookup / dict: time {fast_s / slow_s:.2f}x, memory {fast_mib / slow_mib:.2f}x")


def records(n: int, offset: int = 0) -> list[JournalRecord]:
    return [
        JournalRecord(i, f"https://www.linkedin.com/in/p-{i}", "s1", "sent", request_id=f"c{i}")
        for i in range(offset, offset + n)
    ]


def bench_append(directory: Path) -> None:
    print(f"durable appends (fsync on) in {directory}:")
    path = directory / "append.csv"
    with Journal.open(path) as journal:
        one = records(300)
        start = time.perf_counter()
        for record in one:
            journal.append(record)
        single = len(one) / (time.perf_counter() - start)

        batches = [records(32, k * 32) for k in range(200)]
        start = time.perf_counter()
        for batch in batches:
            journal.append_many(batch)
        many = 32 * len(batches) / (time.perf_counter() - start)
    concurrent = asyncio.run(bench_async(directory / "async.csv", writers=8, each=300))
    print(f"  append                  {single:9,.0f} lines/s")
    print(f"  append_many(32)         {many:9,.0f} lines/s  ({many / single:.1f}x)")
    print(f"  append_async, 8 writers {concurrent:9,.0f} lines/s  ({concurrent / single:.1f}x)")
    print("runner pattern, 16 in flight, 3000 requests (median of 3; latency of the pending line):")
    for nowait, label in ((True, "append_nowait outcome"), (False, "task per outcome")):
        runs = [asyncio.run(bench_runner(directory / "runner.csv", nowait)) for _ in range(3)]
        rate = statistics.median(r[0] for r in runs)
        p50 = statistics.median(r[1] for r in runs)
        p99 = statistics.median(r[2] for r in runs)
        print(f"  {label:22}{rate:9,.0f} req/s   p50 {p50:5.2f} ms   p99 {p99:5.2f} ms")
    bench_encode(directory)


async def bench_runner(path: Path, nowait: bool, requests: int = 3000) -> tuple[float, ...]:
    path.unlink(missing_ok=True)
    waits: list[float] = []
    tasks: list[asyncio.Task[None]] = []
    async with Journal.open(path, extra_columns=("note_delivered",)) as journal:
        todo = iter(range(requests))

        async def worker() -> None:
            for i in todo:
                url = f"https://www.linkedin.com/in/p-{i}"
                start = time.perf_counter()
                await journal.append_async(JournalRecord(i, url, "s1", "pending"))
                waits.append(time.perf_counter() - start)
                await asyncio.sleep(0)  # the request would leave here
                outcome = JournalRecord(
                    i, url, "s1", "sent", request_id=f"c{i}", extra={"note_delivered": "yes"}
                )
                if nowait:
                    journal.append_nowait(outcome)
                else:
                    tasks.append(asyncio.create_task(journal.append_async(outcome)))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(16)))
        await asyncio.gather(*tasks)
        await journal.aflush()
        seconds = time.perf_counter() - start
    waits.sort()
    return requests / seconds, waits[len(waits) // 2] * 1e3, waits[len(waits) * 99 // 100] * 1e3


def bench_encode(directory: Path) -> None:
    lines = [
        JournalRecord(
            i,
            f"https://www.linkedin.com/in/p-{i}",
            "sender_01",
            "failed" if i % 50 == 0 else "sent",
            request_id=f"conn_{i:09d}",
            error='Invalid request, "sender"\nnot found' if i % 50 == 0 else "",
            attempts=1,
            extra={"note_delivered": "yes"},
        )
        for i in range(20_000)
    ]
    now = time.time()
    with Journal.open(
        directory / "encode.csv", extra_columns=("note_delivered",), clock=lambda: now
    ) as journal:
        start = time.perf_counter()
        fast = [journal.encode([line]) for line in lines]
        fast_s = time.perf_counter() - start
        start = time.perf_counter()
        careful = [journal_module._encode_rows([journal._cells(line)]) for line in lines]
        careful_s = time.perf_counter() - start
    assert fast == careful
    per = 1e6 / len(lines)
    print(f"encoding one line at a time ({len(lines):,} lines):")
    print(f"  encode                  {fast_s * per:6.1f} us/line")
    print(f"  careful per-cell        {careful_s * per:6.1f} us/line  ({careful_s / fast_s:.1f}x)")


async def bench_async(path: Path, writers: int, each: int) -> float:
    async with Journal.open(path) as journal:

        async def writer(w: int) -> None:
            for record in records(each, w * each):
                await journal.append_async(record)

        start = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        return writers * each / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        path = directory / "results.csv"
        start = time.perf_counter()
        write_journal(path, args.lines)
        print(f"wrote {args.lines:,} lines in {time.perf_counter() - start:.1f} s")
        bench_load(path, args.repeat)
        bench_resume(path, args.lines, args.repeat)
        bench_append(directory)


if __name__ == "__main__":
    main()
