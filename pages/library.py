"""Library page: every image with saved tags, search by tags, tag counts, the tag tree, delete and export."""

from __future__ import annotations

import streamlit as st
from streamlit_tags import st_tags

from tagging.errors import StoreError
from tagging.store import AUTOMATIC, REVIEWED, library
from ui import library as lib_ui
from ui import library_analysis
from ui.page import database_problem, start_page
from ui.text import literal

PAGE_SIZES = [10, 25, 50, 100]
MODES = {library.ALL_OF: "All of these tags", library.ANY_OF: "Any of these tags"}
PROVENANCE_FILTERS = {"all": "All", REVIEWED: "Reviewed", AUTOMATIC: "Automatic (awaiting review)"}


def _fail(message: str) -> None:
    st.error(literal(message))
    st.stop()


def _ask_delete() -> None:
    st.session_state["lib_confirm"] = st.session_state.get("lib_delete_choice")


def _cancel_delete() -> None:
    st.session_state["lib_confirm"] = None


def _delete(image_key: str, label: str) -> None:
    st.session_state["lib_confirm"] = None
    try:
        verdicts = store.delete_image(image_key)
    except StoreError as exc:
        st.session_state["lib_notice"] = ("error", database_problem(config, exc, "delete the image's record"))
        return
    st.session_state["lib_notice"] = ("success", f"Deleted {label} and its {verdicts} tag verdicts.")


config, store = start_page()
provenance = st.session_state.get("lib_provenance", "all")
try:
    entries = store.library_entries(provenance=None if provenance == "all" else provenance)
    parent_links = store.tag_parents()
except StoreError as exc:
    _fail(database_problem(config, exc, "read the library"))

st.title("Library")
st.radio("Verdicts", list(PROVENANCE_FILTERS), format_func=PROVENANCE_FILTERS.__getitem__, key="lib_provenance",
         horizontal=True, help="Reviewed: an analyst looked and decided. Automatic: the rule's selection saved from "
                               "a batch without review.")
notice = st.session_state.pop("lib_notice", None)
if notice:
    getattr(st, notice[0])(literal(notice[1]))  # names a file: shown as typed, never as Markdown
if not entries:
    if provenance != "all":
        st.info(f"No {PROVENANCE_FILTERS[provenance].lower()} records.")
        st.stop()
    st.info("No saved tags yet. Open the **Tag** page, tag a photo and press **Save feedback**; it then shows here.")
    st.stop()

tree = library.TagTree(parent_links, entries)
counts = library.tag_counts(entries)

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

analysed = library_analysis.summaries(store, entries)
analysis_filters = library_analysis.filters(store)
results = library.search(entries, query, mode, tree if children else None)
results = library_analysis.apply(results, analysed, analysis_filters)
known = {library.normalise(t) for t in tree.nodes}
unknown = [q for q in query if library.normalise(q) not in known]
if unknown:
    st.caption("Not in the library, so they match nothing: " + ", ".join(literal(q) for q in unknown))

signature = (tuple(query), mode, children, size, provenance, tuple(analysis_filters.items()))
if st.session_state["lib_signature"] != signature:  # a new search starts on page 1
    st.session_state["lib_signature"] = signature
    st.session_state["lib_page"] = 1
pages = library.paginate(results, 1, size).pages
st.session_state["lib_page"] = min(max(1, int(st.session_state.get("lib_page", 1))), pages)

images_found = len({e.image_key for e in results})
tab_images, tab_counts, tab_tree, tab_export = st.tabs(["Images", "Tag counts", "Tag tree", "Export"])

with tab_images:
    if not results:
        st.info("No image matches this search." + (" Try **Any of these tags**." if mode == library.ALL_OF else ""))
    else:
        p1, p2 = st.columns([1, 4], vertical_alignment="bottom")
        number = p1.number_input("Page", min_value=1, max_value=pages, step=1, key="lib_page")
        page = library.paginate(results, int(number), size)
        p2.caption(f"{page.total} records ({images_found} images) match · showing {page.first}–{page.last} "
                   f"· page {page.number} of {page.pages}")
        try:
            thumbnails = store.thumbnails([e.image_key for e in page.items])
        except StoreError as exc:
            thumbnails = {}
            st.warning(database_problem(config, exc, "load the thumbnails") + " The list is complete without them.")
        frame = lib_ui.results_frame(page.items, thumbnails)
        st.dataframe(
            frame.join(library_analysis.columns(page.items, analysed)), hide_index=True, width="stretch",
            column_config={"thumbnail": st.column_config.ImageColumn("thumbnail", width="small")},
        )

        with st.expander("Delete an image's record"):
            by_key = {e.image_key: e for e in page.items}
            choice = st.selectbox(
                "Image", list(by_key), format_func=lambda k: lib_ui.entry_label(by_key[k]), key="lib_delete_choice"
            )
            st.button("Delete…", key="lib_delete", on_click=_ask_delete)
            pending = st.session_state["lib_confirm"]
            if pending is not None:
                doomed = [e for e in entries if e.image_key == pending]
                if not doomed:
                    st.session_state["lib_confirm"] = None
                else:
                    name = doomed[0].filename
                    verdicts = sum(e.verdicts for e in doomed)
                    st.warning(f"Delete “{literal(name)}” and all its {verdicts} tag verdicts "
                               f"({len(doomed)} backend/language records)? This cannot be undone.")
                    c1, c2 = st.columns(2)
                    c1.button("Yes, delete", key="lib_delete_yes", type="primary", on_click=_delete,
                              args=(pending, name))
                    c2.button("Cancel", key="lib_delete_no", on_click=_cancel_delete)

with tab_counts:
    order = st.radio("Sort by", ["Most images", "Tag name"], key="lib_count_sort", horizontal=True)
    shown = counts if order == "Most images" else counts.sort_values("tag", ignore_index=True)
    st.caption(f"{len(counts)} tags on {len({e.image_key for e in entries})} images. Click a column to sort.")
    st.dataframe(shown, hide_index=True, width="stretch")

with tab_tree:
    st.caption("Tags by their WordNet parents (the embedded tagger's); tags without a known parent, such as "
               "Imagga's, sit at the root. images: carrying the tag; in subtree: carrying it or a tag below it.")
    st.dataframe(
        tree.frame(), hide_index=True, width="stretch",
        column_config={"images_in_subtree": st.column_config.NumberColumn("images in subtree")},
    )

with tab_export:
    scope = "the search results" if query else "the whole library"
    st.caption(f"Image-to-tags of {scope} ({len(results)} records). `cdn_tags` is a comma-separated tag "
               f"string an image CDN accepts (ImageKit: at most {library.CDN_MAX_LENGTH} characters, no %).")
    e1, e2 = st.columns(2)
    e1.download_button("Download CSV", library.export_csv(results, analysed), file_name="library-tags.csv",
                       mime="text/csv", key="lib_export_csv", disabled=not results)
    e2.download_button("Download JSON", library.export_json(results, analysed), file_name="library-tags.json",
                       mime="application/json", key="lib_export_json", disabled=not results)
    if results:
        st.dataframe(
            {"file": [e.filename for e in results], "cdn_tags": [library.cdn_tag_string(e.tags) for e in results]},
            hide_index=True, width="stretch",
        )
