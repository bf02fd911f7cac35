"""One identity for a person: campaign_runner.urls, in spreadsheets and results alike."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import write_prospects
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign_runner.journal import Journal, JournalRecord, load_journal
from campaign_runner.urls import (
    InvalidUrl,
    canonical_or_kept,
    could_start_canonical,
    normalize_profile_url,
    normalize_urls,
)
from campaign_runner.validation import check_file

CANONICAL = "https://www.linkedin.com/in/j%C3%B6rg-m%C3%BCller"
# The same person as people and tools write them: escapes in upper and lower case, the
# precomposed (NFC) and decomposed (NFD, o + U+0308) forms, raw and escaped, capitals.
SAME_PERSON = [
    "https://www.linkedin.com/in/j%C3%B6rg-m%C3%BCller",
    "https://www.linkedin.com/in/j%c3%b6rg-m%c3%bcller",
    "https://www.linkedin.com/in/J%C3%96RG-M%C3%9CLLER",
    "https://www.linkedin.com/in/jo%CC%88rg-mu%CC%88ller",
    "https://www.linkedin.com/in/jo%cc%88rg-mu%cc%88ller/",
    "linkedin.com/in/jörg-müller",
    "linkedin.com/in/" + unicodedata.normalize("NFD", "jörg-müller"),
    "https://de.linkedin.com/in/" + unicodedata.normalize("NFD", "Jörg-Müller") + "?trk=x",
]


@pytest.mark.parametrize("written", SAME_PERSON)
def test_every_form_of_a_name_is_one_canonical_url(written: str) -> None:
    assert normalize_profile_url(written) == CANONICAL
    urls, reasons = normalize_urls(pa.array([written]))
    assert (urls.to_pylist(), reasons.to_pylist()) == ([CANONICAL], [""])


@given(st.text(alphabet="aouäöüÄÖÜéèçñ-", min_size=3, max_size=20))
def test_nfc_and_nfd_forms_agree(name: str) -> None:
    forms = [unicodedata.normalize(form, name) for form in ("NFC", "NFD")]
    assert len({normalize_profile_url(f"linkedin.com/in/{f}") for f in forms}) == 1


def test_a_spreadsheet_listing_one_person_in_two_forms_has_a_duplicate(tmp_path: Path) -> None:
    path = write_prospects(tmp_path / "p.csv", SAME_PERSON)
    verdicts = check_file(path)
    assert verdicts.counts == {
        "valid": 1,
        "invalid": 0,
        "duplicate": len(SAME_PERSON) - 1,
        "excluded": 0,
    }


@pytest.mark.parametrize("written", SAME_PERSON)
def test_a_results_line_in_any_form_matches_the_canonical_prospect(
    tmp_path: Path, written: str
) -> None:
    path = tmp_path / "results.csv"
    with Journal.open(path) as journal:
        journal.append(JournalRecord(2, written, "s1", "sent"))
    statuses, _ = load_journal(path).lookup(pa.array([CANONICAL]))
    assert statuses.to_pylist() == ["sent"]


def test_canonical_or_kept_keeps_what_cannot_be_normalised() -> None:
    col = pa.array([CANONICAL, "https://www.linkedin.com/in/ok-name", "not a url", ""])
    assert canonical_or_kept(col).to_pylist() == col.to_pylist()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("https://www.link", True),
        ("https://www.linkedin.com/in/", True),
        ("https://www.linkedin.com/in/j%C3%B6", True),
        ("https://www.linkedin.com/in/j%C", True),
        ("https://www.linkedin.com/in/j%c3", False),
        ("https://www.linkedin.com/in/Jane", False),
        ("https://www.linkedin.com/in/jane/", False),
        ("http://www.linkedin.com/in/jane", False),
    ],
)
def test_could_start_canonical(text: str, expected: bool) -> None:
    assert could_start_canonical(text) is expected


# Every form a person pastes from LinkedIn's sites, apps and e-mails, for one person.
PASTED = [
    "https://www.linkedin.com/in/jane-doe",
    "linkedin.com/in/jane-doe",
    "http://linkedin.com/in/jane-doe/",
    "HTTPS://WWW.LINKEDIN.COM/IN/JANE-DOE",
    "m.linkedin.com/in/jane-doe",  # the mobile site
    "https://linkedin.com/mwlite/in/jane-doe",  # LinkedIn Lite
    "https://www.linkedin.com/mwlite/in/jane-doe/",
    "https://m.linkedin.com/mwlite/in/jane-doe?trk=x",
    "https://de.linkedin.com/in/jane-doe",
    "https://www.linkedin.com/in/jane-doe?originalSubdomain=de",
    "https://www.linkedin.com/in/jane-doe/en/",  # the profile in another language
    "https://www.linkedin.com/in/jane-doe/overlay/contact-info/",
    "https://www.linkedin.com/in/jane-doe/details/experience/",
    "https://www.linkedin.com/in/jane-doe?utm_source=share&utm_campaign=share_via"
    "&utm_content=profile&utm_medium=member_ios",
    "https://www.linkedin.com/in/jane-doe?utm_source=share&utm_medium=member_android",
    "https://www.linkedin.com/comm/in/jane-doe?midToken=AQH&trk=eml-email_m2m_invite",
    "https://www.linkedin.com/in/jane-doe?lipi=urn%3Ali%3Apage%3Ad_flagship3_profile%3B",
    "https://www.linkedin.com/in/jane-doe#experience",
    "\u00a0https://www.linkedin.com/in/jane-doe\u00a0",  # a non-breaking space from a web page
    " https://www.linkedin.com/in/jane-doe\t",
]


@pytest.mark.parametrize("pasted", PASTED)
def test_every_pasted_form_normalises(pasted: str) -> None:
    expected = "https://www.linkedin.com/in/jane-doe"
    assert normalize_profile_url(pasted) == expected
    urls, reasons = normalize_urls(pa.array([pasted]))
    assert (urls.to_pylist(), reasons.to_pylist()) == ([expected], [""])


@pytest.mark.parametrize(
    ("pasted", "reason"),
    [
        ("https://lnkd.in/dAbC123", "shortened lnkd.in link"),
        ("https://www.linkedin.com/mwlite/company/acme", "a company page"),
        ("https://www.linkedin.com/comm/sales/lead/ACwAA1,NAME", "Sales Navigator"),
        ("https://www.linkedin.com/mwlite/", "no /in/ profile path"),
        ("https://www.linkedin.com/mwlite/in/ACoAAB12cd", "member-ID URL"),
        ("https://www.linkedin.com/mwlite/feed/", "/feed/ page"),
    ],
)
def test_refused_forms_keep_their_reasons(pasted: str, reason: str) -> None:
    with pytest.raises(InvalidUrl) as caught:
        normalize_profile_url(pasted)
    assert reason in caught.value.reason
    urls, reasons = normalize_urls(pa.array([pasted]))
    assert (urls.to_pylist(), reasons.to_pylist()) == ([""], [caught.value.reason])


_prefixes = st.sampled_from(["", "mwlite/", "comm/", "MWLite/", "m/", "mwlite/mwlite/"])
_pasted_like = st.builds(
    lambda scheme, host, prefix, kind, slug, tail: f"{scheme}{host}/{prefix}{kind}{slug}{tail}",
    st.sampled_from(["https://", "", "//", "ftp://"]),
    st.sampled_from(["www.linkedin.com", "m.linkedin.com", "linkedin.com", "lnkd.in"]),
    _prefixes,
    st.sampled_from(["in/", "company/", "sales/lead/", "", "IN/"]),
    st.text(alphabet="abXY09-_%é.", max_size=8) | st.sampled_from(["jane-doe", "ACoAAB1"]),
    st.sampled_from(["", "/", "/en/", "?originalSubdomain=de", "/overlay/contact-info/"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_pasted_like, min_size=1, max_size=20))
def test_vectorised_and_scalar_rules_agree_on_pasted_forms(values: list[str]) -> None:
    urls, reasons = normalize_urls(pa.chunked_array([values[:2], values[2:]], pa.string()))
    for raw, url, reason in zip(values, urls.to_pylist(), reasons.to_pylist(), strict=True):
        try:
            assert (url, reason) == (normalize_profile_url(raw), "")
        except InvalidUrl as exc:
            assert (url, reason) == ("", exc.reason)
