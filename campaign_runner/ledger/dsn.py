"""What a PostgreSQL URL may show people: everything but its password.

Kept apart from :mod:`.postgres` so that the message saying psycopg is missing can name
the database too, without importing psycopg.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(database: str) -> bool:
    return database.startswith(SCHEMES)


def public_url(url: str) -> str:
    """``url`` without the password of its user part or of a ``password=`` parameter; the
    rest as written, so that people recognise it."""
    scheme, rest = url.split("://", 1) if "://" in url else ("", url)
    rest, hash_mark, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}"
    kept = [p for p in query.split("&") if p.split("=", 1)[0] != "password"] if query else []
    query = "&".join(kept)
    return (
        f"{scheme}://{netloc}{slash}{path}{question if query else ''}{query}{hash_mark}{fragment}"
    )


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
