"""One run's use of the ledger: claims awaited, outcomes queued, all group-committed.

Like the results journal's appends, every claim and every outcome goes through one writer
thread, which takes whatever is queued and commits it in one transaction (one sync): a
claim that waits for its answer costs one commit shared with the claims queued at the
same moment, and the event loop never blocks on the database. Outcomes are not awaited:
if one is lost in a crash, the attempt stays ``pending`` in the ledger, which holds the
person and counts against the sender, which is the safe side.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from campaign_runner.clock import TimeHold, hold_time
from campaign_runner.ledger.base import Claim, ClaimRequest, Ledger, SenderLimits, Settle


@dataclass
class _Item:
    claim: ClaimRequest | None = None
    settle: Settle | None = None
    done: asyncio.Future[Claim | None] | None = None
    # Keeps a virtual-time loop from jumping while the thread commits it.
    hold: TimeHold | None = None


class LedgerSession:
    """A campaign's claims and outcomes during one run; call :meth:`aclose` at the end."""

    def __init__(
        self,
        ledger: Ledger,
        campaign_id: int,
        limits: Mapping[str, SenderLimits],
        window_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.ledger = ledger
        self.campaign_id = campaign_id
        self._limits = dict(limits)
        self._window = window_seconds
        self._clock = clock
        self._inbox: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lost: Exception | None = None  # a failed outcome nobody was told of yet

    async def claim(self, request: ClaimRequest) -> Claim:
        """Claim a person for a sender; durable before it returns."""
        self._raise_lost()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Claim | None] = loop.create_future()
        self._put(loop, _Item(claim=request, done=done))
        result = await done
        assert result is not None
        return result

    def settle_nowait(self, outcome: Settle) -> None:
        """Queue an outcome for the next commit, without waiting for it."""
        self._raise_lost()
        self._put(asyncio.get_running_loop(), _Item(settle=outcome))

    async def aclose(self) -> None:
        """Commit everything queued, stop the thread; raises a lost outcome's error."""
        if self._thread is not None:
            loop = asyncio.get_running_loop()
            done: asyncio.Future[Claim | None] = loop.create_future()
            self._put(loop, _Item(done=done))  # a marker: settled after everything before it
            await asyncio.shield(done)
            self._inbox.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        self._raise_lost()

    def _raise_lost(self) -> None:
        lost, self._lost = self._lost, None
        if lost is not None:
            raise lost

    def _put(self, loop: asyncio.AbstractEventLoop, item: _Item) -> None:
        self._loop = loop
        item.hold = hold_time(loop)
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name="ledger", daemon=True)
            self._thread.start()
        self._inbox.put(item)

    def _main(self) -> None:
        while True:
            first = self._inbox.get()
            if first is None:
                return
            batch = [first]
            while True:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._inbox.put(None)  # seen after this batch settles
                    break
                batch.append(item)
            results = self._commit(batch)
            assert self._loop is not None
            try:
                self._loop.call_soon_threadsafe(self._settle, batch, results)
            except RuntimeError:
                return  # the loop is gone: nobody is left to tell

    def _commit(self, batch: list[_Item]) -> list[Claim | Exception | None]:
        """One transaction for the outcomes, then one for the claims.

        Outcomes first: a failed, deferred or already-connected attempt frees its sender's
        slot, which a claim of the same batch may then use. (Claims first would be safe
        too, only stricter.)
        """
        results: list[Claim | Exception | None] = [None] * len(batch)
        claims = [(i, it.claim) for i, it in enumerate(batch) if it.claim is not None]
        settles = [it.settle for it in batch if it.settle is not None]
        now = self._clock()
        if settles:
            try:
                self.ledger.settle(settles, now)
            except Exception as exc:
                self._lost = self._lost or exc
        if claims:
            try:
                granted = self.ledger.claim(
                    self.campaign_id,
                    [c for _, c in claims],
                    self._limits,
                    self._window,
                    self._clock,
                )
                for (i, _), claim in zip(claims, granted, strict=True):
                    results[i] = claim
            except Exception as exc:  # handed to each waiting claimant
                for i, _ in claims:
                    results[i] = exc
        return results

    def _settle(self, batch: list[_Item], results: list[Claim | Exception | None]) -> None:
        for item, result in zip(batch, results, strict=True):
            if item.hold is not None:
                item.hold.release()
            if item.done is None or item.done.done():
                continue
            if isinstance(result, Exception):
                item.done.set_exception(result)
            else:
                item.done.set_result(result)
