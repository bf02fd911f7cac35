"""The rows a run sends: kept in Arrow until they are due, handed out one at a time.

A million-row campaign must not cost a million Python objects before its first
invitation leaves, nor a scan of the rows at every turn. :class:`WorkRows` (what planning
returns) is the Arrow table of the rows to send, in input order. :class:`RowQueue` (what
the engine takes rows from) holds only index arrays into it, one for the shared rows and
one per sender with pinned rows, and turns the next few rows of a queue into
:class:`WorkItem` objects when a sender takes one. A row given back (its sender reached
its daily limit, a stop came before it left) goes to the front of its queue, so that it
is the next one taken.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

import pyarrow as pa
import pyarrow.compute as pc

from campaign_runner.journal import JournalRecord

# The columns of a WorkRows table, as select_rows builds it.
COLUMNS = ("row", "linkedin_url", "note", "sender_id", "attempts", "status")
# Rows turned into WorkItems at a time when a queue runs dry: enough that the Arrow call
# is paid for a batch, few enough that nothing like the whole input becomes objects.
BATCH = 64


@dataclass
class WorkItem:
    """One valid row to send, as the engine carries it."""

    row: int
    url: str
    note: str
    pinned: str
    prior_attempts: int = 0
    initial: str = ""  # its status in the results when the run started ('' for none)
    status: str = ""  # its status now, once this run recorded an outcome

    def record(
        self,
        sender_id: str,
        status: str,
        *,
        extra: Mapping[str, str],
        request_id: str = "",
        error: str = "",
        attempts: int = 0,
    ) -> JournalRecord:
        """A results line for this row; ``attempts`` counts this run's, added to earlier ones."""
        return JournalRecord(
            row=self.row,
            linkedin_url=self.url,
            sender_id=sender_id,
            status=status,
            request_id=request_id,
            error=error,
            attempts=self.prior_attempts + attempts,
            extra=extra,
        )


@dataclass(frozen=True)
class WorkRows:
    """The rows a run sends, in input order: an Arrow table of :data:`COLUMNS`.

    ``sender_id`` is the sender a row is pinned to ('' for any sender).
    """

    table: pa.Table

    @classmethod
    def of(cls, items: list[WorkItem]) -> WorkRows:
        """Rows from work items (for tests and small hand-made runs)."""
        return cls(
            pa.table(
                {
                    "row": pa.array([w.row for w in items], pa.int64()),
                    "linkedin_url": pa.array([w.url for w in items], pa.string()),
                    "note": pa.array([w.note for w in items], pa.string()),
                    "sender_id": pa.array([w.pinned for w in items], pa.string()),
                    "attempts": pa.array([w.prior_attempts for w in items], pa.int64()),
                    "status": pa.array([w.initial for w in items], pa.string()),
                }
            )
        )

    def __len__(self) -> int:
        rows: int = self.table.num_rows
        return rows

    @cached_property
    def groups(self) -> Mapping[str, pa.Array]:
        """The table indices of the rows pinned to each sender ('' for the shared rows),
        each in input order."""
        return dict(_group_indices(self.table["sender_id"]))

    def pinned_counts(self) -> Counter[str]:
        """Rows per pinned sender ('' for the shared rows)."""
        return Counter({pinned: len(indices) for pinned, indices in self.groups.items()})

    def first(self, count: int, pinned: str) -> list[WorkItem]:
        """The first ``count`` rows pinned to ``pinned`` ('' for the shared ones)."""
        indices = self.groups.get(pinned)
        if indices is None:
            return []
        return _items(self.table.take(indices.slice(0, count)))

    def head(self, count: int) -> list[WorkItem]:
        """The first ``count`` rows, whatever they are pinned to."""
        return _items(self.table.slice(0, count))

    def queue(self) -> RowQueue:
        return RowQueue(self.table, self.groups)


def _items(table: pa.Table) -> list[WorkItem]:
    return [
        WorkItem(
            row=r["row"],
            url=r["linkedin_url"],
            note=r["note"],
            pinned=r["sender_id"],
            prior_attempts=r["attempts"],
            initial=r["status"],
        )
        for r in table.select(COLUMNS).to_pylist()
    ]


class _Chunks:
    """A table's record batches, for taking a few rows by index.

    ``Table.take`` on a table of hundreds of chunks (a million rows as read) costs
    milliseconds whatever the number of rows taken; a batch's ``take`` costs microseconds.
    """

    def __init__(self, table: pa.Table) -> None:
        self._batches = table.select(COLUMNS).to_batches()
        self._starts = list(itertools.accumulate((len(b) for b in self._batches), initial=0))

    def items(self, indices: list[int]) -> list[WorkItem]:
        """The rows at ``indices`` (ascending), as work items."""
        items: list[WorkItem] = []
        for chunk, group in itertools.groupby(
            indices, key=lambda i: bisect.bisect_right(self._starts, i) - 1
        ):
            start = self._starts[chunk]
            local = pa.array([i - start for i in group], pa.int64())
            items += _items(pa.Table.from_batches([self._batches[chunk].take(local)]))
        return items


class _Lane:
    """One queue: the table indices of its rows not yet handed out, a small batch of
    them already made objects, and the rows given back (handed out first)."""

    __slots__ = ("_back", "_indices", "_next", "_ready")

    def __init__(self, indices: pa.Array) -> None:
        self._indices = indices
        self._next = 0  # into _indices
        self._ready: deque[WorkItem] = deque()
        self._back: deque[WorkItem] = deque()

    def __len__(self) -> int:
        return len(self._back) + len(self._ready) + len(self._indices) - self._next

    def take(self, chunks: _Chunks) -> WorkItem | None:
        if self._back:
            return self._back.popleft()
        if not self._ready and self._next < len(self._indices):
            batch = self._indices.slice(self._next, BATCH).to_pylist()
            self._next += len(batch)
            self._ready.extend(chunks.items(batch))
        return self._ready.popleft() if self._ready else None

    def give_back(self, work: WorkItem) -> None:
        self._back.appendleft(work)


class RowQueue:
    """The engine's queues over :class:`WorkRows`: each sender's pinned rows, then the
    shared ones. ``len()`` is O(1): the rows not handed out, and those given back."""

    def __init__(self, table: pa.Table, groups: Mapping[str, pa.Array]) -> None:
        self._chunks = _Chunks(table)
        self._lanes = {pinned: _Lane(indices) for pinned, indices in groups.items()}
        self._shared = self._lanes.setdefault("", _Lane(pa.array([], pa.uint64())))
        self._left: int = table.num_rows

    def __len__(self) -> int:
        return self._left

    def has_work(self, sender_id: str) -> bool:
        """Whether ``sender_id`` could take a row now: its own, or a shared one."""
        own = self._lanes.get(sender_id)
        return bool(self._shared) or (own is not None and bool(own))

    def take(self, sender_id: str) -> WorkItem | None:
        """The next row for ``sender_id``: its own pinned rows first, then the shared."""
        own = self._lanes.get(sender_id) if sender_id else None
        work = (own.take(self._chunks) if own else None) or self._shared.take(self._chunks)
        if work is not None:
            self._left -= 1
        return work

    def give_back(self, work: WorkItem) -> None:
        """Put a row taken earlier back at the front of its queue."""
        self._lanes[work.pinned].give_back(work)
        self._left += 1


def _group_indices(pinned: pa.ChunkedArray) -> Iterator[tuple[str, pa.Array]]:
    """The row indices of each pinned value, each group in input order: one stable sort,
    not a filter per sender (a thousand senders over a million rows)."""
    order = pc.array_sort_indices(pinned)  # Arrow's sorts are stable
    # Sorted, each value's rows are one run; value_counts lists values as they first
    # appear, which is the runs' order.
    start = 0
    for group in pc.value_counts(pinned.take(order)).to_pylist():
        yield group["values"], order.slice(start, group["counts"])
        start += group["counts"]
