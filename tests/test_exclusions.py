"""Do-not-contact lists: by a profile URL in any form, and by company."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from helpers import url, write_prospects

from campaign_runner.cli import cli
from campaign_runner.errors import InputError
from campaign_runner.exclusions import load_exclusions
from campaign_runner.validation import check_file

HEADER = ("linkedin_url", "note", "Company Name")


def spreadsheet(tmp_path: Path) -> Path:
    return write_prospects(
        tmp_path / "p.csv",
        [
            (url("anna"), "hi", "Acme GmbH"),
            (url("bo"), "hi", "Initech"),
            (url("cara"), "hi", "  ACME   gmbh "),
            (url("dan"), "hi", "Globex"),
            ("not a url", "", "Acme GmbH"),
        ],
        header=HEADER,
    )


def test_rows_are_excluded_by_a_url_in_another_form_and_by_company(tmp_path: Path) -> None:
    dnc = write_prospects(tmp_path / "dnc.csv", ["HTTPS://de.linkedin.com/in/Person-Bo/?trk=x"])
    customers = write_prospects(tmp_path / "customers.csv", [("Acme GmbH",)], header=("company",))
    verdicts = check_file(spreadsheet(tmp_path), exclusions=load_exclusions([dnc, customers]))
    by_row = {r["row"]: (r["status"], r["reason"]) for r in verdicts.table.to_pylist()}
    assert by_row[2] == (
        "excluded",
        "company 'Acme GmbH' is on the do-not-contact list customers.csv",
    )
    assert by_row[3] == ("excluded", "on the do-not-contact list dnc.csv")
    assert by_row[4][0] == "excluded"  # case and spaces do not matter
    assert by_row[5] == ("valid", "")
    assert by_row[6][0] == "invalid"  # an unusable row stays what it is
    assert verdicts.counts == {"valid": 1, "invalid": 1, "duplicate": 0, "excluded": 3}


def test_an_xlsx_list_with_both_columns(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Profile URL", "Organisation"])
    sheet.append(["linkedin.com/in/person-dan", "Initech"])
    book.save(tmp_path / "dnc.xlsx")
    exclusions = load_exclusions([tmp_path / "dnc.xlsx"])
    verdicts = check_file(spreadsheet(tmp_path), exclusions=exclusions)
    statuses = [r["status"] for r in verdicts.table.to_pylist()]
    assert statuses == ["valid", "excluded", "valid", "excluded", "invalid"]


def test_a_list_without_urls_or_companies_is_refused(tmp_path: Path) -> None:
    path = write_prospects(tmp_path / "odd.csv", [("x",)], header=("name",))
    with pytest.raises(InputError, match=r"odd\.csv: a do-not-contact list needs"):
        load_exclusions([path])


def test_validate_counts_excluded_rows_as_intended(tmp_path: Path) -> None:
    input_path = write_prospects(tmp_path / "p.csv", [(url("anna"), "hi"), (url("bo"), "hi")])
    dnc = write_prospects(tmp_path / "dnc.csv", [url("bo")])
    runner = CliRunner()
    result = runner.invoke(cli, ["validate", str(input_path), "--exclude", str(dnc)], env={})
    assert result.exit_code == 0, result.output  # excluded rows are not problems
    assert "1 valid, 0 invalid, 0 duplicate, 1 excluded" in result.output
    as_json = runner.invoke(
        cli, ["validate", str(input_path), "--exclude", str(dnc), "--json"], env={}
    )
    payload = json.loads(as_json.stdout)
    assert payload["excluded"] == [{"row": 3, "reason": "on the do-not-contact list dnc.csv"}]
    assert payload["problems"] == []


def test_the_config_lists_are_used_by_validate(tmp_path: Path) -> None:
    input_path = write_prospects(tmp_path / "p.csv", [(url("anna"), "hi"), (url("bo"), "hi")])
    write_prospects(tmp_path / "dnc.csv", [url("anna")])
    config = tmp_path / "c.yaml"
    config.write_text("campaign:\n  exclude: [dnc.csv]\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(input_path), "--config", str(config)], env={})
    assert result.exit_code == 0, result.output
    assert "1 excluded" in result.output
