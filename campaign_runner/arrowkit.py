"""Arrow helpers shared by validation and URL normalisation, none of which imports pandas.

pyarrow imports pandas (0.3-0.5 s, a tenth of validating a million rows) the first time
it converts a Python value or makes a NumPy array: ``pa.array()``, ``pa.scalar()``, a plain
str argument to a compute function, ``.to_numpy()``. These helpers build and read Arrow
buffers directly instead, so that ``campaign-runner validate`` never imports pandas.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa

_T = TypeVar("_T")
StrArray: TypeAlias = pa.Array | pa.ChunkedArray


def string_chunks(values: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    return [c if pa.types.is_string(c.type) else c.cast(pa.string()) for c in chunks]


def chunk_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))


def map_chunks(func: Callable[[pa.Array], _T], chunks: list[pa.Array]) -> list[_T]:
    if len(chunks) < 2:
        return [func(c) for c in chunks]
    with chunk_pool() as pool:
        return list(pool.map(func, chunks))


def return_freed_memory() -> None:
    """Make Arrow allocate from jemalloc and give freed pages back to the system at once.

    For a process that works through big files once, as ``run`` does when it resumes: each
    step (reading the spreadsheet, validating, reading the journal, hashing a million
    URLs) frees most of what it allocated, and the default pool (mimalloc) keeps those
    pages where the next step, allocating in other sizes and from other threads, does not
    reuse them. Resuming a finished million-row campaign peaked at 880 MiB with it and at
    640 MiB with jemalloc and no decay, in about the same time. A pool named in
    ``ARROW_DEFAULT_MEMORY_POOL`` is left alone, and so is mimalloc where pyarrow is built
    without jemalloc (its Windows wheels).
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        return
    pa.jemalloc_set_decay_ms(0)
    pa.set_memory_pool(pool)


def release_unused() -> None:
    """Give the memory Arrow's pool keeps for reuse back to the operating system.

    mimalloc (and jemalloc) keep freed pages for the next allocation, but reading a big file
    leaves many pages of parsing buffers and intermediate arrays that later allocations do
    not reuse (other sizes, other threads): a resume's next step, hashing a million URLs,
    would otherwise be stacked on top of them. Call it after a phase that read a big file.
    """
    pa.default_memory_pool().release_unused()


def str_array(values: list[str]) -> pa.Array:
    """A string array of ``values``, as ``pa.array(values, pa.string())`` makes it."""
    encoded = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.large_string(), len(encoded), buffers).cast(pa.string())


def str_scalar(value: str) -> pa.Scalar:
    """A string scalar, as ``pa.scalar(value)`` makes it."""
    return str_array([value])[0]


def blank_strings(n: int) -> pa.Array:
    """``n`` empty strings."""
    offsets = pa.py_buffer(np.zeros(n + 1, dtype=np.int32))
    return pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(b"")])


def from_numpy(values: npt.NDArray[Any]) -> pa.Array:
    """A NumPy vector (bool or integer) as an Arrow array, as ``pa.array(values)``."""
    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    values = np.ascontiguousarray(values)
    kind = pa.from_numpy_dtype(values.dtype)
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


_NUMPY_TYPES: dict[pa.DataType, type[np.generic]] = {
    pa.int8(): np.int8,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint8(): np.uint8,
}


def to_numpy(values: pa.Array | pa.ChunkedArray) -> npt.NDArray[Any]:
    """A bool or integer array without nulls as a (read-only) NumPy vector."""
    if isinstance(values, pa.ChunkedArray):
        parts = [to_numpy(c) for c in values.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if values.null_count:
        raise ValueError("nulls where none can be")  # pragma: no cover - a bug, not input
    if pa.types.is_boolean(values.type):
        return to_numpy(values.cast(pa.uint8())).view(np.bool_)
    dtype = np.dtype(_NUMPY_TYPES[values.type])
    buffer = values.buffers()[1]
    return np.frombuffer(buffer, dtype, len(values), values.offset * dtype.itemsize)


def str_offsets(values: pa.Array) -> npt.NDArray[np.int64]:
    """Where each string of a string array starts in its data buffer, and where the last ends."""
    view = np.frombuffer(values.buffers()[1], np.int32, len(values) + 1, values.offset * 4)
    return view.astype(np.int64)


def str_data(values: pa.Array) -> npt.NDArray[np.uint8]:
    buffer = values.buffers()[2]
    return np.frombuffer(buffer, np.uint8) if buffer is not None else np.zeros(0, np.uint8)


def byte_table(chars: str) -> npt.NDArray[np.bool_]:
    table = np.zeros(256, dtype=bool)
    table[list(chars.encode("ascii"))] = True
    return table
