"""What survives a reload: page state in the URL, and each browser's last upload and batch on the server.

URL: a page calls ``restore`` before drawing its widgets (on the first run of that page in a
session, i.e. after a reload or when a shared link is opened, it returns the URL's values) and
``publish`` after reading them, so the address bar always holds a link to what is on screen.

Server: ``UPLOADS`` keeps recent uploads by their SHA-256 (the URL names the hash, never the
bytes), ``BATCHES`` keeps recent batch jobs by a hash of their uploads; both are bounded
(``tagging.shelf.Shelf``) and shared by every session of this process, so a reload, or a link
opened in another browser of the same server, finds them while they are kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import streamlit as st

from tagging.shelf import Shelf, is_content_key

UPLOADS = Shelf(max_entries=32, max_bytes=128 * 1024 * 1024)
"""Recent single-image uploads (Tag and Compare pages): SHA-256 -> (file name, bytes)."""
BATCHES = Shelf(max_entries=8, max_bytes=1024 * 1024 * 1024)
"""Recent batches: batch id -> (job, meta); a batch leaving the shelf is stopped and its uploads given back."""

Parser = Callable[[str], Any]


def int_between(low: int, high: int) -> Parser:
    """A parser for a whole number from ``low`` to ``high``; anything else is ignored."""

    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(raw)
        return value

    return parse


def one_of(choices: Mapping[str, Any]) -> Parser:
    """A parser mapping a URL word to its value (``{"sample": "Sample photo"}``)."""

    def parse(raw: str) -> Any:
        return choices[raw]

    return parse


def content_key(raw: str) -> str:
    """A parser for a SHA-256 in hex (an upload's or a batch's key)."""
    if not is_content_key(raw):
        raise ValueError(raw)
    return raw


def restore(page: str, parsers: Mapping[str, Parser]) -> dict[str, Any]:
    """On the first run of ``page`` in this session, the URL's parameters that parse; ``{}`` on later runs.

    A value that does not parse (an old or hand-edited link) is left out, so the page's default stands.
    """
    flag = f"_url_restored_{page}"
    if st.session_state.get(flag):
        return {}
    st.session_state[flag] = True
    values = {}
    for name, parse in parsers.items():
        raw = st.query_params.get(name)
        if raw is None:
            continue
        try:
            values[name] = parse(raw)
        except (ValueError, KeyError):
            continue
    return values


def publish(values: Mapping[str, Any]) -> None:
    """Write ``values`` into the URL (``None`` removes a parameter); unchanged ones are not sent again."""
    for name, value in values.items():
        if value is None or value == "":
            if name in st.query_params:
                del st.query_params[name]
            continue
        text = str(value)
        if st.query_params.get(name) != text:
            st.query_params[name] = text


def keep_upload(sha256: str, filename: str, data: bytes) -> None:
    """Keep an upload on the server under its hash (the oldest ones leave when the shelf is full)."""
    UPLOADS.put(sha256, (filename, data), size=len(data))


def kept_upload(sha256: str | None) -> tuple[str, bytes] | None:
    """An upload kept under ``sha256``: its file name and bytes, or None."""
    return UPLOADS.get(sha256)


# --- what this browser keeps (cookies): the analyst's name, flags that should not come back every session --------
COOKIE_DAYS = 365


def set_cookie(name: str, value: str, days: int = COOKIE_DAYS) -> None:
    """Have the browser keep ``value`` under ``name`` (the app's own word) for ``days``; an empty value clears it.

    The value goes into the page's script percent-encoded, as a JSON string literal: nothing in it can end the
    string or the script. Read it back with ``st.context.cookies`` and ``urllib.parse.unquote``.
    """
    if not name.isidentifier():
        raise ValueError(f"a cookie name is a plain word, not {name!r}")
    literal = json.dumps(quote(value, safe=""))
    expiry = f"max-age={days * 86400}" if value else "max-age=0"
    st.html(f"<script>document.cookie = '{name}=' + {literal} + '; path=/; {expiry}; SameSite=Lax';</script>",
            unsafe_allow_javascript=True, width="content")


def browser_flag(name: str) -> bool:
    """Whether this browser carries the flag ``name`` (set by ``set_browser_flag``)."""
    return st.context.cookies.get(f"tagging_{name}") == "1"


def set_browser_flag(name: str) -> None:
    """Have the browser keep the flag ``name`` for a year."""
    set_cookie(f"tagging_{name}", "1")
