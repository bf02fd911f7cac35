"""Note templates and the unfilled-placeholder test: campaign_runner.notes."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest
from helpers import naughty_strings

from campaign_runner.errors import ConfigError, InputError
from campaign_runner.notes import (
    PREFILTER,
    Placeholder,
    find_placeholder,
    parse_template,
    placeholder_reasons,
)

# -- unfilled placeholders -------------------------------------------------------------

# (note, the placeholder found): syntax a person meant to be filled, left as written.
UNFILLED = [
    ("Hi {first_name}, great to meet you", "{first_name}"),
    ("Hi {firstName}!", "{firstName}"),
    ("Hi {First Name}!", "{First Name}"),
    ("Hi { first_name }!", "{ first_name }"),
    ("Hi {first_name|there}!", "{first_name|there}"),
    ("Hi {prénom} !", "{prénom}"),
    ("Hi {0}, welcome", "{0}"),
    ("Hi {{ firstName }},", "{{ firstName }}"),
    ("Hi {{firstName}},", "{{firstName}}"),
    ("Hi {{{name}}},", "{{{name}}}"),
    ("Hi {{ contact.first_name }}", "{{ contact.first_name }}"),
    ("Hi {{ name | default: 'there' }}", "{{ name | default: 'there' }}"),
    ("{{#if company}}at {{company}}{{/if}}", "{{#if company}}"),
    ("{% if company %}at your company{% endif %}", "{% if company %}"),
    ("Dear {!Contact.FirstName},", "{!Contact.FirstName}"),
    ("Hi ${first_name}", "${first_name}"),
    ("Hi $first_name,", "$first_name"),
    ("Hi $firstName,", "$firstName"),
    ("Hi *|FNAME|*,", "*|FNAME|*"),
    ("Hi [First Name], I saw", "[First Name]"),
    ("Hi [FIRSTNAME],", "[FIRSTNAME]"),
    ("Hi [first_name],", "[first_name]"),
    ("Hi [firstName],", "[firstName]"),
    ("Hi [Name],", "[Name]"),
    ("loved your time at [Company Name]", "[Company Name]"),
    ("as [jobTitle] you know", "[jobTitle]"),
    ("Best, [Your Name]", "[Your Name]"),
    ("Here is the deck: [insert link]", "[insert link]"),
    ("Hi [[FIRSTNAME]],", "[[FIRSTNAME]]"),
    ("Hi [firstname,fallback=there],", "[firstname,fallback=there]"),
    ("Hallo [Vorname],", "[Vorname]"),
    ("your [deal_stage] deal", "[deal_stage]"),
    ("Hi %FIRSTNAME%,", "%FIRSTNAME%"),
    ("Hi %first_name%,", "%first_name%"),
    ("Hi %%first_name%%,", "%%first_name%%"),
    ("Hi %s, welcome", "%s"),
    ("Hi %(name)s, welcome", "%(name)s"),
    ("Hi #firstName#,", "#firstName#"),
    ("Hi ##name##,", "##name##"),
    ("Hi <first_name>,", "<first_name>"),
    ("Hi <FirstName>,", "<FirstName>"),
    ("at <Company> you", "<Company>"),
    ("Hi <<FirstName>>,", "<<FirstName>>"),
    ("Bonjour «First_Name»,", "«First_Name»"),
    ("Hi __FIRST_NAME__,", "__FIRST_NAME__"),
    ("[sic] and then {first_name}", "{first_name}"),  # the first that is a placeholder
    ("Hi {name} and [Company]", "{name}"),
]

# Ordinary text that happens to hold brackets, braces, hashes, percents, dollars.
ORDINARY = [
    "He wrote it [sic] and",
    "details (see below)",
    "as shown in [1] and [2]",
    "[citation needed]",
    "[...] and so on",
    "[x] done",
    "I checked [TBD] twice",  # an acronym, not a field name
    "congrats on [LinkedIn] Top Voice",  # camelCase brands are not split into fields
    "we use <HubSpot> too",
    "«Bonjour» à tous",
    "Loved your #hashtag post",
    "#hiring #remote",
    "#AI#ML are my topics",  # a run of hashtags
    "We are #1 and #2",
    "50% of teams",
    "100% remote",
    "grew 20% to 30% this year",
    "the 1990%s were",
    "C# and F# devs",
    "C++ and C#",
    "A fellow C# dev 😀",
    "emoji 🙂👋🏽 only",
    "see you :) :-)",
    "I <3 your work",
    "5 > 3 < 4",
    "a < b > c",
    "solve {x} first",  # one letter: math, not a field
    "the set {1, 2, 3}",
    "x^{2} grows",
    "an empty {} pair",
    "raised $5M",
    "long $AAPL",
    "$USER and $HOME",  # shell variables, not named like merge fields
    "def __init__ method",
    "email me: jane@example.com",
    "Q&A at 5pm",
    "€50 or £40",
    "(first name) is what we call it",  # parentheses are prose
    "e.g. [e.g.] i.e.",
    "Smith & Co. (UK) Ltd",
    "version 2.0 [beta]",
    "'quotes' and \"double quotes\"",
]


@pytest.mark.parametrize(("note", "found"), UNFILLED)
def test_unfilled_placeholders_are_found(note: str, found: str) -> None:
    assert find_placeholder(note) == found


@pytest.mark.parametrize("note", ORDINARY)
def test_ordinary_text_holds_no_placeholder(note: str) -> None:
    assert find_placeholder(note) is None


def test_the_prefilter_picks_every_note_the_detector_would_flag() -> None:
    prefilter = re.compile(PREFILTER)
    for note in [n for n, _ in UNFILLED] + ORDINARY + naughty_strings():
        if find_placeholder(note) is not None:
            assert prefilter.search(note), repr(note)


def test_naughty_strings_do_not_crash_it_and_almost_all_stay_ordinary() -> None:
    strings = naughty_strings()
    flagged = {s: find_placeholder(s) for s in strings if find_placeholder(s) is not None}
    # Exactly the format-string and template-injection probes, each a placeholder that
    # would leave as written: "{0}", "%d", "%s%s%s%s%s", "<<< %s(un='%s') = %u", two
    # "%(jscript)s" and "{% print ... %}". Out of 515, everything else stays a note.
    assert len(strings) == 515
    assert sorted(flagged.values()) == sorted(
        ["{0}", "%d", "%s", "%s", "%(jscript)s", "%(jscript)s", "{% print 'x' * 64 * 1024**3 %}"]
    )


def test_placeholder_reasons_over_arrow() -> None:
    notes = pa.array(["Hi [First Name]", "50% off", "", "Hi {name}", "#hiring"], pa.string())
    reasons = placeholder_reasons(notes)
    assert reasons is not None
    assert reasons.to_pylist() == [
        "note holds an unfilled placeholder: [First Name]",
        "",
        "",
        "note holds an unfilled placeholder: {name}",
        "",
    ]
    assert placeholder_reasons(pa.array(["50% off", "C#", "[sic]"], pa.string())) is None


# -- templates --------------------------------------------------------------------------


def test_a_template_parses_into_text_and_placeholders() -> None:
    template = parse_template("Hi {first_name}, at {company|your company} {{x}} }}!")
    assert template.parts == (
        "Hi ",
        Placeholder("{first_name}", "first_name", None),
        ", at ",
        Placeholder("{company|your company}", "company", "your company"),
        " {x} }!",
    )
    assert parse_template("{ First Name | there }").parts == (
        Placeholder("{ First Name | there }", "First Name", "there"),
    )
    assert parse_template("{company|}").parts == (Placeholder("{company|}", "company", ""),)
    assert parse_template("No placeholders at all.").parts == ("No placeholders at all.",)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Hi {first_name", "'{' at character 4 is never closed (write '{{' for a brace)"),
        ("Hi {first {name}", "'{' at character 4 is never closed (write '{{' for a brace)"),
        ("Hi first_name}", "'}' at character 14 closes nothing (write '}}' for a brace)"),
        ("Hi {}", "{} at character 4 names no column"),
        ("Hi { |there}", "{ |there} at character 4 names no column"),
        (
            "Hi {{first_name}}",
            "its text holds {first_name}, which would be sent as written: a placeholder is "
            "{column} (or {column|fallback}), and {{ }} are literal braces",
        ),
        (
            "Hi {first_name|[Name]}",
            "its text holds [Name], which would be sent as written: a placeholder is "
            "{column} (or {column|fallback}), and {{ }} are literal braces",
        ),
        (
            "Hi [First Name], at {company}",
            "its text holds [First Name], which would be sent as written: a placeholder is "
            "{column} (or {column|fallback}), and {{ }} are literal braces",
        ),
    ],
)
def test_a_broken_template_says_where(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_template(text, "config.yaml", "campaign.note_template")
    assert str(caught.value) == f"config.yaml: campaign.note_template: {problem}"


def test_placeholders_find_columns_as_the_loader_does() -> None:
    columns = ["LinkedIn URL", "First Name", "first_name", "Company-Name", "e.mail"]
    template = parse_template("{first_name} {FIRST NAME} {company_name} {email} {Company-Name}")
    bound = template.bind(Path("p.csv"), columns)
    assert dict(bound.columns) == {
        "first_name": "first_name",  # the exact name first
        "FIRST NAME": "First Name",
        "company_name": "Company-Name",
        "email": "e.mail",
        "Company-Name": "Company-Name",
    }
    assert bound.needed() == ["first_name", "First Name", "Company-Name", "e.mail"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Hi {frist_name}",
            "p.csv: note template: {frist_name} names no column of this file "
            "(closest: 'First Name')",
        ),
        (
            "at {employer}",
            "p.csv: note template: {employer} names no column of this file "
            "(columns: 'LinkedIn URL', 'First Name', 'Company')",
        ),
    ],
)
def test_a_placeholder_naming_no_column_is_an_error_for_the_file(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_template(text).bind(Path("p.csv"), ["LinkedIn URL", "First Name", "Company"])
    assert str(caught.value) == message
