"""Library page: every image with saved tags, search by tags, tag counts, the tag tree, delete and export."""

from __future__ import annotations

import dataclasses
import math

import streamlit as st
from streamlit_tags import st_tags

from tagging.auth import DELETE
from tagging.errors import PermissionDeniedError, StoreError
from tagging.store import AUTOMATIC, REVIEWED, TagSearch, library
from ui import auth, library_analysis
from ui import library as lib_ui
from ui.page import database_problem, note_export, start_page
from ui.text import count, literal

PAGE_SIZES = [10, 25, 50, 100]
MODES = {library.ALL_OF: "All of these tags", library.ANY_OF: "Any of these tags"}
PROVENANCE_FILTERS = {"all": "All", REVIEWED: "Reviewed", AUTOMATIC: "Not reviewed yet (the rule's picks)"}
VIEWS = {"table": "Table", "gallery": "Gallery"}


def _fail(message: str) -> None:
    """Show ``message`` (Markdown-safe: ``database_problem``'s) and stop the run."""
    st.error(message)
    st.stop()


def _ask_delete(image_key: str) -> None:
    st.session_state["lib_confirm"] = image_key


def _cancel_delete() -> None:
    st.session_state["lib_confirm"] = None


def _delete(image_key: str, label: str) -> None:
    st.session_state["lib_confirm"] = None
    try:
        verdicts = store.delete_image(image_key)
    except StoreError as exc:
        st.session_state["lib_notice"] = ("error", database_problem(config, exc, "delete the image's record"))
        return
    except PermissionDeniedError as exc:
        st.session_state["lib_notice"] = ("error", literal(exc))
        return
    st.session_state["lib_notice"] = ("success", f"Deleted {literal(label)} and its {count(verdicts, 'tag verdict')}.")


config, store = start_page()
provenance = st.session_state.get("lib_provenance", "all")
scope = None if provenance == "all" else provenance
try:
    version = store.data_version()
    tag_list = lib_ui.tags(store, store.url, version, scope)
    parent_links = lib_ui.parent_links(store, store.url, version)
    records_all, images_all = lib_ui.size(store, store.url, version, TagSearch(scope))
except StoreError as exc:
    _fail(database_problem(config, exc, "read the library"))

st.title("Library")
st.radio("Verdicts", list(PROVENANCE_FILTERS), format_func=PROVENANCE_FILTERS.__getitem__, key="lib_provenance",
         horizontal=True, help="Reviewed: an analyst looked and decided. Not reviewed yet: the rule's picks, saved "
                               "from a batch without review.")
notice = st.session_state.pop("lib_notice", None)
if notice:
    getattr(st, notice[0])(notice[1])  # Markdown-safe when stored: a file's name is escaped there (literal)
if not records_all:
    if provenance != "all":
        st.info(f"No {PROVENANCE_FILTERS[provenance].lower()} records.")
        st.stop()
    st.info("No saved tags yet. Open the **Tag** page, tag a photo and press **Save feedback**; it then shows here.")
    st.stop()

tree = library.TagTree.from_counts(parent_links, dict(tag_list))
counts = library.counts_frame(tag_list)

# --- search ------------------------------------------------------------------------------
query = st_tags(
    label="**Search by tags**",
    text="Type a tag and press Enter",
    value=[],
    suggestions=sorted(counts["tag"]),
    key="lib_search",
) or []
s1, s2, s3 = st.columns([2, 2, 1], vertical_alignment="bottom")
mode = s1.radio("Match", list(MODES), format_func=MODES.__getitem__, key="lib_mode", horizontal=True)
children = s2.checkbox(
    "Include child tags", value=True, key="lib_children",
    help="A parent tag also finds images tagged with the tags below it (feline finds cat).",
)
size = s3.selectbox("Per page", PAGE_SIZES, key="lib_page_size")

try:
    analysis_filters = library_analysis.filters(store, version)
except StoreError as exc:
    _fail(database_problem(config, exc, "read the colours of the analysed images"))
search = dataclasses.replace(
    library.search_of(query, mode, [t for t, _ in tag_list], tree if children else None, scope), **analysis_filters
)
known = {library.normalise(t) for t in tree.nodes}
unknown = [q for q in query if library.normalise(q) not in known]
if unknown:
    st.caption("Not in the library, so they match nothing: " + ", ".join(literal(q) for q in unknown))

signature = (tuple(query), mode, children, size, provenance, tuple(analysis_filters.items()))
if st.session_state["lib_signature"] != signature:  # a new search starts on page 1
    st.session_state["lib_signature"] = signature
    st.session_state["lib_page"] = 1
try:
    total, images_found = lib_ui.size(store, store.url, version, search)
except StoreError as exc:
    _fail(database_problem(config, exc, "search the library"))
pages = max(1, math.ceil(total / size))
st.session_state["lib_page"] = min(max(1, int(st.session_state.get("lib_page", 1))), pages)

items: list = []
tab_images, tab_counts, tab_tree, tab_export = st.tabs(["Images", "Tag counts", "Tag tree", "Export"])

with tab_images:
    if not total:
        st.info("No image matches this search." + (" Try **Any of these tags**." if mode == library.ALL_OF else ""))
    else:
        p1, p2 = st.columns([1, 4], vertical_alignment="bottom")
        number = int(p1.number_input("Page", min_value=1, max_value=pages, step=1, key="lib_page"))
        try:
            items = lib_ui.page(store, search, number, size, signature)
        except StoreError as exc:
            _fail(database_problem(config, exc, "read the library"))
        first = (number - 1) * size + 1 if items else 0
        last = first + len(items) - 1 if items else 0
        p2.caption(f"{count(total, 'record')} ({count(images_found, 'image')}) match · showing "
                   f"{first}–{last} · page {number} of {pages}")
        try:
            thumbnails = store.thumbnails([e.image_key for e in items])
        except StoreError as exc:
            thumbnails = {}
            st.warning(database_problem(config, exc, "load the thumbnails") + " The list is complete without them.")
        try:
            analysed = library_analysis.summaries(store, items)
        except StoreError as exc:
            analysed = {}
            st.warning(database_problem(config, exc, "read the images' analysis") + " The list is complete without it.")
        view = st.radio("Show as", list(VIEWS), format_func=VIEWS.__getitem__, key="lib_view", horizontal=True)
        may_delete = not auth.refused(DELETE)  # a viewer sees why Delete is disabled
        if view == "gallery":
            lib_ui.gallery(items, thumbnails, store, _ask_delete, may_delete)
        else:
            picked = st.dataframe(
                lib_ui.results_frame(items, thumbnails).join(library_analysis.columns(items, analysed)),
                hide_index=True, width="stretch",
                row_height=lib_ui.THUMB_ROW_HEIGHT, on_select="rerun", selection_mode="single-row", key="lib_table",
                column_config={"thumbnail": st.column_config.ImageColumn("thumbnail", width="small")},
            )
            rows = picked.selection.rows if picked is not None else []
            if rows and rows[0] < len(items):
                chosen = items[rows[0]]
                a1, a2, a3 = st.columns([1, 1, 4], vertical_alignment="center")
                if a1.button("Enlarge", key="lib_row_enlarge", icon=":material/zoom_in:"):
                    lib_ui.enlarge(store, chosen)
                a2.button("Delete…", key="lib_row_delete", on_click=_ask_delete, args=(chosen.image_key,),
                          disabled=not may_delete)
                a3.caption(literal(lib_ui.entry_label(chosen)))
            else:
                st.caption("Select a row (the box at its left) to enlarge its image or delete its record.")
        pending = st.session_state["lib_confirm"]
        if pending is not None and not may_delete:
            st.session_state["lib_confirm"] = pending = None
        if pending is not None:
            try:
                doomed = store.verdict_sets_of(pending)
                verdicts = sum(len(store.feedback_for(pending, d.backend, d.language)) for d in doomed)
            except StoreError as exc:
                _fail(database_problem(config, exc, "read the image's records"))
            if not doomed:
                st.session_state["lib_confirm"] = None
            else:
                by_key = {e.image_key: e for e in items}
                name = by_key[pending].filename if pending in by_key else pending
                st.warning(f"Delete “{literal(name)}” and all its {count(verdicts, 'tag verdict')} "
                           f"({count(len(doomed), 'tagger/language record')})? This cannot be undone.")
                c1, c2 = st.columns(2)
                c1.button("Yes, delete", key="lib_delete_yes", type="primary", on_click=_delete, args=(pending, name))
                c2.button("Cancel", key="lib_delete_no", on_click=_cancel_delete)

with tab_counts:
    order = st.radio("Sort by", ["Most images", "Tag name"], key="lib_count_sort", horizontal=True)
    shown = counts if order == "Most images" else counts.sort_values("tag", ignore_index=True)
    st.caption(f"{count(len(counts), 'tag')} on {count(images_all, 'image')}. Click a column to sort.")
    st.dataframe(shown, hide_index=True, width="stretch")

with tab_tree:
    st.caption("Each tag sits under its broader tag (the embedded tagger's WordNet parents); tags without a known "
               "parent, such as Imagga's, start a branch of their own. images: carrying the tag; in subtree: "
               "carrying it or a tag below it.")
    if st.toggle("Count the images in each subtree", key="lib_subtrees",
                 help="One counting query over the library's accepted tags; kept until the library changes."):
        try:
            below = lib_ui.subtree_images(store, store.url, version, tree.subtrees(), scope)
        except StoreError as exc:
            _fail(database_problem(config, exc, "count the subtrees"))
        tree = library.TagTree.from_counts(parent_links, dict(tag_list), below)
    st.dataframe(lib_ui.tree_frame(tree), hide_index=True, width="stretch", height=480, key="lib_tree")

with tab_export:
    what = "the search results" if query else "the whole library"
    st.caption(f"Image-to-tags of {what} ({count(total, 'record')}). `cdn_tags` is a comma-separated tag "
               f"string an image CDN accepts (ImageKit: at most {library.CDN_MAX_LENGTH} characters, no %); "
               "`missing_tags` holds the tags a reviewer noted the tagger missed. The file is written when you press "
               "the button.")
    e1, e2 = st.columns(2)
    e1.download_button("Download CSV", lib_ui.export(store, search, "csv"), file_name="library-tags.csv",
                       mime="text/csv", key="lib_export_csv", disabled=not total,
                       on_click=note_export, args=(store, config, "library CSV", total, "lib_notice"))
    e2.download_button("Download JSON", lib_ui.export(store, search, "json"), file_name="library-tags.json",
                       mime="application/json", key="lib_export_json", disabled=not total,
                       on_click=note_export, args=(store, config, "library JSON", total, "lib_notice"))
    if total and items:
        st.caption("CDN tags of the records on this page:")
        st.dataframe(
            {"file": [e.filename for e in items], "cdn_tags": [library.cdn_tag_string(e.tags) for e in items]},
            hide_index=True, width="stretch",
        )
