"""The spreadsheets people have: exports' trailing rows, workbooks with several sheets,
hyperlinks, title rows, dates and numbers, and the columns said out loud."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from campaign_runner.errors import InputError
from campaign_runner.prospects import Prospects, load_prospects

URL = "https://www.linkedin.com/in/jane-doe"
URL2 = "https://www.linkedin.com/in/john-roe"


def table(prospects: Prospects) -> list[tuple[int, dict[str, str]]]:
    """(sheet row, cells) for every prospect row: what the tests compare exactly."""
    return list(zip(prospects.rows.to_pylist(), prospects.table.to_pylist(), strict=True))


# -- CSV: rows empty in every column at the end ----------------------------------------


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        pytest.param(f"linkedin_url,note,name\n{URL},hi,Jane\n,,\n,,\n", "utf-8", id="google"),
        pytest.param(
            f"sep=;\r\nlinkedin_url;note;name\r\n{URL};hi;Jane\r\n;;\r\n;;\r\n;;",
            "cp1252",
            id="excel-semicolons-no-final-break",
        ),
        pytest.param(f'linkedin_url,note,name\n{URL},hi,Jane\n"","",""\n\n', "utf-8", id="quoted"),
        pytest.param(
            f"linkedin_url\tnote\tname\r\n{URL}\thi\tJane\r\n\t\t\r\n", "utf-16", id="u16"
        ),
        pytest.param(f"linkedin_url,note,name\r{URL},hi,Jane\r,,\r", "utf-8", id="cr-only"),
    ],
)
def test_trailing_rows_empty_in_every_column_are_not_prospects(
    tmp_path: Path, data: str, encoding: str
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(data.encode(encoding))
    for all_columns in (True, False):
        prospects = load_prospects(path, all_columns=all_columns)
        assert prospects.rows.to_pylist() == [2]
        assert prospects.table["linkedin_url"].to_pylist() == [URL]
        assert prospects.table["note"].to_pylist() == ["hi"]


def test_thousands_of_empty_rows_after_the_last_prospect(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(f"linkedin_url,note,name\n{URL},hi,Jane\n{URL2},,John\n" + ",,\n" * 5000)
    prospects = load_prospects(path)
    assert table(prospects) == [
        (2, {"linkedin_url": URL, "note": "hi", "name": "Jane"}),
        (3, {"linkedin_url": URL2, "note": "", "name": "John"}),
    ]


def test_empty_rows_inside_stay_rows_and_a_last_row_with_any_cell_stays(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    # Row 3 is empty but followed by prospects; row 5 has only a name, in a column that
    # validation does not read: it is still a row (with no URL), not export debris.
    path.write_text(f"linkedin_url,note,name\n{URL},hi,Jane\n,,\n{URL2},,John\n,,Ann\n,,\n")
    few = load_prospects(path, all_columns=False)
    assert few.rows.to_pylist() == [2, 3, 4, 5]
    assert few.table["linkedin_url"].to_pylist() == [URL, "", URL2, ""]


def test_a_quoted_cell_ending_in_empty_looking_lines_is_kept_whole(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text(f'linkedin_url,note\n{URL},"Hi,\n,\n"\n,\n')
    assert table(load_prospects(path)) == [(2, {"linkedin_url": URL, "note": "Hi,\n,\n"})]


def test_a_header_followed_only_by_empty_rows(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("linkedin_url,note\n,\n,\n")
    with pytest.raises(InputError, match="has a header but no prospect rows"):
        load_prospects(path)


def test_utf16_bom_file_with_trailing_rows(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(codecs.BOM_UTF16_BE + f"linkedin_url,x\n{URL},Zoë\n,\n".encode("utf-16-be"))
    assert table(load_prospects(path)) == [(2, {"linkedin_url": URL, "x": "Zoë"})]
