"""Reading prospect spreadsheets: campaign_runner.prospects."""

from __future__ import annotations

import codecs
from pathlib import Path

import openpyxl
import pytest

from campaign_runner.errors import ColumnNotFoundError, InputError
from campaign_runner.prospects import Prospects, load_prospects

URL = "https://www.linkedin.com/in/jane-doe"
URL2 = "https://www.linkedin.com/in/john-roe"


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def cells(prospects: Prospects, column: str) -> list[str]:
    values: list[str] = prospects.table[column].to_pylist()
    return values


def rows(prospects: Prospects) -> list[int]:
    numbers: list[int] = prospects.rows.to_pylist()
    return numbers


# -- encodings and dialects -------------------------------------------------------------

TEXT = f"name;linkedin_url;note\r\nJosé;{URL};Olá, ça va? €5\r\n"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(TEXT.encode("utf-8"), id="utf-8"),
        pytest.param(codecs.BOM_UTF8 + TEXT.encode("utf-8"), id="utf-8-bom"),
        pytest.param(TEXT.encode("cp1252"), id="windows-1252"),
        pytest.param(codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), id="utf-16-le-bom"),
        pytest.param(codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), id="utf-16-be-bom"),
        pytest.param(TEXT.encode("utf-16-le"), id="utf-16-le-no-bom"),
    ],
)
def test_encodings(tmp_path: Path, data: bytes) -> None:
    prospects = load_prospects(write_bytes(tmp_path / "p.csv", data))
    assert prospects.columns == ("name", "linkedin_url", "note")
    assert cells(prospects, "name") == ["José"]
    assert cells(prospects, "note") == ["Olá, ça va? €5"]


def test_latin1_bytes_undefined_in_windows_1252(tmp_path: Path) -> None:
    data = f"name,linkedin_url\n\x81bc,{URL}\n".encode("latin-1")
    assert cells(load_prospects(write_bytes(tmp_path / "p.csv", data)), "name") == ["\x81bc"]


def test_non_utf8_byte_far_beyond_the_sniffed_head(tmp_path: Path) -> None:
    body = "".join(f"Person {i},{URL}-{i}\n" for i in range(20_000)).encode()
    data = b"name,linkedin_url\n" + body + f"Zoë,{URL}\n".encode("cp1252")
    prospects = load_prospects(write_bytes(tmp_path / "p.csv", data))
    assert len(prospects) == 20_001
    assert cells(prospects, "name")[-1] == "Zoë"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"name,linkedin_url\nJane,{URL}\n", ("name", "linkedin_url")),
        (f"name;linkedin_url\nJane;{URL}\n", ("name", "linkedin_url")),
        (f"name\tlinkedin_url\nJane\t{URL}\n", ("name", "linkedin_url")),
        (f'"Name, full";linkedin_url\n"Doe, Jane";{URL}\n', ("Name, full", "linkedin_url")),
        (f"sep=;\nname;linkedin_url\nJane;{URL}\n", ("name", "linkedin_url")),
        (f"linkedin_url\n{URL}\n", ("linkedin_url",)),
    ],
    ids=["comma", "semicolon", "tab", "quoted-comma-in-semicolon-file", "excel-sep-line", "one"],
)
def test_delimiters(tmp_path: Path, text: str, expected: tuple[str, ...]) -> None:
    path = tmp_path / "p.csv"
    path.write_text(text, encoding="utf-8")
    prospects = load_prospects(path)
    assert prospects.columns == expected
    assert cells(prospects, "linkedin_url") == [URL]
    assert rows(prospects) == [2]


def test_quoted_newlines_crlf_and_doubled_quotes_keep_row_numbers(tmp_path: Path) -> None:
    data = (
        f'linkedin_url,note\r\n{URL},"Hi ""Jane"",\r\nsecond line\r\nthird"\r\n{URL2},plain\r\n'
    ).encode()
    prospects = load_prospects(write_bytes(tmp_path / "p.csv", data))
    assert cells(prospects, "note") == ['Hi "Jane",\r\nsecond line\r\nthird', "plain"]
    assert rows(prospects) == [2, 3]  # a multi-line cell is one spreadsheet row


def test_blank_lines_inside_are_rows_and_at_the_end_are_not(tmp_path: Path) -> None:
    data = f"linkedin_url,note\n{URL},a\n\n{URL2},b\n\n\n".encode()
    prospects = load_prospects(write_bytes(tmp_path / "p.csv", data))
    assert cells(prospects, "linkedin_url") == [URL, "", URL2]
    assert rows(prospects) == [2, 3, 4]


def test_every_cell_is_text_exactly_as_written(tmp_path: Path) -> None:
    values = ["NULL", "NaN", "nan", "None", "True", "", "N/A", "#N/A", "007", "1e5", " x "]
    body = "".join(f"{URL},{v}\n" for v in values)
    path = tmp_path / "p.csv"
    path.write_text("linkedin_url,note\n" + body, encoding="utf-8")
    prospects = load_prospects(path)
    assert cells(prospects, "note") == values
    assert prospects.frame["note"].tolist() == values


# -- columns ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "linkedin_url",
        "LinkedIn URL",
        "LINKEDIN_URL",
        " linkedin_url ",
        "Profile URL",
        "profileUrl",
        "linkedin",
        "LinkedIn Profile",
        "Person Linkedin Url",
        "linkedin-url",
    ],
)
def test_url_column_aliases(tmp_path: Path, header: str) -> None:
    path = tmp_path / "p.csv"
    path.write_text(f"name,{header}\nJane,{URL}\n", encoding="utf-8")
    prospects = load_prospects(path)
    assert prospects.url_column == header
    assert cells(prospects, header) == [URL]


@pytest.mark.parametrize(
    "header", ["note", "Note", "Message", "connection_note", "Connection Message"]
)
def test_note_column_aliases(tmp_path: Path, header: str) -> None:
    path = tmp_path / "p.csv"
    path.write_text(f"linkedin_url,{header}\n{URL},Hi\n", encoding="utf-8")
    assert load_prospects(path).note_column == header


def test_most_specific_alias_wins(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(f"url,message,linkedin_url,note\nx,m,{URL},n\n", encoding="utf-8")
    prospects = load_prospects(path)
    assert (prospects.url_column, prospects.note_column) == ("linkedin_url", "note")


def test_named_columns_win_and_match_loosely(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(f"linkedin_url,Their Page,Intro,note\nx,{URL},Hi,n\n", encoding="utf-8")
    prospects = load_prospects(path, url_column="their page", note_column="Intro")
    assert (prospects.url_column, prospects.note_column) == ("Their Page", "Intro")


def test_named_column_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(f"linkedin_url,note\n{URL},n\n", encoding="utf-8")
    with pytest.raises(ColumnNotFoundError) as caught:
        load_prospects(path, note_column="greeting")
    assert "'greeting'" in str(caught.value)
    assert "'linkedin_url', 'note'" in str(caught.value)


def test_no_url_column_names_the_columns_found(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("first_name,company\nJane,Acme\n", encoding="utf-8")
    with pytest.raises(ColumnNotFoundError) as caught:
        load_prospects(path)
    assert str(caught.value) == (
        f"{path}: no LinkedIn URL column found (columns: 'first_name', 'company')"
    )


def test_stray_spaces_in_headers_are_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(f"linkedin_url , Note\n{URL},hi\n", encoding="utf-8")
    prospects = load_prospects(path)
    assert prospects.note_column == " Note"
    assert len(prospects.warnings) == 2
    assert "' Note'" in prospects.warnings[1] and "spaces" in prospects.warnings[1]


def test_duplicate_header_names_are_made_unique(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(f"linkedin_url,x,x\n{URL},1,2\n", encoding="utf-8")
    assert load_prospects(path).columns == ("linkedin_url", "x", "x.1")


def test_only_the_needed_columns_are_read_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(f"name,linkedin_url,note,sender\nJane,{URL},hi,s1\n", encoding="utf-8")
    assert load_prospects(path).table.column_names == ["name", "linkedin_url", "note", "sender"]
    few = load_prospects(path, all_columns=False)
    assert few.table.column_names == ["linkedin_url", "note", "sender"]
    assert few.sender_column == "sender"


# -- unusable input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("blank.csv", b" \r\n\r\n", "the file is empty"),
        ("header.csv", b"linkedin_url,note\r\n", "has a header but no prospect rows"),
        ("picture.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not a spreadsheet"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "old Excel .xls"),
        ("fake.xlsx", b"PK\x03\x04 this is not a zip", "not a readable Excel workbook"),
        ("urls.csv", f"{URL}\n{URL2}\n".encode(), "looks like data, not a header"),
        ("ragged.csv", f"linkedin_url,note\n{URL},a\n{URL2},b,c\n".encode(), ":3: has 3 cells"),
    ],
)
def test_unusable_files(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = write_bytes(tmp_path / name, data)
    with pytest.raises(InputError) as caught:
        load_prospects(path)
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_prospects(tmp_path / "nope.csv")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        load_prospects(tmp_path)


# -- Excel ------------------------------------------------------------------------------


def write_xlsx(path: Path, table: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for line in table:
        sheet.append(line)
    book.save(path)
    return path


def test_xlsx_cells_become_text_and_rows_keep_sheet_numbers(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "p.xlsx",
        [
            ["Name", "LinkedIn URL", "Note", "Score", "Active"],
            ["Jane", URL, "Hi\nthere", 12, True],
            [None, None, None, None, None],
            ["John", URL2, None, 2.5, False],
        ],
    )
    prospects = load_prospects(path)
    assert prospects.url_column == "LinkedIn URL"
    assert rows(prospects) == [2, 4]  # the empty sheet row is skipped, numbering kept
    assert cells(prospects, "Note") == ["Hi\nthere", ""]
    assert cells(prospects, "Score") == ["12", "2.5"]
    assert cells(prospects, "Active") == ["TRUE", "FALSE"]


def test_xlsx_header_below_empty_rows(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "p.xlsx", [[None], ["linkedin_url"], [URL]])
    assert rows(load_prospects(path)) == [3]


def test_xlsx_without_url_column(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "p.xlsx", [["name"], ["Jane"]])
    with pytest.raises(ColumnNotFoundError, match="columns: 'name'"):
        load_prospects(path)


def test_xlsx_with_only_a_header(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "p.xlsx", [["linkedin_url"]])
    with pytest.raises(InputError, match="no prospect rows"):
        load_prospects(path)


def test_sample_xlsx_is_a_twin_of_the_sample_csv() -> None:
    root = Path(__file__).resolve().parent.parent / "sample_data"
    csv_side = load_prospects(root / "prospects.csv")
    xlsx_side = load_prospects(root / "prospects.xlsx")
    assert csv_side.columns == xlsx_side.columns
    assert csv_side.table.to_pylist() == xlsx_side.table.to_pylist()
