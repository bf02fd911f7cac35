"""The spreadsheets people have: exports' trailing rows, workbooks with several sheets,
hyperlinks, title rows, dates and numbers, and the columns said out loud."""

from __future__ import annotations

import codecs
import datetime as dt
import re
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from campaign_runner.errors import ColumnNotFoundError, InputError
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


# -- XLSX: sheets ------------------------------------------------------------------------


def workbook(path: Path, sheets: dict[str, list[list[object]]]) -> openpyxl.Workbook:
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for title, lines in sheets.items():
        sheet = book.create_sheet(title)
        for line in lines:
            sheet.append(line)
    book.save(path)
    return book


def sheet_of(book: openpyxl.Workbook, title: str) -> Worksheet:
    sheet = book[title]
    assert isinstance(sheet, Worksheet)
    return sheet


THREE_SHEETS = {
    "Summary": [["Q3 campaign"], ["Total", 2]],
    "Leads": [["Name", "LinkedIn URL", "Note"], ["Jane", URL, "Hi Jane"], ["John", URL2, ""]],
    "Archive": [["Name", "Profile URL"], ["Old", "https://www.linkedin.com/in/old-one"]],
}


def test_the_first_sheet_with_a_url_column_is_read_by_default(tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    workbook(path, THREE_SHEETS)
    prospects = load_prospects(path)
    assert prospects.sheet == "Leads"
    assert table(prospects) == [
        (2, {"Name": "Jane", "LinkedIn URL": URL, "Note": "Hi Jane"}),
        (3, {"Name": "John", "LinkedIn URL": URL2, "Note": ""}),
    ]
    assert prospects.column_notes == (
        "sheet 'Leads' (2 of 3)",
        "profile URL from 'LinkedIn URL'",
        "note from 'Note'",
    )


@pytest.mark.parametrize("sheet", ["Archive", "archive", 3, "3"])
def test_a_sheet_by_name_or_number(tmp_path: Path, sheet: str | int) -> None:
    path = tmp_path / "p.xlsx"
    workbook(path, THREE_SHEETS)
    prospects = load_prospects(path, sheet=sheet)
    assert prospects.sheet == "Archive"
    assert table(prospects) == [
        (2, {"Name": "Old", "Profile URL": "https://www.linkedin.com/in/old-one"})
    ]
    assert prospects.column_notes[0] == "sheet 'Archive' (3 of 3)"


def test_a_sheet_without_a_url_column_names_the_sheets_with_one(tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    workbook(path, THREE_SHEETS)
    with pytest.raises(ColumnNotFoundError) as caught:
        load_prospects(path, sheet="Summary")
    assert str(caught.value) == (
        f"{path}: no LinkedIn URL column found (columns: 'Q3 campaign'); "
        "sheet 'Summary' has none; 'Leads', 'Archive' have one: use --sheet Leads"
    )


def test_a_workbook_without_any_url_column(tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    workbook(path, {"A": [["name"], ["Jane"]], "B": [["company"], ["Acme"]]})
    with pytest.raises(ColumnNotFoundError) as caught:
        load_prospects(path)
    assert str(caught.value) == (
        f"{path}: no LinkedIn URL column found (columns: 'name'); "
        "sheet 'A' has none, nor has any other sheet"
    )


@pytest.mark.parametrize(("sheet", "said"), [("Laeds", "did you mean 'Leads'?"), (4, "")])
def test_an_unknown_sheet(tmp_path: Path, sheet: str | int, said: str) -> None:
    path = tmp_path / "p.xlsx"
    workbook(path, THREE_SHEETS)
    with pytest.raises(InputError) as caught:
        load_prospects(path, sheet=sheet)
    listed = "1: 'Summary', 2: 'Leads', 3: 'Archive'"
    assert str(caught.value) == f"{path}: no sheet {sheet!r} (sheets: {listed})" + (
        f"; {said}" if said else ""
    )


def test_a_sheet_asked_of_a_csv_file(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(f"linkedin_url\n{URL}\n")
    with pytest.raises(InputError, match="a CSV file has no sheets"):
        load_prospects(path, sheet="Leads")


# -- XLSX: title rows --------------------------------------------------------------------


def test_a_merged_title_row_above_the_header_is_skipped_and_said(tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    book = workbook(
        path,
        {
            "Prospects": [
                ["Q3 Prospects – DACH", None, None],
                [None, None, None],
                ["Name", "Person Linkedin Url", "message"],
                ["Jane", URL, "Hallo Jane"],
                ["John", URL2, "Hallo John"],
            ]
        },
    )
    sheet_of(book, "Prospects").merge_cells("A1:C1")
    book.save(path)
    prospects = load_prospects(path)
    assert table(prospects) == [
        (4, {"Name": "Jane", "Person Linkedin Url": URL, "message": "Hallo Jane"}),
        (5, {"Name": "John", "Person Linkedin Url": URL2, "message": "Hallo John"}),
    ]
    assert prospects.column_notes == (
        "row 1 is a title: the header is row 3",
        "profile URL from 'Person Linkedin Url'",
        "note from 'message'",
    )


def test_two_title_rows_and_a_named_url_column(tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    lines: list[list[object]] = [["Leads"], ["exported 2024-12-24"], ["Their page"], [URL]]
    workbook(path, {"S": lines})
    prospects = load_prospects(path, url_column="their page")
    assert table(prospects) == [(4, {"Their page": URL})]
    assert prospects.column_notes[0] == "rows 1, 2 are a title: the header is row 3"


def test_a_header_too_far_below_the_title_is_not_looked_for(tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    workbook(path, {"S": [["Title"], *[[f"line {i}"] for i in range(5)], ["linkedin_url"], [URL]]})
    with pytest.raises(ColumnNotFoundError, match=r"columns: 'Title'\)"):
        load_prospects(path)


# -- XLSX: hyperlinks --------------------------------------------------------------------


def test_a_cell_showing_text_yields_the_link_behind_it(tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    book = workbook(
        path,
        {
            "Leads": [
                ["Name", "LinkedIn", "Note"],
                ["Jane", "View profile", "Hi"],
                ["John", URL2, "Hello"],
                ["Ann", "no link here", "Hey"],
            ]
        },
    )
    sheet = sheet_of(book, "Leads")
    sheet["B2"].hyperlink = URL
    sheet["B3"].hyperlink = URL2  # Excel's own link on a typed URL: the same text
    sheet["A2"].hyperlink = "https://example.com/jane"  # a link outside the URL column
    sheet["C4"].hyperlink = "mailto:ann@example.com"
    book.save(path)
    for all_columns in (True, False):
        prospects = load_prospects(path, all_columns=all_columns)
        assert prospects.table["LinkedIn"].to_pylist() == [URL, URL2, "no link here"]
        assert prospects.table["Note"].to_pylist() == ["Hi", "Hello", "Hey"]
    assert load_prospects(path).table["Name"].to_pylist() == ["Jane", "John", "Ann"]
    assert load_prospects(path).column_notes == (
        "profile URL from 'LinkedIn'",
        "1 cell of 'LinkedIn' shows text with a link behind it (row 2: 'View profile'): "
        "the link is used",
        "note from 'Note'",
    )


def test_links_on_a_sheet_after_others_and_below_a_title(tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    book = workbook(
        path,
        {
            "Notes": [["nothing here"]],
            "Leads": [["Leads – DACH"], ["linkedin_url"], ["Jane"], [None], ["John"]],
        },
    )
    sheet = sheet_of(book, "Leads")
    sheet["A3"].hyperlink = URL
    sheet["A5"].hyperlink = URL2
    sheet_of(book, "Notes")["A1"].hyperlink = "https://www.linkedin.com/in/not-this-one"
    book.save(path)
    prospects = load_prospects(path)
    assert table(prospects) == [(3, {"linkedin_url": URL}), (5, {"linkedin_url": URL2})]
    assert prospects.column_notes[:2] == (
        "sheet 'Leads' (2 of 2)",
        "row 1 is a title: the header is row 2",
    )


def test_a_column_of_links_without_a_url_header_is_suggested(tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    book = workbook(path, {"S": [["Name", "Profil"], ["Jane", "ansehen"], ["John", "ansehen"]]})
    sheet_of(book, "S")["B2"].hyperlink = URL
    sheet_of(book, "S")["B3"].hyperlink = URL2
    book.save(path)
    with pytest.raises(ColumnNotFoundError) as caught:
        load_prospects(path)
    assert str(caught.value) == (
        f"{path}: no LinkedIn URL column found (columns: 'Name', 'Profil'); "
        "'Profil' holds LinkedIn URLs: use --url-column Profil"
    )
    assert load_prospects(path, url_column="Profil").table["Profil"].to_pylist() == [URL, URL2]


# -- XLSX: dates and numbers, as the sheet shows them -------------------------------------

CHRISTMAS = dt.datetime(2024, 12, 24)


@pytest.mark.parametrize(
    ("value", "number_format", "text"),
    [
        (CHRISTMAS, "DD.MM.YYYY", "24.12.2024"),
        (CHRISTMAS, "mm/dd/yyyy", "12/24/2024"),
        (CHRISTMAS, "m/d/yyyy", "12/24/2024"),
        (CHRISTMAS, "[$-407]DD.MM.YYYY;@", "24.12.2024"),
        (CHRISTMAS, "d-mmm-yy", "24-Dec-24"),
        (CHRISTMAS, "dddd, mmmm d, yyyy", "Tuesday, December 24, 2024"),
        (CHRISTMAS, "yyyy-mm-dd", "2024-12-24"),
        (CHRISTMAS, "mm-dd-yy", "2024-12-24"),  # built-in 14: Excel shows the locale's date
        (dt.datetime(2024, 12, 24, 9, 5), "dd.mm.yyyy hh:mm", "24.12.2024 09:05"),
        (dt.datetime(2024, 12, 24, 15, 30), "h:mm AM/PM", "3:30 PM"),
        (dt.time(9, 30), "h:mm", "9:30"),
        (12, "General", "12"),
        (12.0, "General", "12"),
        (2.5, "General", "2.5"),
        (0.1 + 0.2, "General", "0.3"),
        (4915112345678, "0", "4915112345678"),
        (1234567.891, "#,##0.00", "1,234,567.89"),
        (0.256, "0.0%", "25.6%"),
        (1234.5, '#,##0.00 "€"', "1,234.50 €"),
        (1234.5, "[$€-407] #,##0.00", "€ 1,234.50"),
        (-3.2, "0.00;(0.00)", "(3.20)"),
        (7, "000", "007"),
        (5551234567, "000-000-0000", "555-123-4567"),
        (True, "General", "TRUE"),
    ],
)
def test_dates_and_numbers_read_as_the_sheet_shows_them(
    tmp_path: Path, value: object, number_format: str, text: str
) -> None:
    path = tmp_path / "p.xlsx"
    book = workbook(path, {"S": [["linkedin_url", "note", "other"], [URL, value, value]]})
    for cell in ("B2", "C2"):
        sheet_of(book, "S")[cell].number_format = number_format
    book.save(path)
    prospects = load_prospects(path)
    assert table(prospects) == [(2, {"linkedin_url": URL, "note": text, "other": text})]


def test_a_date_in_the_note_column_is_said(tmp_path: Path) -> None:
    path = tmp_path / "p.xlsx"
    book = workbook(
        path,
        {"S": [["linkedin_url", "note"], [URL, "Hi Jane"], [URL2, CHRISTMAS], [URL2, 42]]},
    )
    sheet_of(book, "S")["B3"].number_format = "DD.MM.YYYY"
    book.save(path)
    prospects = load_prospects(path)
    assert prospects.table["note"].to_pylist() == ["Hi Jane", "24.12.2024", "42"]
    assert prospects.column_notes == (
        "profile URL from 'linkedin_url'",
        "note from 'note'",
        "2 cells of 'note' are dates or numbers, sent as the sheet shows them "
        "(row 3: '24.12.2024')",
    )


def test_a_wrong_stored_sheet_size_does_not_cut_rows_off(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "p.xlsx"
    workbook(path, {"S": [["linkedin_url", "note"], [URL, "a"], [URL2, "b"]]})
    small = tmp_path / "small.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(small, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data, count = re.subn(
                    rb'<dimension ref="[^"]*" ?/>', b'<dimension ref="A1"/>', data
                )
                assert count == 1
            target.writestr(item, data)
    assert table(load_prospects(small)) == [
        (2, {"linkedin_url": URL, "note": "a"}),
        (3, {"linkedin_url": URL2, "note": "b"}),
    ]


# -- columns, said out loud --------------------------------------------------------------


def csv_file(tmp_path: Path, header: str, *lines: str) -> Path:
    path = tmp_path / "p.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_the_columns_used_are_said(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "Person Linkedin Url,message,sender_id", f"{URL},Hi,s1")
    assert load_prospects(path).column_notes == (
        "profile URL from 'Person Linkedin Url'",
        "note from 'message'",
        "sender from 'sender_id'",
    )


def test_no_note_column_is_said(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "linkedin_url,name", f"{URL},Jane")
    assert load_prospects(path).column_notes == (
        "profile URL from 'linkedin_url'",
        "no note column: invitations go without a note",
    )


@pytest.mark.parametrize("header", ["Notes", "notes", "Comments", "Remarks", "Description"])
def test_crm_style_columns_are_never_the_note_but_are_mentioned(
    tmp_path: Path, header: str
) -> None:
    path = csv_file(tmp_path, f"linkedin_url,{header}", f"{URL},DO NOT CONTACT - lawyer involved")
    prospects = load_prospects(path)
    assert prospects.note_column is None
    assert prospects.column_notes == (
        "profile URL from 'linkedin_url'",
        "no note column: invitations go without a note",
        f"column {header!r} is not taken as the note (a name like this often holds internal "
        f"remarks): use --note-column {header} to send it",
    )


@pytest.mark.parametrize(
    ("header", "flag"),
    [
        ("Nachricht", "Nachricht"),
        ("icebreaker", "icebreaker"),
        ("Personalized Message", "'Personalized Message'"),
        ("opener", "opener"),
        ("Ice_Breaker", "Ice_Breaker"),
    ],
)
def test_columns_that_may_hold_notes_are_mentioned_with_the_flag(
    tmp_path: Path, header: str, flag: str
) -> None:
    path = csv_file(tmp_path, f"linkedin_url,{header}", f"{URL},Hallo")
    prospects = load_prospects(path)
    assert prospects.note_column is None
    assert prospects.column_notes[-1] == (
        f"column {header!r} may hold notes: use --note-column {flag} to send it"
    )
    assert load_prospects(path, note_column=header).column_notes == (
        "profile URL from 'linkedin_url'",
        f"note from {header!r}",
    )


def test_another_possible_note_column_beside_the_one_used(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "linkedin_url,note,Notes,icebreaker", f"{URL},Hi,owes us,Hey")
    assert load_prospects(path).column_notes == (
        "profile URL from 'linkedin_url'",
        "note from 'note'",
        "column 'Notes' is not taken as the note (a name like this often holds internal "
        "remarks): use --note-column Notes to send it instead of 'note'",
        "column 'icebreaker' may hold notes: use --note-column icebreaker to send it "
        "instead of 'note'",
    )


@pytest.mark.parametrize(
    ("kwargs", "suggestion"),
    [
        ({"note_column": "Mesage"}, "did you mean 'Message'?"),
        ({"note_column": "icebraker"}, "did you mean 'Icebreaker'?"),
        ({"url_column": "Linkedin Profil"}, "did you mean 'LinkedIn Profile'?"),
    ],
)
def test_an_unknown_column_suggests_the_closest(
    tmp_path: Path, kwargs: dict[str, str], suggestion: str
) -> None:
    path = csv_file(tmp_path, "LinkedIn Profile,Message,Icebreaker", f"{URL},Hi,Hey")
    with pytest.raises(ColumnNotFoundError) as caught:
        load_prospects(path, **kwargs)
    (wanted, name) = next(iter(kwargs.items()))
    kind = "URL" if wanted == "url_column" else "note"
    assert str(caught.value) == (
        f"{path}: no {name!r} column found (columns: 'LinkedIn Profile', 'Message', "
        f"'Icebreaker'); {suggestion} (asked for as the {kind} column)"
    )


def test_an_unknown_column_far_from_every_name_suggests_nothing(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "linkedin_url,note", f"{URL},Hi")
    with pytest.raises(ColumnNotFoundError) as caught:
        load_prospects(path, note_column="greeting")
    assert str(caught.value) == (
        f"{path}: no 'greeting' column found (columns: 'linkedin_url', 'note'); "
        "asked for as the note column"
    )


def test_no_url_column_suggests_the_column_holding_linkedin_urls(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "name,Their page", f"Jane,{URL}", "John,", f"Ann,{URL2}/")
    with pytest.raises(ColumnNotFoundError) as caught:
        load_prospects(path)
    assert str(caught.value) == (
        f"{path}: no LinkedIn URL column found (columns: 'name', 'Their page'); "
        "'Their page' holds LinkedIn URLs: use --url-column 'Their page'"
    )


def test_no_url_column_suggests_a_misspelt_header(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "name,Linkdin URL", "Jane,")
    with pytest.raises(ColumnNotFoundError) as caught:
        load_prospects(path)
    assert str(caught.value) == (
        f"{path}: no LinkedIn URL column found (columns: 'name', 'Linkdin URL'); "
        "did you mean 'Linkdin URL'? (use --url-column 'Linkdin URL')"
    )
