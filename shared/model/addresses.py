"""E-mail addresses read from a site, checked before they reach Graph or a log line. Pure.

A Principal's or Contact's e-mail column is whatever the site's users typed: it may hold a display name,
several addresses, or a line feed that would forge a log line of its own. Only one RFC 5322 addr-spec is
an address, as the standard library's own parser (`email.headerregistry.Address`) reads it, with nothing
but printable characters and a domain that has a dot (Exchange's SMTP addresses always do).
"""

from __future__ import annotations

from email.errors import HeaderParseError
from email.headerregistry import Address

MAX_ADDRESS = 254  # RFC 5321 §4.5.3.1.3: a path of 256 octets, less its angle brackets


def usable_address(value) -> str | None:
    """The address in `value`, stripped, or None when it is not exactly one plain address."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > MAX_ADDRESS or not text.isprintable() or any(c.isspace() for c in text):
        return None
    try:
        address = Address(addr_spec=text)
    except (HeaderParseError, ValueError, IndexError):
        return None
    if not address.username or "." not in address.domain or address.addr_spec != text:
        return None
    return text


def shown(value) -> str:
    """A value as a log line may show it: printable, quoted, cut short (never a line of its own)."""
    return repr(str(value)[:80])
