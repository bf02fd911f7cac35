"""LinkedIn profile URLs as the sandbox understands them: a small, independent check.

The sandbox deliberately does not reuse the client's validation module: it stands in for the
remote service, so it must judge what the client sends on its own terms.
"""

from __future__ import annotations

import re

# A LinkedIn profile in its vanity form, as the real endpoint wants it. Member-URN slugs
# (``/in/ACoAA...``) are refused elsewhere: LinkedIn does not accept them for invitations.
_PROFILE_URL = re.compile(
    r"^https?://(?:[a-z]{2,3}\.|www\.)?linkedin\.com/in/(?P<slug>[^/?#\s]+)/?$",
    re.IGNORECASE,
)


def profile_slug(url: str) -> str | None:
    """The lower-cased vanity slug of a LinkedIn profile URL, or ``None`` if it is not one."""
    match = _PROFILE_URL.match(url.strip())
    return match.group("slug").lower() if match else None


def profile_key(url: str) -> str:
    """A comparison key for a profile given as a URL or a bare slug."""
    text = url.strip()
    if "/" not in text:
        return text.lower()
    return profile_slug(text) or text.rstrip("/").lower()


def is_member_urn(slug: str) -> bool:
    """``ACoAA...`` slugs name a member by URN; invitations need the vanity form."""
    return slug.lower().startswith("acoaa")
