"""What an element's Markdown shows a person, rendered as the browser's CommonMark + GFM would.

Streamlit renders st.error/st.caption/... bodies with react-markdown and remark-gfm (autolinks
included); markdown-it-py's "gfm-like" preset (with linkify) follows the same specs, so a test
can assert on the text a person reads and on whether any link or bold text appeared.
"""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt

_MD = MarkdownIt("gfm-like")
_TAG = re.compile(r"<[^>]+>")


def render(markdown: str) -> str:
    """The HTML the Markdown becomes."""
    return _MD.render(markdown)


def plain(markdown: str) -> str:
    """The text a person reads (tags dropped, entities decoded, whitespace collapsed)."""
    return " ".join(html.unescape(_TAG.sub(" ", render(markdown))).split())


def shown(elements) -> str:
    """``plain`` of every element's value, one per line (for st.error, st.caption, ...)."""
    return "\n".join(plain(str(e.value)) for e in elements)


def assert_literal(markdown: str, text: str) -> None:
    """``text`` is shown exactly as it is: no link, no emphasis made from it."""
    rendered = render(markdown)
    assert "<a " not in rendered, rendered
    assert "<strong>" not in rendered and "<em>" not in rendered and "<del>" not in rendered, rendered
    assert " ".join(text.split()) in plain(markdown), (text, plain(markdown))
