"""Entry point: a thin router over the pages in ./pages."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).parent

st.set_page_config(page_title="Image tagging dashboard", page_icon="🏷️", layout="wide")

page = st.navigation(
    [
        st.Page(HERE / "pages" / "tag.py", title="Tag", icon="🏷️", default=True),
        st.Page(HERE / "pages" / "settings.py", title="Settings", icon="⚙️"),
    ]
)
page.run()
