"""URL normalisation, note rules, duplicates and the report: campaign_runner.validation."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pytest
from helpers import naughty_strings
from hypothesis import example, given, settings
from hypothesis import strategies as st

from campaign_runner.errors import ConfigError, InputError
from campaign_runner.prospects import load_prospects
from campaign_runner.urls import InvalidUrl, normalize_profile_url, normalize_urls
from campaign_runner.validation import (
    FRAME_COLUMNS,
    NOTE_LIMIT,
    STATUS_DUPLICATE,
    STATUS_INVALID,
    STATUS_VALID,
    ValidationResult,
    check_file,
    check_prospects,
    note_length,
    note_lengths,
    validate_file,
    write_report,
)

PROFILE = re.compile(r"https://www\.linkedin\.com/in/[A-Za-z0-9%_\-]{3,}")


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


# -- normalize_profile_url --------------------------------------------------------------

ACCEPTED = [
    ("https://www.linkedin.com/in/jane-doe", "jane-doe"),
    ("http://www.linkedin.com/in/jane-doe", "jane-doe"),
    ("www.linkedin.com/in/jane-doe", "jane-doe"),
    ("linkedin.com/in/jane-doe", "jane-doe"),
    ("//linkedin.com/in/jane-doe", "jane-doe"),
    ("HTTPS://WWW.LINKEDIN.COM/IN/Jane-Doe", "jane-doe"),
    ("https://uk.linkedin.com/in/jane-doe", "jane-doe"),
    ("https://de.linkedin.com/in/jane-doe/", "jane-doe"),
    ("https://m.linkedin.com/in/jane-doe", "jane-doe"),
    ("https://www.linkedin.com/in/jane-doe/", "jane-doe"),
    ("https://www.linkedin.com/in/jane-doe?trk=public_profile_browsemap", "jane-doe"),
    ("https://www.linkedin.com/in/jane-doe/?originalSubdomain=uk", "jane-doe"),
    ("https://www.linkedin.com/in/jane-doe#experience", "jane-doe"),
    ("https://www.linkedin.com/in/jane-doe/detail/recent-activity/", "jane-doe"),
    ("https://www.linkedin.com/in/jane-doe/overlay/contact-info/", "jane-doe"),
    ("  https://www.linkedin.com/in/jane-doe  ", "jane-doe"),
    ("\thttps://www.linkedin.com/in/jane-doe\u00a0", "jane-doe"),
    ("https://www.linkedin.com//in//jane-doe", "jane-doe"),
    ("https://www.linkedin.com/in/jane_doe_1", "jane_doe_1"),
    ("https://www.linkedin.com/in/J%C3%B6rg-M%C3%BCller", "j%C3%B6rg-m%C3%BCller"),
    ("https://www.linkedin.com/in/j%c3%b6rg-m%c3%bcller", "j%C3%B6rg-m%C3%BCller"),
    ("https://www.linkedin.com/in/Jörg-Müller", "j%C3%B6rg-m%C3%BCller"),
    ("https://www.linkedin.com/in/%E5%BC%A0%E4%BC%9F%E4%BC%9F", "%E5%BC%A0%E4%BC%9F%E4%BC%9F"),
    ("https://www.linkedin.com/in/jane%2Ddoe", "jane-doe"),
]


@pytest.mark.parametrize(("raw", "slug"), ACCEPTED)
def test_accepted_forms_normalise_to_the_canonical_url(raw: str, slug: str) -> None:
    assert normalize_profile_url(raw) == f"https://www.linkedin.com/in/{slug}"


REJECTED = [
    ("", "empty"),
    ("   ", "empty"),
    ("jane doe", "not a URL"),
    ("N/A", "not a URL"),
    ("NULL", "not a URL"),
    ("https://www.linkedin.com/company/acme-widgets", "company page"),
    ("https://www.linkedin.com/school/example-university/", "school page"),
    ("https://www.linkedin.com/showcase/acme-labs/", "showcase page"),
    ("https://www.linkedin.com/sales/lead/ACwAAA1b2c3,NAME_SEARCH,x1Yz", "View LinkedIn profile"),
    ("https://www.linkedin.com/sales/people/ACwAAA1b2c3,NAME_SEARCH", "Sales Navigator"),
    ("https://www.linkedin.com/in/ACoAABcDeFgHiJkLmNoPq", "member-ID"),
    ("https://www.linkedin.com/in/acoaabcdefghijklmnopq", "member-ID"),
    ("https://linkedin.com.evil.example/in/jane-doe", "host linkedin.com.evil.example"),
    ("https://evil-linkedin.com/in/jane-doe", "host evil-linkedin.com"),
    ("https://www.linkedin.co/in/jane-doe", "host www.linkedin.co"),
    ("https://example.com/?u=https://www.linkedin.com/in/jane-doe", "wrapped in another address"),
    (
        "https://www.google.com/url?q=https%3A%2F%2Fwww.linkedin.com%2Fin%2Fjane-doe",
        "wrapped in another address",
    ),
    ("https://www.linkedin.com@evil.example/in/jane-doe", "unexpected address part"),
    ("https://www.linkedin.com:8443/in/jane-doe", "unexpected address part"),
    ("https://help.linkedin.com/in/jane-doe", "host help.linkedin.com"),
    ("ftp://www.linkedin.com/in/jane-doe", "not a web address"),
    ("javascript:alert(1)", "not a LinkedIn profile URL"),
    ("https://lnkd.in/abc123", "lnkd.in"),
    ("https://www.linkedin.com/", "no /in/"),
    ("https://www.linkedin.com/in/", "no profile name"),
    ("https://www.linkedin.com/feed/", "/feed/ page"),
    ("https://www.linkedin.com/posts/jane-doe_activity-123", "/posts/ page"),
    ("https://www.linkedin.com/pub/jane-doe/1/2/3", "old-style /pub/"),
    ("https://www.linkedin.com/in/jane%20doe", "contains ' '"),
    ("https://www.linkedin.com/in/jane.doe", "contains '.'"),
    ("https://www.linkedin.com/in/%FF%FE", "malformed percent-encoding"),
    ("https://www.linkedin.com/in/ab", "2 characters"),
    ("https://www.linkedin.com/in/" + "a" * 101, "101 characters"),
    ("https://www.linkedin.com/in/jane\u200bdoe", "invisible"),
    ("https://www.linkedin.com/in/jane doe", "spaces"),
    ('=HYPERLINK("https://www.linkedin.com/in/jane-doe")', "not a"),
]


@pytest.mark.parametrize(("raw", "reason"), REJECTED)
def test_rejected_forms_say_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidUrl) as caught:
        normalize_profile_url(raw)
    assert reason in caught.value.reason
    assert isinstance(caught.value, ValueError)


def test_sales_navigator_reason_explains_how_to_get_the_public_url() -> None:
    with pytest.raises(InvalidUrl, match=r"linkedin\.com/in/"):
        normalize_profile_url("https://www.linkedin.com/sales/lead/ACwAAA1b2c3,NAME_SEARCH,x")


# Strings that look like what people paste, plus arbitrary text.
_hosts = st.sampled_from(
    [
        "www.linkedin.com",
        "linkedin.com",
        "uk.linkedin.com",
        "m.linkedin.com",
        "LinkedIn.com",
        "linkedin.com.evil.example",
        "example.com",
        "",
    ]
)
_schemes = st.sampled_from(["https://", "http://", "", "//", "HTTP://", "ftp://"])
_kinds = st.sampled_from(["in", "IN", "company", "sales/lead", "pub", ""])
_slugs = st.text(
    alphabet=st.sampled_from("abcXYZ019-_%.éß👋 /?#İ\u0307\u200b"), min_size=0, max_size=12
) | st.sampled_from(["ACoAAB12", "j%C3%B6rg", "%FF", "jane-doe", "a" * 101])
_tails = st.sampled_from(["", "/", "?trk=x", "/detail/recent-activity/", "#top", " ", "\t"])
url_like = st.builds(
    lambda s, h, k, slug, t: f"{s}{h}/{k}/{slug}{t}", _schemes, _hosts, _kinds, _slugs, _tails
)
any_text = url_like | st.text(max_size=40)


@settings(max_examples=400, deadline=None)
@given(any_text)
@example("https://www.linkedin.com/in/İİİ")
def test_normalisation_is_idempotent_and_only_yields_profile_urls(raw: str) -> None:
    try:
        url = normalize_profile_url(raw)
    except InvalidUrl as exc:
        assert exc.reason
        return
    assert PROFILE.fullmatch(url), url
    assert normalize_profile_url(url) == url
    assert not url.lower().startswith("https://www.linkedin.com/in/acoaa")


@settings(max_examples=150, deadline=None)
@given(st.lists(any_text, min_size=1, max_size=30))
def test_vectorised_normalisation_agrees_with_the_reference(values: list[str]) -> None:
    urls, reasons = normalize_urls(pa.chunked_array([values[:3], values[3:]], pa.string()))
    for raw, url, reason in zip(values, urls.to_pylist(), reasons.to_pylist(), strict=True):
        try:
            assert (url, reason) == (normalize_profile_url(raw), "")
        except InvalidUrl as exc:
            assert (url, reason) == ("", exc.reason)


@pytest.mark.parametrize(
    "slugs",
    [
        pytest.param(["j%C3%B6rg-x", "J%C3%96RG-Y", "%CE%A3%CE%A3%CE%A3", "jane%2Ddoe"], id="good"),
        pytest.param(["j%C3%B6rg-x", "a%FFb", "j%C3%B6rg-y"], id="one-bad-escape"),
        pytest.param(["j%C3%B6rg-x", "abc%0Adef", "j%C3%B6rg-y"], id="encoded-line-break"),
        pytest.param(["j%C3", "%B6rg-x"], id="split-sequence"),
        pytest.param(["%C3%B6%C3%B6", "acoa%41x", "%E5%BC%A0" * 34, "a%2Fbcd"], id="refused"),
    ],
)
def test_percent_encoded_names_decided_together_agree_with_the_reference(
    slugs: list[str],
) -> None:
    # Names in one chunk are decoded in one go; each must still come out as if alone.
    values = [URL.format(s) for s in slugs]
    urls, reasons = normalize_urls(pa.array(values, pa.string()))
    for raw, url, reason in zip(values, urls.to_pylist(), reasons.to_pylist(), strict=True):
        try:
            assert (url, reason) == (normalize_profile_url(raw), "")
        except InvalidUrl as exc:
            assert (url, reason) == ("", exc.reason)


# -- notes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("note", "length"),
    [
        ("", 0),
        ("hello", 5),
        ("héllo", 5),
        ("👋", 2),  # outside the BMP: a surrogate pair, as JavaScript counts it
        ("a👋b👋", 6),
        ("中文", 2),
        ("e\u0301", 2),  # combining accent: two code points, two code units
        ("\r\n", 2),
    ],
)
def test_note_length_counts_utf16_code_units(note: str, length: int) -> None:
    assert note_length(note) == length
    assert note_lengths(pa.array([note])).tolist() == [length]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=20))
def test_vectorised_note_lengths_agree(notes: list[str]) -> None:
    assert note_lengths(pa.array(notes, pa.string())).tolist() == [note_length(n) for n in notes]


# -- whole files ------------------------------------------------------------------------

URL = "https://www.linkedin.com/in/{}"


def test_frame_has_the_contracted_columns_and_types(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "p.csv",
        ["linkedin_url", "note", "senderId"],
        [[URL.format("jane-doe"), "Hi", " sender_1 "], ["bad", "", ""]],
    )
    result = validate_file(path)
    assert isinstance(result, ValidationResult)
    assert tuple(result.frame.columns) == FRAME_COLUMNS
    assert result.frame["row"].dtype == "int64"
    for name in FRAME_COLUMNS[1:]:
        assert pd.api.types.is_string_dtype(result.frame[name]), name
    assert result.frame["row"].tolist() == [2, 3]
    assert result.frame["sender_id"].tolist() == ["sender_1", ""]
    assert result.sender_column == "senderId"
    assert result.counts == {STATUS_VALID: 1, STATUS_INVALID: 1, STATUS_DUPLICATE: 0, "excluded": 0}
    assert result.valid["row"].tolist() == [2]
    assert result.problems["row"].tolist() == [3]


def test_duplicates_compare_canonical_case_insensitive_slugs(tmp_path: Path) -> None:
    rows = [
        ["https://www.linkedin.com/company/acme"],  # 2: invalid, not a candidate
        ["http://linkedin.com/in/Jane-Doe/"],  # 3
        ["https://www.linkedin.com/in/john-roe"],  # 4
        ["linkedin.com/in/jane-doe?trk=x"],  # 5: repeats 3
        ["https://uk.linkedin.com/in/JANE-DOE"],  # 6: repeats 3
        ["https://www.linkedin.com/in/j%C3%B6rg-x"],  # 7
        ["https://www.linkedin.com/in/Jörg-X"],  # 8: repeats 7
    ]
    frame = validate_file(write_csv(tmp_path / "p.csv", ["linkedin_url"], rows)).frame
    assert frame["status"].tolist() == [
        STATUS_INVALID,
        STATUS_VALID,
        STATUS_VALID,
        STATUS_DUPLICATE,
        STATUS_DUPLICATE,
        STATUS_VALID,
        STATUS_DUPLICATE,
    ]
    assert frame["reason"].tolist()[3:5] == ["duplicate of row 3"] * 2
    assert frame["reason"].iloc[6] == "duplicate of row 7"
    assert frame["linkedin_url"].iloc[3] == URL.format("jane-doe")


def test_a_row_invalid_for_its_note_does_not_make_a_later_row_a_duplicate(tmp_path: Path) -> None:
    rows = [[URL.format("jane-doe"), "x" * 301], [URL.format("jane-doe"), "short"]]
    frame = validate_file(write_csv(tmp_path / "p.csv", ["linkedin_url", "note"], rows)).frame
    assert frame["status"].tolist() == [STATUS_INVALID, STATUS_VALID]
    assert frame["reason"].iloc[0] == "note is 301 characters, the limit is 300"
    # The URL itself is fine, so it stays in the frame for the report.
    assert frame["linkedin_url"].iloc[0] == URL.format("jane-doe")


@pytest.mark.parametrize(
    ("note", "status", "reason", "warning"),
    [
        ("", STATUS_VALID, "", ""),
        ("x" * 200, STATUS_VALID, "", ""),
        ("x" * 201, STATUS_VALID, "", "note is 201 characters: LinkedIn free accounts cap"),
        ("x" * 300, STATUS_VALID, "", "note is 300 characters"),
        ("x" * 301, STATUS_INVALID, "note is 301 characters, the limit is 300", ""),
        ("👋" * 150, STATUS_VALID, "", "note is 300 characters"),
        ("👋" * 151, STATUS_INVALID, "note is 302 characters, the limit is 300", ""),
    ],
)
def test_note_limits(tmp_path: Path, note: str, status: str, reason: str, warning: str) -> None:
    rows = [[URL.format("jane-doe"), note]]
    frame = validate_file(write_csv(tmp_path / "p.csv", ["linkedin_url", "note"], rows)).frame
    assert frame["status"].iloc[0] == status
    assert frame["reason"].iloc[0] == reason
    assert frame["warning"].iloc[0].startswith(warning)
    assert bool(frame["warning"].iloc[0]) == bool(warning)


def test_bad_url_and_long_note_give_both_reasons(tmp_path: Path) -> None:
    rows = [["https://www.linkedin.com/company/acme", "x" * 400]]
    frame = validate_file(write_csv(tmp_path / "p.csv", ["linkedin_url", "note"], rows)).frame
    assert frame["reason"].iloc[0] == (
        "a company page (/company/), not a person's profile; "
        "note is 400 characters, the limit is 300"
    )


@pytest.mark.parametrize(
    ("note", "kept"),
    [
        ("   ", ""),
        ("\t\r\n ", ""),
        ("\u00a0\u3000", ""),
        ("  Hi Jane,  ", "  Hi Jane,  "),
        ("NULL", "NULL"),
        ("NaN", "NaN"),
        ("None", "None"),
        ("True", "True"),
        ("0", "0"),
        ("مرحبا بك", "مرحبا بك"),
        ("Hi 👋🏽 there", "Hi 👋🏽 there"),
        ("bell\x07 and esc\x1b[0m", "bell\x07 and esc\x1b[0m"),
        ("line one\r\nline two\n", "line one\r\nline two\n"),
        ('she said ""hi""', 'she said ""hi""'),
    ],
)
def test_notes_survive_exactly_except_whitespace_only(tmp_path: Path, note: str, kept: str) -> None:
    rows = [[URL.format("jane-doe"), note]]
    frame = validate_file(write_csv(tmp_path / "p.csv", ["linkedin_url", "note"], rows)).frame
    assert frame["note"].iloc[0] == kept


def test_every_naughty_string_survives_as_a_note_or_is_refused_with_a_reason(
    tmp_path: Path,
) -> None:
    notes = naughty_strings()
    rows = [[URL.format(f"person-{i}"), note] for i, note in enumerate(notes)]
    path = write_csv(tmp_path / "blns.csv", ["linkedin_url", "note"], rows)
    frame = validate_file(path).frame
    assert len(frame) == len(notes)
    assert frame["row"].tolist() == list(range(2, 2 + len(notes)))
    unfilled = []
    for note, (_, line) in zip(notes, frame.iterrows(), strict=True):
        if note.isspace() or not note:
            assert line["note"] == "", repr(note)
        elif line["reason"].startswith("note holds an unfilled placeholder: "):
            unfilled.append(note)
        elif line["status"] == STATUS_INVALID:
            assert note_length(note) > NOTE_LIMIT and line["reason"], repr(note)
        else:
            assert line["note"] == note, repr(note)
            assert line["status"] == STATUS_VALID
    # The format-string and template probes ("{0}", "%s%s%s%s%s", "{% print ... %}"...):
    # tests/test_notes.py names all seven.
    assert len(unfilled) == 7


def test_naughty_strings_as_urls_are_refused_with_reasons(tmp_path: Path) -> None:
    notes = naughty_strings()
    path = write_csv(tmp_path / "blns.csv", ["linkedin_url"], [[s] for s in notes])
    frame = validate_file(path).frame
    assert (frame["status"] == STATUS_INVALID).all()
    assert (frame["reason"] != "").all()


# -- note templates and unfilled placeholders -------------------------------------------

TEMPLATE = "Hi {first_name}, loved your work at {company|your company}!"
MISSING_FIRST = "note template: {first_name} has no value in this row (column 'First Name')"


def test_a_template_fills_each_row_from_its_cells(tmp_path: Path) -> None:
    header = ["Person Linkedin Url", "First Name", "Company", "note"]
    rows = [
        [URL.format("ada-one"), "Ada", "Acme", ""],
        [URL.format("bob-two"), "  Bob ", "   ", ""],  # cells trimmed; blank -> fallback
        [URL.format("cy-three"), "", "Acme", ""],  # no value, no fallback
        [URL.format("di-four"), "\\t", "Acme", "My own note, Di."],  # its own note wins
        [URL.format("ed-five"), "Ed", "Initech", "   "],  # a blank note is no note
        [URL.format("flo-six"), "Flo", "[Company Name]", ""],  # a cell holding a placeholder
        [URL.format("gus-seven"), "Gus", "Acme", "Hi [First Name]!"],  # its own, unfilled
    ]
    path = write_csv(tmp_path / "p.csv", header, rows)
    verdicts = check_file(path, note_template=TEMPLATE)
    table = verdicts.table
    assert verdicts.note_template == TEMPLATE
    assert table["note"].to_pylist() == [
        "Hi Ada, loved your work at Acme!",
        "Hi Bob, loved your work at your company!",
        "",
        "My own note, Di.",
        "Hi Ed, loved your work at Initech!",
        "Hi Flo, loved your work at [Company Name]!",
        "Hi [First Name]!",
    ]
    assert table["status"].to_pylist() == [
        STATUS_VALID,
        STATUS_VALID,
        STATUS_INVALID,
        STATUS_VALID,
        STATUS_VALID,
        STATUS_INVALID,
        STATUS_INVALID,
    ]
    assert table["reason"].to_pylist() == [
        "",
        "",
        MISSING_FIRST,
        "",
        "",
        "note holds an unfilled placeholder: [Company Name]",
        "note holds an unfilled placeholder: [First Name]",
    ]


def test_every_placeholder_without_a_value_is_named(tmp_path: Path) -> None:
    header = ["linkedin_url", "first-name", "Job Title"]
    rows = [[URL.format("jane-doe"), "", ""], ["https://www.linkedin.com/company/acme", "", "CTO"]]
    path = write_csv(tmp_path / "p.csv", header, rows)
    frame = validate_file(path, note_template="{First_Name}, fellow {job title}?").frame
    assert frame["status"].tolist() == [STATUS_INVALID, STATUS_INVALID]
    assert frame["reason"].tolist() == [
        "note template: {First_Name} has no value in this row (column 'first-name'); "
        "note template: {job title} has no value in this row (column 'Job Title')",
        "a company page (/company/), not a person's profile; "
        "note template: {First_Name} has no value in this row (column 'first-name')",
    ]
    assert frame["note"].tolist() == ["", ""]


@pytest.mark.parametrize(
    ("name", "status", "reason", "warning"),
    [
        ("x" * 175, STATUS_VALID, "", ""),  # 25 + 175 = 200
        ("x" * 176, STATUS_VALID, "", "note is 201 characters: LinkedIn free accounts cap"),
        ("x" * 275, STATUS_VALID, "", "note is 300 characters"),
        ("x" * 276, STATUS_INVALID, "note is 301 characters, the limit is 300", ""),
        ("👋" * 138, STATUS_INVALID, "note is 301 characters, the limit is 300", ""),
    ],
)
def test_the_rendered_note_is_the_one_measured(
    tmp_path: Path, name: str, status: str, reason: str, warning: str
) -> None:
    template = "Hello {name}, great to connect!"  # 25 characters around the name
    path = write_csv(tmp_path / "p.csv", ["linkedin_url", "name"], [[URL.format("jane"), name]])
    frame = validate_file(path, note_template=template).frame
    assert frame["note"].iloc[0] == f"Hello {name}, great to connect!"
    assert frame["status"].iloc[0] == status
    assert frame["reason"].iloc[0] == reason
    assert frame["warning"].iloc[0].startswith(warning)
    assert bool(frame["warning"].iloc[0]) == bool(warning)


def test_a_template_without_placeholders_is_the_same_note_for_everyone(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "p.csv", ["linkedin_url"], [[URL.format("a-1")], [URL.format("b-2")]]
    )
    frame = validate_file(path, note_template="Great to connect! {{:-)}}").frame
    assert frame["note"].tolist() == ["Great to connect! {:-)}"] * 2
    assert frame["status"].tolist() == [STATUS_VALID] * 2


def test_a_placeholder_naming_no_column_stops_the_whole_file(tmp_path: Path) -> None:
    header = ["linkedin_url", "First Name", "Last Name", "Company"]
    path = write_csv(tmp_path / "p.csv", header, [[URL.format("jane-doe"), "J", "D", "A"]])
    with pytest.raises(InputError) as caught:
        check_file(path, note_template="Hi {frist_name}")
    assert str(caught.value) == (
        f"{path}: note template: {{frist_name}} names no column of this file "
        "(closest: 'First Name', 'Last Name')"
    )


def test_a_template_that_does_not_parse_is_a_config_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", ["linkedin_url"], [[URL.format("jane-doe")]])
    with pytest.raises(ConfigError) as caught:
        check_file(path, note_template="Hi {first_name")
    assert str(caught.value) == (
        "note template: '{' at character 4 is never closed (write '{{' for a brace)"
    )


def test_a_template_fills_an_xlsx_sheet(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["LinkedIn", "First name", "Employees"])
    sheet.append([URL.format("jane-doe"), "Jane", 250])
    sheet.append([URL.format("john-doe"), None, 12])
    path = tmp_path / "p.xlsx"
    book.save(path)
    frame = validate_file(path, note_template="Hi {first name|there}, {employees} people!").frame
    assert frame["note"].tolist() == ["Hi Jane, 250 people!", "Hi there, 12 people!"]
    assert frame["status"].tolist() == [STATUS_VALID, STATUS_VALID]


def test_check_prospects_takes_the_template_and_needs_its_columns(tmp_path: Path) -> None:
    header = ["linkedin_url", "first_name", "city"]
    path = write_csv(tmp_path / "p.csv", header, [[URL.format("jane-doe"), "Jane", "Graz"]])
    loaded = load_prospects(path)
    verdicts = check_prospects(loaded, template="Servus {first_name} in {city}")
    assert verdicts.table["note"].to_pylist() == ["Servus Jane in Graz"]
    narrow = load_prospects(path, all_columns=False)
    with pytest.raises(ValueError, match="not loaded"):
        check_prospects(narrow, template="Servus {first_name}")


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        ("Hi {first_name}, great to connect", "note holds an unfilled placeholder: {first_name}"),
        ("Hi {{ firstName }}!", "note holds an unfilled placeholder: {{ firstName }}"),
        ("Hi %FIRSTNAME%,", "note holds an unfilled placeholder: %FIRSTNAME%"),
        ("Hi #firstName#,", "note holds an unfilled placeholder: #firstName#"),
        ("Hi *|FNAME|*", "note holds an unfilled placeholder: *|FNAME|*"),
        ("He said it [sic], 100% remote, C# #hiring <3", ""),
    ],
)
def test_a_note_column_with_unfilled_placeholders_is_invalid(
    tmp_path: Path, note: str, reason: str
) -> None:
    path = write_csv(tmp_path / "p.csv", ["linkedin_url", "note"], [[URL.format("jane"), note]])
    frame = validate_file(path).frame
    assert frame["status"].iloc[0] == (STATUS_INVALID if reason else STATUS_VALID)
    assert frame["reason"].iloc[0] == reason
    assert frame["note"].iloc[0] == note


def test_a_long_note_with_a_placeholder_gives_both_reasons(tmp_path: Path) -> None:
    note = "Hi [First Name], " + "x" * 290
    path = write_csv(tmp_path / "p.csv", ["linkedin_url", "note"], [[URL.format("jane"), note]])
    frame = validate_file(path).frame
    assert frame["reason"].iloc[0] == (
        "note holds an unfilled placeholder: [First Name]; note is 307 characters, the limit is 300"
    )


# -- report -----------------------------------------------------------------------------


def test_report_has_one_line_per_row(tmp_path: Path) -> None:
    rows = [[URL.format("jane-doe"), "x" * 250], ["bad", ""], [URL.format("Jane-Doe"), ""]]
    path = write_csv(tmp_path / "p.csv", ["linkedin_url", "note"], rows)
    for result in (validate_file(path), check_file(path)):
        report = tmp_path / "report.csv"
        write_report(result, report)
        with report.open(encoding="utf-8", newline="") as fh:
            lines = list(csv.DictReader(fh))
        assert list(lines[0]) == ["row", "linkedin_url", "status", "reason", "warning"]
        assert [line["row"] for line in lines] == ["2", "3", "4"]
        assert [line["status"] for line in lines] == ["valid", "invalid", "duplicate"]
        assert lines[0]["linkedin_url"] == URL.format("jane-doe")
        assert lines[0]["warning"].startswith("note is 250 characters")
        assert lines[1]["linkedin_url"] == ""
        assert lines[2]["reason"] == "duplicate of row 2"


def test_report_cells_that_spreadsheets_would_run_are_escaped(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "row": pd.Series([2, 3], dtype="int64"),
            "linkedin_url": ["", URL.format("jane-doe")],
            "status": [STATUS_INVALID, STATUS_VALID],
            "reason": ['=HYPERLINK("http://evil.example")', "-3"],
            "note": ["", ""],
            "sender_id": ["", ""],
            "warning": ["@SUM(A1)", ""],
        }
    )
    result = ValidationResult(tmp_path / "p.csv", "linkedin_url", None, None, frame)
    report = tmp_path / "report.csv"
    write_report(result, report)
    with report.open(encoding="utf-8", newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert lines[0]["reason"] == '\'=HYPERLINK("http://evil.example")'
    assert lines[0]["warning"] == "'@SUM(A1)"
    assert lines[1]["reason"] == "-3"  # a plain number cannot run


@pytest.mark.parametrize("template", [None, "Hi from {linkedin_url}"])
def test_checking_and_reporting_do_not_import_pandas(tmp_path: Path, template: str | None) -> None:
    # Importing pandas costs `validate` a tenth of its time on a million rows.
    rows = [[URL.format("jane-doe"), "x" * 250], ["=cmd", "x" * 301], [URL.format("Jane-Doe"), ""]]
    path = write_csv(tmp_path / "p.csv", ["linkedin_url", "note"], rows)
    code = (
        "import sys\n"
        "from campaign_runner.validation import check_file, write_report\n"
        f"verdicts = check_file({str(path)!r}, note_template={template!r})\n"
        f"write_report(verdicts, {str(tmp_path / 'r.csv')!r})\n"
        "print(verdicts.counts, verdicts.problems(), verdicts.warnings(), verdicts.has_notes())\n"
        "print('pandas' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False"
    assert "'duplicate': 1" in done.stdout
