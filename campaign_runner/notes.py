"""Note templates, and the test for placeholders that were never filled.

Templates
    ``Hi {first_name}, loved your work at {company|your company}!`` fills ``{column}`` from
    the row's cell, the column found as the loader finds columns (case, spaces, ``_``,
    ``-`` and ``.`` ignored: ``{first_name}`` fills from ``First Name``), the cell's
    surrounding spaces trimmed. ``{column|fallback}`` stands in ``fallback`` where the
    cell is empty; without a fallback an empty cell makes the row invalid (strict, like
    Jinja's StrictUndefined in mailmerge: a missing value is an error, never an empty
    string). ``{{`` and ``}}`` are literal braces. A template naming a column the file
    does not have is an error for the whole file.

Unfilled placeholders
    :func:`find_placeholder` finds merge-field syntax that a person meant to be filled and
    that would leave as written: ``{first_name}``, ``{{ firstName }}``, ``[First Name]``,
    ``%FIRSTNAME%``, ``#firstName#``, ``<first_name>``, ``$first_name``, ``*|FNAME|*`` and
    their kin. It is one function, asked once per note; :func:`placeholder_reasons` runs
    it over an Arrow column, reaching Python only for the notes that :data:`PREFILTER`
    picks. Where the syntax is weak evidence on its own (square and angle brackets, ``$``,
    ``__``), the name inside must look like a field: snake_case, or a word a merge field is
    named by (name, company, title...). So ``[sic]``, ``[1]``, ``<3``, ``C#``, ``#hiring``,
    ``50%``, ``$5`` and ``{x}`` (one letter: math, not a field) stay ordinary text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from campaign_runner.errors import ConfigError, InputError

if TYPE_CHECKING:
    import pyarrow as pa

# -- templates --------------------------------------------------------------------------


@dataclass(frozen=True)
class Placeholder:
    """One ``{column}`` or ``{column|fallback}`` of a template, as written."""

    text: str  # as written, braces included: named in reasons
    name: str  # the column as the template names it (spaces around it dropped)
    fallback: str | None  # None: an empty cell makes the row invalid


@dataclass(frozen=True)
class NoteTemplate:
    """A parsed note template: literal text and placeholders, in order."""

    text: str
    parts: tuple[str | Placeholder, ...]

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(p for p in self.parts if isinstance(p, Placeholder))

    def bind(self, path: Path, columns: Sequence[str]) -> BoundTemplate:
        """Find each placeholder's column among ``columns`` (the file's header names).

        Raises :class:`InputError` for the whole file when a placeholder names no column,
        naming the closest ones: that is a mistake in the template, not in any row.
        """
        found: dict[str, str] = {}
        for placeholder in self.placeholders:
            if placeholder.name not in found:
                found[placeholder.name] = _column_for(path, placeholder, columns)
        return BoundTemplate(self, found)


@dataclass(frozen=True)
class BoundTemplate:
    """A template whose placeholders are tied to the columns of one file."""

    template: NoteTemplate
    columns: Mapping[str, str]  # placeholder name -> column name

    def needed(self) -> list[str]:
        """The columns the template reads, each once, in template order."""
        return list(dict.fromkeys(self.columns.values()))

    def missing_reason(self, placeholder: Placeholder) -> str:
        column = self.columns[placeholder.name]
        return f"note template: {placeholder.text} has no value in this row (column {column!r})"

    def render(self, cells: Mapping[str, pa.Array], n: int) -> Rendered:
        """The notes of ``n`` rows, from ``cells`` (column name -> one chunk of text).

        Arrow kernels throughout (trim, compare, if_else, join), one pass per placeholder:
        no Python per row. Rows with a value missing get ``''`` as their note.
        """
        import pyarrow.compute as pc

        from campaign_runner.arrowkit import blank_strings, str_scalar

        blank = str_scalar("")
        pieces: list[pa.Array | pa.Scalar] = [blank_strings(n)]
        missing: list[tuple[str, pa.Array]] = []
        for part in self.template.parts:
            if isinstance(part, str):
                pieces.append(str_scalar(part))
                continue
            values = cells[self.columns[part.name]]
            if values.null_count:
                values = values.fill_null(blank)
            values = pc.utf8_trim_whitespace(values)
            empty = pc.equal(values, blank)
            if part.fallback is not None:
                values = pc.if_else(empty, str_scalar(part.fallback), values)
            elif pc.any(empty).as_py():
                missing.append((self.missing_reason(part), empty))
            pieces.append(values)
        notes = pc.binary_join_element_wise(*pieces, blank)
        if missing:
            unfilled = missing[0][1]
            for _, mask in missing[1:]:
                unfilled = pc.or_(unfilled, mask)
            notes = pc.if_else(unfilled, blank, notes)
        return Rendered(notes=notes, missing=tuple(missing))


@dataclass(frozen=True)
class Rendered:
    """Rendered notes, and per placeholder without a value: its reason and its rows."""

    notes: pa.Array
    missing: tuple[tuple[str, pa.Array], ...]  # (reason, bool mask)


def parse_template(
    text: str, source: str = "note template", key: str | None = None
) -> NoteTemplate:
    """Parse ``text`` into a :class:`NoteTemplate`.

    Raises :class:`ConfigError` (``source: key: problem``) for a brace that is never closed,
    a lone ``}``, an empty placeholder, or literal text or a fallback that itself holds
    placeholder syntax (``{{first_name}}`` is the literal text ``{first_name}``, which would be sent
    as written).
    """
    parts: list[str | Placeholder] = []
    literal: list[str] = []
    i = 0

    def fail(problem: str) -> ConfigError:
        return ConfigError(source, key, problem)

    while i < len(text):
        char = text[i]
        if char in "{}" and text.startswith(char * 2, i):
            literal.append(char)
            i += 2
        elif char == "}":
            raise fail(f"'}}' at character {i + 1} closes nothing (write '}}}}' for a brace)")
        elif char == "{":
            end = text.find("}", i + 1)
            opened = text.find("{", i + 1)
            if end < 0 or 0 <= opened < end:
                raise fail(f"'{{' at character {i + 1} is never closed (write '{{{{' for a brace)")
            name, bar, fallback = text[i + 1 : end].partition("|")
            if not name.strip():
                raise fail(f"{text[i : end + 1]} at character {i + 1} names no column")
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(
                Placeholder(text[i : end + 1], name.strip(), fallback.strip() if bar else None)
            )
            i = end + 1
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append("".join(literal))
    # What the template itself writes leaves as written: literal text and fallbacks.
    written = [p if isinstance(p, str) else p.fallback or "" for p in parts]
    for part in written:
        if (found := find_placeholder(part)) is not None:
            raise fail(
                f"its text holds {found}, which would be sent as written: a placeholder "
                "is {column} (or {column|fallback}), and {{ }} are literal braces"
            )
    return NoteTemplate(text, tuple(parts))


def _column_for(path: Path, placeholder: Placeholder, columns: Sequence[str]) -> str:
    # Imported here, not above: the config parses its template with this module, and
    # every command reads the config, but only those that read a spreadsheet need Arrow.
    import difflib

    from campaign_runner.prospects import canonical_name

    if placeholder.name in columns:
        return placeholder.name
    wanted = canonical_name(placeholder.name)
    for column in columns:
        if canonical_name(column) == wanted:
            return column
    by_canonical = {canonical_name(c): c for c in reversed(columns)}
    close = difflib.get_close_matches(wanted, list(by_canonical), n=3, cutoff=0.6)
    if close:
        hint = "closest: " + ", ".join(repr(by_canonical[c]) for c in close)
    else:
        shown = ", ".join(repr(c) for c in columns[:12])
        hint = f"columns: {shown}{', ...' if len(columns) > 12 else ''}"
    raise InputError(
        path, f"note template: {placeholder.text} names no column of this file ({hint})"
    )


# -- unfilled placeholders -------------------------------------------------------------

# Words merge fields are named by. A bracketed name holding one of them (split at spaces,
# underscores and camelCase) is a field: `[First Name]`, `<company>`, `[jobTitle]`.
# fmt: off
FIELD_WORDS = frozenset({
    "name", "names", "firstname", "lastname", "fullname", "surname", "nickname", "fname",
    "lname", "salutation", "greeting", "first", "last", "company",
    "companyname", "organization", "organisation", "employer", "title",
    "jobtitle", "job", "role", "position", "seniority", "department", "industry", "city",
    "location", "country", "region", "school", "university", "college", "recipient", "prospect",
    "contact", "lead", "sender", "email", "phone", "website", "url", "link", "topic", "event",
    "product", "date", "vorname", "nachname", "firma", "unternehmen", "prenom", "prénom",
    "entreprise", "société", "societe", "nombre", "apellido", "empresa",
})
# fmt: on
# A name as merge fields spell it: letters, digits, `_ . - :` and spaces, starting with
# a letter (Python's \w is Unicode: `{prénom}` counts). At most 40 characters, so that a
# bracketed sentence is not mistaken for a field.
_NAME = r"[^\W\d][\w.:\- ]{0,39}"
# Each rule by the character it starts with. A rule with a `name` group is weak evidence
# on its own, because square and angle brackets, guillemets, `$name` and `__name__` also
# hold prose or code (`[sic]`, `<3>`, `«Bonjour»`, `$AAPL`, `__init__`): the name decides.
# The others decide alone.
_RULES: dict[str, tuple[re.Pattern[str], ...]] = {
    opener: tuple(re.compile(rule) for rule in rules)
    for opener, rules in {
        "{": [
            # {first_name} {{ firstName }} {{{name}}} {!Contact.FirstName} {{#if company}}
            # and fallbacks/filters: {first_name|there} {{ name | default: "x" }}; not {x}.
            r"\{+\s*[!#/^&>]?\s*[^\W\d][\w.:\- ]*[\w.]\s*(?:[|,][^{}]*)?\}+",
            r"(?<![\w^_])\{\s*\d\s*\}",  # str.format's {0}, not x^{2}
            r"\{%-?\s*[^\W\d](?:[^%{}]|%(?!\}))*(?:%\})?",  # Jinja tags: {% if company %}
        ],
        "$": [
            r"\$\{\s*[^\W\d][\w.\- ]*\}",  # ${first_name}
            r"\$(?P<name>[^\W\d]\w*)",
        ],
        "*": [r"\*\|\s*[^\W\d][\w:.\- ]*\|\*"],  # Mailchimp *|FNAME|*
        "%": [
            r"%\([^\W\d]\w*\)[sd]",  # printf %(name)s
            r"(?<![\w%])%[sd](?![^\W\d_])",  # printf %s %d
            r"%+[^\W\d][\w.\-]*%+",  # %FIRSTNAME% %first_name% %%first_name%%
        ],
        "#": [r"#+[^\W\d][\w.\-]*#+(?!\w)"],  # #firstName# ##name## (not #AI#ML)
        # [firstname,fallback=there]: Campaign Monitor's fallback
        "[": [rf"\[+\s*(?P<name>{_NAME}?)\s*(?:[,|][^\[\]]*)?\]+"],
        "<": [rf"<+\s*(?P<name>{_NAME}?)\s*>+"],
        "«": [rf"«\s*(?P<name>{_NAME}?)\s*»"],
        "_": [r"(?<!\w)__(?P<name>[^\W\d_]\w*?)__(?!\w)"],
    }.items()
}
_OPENERS = re.compile("[" + re.escape("".join(_RULES)) + "]")
_CAMEL = re.compile(r"(?<=[^\W\d_])(?=[A-Z][a-z])|(?<=[a-z])(?=[A-Z])")
_SNAKE = re.compile(r"[^\W_]_[^\W_]")
# What any placeholder above starts with, in RE2 for Arrow: a superset, so that the notes
# it does not pick can hold no placeholder (a test holds the two in step).
PREFILTER = r"[{\[<«]|%[^\s\d]|#[^\s#]+#|\$[^\s\d]|\*\||__"


def find_placeholder(note: str) -> str | None:
    """The first unfilled placeholder in ``note``, as written, or ``None`` if it has none."""
    # Rules tried only where their first character is: ten times faster than searching
    # for all of them at every position of every note.
    for opener in _OPENERS.finditer(note):
        for rule in _RULES[opener.group()]:
            found = rule.match(note, opener.start())
            if found is not None and (
                "name" not in rule.groupindex or _is_field_name(found["name"])
            ):
                return found.group()
    return None


def _is_field_name(name: str) -> bool:
    if _SNAKE.search(name):
        return True
    words = _CAMEL.sub(" ", name).replace("_", " ").replace("-", " ").replace(".", " ").split()
    folded = [w.casefold() for w in words]
    joined = "".join(folded)
    return (
        joined in FIELD_WORDS
        or any(w in FIELD_WORDS for w in folded)
        or (len(folded) > 1 and folded[0] == "insert")
    )


def placeholder_reasons(notes: pa.Array) -> pa.Array | None:
    """Per note, ``note holds an unfilled placeholder: X`` or ``''``; ``None`` if no note has one.

    Arrow's regex kernel picks the candidates (:data:`PREFILTER`); only those reach
    :func:`find_placeholder`.
    """
    import numpy as np
    import pyarrow.compute as pc

    from campaign_runner.arrowkit import blank_strings, from_numpy, str_array, to_numpy

    candidates = np.flatnonzero(to_numpy(pc.match_substring_regex(notes, PREFILTER)))
    if not len(candidates):
        return None
    picked = notes.take(from_numpy(candidates)).to_pylist()
    hits = [
        (i, found)
        for i, note in zip(candidates.tolist(), picked, strict=True)
        if (found := find_placeholder(note)) is not None
    ]
    if not hits:
        return None
    mask = np.zeros(len(notes), dtype=bool)
    mask[[i for i, _ in hits]] = True
    reasons = str_array([f"note holds an unfilled placeholder: {found}" for _, found in hits])
    return pc.replace_with_mask(blank_strings(len(notes)), from_numpy(mask), reasons)
