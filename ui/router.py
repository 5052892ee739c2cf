"""Make sure every page is shown inside dashboard.py's router.

Streamlit 1.67 quirk: with a ``pages/`` folder beside the entry script, the first request to
a fresh server, if it is a deep link (``/tag``), runs the page file directly in the old
"pages directory" mode: the folder's file names in the sidebar, no page config, and
``dashboard.py`` skipped, until some session has run the entry script. (AppTest resets that
mode before every run, so there it shows on every rerun.) A page that finds the mode on
declares the router itself by running ``dashboard.py`` without its ``page.run()``: the
sidebar, title and layout become the router's, ``st.navigation`` turns the mode off for the
process, and the page goes on rendering, so no click or upload of this run is lost. This
leans on two Streamlit internals (``PagesManager.uses_pages_directory``, ``ThreadState``),
which is why streamlit is pinned; tests/browser checks deep links on a fresh server.
"""

from __future__ import annotations

import runpy
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState, get_script_run_ctx

ENTRY = Path(__file__).resolve().parent.parent / "dashboard.py"
DECLARE_ONLY = "ui.router"  # the __name__ under which dashboard.py declares pages but runs none


def ensure_router() -> None:
    """Call first on every page: declare dashboard.py's router if Streamlit bypassed it."""
    ctx = get_script_run_ctx()
    if not PagesManager.uses_pages_directory or ctx is None:
        return
    # st.navigation makes the entry script the active one; this page must keep its own
    # identity, or its widgets would get new IDs and lose their values.
    current_page = ctx.pages_manager.current_page_script_hash
    with ThreadState.scoped(active_script_hash=ThreadState.get().active_script_hash):
        runpy.run_path(str(ENTRY), run_name=DECLARE_ONLY)
    ctx.pages_manager.set_current_page_script_hash(current_page)
