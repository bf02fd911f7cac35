"""Writing the results file: the lock, durable appends, group commit, and its place on disk.

Durability: each :meth:`Journal.append` is one ``write`` followed by ``fdatasync`` before it
returns; :meth:`Journal.append_many` shares one write and one sync between several records,
and so do records queued together by :meth:`Journal.append_async` (which waits for its
record) and :meth:`Journal.append_nowait` (which does not): one writer thread takes whatever
is queued, writes it and syncs it (group commit). A crash can therefore only tear the *last*
record, which :mod:`.recovery` recognises and :meth:`Journal.open` cuts off.

Locking: :meth:`Journal.open` takes an exclusive ``flock`` on the results file itself; the
kernel drops it when the process dies, so ``kill -9`` leaves no stale lock. A process that
opens the same file again and again (``run --wait``, between its idle periods) keeps the
lock in between with :meth:`Journal.keep_lock`, so that no other run starts meanwhile.

Place: the journal writes through the file it opened and locked. When the path stops naming
that file (an editor saved a new copy, ``sed -i``, a sync client or ``mv`` replaced it, or it
was deleted), appending on would write into a file nobody will read again. Before every
write the journal checks that the path still names its file. Once it does not, records
that await durability (a ``pending`` line, which a request waits for) are refused with
:class:`JournalDisplacedError`, so no new request leaves; outcomes of requests already out
are still written to the old file; and :meth:`Journal.aclose` then brings this run's lines
back to the path: appended to the new file (locked, when it is a results file with the same
columns), written as the whole old file where the path is gone, or kept beside it.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from campaign_runner.clock import TimeHold, hold_time
from campaign_runner.csvio import escape_cell
from campaign_runner.errors import JournalDisplacedError, JournalError, JournalLockedError
from campaign_runner.journal.format import (
    JOURNAL_COLUMNS,
    JournalRecord,
    LineEncoder,
    canonical_header,
    encode_rows,
)
from campaign_runner.journal.reader import load_with_layout
from campaign_runner.journal.recovery import Layout, read_layout, records
from campaign_runner.journal.state import JournalState


@dataclass(frozen=True)
class _Queued:
    data: bytes
    done: asyncio.Future[None] | None  # its awaiting caller's (None: not awaited)
    # Keeps a virtual-time loop from jumping while the writer thread works on it.
    hold: TimeHold


class Journal:
    """An open, locked results journal that appends durable records.

    Create it with :meth:`Journal.open`, which also reads the file (:attr:`state`) under the
    lock. Appends from plain code (:meth:`append`, :meth:`append_many`) and from coroutines
    (:meth:`append_async`, :meth:`append_nowait`) may be mixed; each path keeps its own call
    order.
    """

    def __init__(
        self,
        path: Path,
        fd: int,
        columns: tuple[str, ...],
        state: JournalState,
        *,
        fsync: bool,
        clock: Callable[[], float],
    ) -> None:
        self.path = path
        self.columns = columns
        self.state = state  # what the file said when it was opened, before any change
        self._fd = fd
        self._fsync = fsync
        self._encoder = LineEncoder(path, columns, clock)
        self._identity = _identity(os.fstat(fd))
        self._run_start = os.fstat(fd).st_size  # where this journal's own lines begin
        self._write_lock = threading.Lock()
        self._broken: OSError | None = None
        self._displaced = ""  # how the path stopped naming our file, once it has
        self._closed = False
        self._lost: Exception | None = None  # a failed append_nowait nobody was told of yet
        # Group commit: records queued for the writer thread, and how many await settling.
        self._inbox: queue.SimpleQueue[_Queued | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsettled = 0

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        extra_columns: Sequence[str] = (),
        fsync: bool = True,
        clock: Callable[[], float] = time.time,
        accept: Callable[[JournalState], None] | None = None,
        kept: KeptLock | None = None,
    ) -> Journal:
        """Open (creating if needed) and lock the results file at ``path``, and read it.

        The file is read under the lock before anything is changed, and refused as it is
        when it cannot be used (:class:`JournalError`, with ``file:line: reason``). A missing
        or empty file gets the header ``JOURNAL_COLUMNS + extra_columns``. An existing file
        keeps its header when it has every needed column; otherwise it is rewritten once
        (atomically) with the missing columns added. An unfinished last line that an
        interrupted append left is cut off (:attr:`JournalState.repair` says so). Raises
        :class:`JournalLockedError` if another process (or another open journal in this
        process) holds the file. ``accept(state)``, when given, may refuse the file by
        raising, before anything in it is changed. ``kept``, a lock an earlier journal of
        this process kept (:meth:`keep_lock`), is taken over, so that the file was never
        unlocked in between.
        """
        path = Path(path)
        fd = kept.take(path, fsync) if kept is not None else None
        try:
            if fd is None:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise JournalError(f"{path}: cannot open the results file: {exc.strerror}") from exc
        try:
            _lock(fd, path)
            state, layout = load_with_layout(path)
            if accept is not None:
                accept(state)
            fd, columns = _prepare(path, fd, layout, tuple(extra_columns), fsync)
        except OSError as exc:
            os.close(fd)
            raise JournalError(f"{path}: cannot prepare the results file: {exc.strerror}") from exc
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, columns, state, fsync=fsync, clock=clock)

    def keep_lock(self) -> KeptLock:
        """The file's lock, held on after this journal is closed, until the next
        :meth:`open` of the same file takes it over (or :meth:`KeptLock.close`)."""
        with self._write_lock:
            self._check_usable()
            # flock belongs to the open file, not to the descriptor: a duplicate holds it.
            return KeptLock(os.dup(self._fd))

    def encode(self, records: Sequence[JournalRecord]) -> bytes:
        """The exact bytes :meth:`append_many` would write for ``records``."""
        return self._encoder.encode(records)

    # -- writing

    def _write(self, data: bytes) -> None:
        with self._write_lock:
            self._check_usable()
            try:
                _write_all(self._fd, data)
                if self._fsync:
                    os.fdatasync(self._fd)
            except OSError as exc:
                self._broken = exc
                raise JournalError(
                    f"{self.path}: cannot write the results file: {exc.strerror}"
                ) from exc

    def _check_usable(self) -> None:
        if self._closed:
            raise JournalError(f"{self.path}: the results file is closed")
        if self._broken is not None:
            # After a failed write or fsync the file's state is unknown (fsyncgate):
            # refuse to continue rather than pretend later records are durable.
            raise JournalError(f"{self.path}: an earlier write failed: {self._broken.strerror}")

    def _check_place(self) -> str:
        """How the path stopped naming the file this journal writes ('' while it does)."""
        if not self._displaced:
            try:
                here = _identity(os.stat(self.path))
            except FileNotFoundError:
                self._displaced = "deleted"
            except OSError:
                return ""  # cannot tell (a permission change, say): keep writing
            else:
                if here != self._identity:
                    self._displaced = "replaced"
        return self._displaced

    def _displaced_error(self) -> JournalDisplacedError:
        return JournalDisplacedError(
            f"{self.path} was {self._displaced} while this run was writing it (an editor's "
            "save, sed -i, a sync client or mv?): no further invitation was sent"
        )

    def append(self, record: JournalRecord) -> None:
        """Write one record and make it durable (write, then fdatasync) before returning."""
        self.append_many([record])

    def append_many(self, records: Sequence[JournalRecord]) -> None:
        """Write several records with one write and one fdatasync (group commit).

        Refused with :class:`JournalDisplacedError` once the path no longer names the file.
        """
        if not records:
            return
        if self._check_place():
            raise self._displaced_error()
        self._write(self.encode(records))

    async def append_async(self, record: JournalRecord) -> None:
        """Append from a coroutine; returns once the record is durable.

        Records queued at the same moment (by this and :meth:`append_nowait`) share one write
        and one sync, done by the journal's writer thread so the event loop keeps running.
        Records reach the file in the order of the calls. A write error is raised to every
        caller whose record was in the failed batch. If the caller is cancelled, its record
        is still written. Once the path no longer names the file, the record is not written
        and :class:`JournalDisplacedError` is raised: whoever waits for durability is about
        to act on it.
        """
        self._raise_lost()
        if self._displaced:
            raise self._displaced_error()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._enqueue(loop, self.encode([record]), done)  # timestamp taken now, in call order
        await done

    def append_nowait(self, record: JournalRecord) -> None:
        """Queue a record for the next group commit without waiting for it (no task needed).

        Call it from the event loop. It is written in call order with :meth:`append_async`
        records, also after the path stopped naming the file (an outcome must not be lost;
        :meth:`aclose` brings it back). A write error is not lost: the journal then refuses
        further appends, and the error is raised once, by the next :meth:`append_nowait`,
        :meth:`append_async`, :meth:`aflush` or :meth:`aclose` (unless a caller awaiting a
        record of the same batch got it already). :meth:`aflush` and :meth:`aclose` wait
        for it.
        """
        self._raise_lost()
        self._check_usable()
        self._enqueue(asyncio.get_running_loop(), self.encode([record]), None)

    def _raise_lost(self) -> None:
        lost, self._lost = self._lost, None
        if lost is not None:
            raise lost

    def _enqueue(
        self, loop: asyncio.AbstractEventLoop, data: bytes, done: asyncio.Future[None] | None
    ) -> None:
        if self._unsettled and loop is not self._loop:
            raise RuntimeError("records are still queued from another event loop")
        self._loop = loop
        self._unsettled += 1
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._writer_main, name=f"journal {self.path.name}", daemon=True
            )
            self._writer.start()
        self._inbox.put(_Queued(data, done, hold_time(loop)))

    def _writer_main(self) -> None:
        # One long-lived thread: it starts the next batch as soon as a sync ends, without
        # waiting for the event loop to schedule a task (and skips to_thread's hop).
        inbox = self._inbox
        while True:
            first = inbox.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while True:
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            refused: list[_Queued] = []
            if self._check_place():
                # Awaited records wait to act on their durability: refuse them. Outcomes
                # (not awaited) and flush markers (no data) still go to the old file.
                refused = [item for item in batch if item.done is not None and item.data]
                batch = [item for item in batch if item.done is None or not item.data]
            data = b"".join(item.data for item in batch)
            error: Exception | None = None
            if data:
                try:
                    self._write(data)
                except Exception as exc:  # handed to the waiting callers
                    error = exc
            try:
                assert self._loop is not None
                self._loop.call_soon_threadsafe(self._settle, batch, error, refused)
            except RuntimeError:
                return  # the loop is gone: nobody is left to tell
            if stop:
                return

    def _settle(
        self, batch: list[_Queued], error: Exception | None, refused: list[_Queued]
    ) -> None:
        self._unsettled -= len(batch) + len(refused)
        for item in (*batch, *refused):
            item.hold.release()
        for item in refused:
            if item.done is not None and not item.done.done():
                item.done.set_exception(self._displaced_error())
        told = False
        for item in batch:
            done = item.done
            if done is None or done.done():
                continue  # not awaited, or a cancelled caller: written all the same
            if error is not None:
                done.set_exception(error)
                told = True
            else:
                done.set_result(None)
        if told:
            self._lost = None  # a caller now knows the journal failed
        elif error is not None and any(item.done is None for item in batch):
            self._lost = self._lost or error

    # -- closing

    async def aflush(self) -> None:
        """Wait until every queued record (awaited or not) is durable.

        Raises the write error of a record queued by :meth:`append_nowait`, if any.
        """
        if self._unsettled:
            loop = asyncio.get_running_loop()
            marker: asyncio.Future[None] = loop.create_future()
            self._enqueue(loop, b"", marker)  # written after everything queued before it
            await asyncio.shield(marker)
        self._raise_lost()

    async def aclose(self) -> None:
        """Flush the queue, then close (releases the lock), also when the flush raises.

        Raises :class:`JournalDisplacedError`, after bringing this run's lines back to the
        path, when the path stopped naming the file during the run.
        """
        try:
            await self.aflush()
        finally:
            if not self._unsettled:
                self.close()

    def close(self) -> None:
        """Close the file and release the lock. Raises if async records are still queued,
        and :class:`JournalDisplacedError` as :meth:`aclose` does."""
        if self._closed:
            return
        if self._unsettled:
            raise RuntimeError("records are still queued; use `await journal.aclose()`")
        if self._writer is not None:
            self._inbox.put(None)
            self._writer.join()
            self._writer = None
        where = ""
        if self._check_place() and self._broken is None:
            where = self._bring_back()
        with self._write_lock:
            self._closed = True
            os.close(self._fd)
        if self._displaced:
            raise JournalDisplacedError(f"{self._displaced_error()}; {where}")

    def _bring_back(self) -> str:
        """Put this run's lines where the next run reads them; says where they went."""
        if self._displaced == "deleted":
            _restore(self.path, self._fd, self._fsync)
            return f"the file was restored at {self.path}, with every line of this run"
        lines = _read_from(self._fd, self._run_start)
        if not lines:
            return f"this run had written nothing to it; {self.path} was left as it is"
        try:
            _append_to_replacement(self.path, self.columns, lines, self._fsync)
        except (OSError, JournalError) as exc:
            kept = _keep_beside(self.path, self._fd, self._fsync)
            return (
                f"its lines could not be added to the new file ({exc}), so the whole old "
                f"file was kept as {kept}: merge it into {self.path} before running again"
            )
        return f"this run's lines were appended to the new {self.path}"

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Journal:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class KeptLock:
    """A results file's lock, held by this process between two journals on the file.

    Made by :meth:`Journal.keep_lock`; :meth:`Journal.open` takes it over. If the path
    stopped naming the locked file meanwhile, the lock is let go and the file at the path
    is opened as usual: a replaced file (an editor's save) is the one to read now, and a
    deleted (or moved) one is put back first, from the descriptor this lock kept open.
    """

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def take(self, path: Path, fsync: bool) -> int | None:
        """The locked descriptor, when ``path`` still names its file; else None, with the
        lock released (and a deleted file restored at ``path``)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return None
        try:
            if not path.exists():  # deleted, or moved away, while the process waited
                _restore(path, fd, fsync)
            elif _identity(os.stat(path)) == _identity(os.fstat(fd)):
                return fd
        except OSError:
            pass  # the path cannot be read: opening it says why
        os.close(fd)
        return None

    def close(self) -> None:
        """Release the lock (harmless once taken over or closed)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def refill(self, other: KeptLock) -> None:
        """Hold ``other``'s lock from now on: a journal that took this one over, then
        could not be used (its round failed to plan), hands the lock back for the next try."""
        self.close()
        self._fd, other._fd = other._fd, None


# --------------------------------------------------------------------------- the file


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(path: Path) -> None:
    # Makes a new or replaced directory entry durable, not only the file's contents.
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_holder(fd: int) -> int | None:
    """Best effort (Linux): the pid holding a flock on ``fd``'s file, from /proc/locks."""
    st = os.fstat(fd)
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == wanted:
            return int(parts[4]) if parts[4].isdigit() else None
    return None


def _lock(fd: int, path: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _lock_holder(fd)
        who = f" (pid {holder})" if holder is not None else ""
        raise JournalLockedError(
            f"{path}: another campaign-runner run is using this results file{who}"
        ) from None


def _read_from(fd: int, offset: int) -> bytes:
    size = os.fstat(fd).st_size
    return os.pread(fd, size - offset, offset) if size > offset else b""


def _copy_to_new(path: Path, fd: int, fsync: bool) -> Path:
    """The whole of ``fd``'s file in a new hidden file beside ``path``; returns its path."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.restore")
    with open(tmp, "wb") as out:
        offset, size = 0, os.fstat(fd).st_size
        while offset < size:
            chunk = os.pread(fd, min(1 << 24, size - offset), offset)
            out.write(chunk)
            offset += len(chunk)
        out.flush()
        if fsync:
            os.fsync(out.fileno())
    return tmp


def _restore(path: Path, fd: int, fsync: bool) -> None:
    """Put the deleted file back at ``path``, unless something new is there by now."""
    tmp = _copy_to_new(path, fd, fsync)
    try:
        os.link(tmp, path)  # fails if the path was taken meanwhile: never clobber it
    finally:
        tmp.unlink()
    if fsync:
        _fsync_dir(path)


def _keep_beside(path: Path, fd: int, fsync: bool) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = path.with_name(f"{path.name}.kept-{stamp}.csv")
    tmp = _copy_to_new(path, fd, fsync)
    os.replace(tmp, kept)
    if fsync:
        _fsync_dir(path)
    return kept


def _append_to_replacement(path: Path, columns: tuple[str, ...], lines: bytes, fsync: bool) -> None:
    """Append ``lines`` to the results file now at ``path``, under its lock.

    Only into a results file with the same header: anything else (another tool's file, a
    different layout) raises, and the caller keeps the lines elsewhere.
    """
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
    try:
        _lock(fd, path)
        size = os.fstat(fd).st_size
        with open(fd, "rb", closefd=False) as f:
            layout = read_layout(path, f, size) if size else None
        if layout is None or layout.columns != columns:
            raise JournalError(f"{path}: the new file does not have this run's columns")
        if layout.torn:
            raise JournalError(f"{path}: the new file ends in an unfinished line")
        prefix = b"\n" if layout.unterminated else b""
        _write_all(fd, prefix + lines)
        if fsync:
            os.fdatasync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- opening


def _prepare(
    path: Path, fd: int, layout: Layout | None, extra: tuple[str, ...], fsync: bool
) -> tuple[int, tuple[str, ...]]:
    """Make the locked file ready for appends; returns the (possibly new) fd and its columns.

    ``layout`` is what reading found (``None``: a missing or empty file).
    """
    if layout is None or not layout.columns:  # no file yet, or its header was torn
        os.ftruncate(fd, 0)
        return fd, _write_header(path, fd, extra, fsync)
    if layout.torn:
        os.ftruncate(fd, layout.data_end)
    elif layout.unterminated:
        _write_all(fd, b"\n")
    if fsync and (layout.torn or layout.unterminated):
        os.fdatasync(fd)
    wanted = (*JOURNAL_COLUMNS, *extra)
    if all(name in layout.columns for name in wanted):
        return fd, layout.columns
    return _upgrade(path, fd, layout, extra, fsync)


def _write_header(path: Path, fd: int, extra: tuple[str, ...], fsync: bool) -> tuple[str, ...]:
    columns = (*JOURNAL_COLUMNS, *(c for c in extra if c not in JOURNAL_COLUMNS))
    _write_all(fd, canonical_header(columns[len(JOURNAL_COLUMNS) :]))
    if fsync:
        os.fsync(fd)
        _fsync_dir(path)
    return columns


def _upgrade(
    path: Path, fd: int, layout: Layout, extra: tuple[str, ...], fsync: bool
) -> tuple[int, tuple[str, ...]]:
    """Rewrite a file whose header lacks columns, atomically, keeping every value.

    Appending rows with more fields than the header would corrupt the file, so a hand-made
    file without (say) ``timestamp`` is copied once into the full layout.
    """
    old = layout.columns
    extras = [c for c in old if c not in JOURNAL_COLUMNS]
    extras += [c for c in extra if c not in extras and c not in JOURNAL_COLUMNS]
    columns = (*JOURNAL_COLUMNS, *extras)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    new_fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        # Lock before the rename, so the file at `path` is never unlocked.
        fcntl.flock(new_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _write_all(new_fd, canonical_header(extras))
        for chunk in _rewritten_chunks(path, layout, columns):
            _write_all(new_fd, chunk)
        if fsync:
            os.fsync(new_fd)
        os.replace(tmp, path)
        if fsync:
            _fsync_dir(path)
    except BaseException:
        os.close(new_fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return new_fd, columns


def _rewritten_chunks(path: Path, layout: Layout, columns: tuple[str, ...]) -> Iterator[bytes]:
    positions = [layout.columns.index(c) if c in layout.columns else -1 for c in columns]
    batch: list[list[str]] = []
    for _, fields in records(path, layout):
        batch.append([escape_cell(fields[i]) if i >= 0 else "" for i in positions])
        if len(batch) >= 10_000:
            yield encode_rows(batch)
            batch = []
    yield encode_rows(batch)
