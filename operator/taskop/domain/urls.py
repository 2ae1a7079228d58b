"""The one rule for printing a URL: without userinfo, query and fragment (the executor's too).

Signed URLs carry their credentials, signatures and tokens there, and a printed URL ends up in
logs, ``status.callback.lastError``, Events and BBS answers. The executor (Go, package
``internal/redact``) applies the same rule to its download and upload failures.
"""

from __future__ import annotations

import re
import urllib.parse

_URL_IN_TEXT = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>`]+""")


def redact_url(raw: str) -> str:
    """``raw`` without userinfo, query and fragment.

    A URL that does not parse is cut by hand: at the first ``?`` or ``#``, and after ``://`` up
    to the last ``@`` before them.
    """
    try:
        parts = urllib.parse.urlsplit(raw)
    except ValueError:
        cut = raw.partition("#")[0].partition("?")[0]
        scheme, sep, rest = cut.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}" if sep else cut
    path = parts.path
    if parts.scheme and not parts.netloc and not path.startswith("/"):
        path = path.rpartition("@")[2]  # "scheme:user:pass@host"
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))


def redact_urls(text: str) -> str:
    """``text`` (an error message, say) with every URL in it redacted by ``redact_url``."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
