"""Entry point: a thin router over the pages in ./pages."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).parent

st.set_page_config(page_title="Image tagging dashboard", page_icon=str(HERE / "ui" / "icon.png"), layout="wide")

page = st.navigation(
    [
        st.Page(HERE / "pages" / "tag.py", title="Tag", icon=":material/sell:", default=True),
        st.Page(HERE / "pages" / "batch.py", title="Batch", icon=":material/photo_library:"),
        st.Page(HERE / "pages" / "review.py", title="Review", icon=":material/rate_review:"),
        st.Page(HERE / "pages" / "compare.py", title="Compare", icon=":material/compare:"),
        st.Page(HERE / "pages" / "tune.py", title="Tune", icon=":material/tune:"),
        st.Page(HERE / "pages" / "library.py", title="Library", icon=":material/collections_bookmark:"),
        st.Page(HERE / "pages" / "settings.py", title="Settings", icon=":material/settings:"),
    ]
)
if __name__ == "__main__":  # ui.router runs this file only to declare the pages
    page.run()
