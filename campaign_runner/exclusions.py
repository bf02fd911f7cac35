"""Do-not-contact lists: the people and companies a campaign must never invite.

A list is a CSV or XLSX file holding profile URLs (found like the prospect spreadsheet's
URL column, in any form a person pastes) and/or company names (a ``company`` column, or
one of its common aliases), or both. URLs are compared in canonical form; companies
case-insensitively, ignoring the spaces around them. The list a match came from is named
in the row's reason, so that a person can see why someone was left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from campaign_runner.arrowkit import str_scalar
from campaign_runner.errors import InputError
from campaign_runner.prospects import load_prospects
from campaign_runner.urls import normalize_urls


@dataclass(frozen=True)
class Exclusions:
    """Canonical URLs and folded company names, each with the list that names it."""

    urls: dict[str, str] = field(default_factory=dict)
    companies: dict[str, str] = field(default_factory=dict)
    sources: tuple[Path, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.urls or self.companies)


def fold_companies(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Company names as they are compared: trimmed, inner runs of spaces made one, lower
    case (the one rule, for the lists and the spreadsheets alike)."""
    trimmed = pc.utf8_trim_whitespace(values)
    collapsed = pc.replace_substring_regex(trimmed, r"\s+", " ")
    return pc.utf8_lower(collapsed)


def load_exclusions(paths: Sequence[Path]) -> Exclusions:
    """Read every do-not-contact list; raises :class:`InputError` for an unusable one."""
    urls: dict[str, str] = {}
    companies: dict[str, str] = {}
    for path in paths:
        listed = load_prospects(Path(path), all_columns=False, require_url=False)
        if listed.url_column is None and listed.company_column is None:
            shown = ", ".join(repr(c) for c in listed.columns)
            raise InputError(
                path,
                "a do-not-contact list needs a profile URL column or a 'company' column "
                f"(columns: {shown})",
            )
        name = Path(path).name
        if listed.url_column is not None:
            canonical, reasons = normalize_urls(listed.table[listed.url_column])
            good = pc.equal(reasons, str_scalar(""))
            for value in pc.filter(canonical, good).to_pylist():
                urls.setdefault(value, name)
        if listed.company_column is not None:
            for folded in fold_companies(listed.table[listed.company_column]).to_pylist():
                if folded:
                    companies.setdefault(folded, name)
    return Exclusions(urls=urls, companies=companies, sources=tuple(Path(p) for p in paths))
