"""User-supplied text shown literally in elements that render Markdown.

``st.error``, ``st.warning``, ``st.info``, ``st.success``, ``st.caption``, ``st.markdown``,
``st.toast``, image captions and the labels of expanders and buttons all render Markdown
(and Streamlit's own ``:red[...]``, ``:material/...:`` and ``$...$``), so a file named
``**URGENT** [call IT](mailto:x@example.invalid).jpg`` would become bold text and a link in
another analyst's view. ``literal`` escapes it; dataframes, selectbox options and
``st.text``/``st.code`` show text as it is and need nothing.
"""

from __future__ import annotations

import string

# CommonMark lets any ASCII punctuation be backslash-escaped, and an escaped character is
# never markup; escaping all of it also covers GFM (tables, ~strike~, autolinks) and
# Streamlit's directives, whose markers are all punctuation.
_ESCAPES = {ord(ch): "\\" + ch for ch in string.punctuation}
# A line break would end the paragraph (and could start a heading or a list on the next line).
_ESCAPES.update({ord("\n"): " ", ord("\r"): " ", ord("\t"): " "})


def literal(value: object) -> str:
    """``value`` as Markdown that shows exactly its characters (line breaks become spaces)."""
    return str(value).translate(_ESCAPES)
