"""User-supplied text shown literally in elements that render Markdown.

``st.error``, ``st.warning``, ``st.info``, ``st.success``, ``st.caption``, ``st.markdown``,
``st.toast``, image captions and the labels of expanders and buttons all render Markdown
(and Streamlit's own ``:red[...]``, ``:material/...:`` and ``$...$``), so a file named
``**URGENT** [call IT](mailto:x@example.invalid).jpg`` would become bold text and a link in
another analyst's view. ``literal`` escapes it; dataframes, selectbox options and
``st.text``/``st.code`` show text as it is and need nothing.

Escapes are not enough against GFM's literal autolinks: remark-gfm (Streamlit's Markdown) finds
``www.``, ``http://``/``https://`` and e-mail addresses in each text node *after* the parser has
merged the escapes into it, so ``see www\\.evil\\.example`` is still a link to
http://www.evil.example. ``literal`` therefore also puts an invisible WORD JOINER (U+2060) where
every such link must have two characters side by side: between ``www`` and its dot, between
``http``/``https`` and the colon, and before every ``@``. A person reads the same text; no
linkifier (remark-gfm's, cmark-gfm's, linkify-it's e-mail) sees an address in it.
"""

from __future__ import annotations

import re
import string

# CommonMark lets any ASCII punctuation be backslash-escaped, and an escaped character is
# never markup; escaping all of it also covers GFM tables, ~strike~ and Streamlit's
# directives, whose markers are all punctuation.
_ESCAPES = {ord(ch): "\\" + ch for ch in string.punctuation}
# A line break would end the paragraph (and could start a heading or a list on the next line).
_ESCAPES.update({ord("\n"): " ", ord("\r"): " ", ord("\t"): " "})

JOINER = "\u2060"  # WORD JOINER: zero width, no line break, not a letter, digit or punctuation
# The joins every GFM autolink needs: "www" + ".", "http"/"https" + ":", anything + "@".
_AUTOLINK_JOINS = re.compile(r"(?<=www)(?=\.)|(?<=http)(?=:)|(?<=https)(?=:)|(?=@)", re.IGNORECASE)


def literal(value: object) -> str:
    """``value`` as Markdown that shows exactly its characters (line breaks become spaces), never a link."""
    return _AUTOLINK_JOINS.sub(JOINER, str(value)).translate(_ESCAPES)


def count(n: int, word: str, plural: str | None = None) -> str:
    """``n`` and ``word`` in the right number: ``1 image``, ``2 images``, ``0 images`` (``plural`` if not +s)."""
    return f"{n} {word if n == 1 else plural or word + 's'}"


def css_string(value: object) -> str:
    """``value`` as a quoted CSS string that cannot end the string, the rule or a ``<style>`` element."""
    return '"' + "".join(ch if ch.isalnum() or ch in " -_." else f"\\{ord(ch):x} " for ch in str(value)) + '"'


CONFIDENCE_SEPARATOR = " · "


def chip_label(name: str, confidence: float) -> str:
    """How an accepted-tags chip (and its option) reads: the tag, then its confidence (``cat · 73``)."""
    return f"{name}{CONFIDENCE_SEPARATOR}{confidence:.0f}"
