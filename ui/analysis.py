"""The Tag page's Analysis view: faces, objects and text boxed on the photo, colours, text, crops, raw JSON.

Offline the four answers are computed at once (milliseconds, text a little longer); with Imagga each is a
billed request, so they are asked only when the analyst presses the button, once per image, and then come from
the result cache (shared by every server on the database, like tags). Answers are in Imagga's shapes
(``tagging.analysis``), boxes in pixels of the EXIF-oriented full-size image; the overlay scales them with the
picture. Remote and recognised text is shown in dataframes or ``literal``, never as Markdown.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any

import pandas as pd
import streamlit as st

from tagging.analysis import (
    COLORS,
    COMMON_RESOLUTIONS,
    CROPPINGS,
    ENDPOINTS,
    FACES,
    TEXT,
    TITLES,
    crop_jpeg,
    draw_overlay,
    summarise,
    swatches,
)
from tagging.backends import IMAGGA, LABELS, TagRequest, analysis_request_key
from tagging.errors import StoreError, TaggingError
from tagging.images import LoadedImage
from ui import resources, state
from ui.text import literal

OVERLAY_SIDE = 1024
COLOR_LISTS = (("image_colors", "Image"), ("foreground_colors", "Foreground"), ("background_colors", "Background"))


def _png(image: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _jpeg(image: Any) -> bytes:
    """The overlay as JPEG: encoding a 1024 px photo as PNG took 240 ms, as JPEG 8 ms (and a ninth of the bytes)."""
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=88)
    return out.getvalue()


def _answers(
    backend: Any, backend_key: str, image: LoadedImage | None, image_url: str | None, image_key: str,
    request: TagRequest, objects: list[dict[str, Any]], cache: Any,
) -> dict[str, dict[str, Any]]:
    """Each endpoint's answer (cached); a failed endpoint is reported and left out, the others still shown."""
    resolutions = list(COMMON_RESOLUTIONS.values())
    answers: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        sizes = resolutions if endpoint == CROPPINGS else []

        def call(endpoint: str = endpoint, sizes: list = sizes) -> dict[str, Any]:
            if backend.name == IMAGGA:
                return backend.analyse(endpoint, image, request, resolutions=sizes, image_url=image_url)
            return backend.analyse(endpoint, image, request, resolutions=sizes, objects=objects)

        try:
            answers[endpoint] = resources.tag_cached(
                backend_key, image_key, analysis_request_key(endpoint, request, sizes), call, cache
            )
        except TaggingError as exc:
            st.error(f"{TITLES[endpoint]} ({LABELS[backend.name]}): {literal(exc)}")
    return answers


def _items(answers: Mapping[str, Mapping[str, Any]], endpoint: str, key: str) -> list[dict[str, Any]]:
    answer = answers.get(endpoint)
    return list(answer["result"].get(key, [])) if answer else []


def _colour_table(colors: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame({
        "colour": [c["closest_palette_color"] for c in colors],
        "parent": [c["closest_palette_color_parent"] for c in colors],
        "html": [c["html_code"] for c in colors],
        "percent": [round(float(c["percent"]), 1) for c in colors],
    })


def render(
    backend: Any, backend_key: str, image: LoadedImage | None, image_url: str | None, image_key: str,
    request: TagRequest, tags_payload: Mapping[str, Any], cache: Any, filename: str, store: Any = None,
) -> None:
    """The Analysis section under the Tag page's image and tags; the summary goes to ``store`` (Library columns).

    Shown on request (offline: a toggle that stays on for the session; Imagga: a button, as its calls are paid):
    its overlay, swatches, tables and downloads
    would otherwise make every open of the Tag page slower in the browser.
    """
    st.subheader("Analysis")
    if backend.name != IMAGGA:  # Imagga's is asked for with its own button (paid calls)
        state.bind("tag_analysis_on", "analysis_on")
        if not st.toggle("Show faces, colours, text and crops", key="tag_analysis_on", on_change=state.keep,
                         args=("tag_analysis_on", "analysis_on"),
                         help="Draws the faces, objects, text regions and crops on the image, with the colours "
                              "and the raw answers beside it. Stays on while you change images."):
            return
    if backend.name == IMAGGA and st.session_state.get("tag_analysis_asked") != (image_key, backend_key):
        st.caption("Faces, colours, text and crops from Imagga: four requests, each counted by your plan "
                   "(asked once per image, then cached).")
        st.button("Analyse with Imagga", key="tag_analysis_run", on_click=_ask, args=((image_key, backend_key),))
        return
    if backend.name != IMAGGA and image is None:
        st.info("The offline analysis needs the image itself.")
        return
    objects = list(tags_payload.get("result", {}).get("objects") or [])
    with st.spinner(f"Analysing with the {LABELS[backend.name]}…"):
        answers = _answers(backend, backend_key, image, image_url, image_key, request, objects, cache)
    if store is not None:
        _keep_summary(store, image_key, backend.name, answers)
    faces = _items(answers, FACES, "faces")
    text = _items(answers, TEXT, "text")
    crops = _items(answers, CROPPINGS, "croppings")
    names = {f"{w}x{h}": label for label, (w, h) in COMMON_RESOLUTIONS.items()}

    col_picture, col_details = st.columns([3, 2], gap="large")
    with col_picture:
        c1, c2, c3 = st.columns(3)
        show_faces = c1.checkbox(f"Faces ({len(faces)})", value=True, key="tag_analysis_faces")
        show_objects = c2.checkbox(f"Objects ({len(objects)})", value=True, key="tag_analysis_objects",
                                   disabled=not objects)
        show_text = c3.checkbox(f"Text ({len(text)})", value=True, key="tag_analysis_text")
        # Pills, not a multiselect: the page's one multiselect is the accepted tags (tests find its chips).
        shown_crops = st.pills("Crops drawn", list(names.values()), selection_mode="multi",
                               default=list(names.values()), key="tag_analysis_crops") or []
        drawn_crops = [c for c in crops if names.get(f"{c['target_width']}x{c['target_height']}") in shown_crops]
        if image is not None:
            overlay = draw_overlay(image.image, faces=faces if show_faces else [],
                                   objects=objects if show_objects else [], text=text if show_text else [],
                                   crops=drawn_crops, max_side=OVERLAY_SIDE)
            st.image(_jpeg(overlay), caption="Faces yellow, objects cyan, text magenta; crops: square red, 16:9 "
                     "green, 4:5 violet.", width="stretch")
        else:
            st.caption("Imagga fetched this image from its URL: the boxes are listed beside it (upload the file "
                       "to see them drawn).")
    with col_details:
        _details(answers, text, crops, names, image, filename)


def _details(answers: Mapping[str, Mapping[str, Any]], text: list[dict[str, Any]], crops: list[dict[str, Any]],
             names: Mapping[str, str], image: LoadedImage | None, filename: str) -> None:
    """The tabs beside the picture: colours, text, crops (with downloads) and each endpoint's raw JSON."""
    tab_colors, tab_text, tab_crops, tab_json = st.tabs(["Colours", "Text", "Crops", "Raw JSON"])
    with tab_colors:
        colors = answers.get(COLORS, {}).get("result", {}).get("colors", {})
        if colors:
            st.caption(f"Subject (foreground): {float(colors.get('object_percentage', 0)):.0f}% of the image.")
        for key, label in COLOR_LISTS:
            items = list(colors.get(key) or [])
            st.markdown(f"**{label}**")
            if not items:
                st.caption("None.")
                continue
            st.image(_png(swatches(items)), width="stretch")
            st.dataframe(_colour_table(items), hide_index=True, width="stretch", key=f"tag_analysis_colors_{key}")
    with tab_text:
        if not text:
            st.caption("No text found." if TEXT in answers else "Not available.")
        else:
            st.dataframe(pd.DataFrame({
                "text": [t["data"] for t in text],
                "box": [", ".join(str(t["coordinates"][k]) for k in ("xmin", "ymin", "xmax", "ymax"))
                        if "coordinates" in t else "" for t in text],
            }), hide_index=True, width="stretch", key="tag_analysis_text_table")
    with tab_crops:
        stem = PurePosixPath(filename).stem or "image"
        for crop in crops:
            size = f"{crop['target_width']}x{crop['target_height']}"
            label = names.get(size, size)
            st.caption(f"{label} ({size}): x {crop['x1']}–{crop['x2']}, y {crop['y1']}–{crop['y2']} "
                       f"({crop['x2'] - crop['x1'] + 1}×{crop['y2'] - crop['y1'] + 1} px)")
            if image is not None:
                st.download_button(
                    f"Download the {label} crop", _crop_file(image, crop),
                    file_name=f"{stem}-{label.replace(':', 'x')}.jpg", mime="image/jpeg",
                    key=f"tag_analysis_crop_{size}",
                )
    with tab_json:
        for endpoint, answer in answers.items():
            st.markdown(f"**{TITLES[endpoint]}**")
            st.download_button(f"Download {TITLES[endpoint].lower()} JSON", json.dumps(answer, indent=2),
                               file_name=f"{PurePosixPath(filename).stem or 'image'}-{endpoint}.json",
                               mime="application/json", key=f"tag_analysis_json_{endpoint}")
            st.json(answer, expanded=1)


def _ask(marker: tuple[str, str]) -> None:
    st.session_state["tag_analysis_asked"] = marker


def _keep_summary(store: Any, image_key: str, backend: str, answers: Mapping[str, Mapping[str, Any]]) -> None:
    """Store the Library's columns for a saved image, once per image, backend and summary (not every rerun)."""
    summary = summarise(answers)
    marker = (image_key, backend, summary)
    if st.session_state.get("tag_analysis_kept") == marker:
        return
    try:
        if store.save_analysis(image_key, backend, summary):
            st.session_state["tag_analysis_kept"] = marker
    except StoreError as exc:
        st.warning(f"The analysis could not be kept for the Library: {literal(exc)}")


def _crop_file(image: LoadedImage, crop: Mapping[str, Any]) -> Callable[[], bytes]:
    """The crop's JPEG, made only when the analyst clicks (cutting a full-size crop takes a moment)."""
    return lambda: crop_jpeg(image.image, crop)
