"""What an element's Markdown shows a person, rendered as the browser's CommonMark + GFM would.

Streamlit renders st.error/st.caption/... bodies with react-markdown and remark-gfm. markdown-it-py
parses the same CommonMark + GFM; GFM's literal autolinks are then made the way remark-gfm makes
them (mdast-util-gfm-autolink-literal, read from Streamlit's StreamlitMarkdown bundle): a pass
over each finished text node, after backslash escapes have been merged into it, so ``www\\.x\\.com``
is still a link in the browser. markdown-it's own linkify runs before escapes are merged and
links more than GFM (any known TLD), so it is off. A test can then assert on the text a person
reads and on whether any link or bold text appeared.
"""

from __future__ import annotations

import html
import re
import string
import unicodedata

from markdown_it import MarkdownIt
from markdown_it.token import Token

_MD = MarkdownIt("gfm-like", {"linkify": False})
_TAG = re.compile(r"<[^>]+>")
# ``\w`` is ASCII in JavaScript, with or without the ``u`` flag.
_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)([^ \t\r\n]*)", re.IGNORECASE | re.ASCII)
_EMAIL = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)", re.ASCII)
_TRAILING = re.compile(r"[!\"&'),.:;<>?\]}]+$")
# Invisible characters ui.text puts between the letters a linkifier needs: a person reads nothing.
_INVISIBLE = {0x2060: None}


def _punctuation(ch: str) -> bool:
    return ch in string.punctuation or unicodedata.category(ch)[0] in "PS"


def _previous(text: str, index: int, email: bool = False) -> bool:
    """remark-gfm's rule: a link starts the text or follows whitespace or punctuation."""
    if index == 0:
        return True
    before = text[index - 1]
    return (before.isspace() or _punctuation(before)) and not (email and before == "/")


def _correct_domain(domain: str) -> bool:
    parts = domain.split(".")
    return not (len(parts) < 2 or any(part and ("_" in part or not re.search(r"[a-zA-Z\d]", part))
                                          for part in parts[-2:]))


def _split_url(url: str) -> tuple[str, str]:
    """Trailing punctuation is not part of the link, unless it closes a parenthesis it opened."""
    trail = _TRAILING.search(url)
    if not trail:
        return url, ""
    url, rest = url[:trail.start()], trail.group()
    close, opened, closed = rest.find(")"), url.count("("), url.count(")")
    while close != -1 and opened > closed:
        url += rest[:close + 1]
        rest = rest[close + 1:]
        close = rest.find(")")
        closed += 1
    return url, rest


def _url(text: str, match: re.Match) -> tuple[str, str, str] | None:
    protocol, domain, path = match.groups()
    prefix = ""
    if not _previous(text, match.start()):
        return None
    if protocol[:1].lower() == "w":
        domain, protocol, prefix = protocol + domain, "", "http://"
    if not _correct_domain(domain):
        return None
    url, rest = _split_url(domain + path)
    if not url:
        return None
    return prefix + protocol + url, protocol + url, rest


def _email(text: str, match: re.Match) -> tuple[str, str, str] | None:
    atext, label = match.groups()
    if not _previous(text, match.start(), email=True) or re.search(r"[-\d_]$", label):
        return None
    return f"mailto:{atext}@{label}", f"{atext}@{label}", ""


def _linkify(text: str) -> list[tuple[str, str | None]]:
    """``text`` split into (text, link or None) the way mdast-util-find-and-replace does it."""
    pieces: list[tuple[str, str | None]] = [(text, None)]
    for pattern, make in ((_URL, _url), (_EMAIL, _email)):
        done: list[tuple[str, str | None]] = []
        for value, link in pieces:
            if link is not None:
                done.append((value, link))
                continue
            start = position = 0
            while position <= len(value):
                if pattern is _EMAIL:  # the lookbehind (?<=^|\s|\p{P}|\p{S}) Python's re cannot write
                    while position < len(value) and not _previous(value, position):
                        position += 1
                    match = pattern.match(value, position)
                    if match is None:
                        position += 1
                        continue
                else:
                    match = pattern.search(value, position)
                    if match is None:
                        break
                made = make(value, match)
                if made is None:
                    position = match.start() + 1
                    continue
                href, label, rest = made
                if match.start() > start:
                    done.append((value[start:match.start()], None))
                done.append((label, href))
                if rest:
                    done.append((rest, None))
                start = position = match.end()
            if start < len(value):
                done.append((value[start:], None))
        pieces = done
    return pieces


def _gfm_autolinks(state) -> None:
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children, depth = [], 0
        for token in block.children:
            depth += token.type == "link_open"
            depth -= token.type == "link_close"
            if token.type != "text" or depth:
                children.append(token)
                continue
            for value, href in _linkify(token.content):
                if href is None:
                    text = Token("text", "", 0)
                    text.content = value
                    children.append(text)
                    continue
                opening = Token("link_open", "a", 1)
                opening.attrs = {"href": href}
                label = Token("text", "", 0)
                label.content = value
                children += [opening, label, Token("link_close", "a", -1)]
        block.children = children


_MD.core.ruler.push("gfm_autolinks", _gfm_autolinks)


def render(markdown: str) -> str:
    """The HTML the Markdown becomes."""
    return _MD.render(markdown)


def plain(markdown: str) -> str:
    """The text a person reads (tags dropped, entities decoded, whitespace collapsed)."""
    return " ".join(html.unescape(_TAG.sub(" ", render(markdown))).translate(_INVISIBLE).split())


def shown(elements) -> str:
    """``plain`` of every element's value, one per line (for st.error, st.caption, ...)."""
    return "\n".join(plain(str(e.value)) for e in elements)


def assert_literal(markdown: str, text: str) -> None:
    """``text`` is shown exactly as it is: no link, no emphasis made from it."""
    rendered = render(markdown)
    assert "<a " not in rendered, rendered
    assert "<strong>" not in rendered and "<em>" not in rendered and "<del>" not in rendered, rendered
    assert " ".join(text.split()) in plain(markdown), (text, plain(markdown))
