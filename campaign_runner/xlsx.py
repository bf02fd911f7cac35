"""Excel workbooks -> rows of text as the sheets show them, and the links behind cells.

Cells are read with openpyxl in read-only mode, which streams a sheet instead of building
it in memory. Numbers and dates become the text the sheet displays
(:mod:`campaign_runner.cellformat`), so nothing downstream sees a ``float`` or a
``datetime``.

Read-only mode does not read hyperlinks, and opening a workbook in full mode to get them
costs far more: 9 s instead of 4 s for 100,000 rows, 159 s when every row has a link
(openpyxl binds each link to its cell by a search). So links are read here from the
workbook's XML: a sheet's external links are relationships in its ``_rels`` part, and
``<hyperlink ref=... r:id=...>`` elements after its cells say which cells they belong to.
A sheet without such relationships costs one small read; one with them, a decompression
of the sheet (0.04 s for 100,000 rows), not a second parse.
"""

from __future__ import annotations

import posixpath
import re
import warnings
import zipfile
from collections.abc import Collection, Generator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any
from xml.etree import ElementTree

from campaign_runner.cellformat import shown
from campaign_runner.errors import InputError

_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_DOC_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_CELLS_END = re.compile(rb"</(?:[\w.-]+:)?sheetData\s*>|<(?:[\w.-]+:)?sheetData\s*/>")
_HYPERLINK = re.compile(rb"<(?:[\w.-]+:)?hyperlink\s([^>]*)>")
_ATTRIBUTE = re.compile(rb"(?:([\w.-]+):)?([\w.-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")

# (sheet row number, the row's cells as text, positions of cells that were numbers/dates)
Row = tuple[int, list[str], list[int]]


class Workbook:
    """An open workbook: its sheets' names, their rows as text, their cells' links."""

    def __init__(self, path: Path) -> None:
        import openpyxl  # imported here: it costs startup time that CSV users should not pay

        self.path = path
        try:
            with warnings.catch_warnings():
                # openpyxl warns about styles and extensions it ignores; none matter here.
                warnings.simplefilter("ignore")
                self._book = openpyxl.load_workbook(path, read_only=True, data_only=True)
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise InputError(path, f"not a readable Excel workbook ({exc})") from None
        except Exception as exc:  # openpyxl raises its own InvalidFileException and others
            raise InputError(
                path, f"not a readable Excel workbook ({type(exc).__name__})"
            ) from None
        self.names: tuple[str, ...] = tuple(ws.title for ws in self._book.worksheets)
        self._parts: dict[str, str] | None = None

    def __enter__(self) -> Workbook:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._book.close()
        self._zip.close()

    def rows(self, index: int) -> Generator[Row, None, None]:
        """The sheet's non-empty rows (0-based ``index``), numbered as the sheet shows them."""
        sheet: Any = self._book.worksheets[index]
        # Some writers store a wrong size (``A1``); read-only mode would believe it and
        # cut rows and columns off. Without it, each row is as long as its cells go.
        sheet.reset_dimensions()
        for number, cells in enumerate(sheet.iter_rows(), start=1):
            texts: list[str] = []
            typed: list[int] = []
            for i, cell in enumerate(cells):
                value = cell.value
                if value is None:
                    texts.append("")
                elif type(value) is str:
                    texts.append(value)
                else:
                    texts.append(shown(value, cell.number_format, cell.style_array.numFmtId))
                    typed.append(i)
            if any(texts):
                yield number, texts, typed

    def links(
        self, index: int, columns: Collection[int] | None = None
    ) -> dict[tuple[int, int], str]:
        """``(row number, 0-based column) -> link target`` for the sheet's external links.

        Only cells in ``columns`` when given (a link on a range covers each of its cells).
        Links inside the workbook (to another sheet or cell) have no target and are left out.
        """
        sheet = self._sheet_parts().get(self.names[index])
        if sheet is None:
            return {}
        targets = self._link_targets(sheet)
        if not targets:
            return {}
        from openpyxl.utils.cell import range_boundaries

        found: dict[tuple[int, int], str] = {}
        for ref, rel in self._hyperlink_refs(sheet):
            target = targets.get(rel)
            if target is None:
                continue
            try:
                min_col, min_row, max_col, max_row = range_boundaries(ref)
            except ValueError:
                continue
            for column in range(min_col - 1, max_col):
                if columns is None or column in columns:
                    for row in range(min_row, max_row + 1):
                        found.setdefault((row, column), target)
        return found

    def _sheet_parts(self) -> dict[str, str]:
        """Sheet name -> its part in the zip, from the workbook's relationships."""
        if self._parts is None:
            self._parts = {}
            root = _xml(self._zip, "_rels/.rels")
            book = next(
                (r.get("Target", "") for r in root.iter(_REL) if _type(r) == "officeDocument"),
                "xl/workbook.xml",
            )
            book = book.lstrip("/")
            rels = {
                r.get("Id"): _resolve(book, r.get("Target", ""))
                for r in _xml(self._zip, _rels_of(book)).iter(_REL)
            }
            for sheet in _xml(self._zip, book).iter(f"{_MAIN}sheet"):
                part = rels.get(sheet.get(_DOC_REL))
                if part:
                    self._parts[sheet.get("name", "")] = part
        return self._parts

    def _link_targets(self, sheet: str) -> dict[str, str]:
        name = _rels_of(sheet)
        if name not in self._zip.namelist():
            return {}
        return {
            r.get("Id", ""): r.get("Target", "")
            for r in _xml(self._zip, name).iter(_REL)
            if _type(r) == "hyperlink"
        }

    def _hyperlink_refs(self, sheet: str) -> Iterator[tuple[str, str]]:
        """(cell reference, relationship id) of each ``<hyperlink>`` after the sheet's cells."""
        tail = bytearray()
        past_cells = False
        with self._zip.open(sheet) as fh:
            while chunk := fh.read(1 << 20):
                if past_cells:
                    tail += chunk
                    continue
                tail = tail[-64:] + chunk  # an end tag may straddle two chunks
                end = _CELLS_END.search(tail)
                if end:
                    past_cells = True
                    tail = tail[end.end() :]
        if not past_cells:
            return
        for element in _HYPERLINK.finditer(tail):
            attributes = {
                (bool(prefix), name): double or single
                for prefix, name, double, single in _ATTRIBUTE.findall(element.group(1))
            }
            ref, rel = attributes.get((False, b"ref")), attributes.get((True, b"id"))
            if ref and rel:
                yield ref.decode("ascii", "replace"), rel.decode("utf-8", "replace")


def _xml(archive: zipfile.ZipFile, name: str) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(archive.read(name))
    except (KeyError, ElementTree.ParseError):
        return ElementTree.Element("empty")


def _type(relationship: ElementTree.Element) -> str:
    return relationship.get("Type", "").rsplit("/", 1)[-1]


def _rels_of(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", f"{name}.rels")


def _resolve(source: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(source), target))
