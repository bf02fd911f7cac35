"""What a PostgreSQL URL may show people: everything but its password.

Kept apart from :mod:`.postgres` so that the message saying psycopg is missing can name
the database too, without importing psycopg.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(database: str) -> bool:
    return database.startswith(SCHEMES)


def public_url(url: str) -> str:
    """``url`` without the password of its user part or of a ``password=`` parameter."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), parts.fragment))


def secrets(url: str) -> list[str]:
    """The passwords ``url`` carries, as written and decoded, to scrub from messages."""
    parts = urlsplit(url)
    found = [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k == "password"]
    user = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else ""
    if ":" in user:
        written = user.split(":", 1)[1]
        found += [written, unquote(written)]
    return [s for s in dict.fromkeys(found) if s]


def scrub(text: str, url: str) -> str:
    """``text`` on one line, with any password of ``url`` blotted out."""
    for secret in secrets(url):
        text = text.replace(secret, "***")
    return " ".join(text.split())
