"""What a results file says: the latest line per prospect, and the lines that used capacity.

Identity: ``linkedin_url`` is the prospect across runs; the latest line per URL wins.
``invalid`` and ``duplicate`` are verdicts about a spreadsheet *row*, so they never hide a
send outcome (``pending``/``sent``/``already_connected``/``failed``/``unknown``) of the same
URL: a row that duplicates an already-sent prospect must not make that prospect look unsent.
Lines with an empty ``linkedin_url`` (a cell that was not a URL at all) are keyed by ``row``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from campaign_runner.capacity import CapacityLines
from campaign_runner.journal.format import (
    CAPACITY_STATUSES,
    PENDING,
    ROW_VERDICTS,
)


@dataclass(frozen=True)
class JournalState:
    """What a results file says: the latest line per prospect, plus capacity accounting.

    Every line is kept in Arrow; the pandas views are built on first use only, so a resume
    that asks :meth:`lookup`, :meth:`capacity_lines`, :meth:`pending` and :attr:`problems`
    never converts the whole file to pandas.

    ``latest`` has one line per ``linkedin_url`` (see the module docstring for the rule),
    in file order of the winning line, with columns ``JOURNAL_COLUMNS`` plus any extra
    columns, ``row``/``attempts`` as integers and every other column as strings.
    ``problems`` holds every ``invalid``/``duplicate`` line (same columns), one per
    (row, status, linkedin_url), the last one winning, so a rerun can skip recording them again.
    """

    path: Path
    lines: int
    # What reading set aside: an unfinished last line an interrupted run left, or ''.
    repair: str
    _table: pa.Table = field(repr=False)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self._table.column_names)

    def distinct(self, column: str) -> set[str]:
        """The distinct values of ``column`` over every line (``{''}`` for lines of a file
        without that column)."""
        if not self.lines:
            return set()
        if column not in self._table.column_names:
            return {""}
        return {str(v) for v in pc.unique(self._table[column]).to_pylist()}

    @cached_property
    def latest(self) -> pd.DataFrame:
        """One line per prospect as a DataFrame (built on first use, then kept)."""
        return _latest(self._table)

    @cached_property
    def problems(self) -> pd.DataFrame:
        """Every row verdict, one per (row, status, linkedin_url), the last one winning."""
        verdicts: pd.DataFrame = self._table.filter(_is_verdict(self._table["status"])).to_pandas()
        verdicts = verdicts.drop_duplicates(["row", "status", "linkedin_url"], keep="last")
        return verdicts.reset_index(drop=True)

    def status_by_url(self) -> pd.Series:
        """Latest *send outcome* per ``linkedin_url``: a Series of statuses indexed by URL.

        ``invalid``/``duplicate`` lines are left out: they judge a spreadsheet row, which the
        runner re-validates on every run, and must not stop the prospect's own row from being
        sent (a duplicate recorded before the original row was sent, a row fixed by hand).
        Lines with an empty URL are left out too. Builds :attr:`latest`; prefer
        :meth:`lookup` for large files.
        """
        latest = self.latest
        keep = (latest["linkedin_url"] != "") & ~latest["status"].isin(sorted(ROW_VERDICTS))
        known = latest[keep]
        return pd.Series(known["status"].to_numpy(), index=known["linkedin_url"], name="status")

    def outcome_table(self) -> pa.Table:
        """The latest send outcome per prospect (no row verdicts, no lines without a URL),
        in file order; for bringing a results file into the workspace ledger."""
        latest = self.latest
        keep = (latest["linkedin_url"] != "") & ~latest["status"].isin(sorted(ROW_VERDICTS))
        return pa.Table.from_pandas(latest[keep], preserve_index=False)

    def lookup(self, urls: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        """Latest send outcome of each URL: ``(statuses, attempts)``, aligned with ``urls``.

        Same rule as :meth:`status_by_url` (row verdicts and empty URLs are not prospect
        statuses); a URL without a send outcome (or null) gets ``""`` and ``0``. Computed in
        Arrow and NumPy without a Python object per line, so a million URLs against a
        million lines stay cheap in time and memory.
        """
        if not pa.types.is_string(urls.type):
            urls = pc.cast(urls, pa.string())
        # The journal's own URL column is the value set, chunks and all: a reordered or
        # filtered copy of it would cost as much memory as the hash table itself. So
        # index_in finds each URL's *first* line, which the table below maps to the
        # latest send outcome of the same URL (-1: none).
        latest = np.append(self._latest_outcome_by_first_line(), -1)
        found = pc.index_in(urls, value_set=self._table["linkedin_url"]).fill_null(-1)
        line = latest[_to_numpy(found)]
        picked = pa.array(line, pa.int64(), mask=line < 0)
        statuses = pc.fill_null(pc.take(self._table["status"], picked), "")
        attempts = pc.fill_null(pc.take(self._table["attempts"], picked), 0)
        return _flat(statuses), _flat(attempts)

    def _latest_outcome_by_first_line(self) -> np.ndarray:
        """For each line that is its URL's first, the URL's latest send outcome line."""
        url = self._table["linkedin_url"]
        first = _to_numpy(pc.index_in(url, value_set=url))
        # Lines that can be a prospect's status: a send outcome with a URL.
        keep = pc.and_(pc.invert(_is_verdict(self._table["status"])), pc.not_equal(url, ""))
        lines = np.flatnonzero(_to_numpy(keep))
        latest = np.full(len(first), -1, dtype=np.int64)
        np.maximum.at(latest, first[lines], lines)
        return latest

    def pending(self) -> pd.DataFrame:
        """Prospects whose latest line is ``pending``: a run stopped while they were in flight."""
        table = self._table
        status = table["status"]
        candidates = np.flatnonzero(_to_numpy(pc.equal(status, PENDING)))
        if len(candidates) == 0:
            none: pd.DataFrame = table.slice(0, 0).to_pandas()
            return none
        # Only lines of the same prospects can outrank a pending line: look at those alone.
        keys = _keys(table)
        wanted = pc.unique(keys.take(pa.array(candidates)))
        related = pc.and_(pc.is_in(keys, value_set=wanted), pc.invert(_is_verdict(status)))
        lines = np.flatnonzero(_to_numpy(related))
        # Send outcomes outrank verdicts, so the last related line per key is the latest.
        last = pd.Series(lines).groupby(_to_numpy(keys.take(pa.array(lines))), sort=False).max()
        winners = np.sort(last.to_numpy())
        winners = winners[_to_numpy(pc.equal(status.take(pa.array(winners)), PENDING))]
        pending: pd.DataFrame = table.take(pa.array(winners, pa.int64())).to_pandas()
        return pending

    def capacity_lines(self) -> CapacityLines:
        """Every line (not only the latest) whose invitation (may have) left: the lines that
        count against their sender's capacity (:mod:`campaign_runner.capacity`)."""
        keep = pc.is_in(self._table["status"], value_set=pa.array(sorted(CAPACITY_STATUSES)))
        return CapacityLines(
            pa.table(
                {
                    "sender_id": pc.filter(self._table["sender_id"], keep),
                    "timestamp": pc.filter(self._table["timestamp"], keep),
                }
            )
        )


def _is_verdict(status: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    return pc.is_in(status, value_set=pa.array(sorted(ROW_VERDICTS)))


def _to_numpy(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False))


def _flat(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _keys(table: pa.Table) -> pa.ChunkedArray | pa.Array:
    """The prospect key of each line: its URL, or its row when the URL is empty."""
    url = table["linkedin_url"]
    no_url = pc.equal(url, "")
    if not pc.any(no_url).as_py():
        return url
    by_row = pc.binary_join_element_wise("\x00row", pc.cast(table["row"], pa.string()), "")
    return pc.if_else(no_url, by_row, url)


def _latest(table: pa.Table) -> pd.DataFrame:
    """One line per prospect: the last send outcome, else the last row verdict."""
    n = table.num_rows
    # Lines without a URL cannot be a prospect: they are keyed by their spreadsheet row.
    codes, uniques = pd.factorize(_keys(table).to_pandas(), sort=False)
    verdict = _is_verdict(table["status"])
    # A send outcome outranks a row verdict; among equals the later line wins.
    score = np.arange(n, dtype=np.int64) + np.where(verdict.to_numpy(zero_copy_only=False), 0, n)
    best = np.full(len(uniques), -1, dtype=np.int64)
    np.maximum.at(best, codes, score)
    if len(uniques) == n:  # one line per prospect: nothing to drop
        latest: pd.DataFrame = table.to_pandas()
        return latest
    winners = np.sort(best % n) if n else best
    latest = table.take(pa.array(winners)).to_pandas()
    return latest
