"""Keeping passwords out of what people see: database URLs and ``password=...`` in any text.

Plain string work, no SQLAlchemy: the CLI masks its error messages before anything else is
imported.
"""

from __future__ import annotations

import re

#: ``scheme://user:password@host``: the password runs to the last ``@`` before the host (a
#: password may itself hold ``@``), the host to ``/``, ``?``, a quote, a space or the end.
_URL_PASSWORD = re.compile(
    r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*):(?P<pw>\S*?)@(?=[^@\s/?'\"]*(?:[/?'\"\s]|$))"
)
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'[^']*'|\"[^\"]*\"|[^\s&]+)", re.I)


def mask_secrets(text: str) -> str:
    """Replace the password of every URL (``user:pw@``) and every ``password=...`` with ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:***@", text)
    return _KV_PASSWORD.sub(lambda m: f"{m['head']}***", text)


def unparsed(url: str) -> str | None:
    """A URL that could not be parsed, as it may be shown: its scheme and what follows the last
    ``@`` (the host and database), with everything between (user and password) hidden. None
    without ``://``: then any part of it may be the password."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return mask_secrets(f"{scheme}://{rest}")
