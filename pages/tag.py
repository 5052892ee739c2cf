"""Tag page: pick an image, get tags, tune the threshold, edit within the whitelist, save feedback."""

from __future__ import annotations

import hashlib
import json
from functools import partial
from pathlib import PurePosixPath

import streamlit as st

from tagging import auth
from tagging.auth import SAVE, SEND_FEEDBACK, TAG_IMAGGA
from tagging.backends import (
    EMBEDDED,
    IMAGGA,
    IMAGGA_MODES,
    LABELS,
    MODE_UPLOAD,
    TagRequest,
    paid_call,
    plan_upload,
)
from tagging.embedded import CATEGORIZERS, NSFW_ID, categorize, parse_categories
from tagging.errors import PermissionDeniedError, SelectionError, StoreError, TaggingError
from tagging.images import LoadedImage, format_size
from tagging.parse import parse_tags
from tagging.rules import auto_select, floor_picks, floor_ties, validate_selection
from tagging.store import PREFILLED, FeedbackItem, deliver_pending, queue_feedback
from tagging.urlfetch import check_url, filename_from_url
from ui import analysis, inputs, persist, resources, state
from ui import auth as ui_auth
from ui.charts import COLORS, FLOOR, labelled_confidence_spec
from ui.library import when
from ui.page import analyst, database_problem, start_page
from ui.review import missing_tags
from ui.text import chip_label, count, css_string, literal

SOURCE_SAMPLE, SOURCE_UPLOAD, SOURCE_URL = "Sample photo", "Upload", "Image URL"
SOURCE_WORDS = {"sample": SOURCE_SAMPLE, "upload": SOURCE_UPLOAD, "url": SOURCE_URL}  # in the URL
TAG_SEPARATOR = ","  # between accepted tags in the URL (a selection with a tag holding one is not put there)
# Long side sent to Imagga by default: bench/bench_upload.py measured a 12 MP photo at 10% of its
# bytes at 1600 px with the embedded tagger's top 10 tags unchanged. 0 in the sidebar sends originals.
DEFAULT_DOWNSCALE = 1600


# How many of the rule's latest selections count as "what the browser may still be showing".
RECENT_AUTO = 8


def _on_selection_edit() -> None:
    value = list(st.session_state["tag_selection"])
    # A quick second slider move can arrive before the browser has drawn the rule's new
    # selection; it then sends back an older one the rule itself made. That is not an edit.
    if value in st.session_state["recent_auto"]:
        return
    st.session_state["selection_edited"] = True
    st.session_state["selection"] = value


def _follow_rule() -> None:
    st.session_state["selection_edited"] = False


def _send_remote_feedback(accepted: set[str]) -> None:
    """Queue the verdict for Imagga (stored first, so nothing is lost), then try to send it."""
    try:
        queue_feedback(
            store, backend=IMAGGA, image_key=image_key, tags=tags, accepted=accepted, language=language,
            image_url=image_url,
        )
        if not auth.can(store.identity, SEND_FEEDBACK):
            st.info("Your verdict is queued for Imagga; an admin sends the queued feedback from Settings.")
            return
        report = deliver_pending(store, client, IMAGGA)
    except StoreError as exc:
        st.warning(database_problem(config, exc, "queue the feedback for Imagga"))
        return
    if report.remaining:
        st.warning(
            f"Saved locally, but Imagga did not take the feedback yet: "
            f"{literal(report.errors[-1]) if report.errors else ''} "
            f"{count(report.remaining, 'message')} queued; they are sent again later (Settings page, or the "
            "next start)."
        )
    else:
        st.toast(f"Sent {count(report.sent, 'feedback message')} to Imagga.", icon=":material/send:")


def _fail(message: str) -> None:
    st.error(literal(message))
    st.stop()


def _dismiss_intro() -> None:
    st.session_state["tag_intro_seen"] = True
    st.session_state["tag_intro_remember"] = True  # the cookie is set on the next run (a callback draws nothing)


def _intro() -> None:
    """A first-visit explanation of the rule, until the analyst dismisses it (remembered by the browser)."""
    if st.session_state.get("tag_intro_seen") or persist.browser_flag("intro_seen"):
        if st.session_state.pop("tag_intro_remember", False):
            persist.set_browser_flag("intro_seen")
        return
    with st.container(border=True, key="tag_intro"):
        st.markdown(
            "**How tags are picked.** Each suggested tag has a confidence from 0 to 100. Tags at or above the "
            "**confidence threshold** are accepted, and the best few (the top 3 unless you change it) are always "
            "kept, even below it. Adjust the slider or the **Accepted tags** box, then **Save feedback**."
        )
        st.button("Got it", key="tag_intro_dismiss", on_click=_dismiss_intro)


def _restore_from_url(backends: list[str]) -> None:
    """After a reload or from a shared link: the image, backend, threshold, floor and edits the URL names."""
    values = persist.restore("tag", {
        "source": persist.one_of(SOURCE_WORDS), "sample": str, "url": str, "upload": persist.content_key,
        "backend": persist.one_of({b: b for b in backends}), "model": str,
        "threshold": persist.int_between(0, 100), "floor": persist.int_between(0, 50), "tags": str,
    })
    for param, key in (("source", "tag_source"), ("sample", "tag_sample"), ("url", "tag_url"),
                       ("upload", "tag_kept_upload"), ("backend", "tag_backend"), ("model", "tag_manifest"),
                       ("threshold", "threshold"), ("floor", "min_tags")):
        if param in values:
            st.session_state[key] = values[param]
    if "tags" in values:
        st.session_state["tag_restore_selection"] = [t for t in values["tags"].split(TAG_SEPARATOR) if t]


def _floor_style(labels: list[str]) -> None:
    """Mark the chips the floor picked below the threshold in the floor's chart colour (labels are escaped)."""
    if not labels:
        return
    chips = ", ".join(f'.st-key-tag_selection span[data-tag][aria-label={css_string(label)}]' for label in labels)
    st.html(f"<style>{chips} {{background: {COLORS[FLOOR]}; color: #222; outline: 2px dashed #e4572e; "
            "outline-offset: -2px}</style>")


config, store = start_page()

st.title("Tag an image")
for problem in config.problems:
    st.warning(literal(problem))
_intro()

# --- backend -------------------------------------------------------------------------
backends = [IMAGGA, EMBEDDED] if config.imagga_configured else [EMBEDDED]
_restore_from_url(backends)
no_imagga = auth.refusal(store.identity, TAG_IMAGGA)  # a viewer starts on the free tagger
if len(backends) > 1 and st.session_state.get("tag_backend") not in backends:
    st.session_state["tag_backend"] = EMBEDDED if no_imagga else backends[0]
manifest_id = None
with st.sidebar:
    if len(backends) > 1:
        backend_name = st.radio("Tagging backend", backends, format_func=LABELS.__getitem__, key="tag_backend")
        if no_imagga:
            st.caption(f":material/lock: {no_imagga}")
    else:
        backend_name = EMBEDDED
        st.caption(
            f"Backend: **{LABELS[EMBEDDED]}**. Set IMAGGA_API_KEY and IMAGGA_API_SECRET to offer Imagga as well."
        )
    if backend_name == IMAGGA:
        backend = resources.imagga_backend(config)
        language = st.selectbox("Tag language", backend.languages, key="tag_language")
        extra_languages = st.multiselect(
            "Also ask for", [lang for lang in backend.languages if lang != language], key="tag_extra_languages",
            help="Imagga answers several languages in one request; they show in the raw JSON.",
        )
        mode = st.selectbox(
            "Imagga request", list(IMAGGA_MODES), format_func=IMAGGA_MODES.__getitem__, key="tag_mode"
        )
        downscale_to = st.number_input(
            "Downscale before upload (long side, px; 0 = off)",
            min_value=0, max_value=8192, value=DEFAULT_DOWNSCALE, step=256, key="tag_downscale",
        )
        with st.expander("Imagga parameters"):
            limit = st.number_input("Limit (0 = all tags)", min_value=0, max_value=500, value=0, key="tag_limit")
            server_threshold = st.number_input(
                "Server-side threshold (0 = none)", min_value=0.0, max_value=100.0, value=0.0,
                key="tag_server_threshold",
                help="Imagga drops tags below this before answering; the slider still works on what remains.",
            )
            decrease_parents = st.checkbox("Decrease parents", key="tag_decrease_parents",
                                           help="Lower the confidence of general parent tags.")
            verbose = st.checkbox("Verbose (origin, synset id)", key="tag_verbose")
            tagger_id = st.text_input("Custom tagger id", key="tag_tagger_id", placeholder="optional").strip()
        request = TagRequest(
            language=language, mode=mode, downscale_to=int(downscale_to) or None,
            extra_languages=tuple(extra_languages),
            limit=int(limit) or None,
            threshold=float(server_threshold) or None,
            decrease_parents=True if decrease_parents else None,
            verbose=True if verbose else None,
            tagger_id=tagger_id or None,
        )
        client = resources.imagga_client(config.imagga_url, config.imagga)
        resources.startup_delivery(config.db_target, config.imagga_url, store, client)
        queued = len(store.pending(IMAGGA))
        if queued:
            st.warning(f"{count(queued, 'feedback message')} {'waits' if queued == 1 else 'wait'} to be sent "
                       "to Imagga; see Settings.")
    else:
        manifests = resources.embedded_manifests()
        if len(manifests) > 1:
            titles = {m.id: m.title for m in manifests}
            if st.session_state.get("tag_manifest") not in titles:
                st.session_state.pop("tag_manifest", None)
            manifest_id = st.selectbox("Offline model", list(titles), format_func=titles.__getitem__,
                                       key="tag_manifest")
        backend = resources.embedded_backend(manifest_id)
        language = "en"
        request = TagRequest(language=language, mode=MODE_UPLOAD)
backend_key = resources.backend_id(backend_name, config, manifest_id if backend_name == EMBEDDED else None)

# --- input -----------------------------------------------------------------------------
source = st.radio(
    "Image source", [SOURCE_SAMPLE, SOURCE_UPLOAD, SOURCE_URL], horizontal=True, key="tag_source"
)
source_word = next(word for word, label in SOURCE_WORDS.items() if label == source)
persist.publish({"source": source_word, "backend": backend_name if len(backends) > 1 else None,
                 "model": manifest_id, "sample": None, "url": None, "upload": None})
image: LoadedImage | None = None
image_url: str | None = None
data: bytes | None = None  # stays None only when Imagga fetches a URL itself
fresh_upload = False
try:
    if source == SOURCE_SAMPLE:
        filename, data = inputs.sample_picker("tag_sample")
        persist.publish({"sample": filename})
    elif source == SOURCE_UPLOAD:
        wanted = st.session_state.get("tag_kept_upload")
        kept = persist.kept_upload(wanted)
        upload = inputs.image_upload(config.max_upload_bytes, "tag_upload", "to tag", wait=False)
        if upload is not None:
            data, filename, fresh_upload = upload.getvalue(), upload.name, True
        elif kept is not None:
            filename, data = kept
            st.caption(f"Showing your last upload, {literal(filename)}, kept on the server for a while (the "
                       "latest few are); choose a file above to tag another.")
            persist.publish({"upload": wanted})
        else:
            if wanted:
                st.warning("The upload this link refers to is no longer kept on the server (it keeps only the "
                           "latest few); upload the image again.")
            st.info(f"Choose an image file to tag, up to {inputs.limit_text(config.max_upload_bytes)}. A larger "
                    "file gets a message here with its size.")
            st.stop()
    else:
        raw_url = st.text_input("Image URL (http or https)", key="tag_url", placeholder="https://…")
        if not raw_url.strip():
            st.info("Enter the address of an image and press Enter.")
            st.stop()
        persist.publish({"url": raw_url.strip()})
        image_url = check_url(raw_url, resolve=False) if backend_name == IMAGGA else raw_url.strip()
        filename = filename_from_url(image_url)
        if backend_name != IMAGGA:
            data = resources.fetch_url_cached(image_url, config.max_upload_bytes)
    if data is not None:
        digest = hashlib.sha256(data).hexdigest()
        image = resources.load_image_cached(
            digest, filename, config.max_upload_bytes, config.max_pixels, data
        )
        if fresh_upload:  # a reload, or this link elsewhere, finds it again
            persist.keep_upload(digest, filename, data)
            st.session_state["tag_kept_upload"] = digest
            persist.publish({"upload": digest})
except TaggingError as exc:
    _fail(str(exc))

if image is not None:
    image_key = image.sha256
else:
    assert image_url is not None
    image_key = "url:" + hashlib.sha256(image_url.encode()).hexdigest()

col_image, col_tags = st.columns([2, 3], gap="large")
with col_image:
    if image is not None:
        st.image(resources.display_jpeg(image.sha256, image), caption=f"{literal(image.filename)} · "
                 f"{image.width}×{image.height} {image.format}", width="stretch")
    else:
        st.image(image_url, caption=literal(filename), width="stretch")
    if backend_name == IMAGGA and image is not None and request.downscale_to:
        plan = plan_upload(image, request.downscale_to)
        if plan.saved_bytes:
            st.caption(
                f"Upload: {format_size(len(plan.data))} instead of {format_size(plan.original_bytes)} "
                f"(saves {format_size(plan.saved_bytes)})."
            )
        else:
            st.caption(f"Upload: {format_size(plan.original_bytes)}, sent as is (already small enough).")


# --- tags ----------------------------------------------------------------------------
def _tag() -> dict:
    payload = backend.tag_image(image, request) if image is not None else backend.tag_url(image_url, request)
    parse_tags(payload, language)  # only well-formed answers are cached
    return payload


try:
    with st.spinner(f"Tagging with the {LABELS[backend_name]}…"):
        payload = resources.tag_cached(
            backend_key, image_key, request.cache_key(), _tag, resources.result_cache(config.db_target)
        )
    tags = parse_tags(payload, language)
except TaggingError as exc:
    _fail(f"{LABELS[backend_name]}: {exc}")

with col_image:
    st.caption(f"Tagged by **{LABELS[backend_name]}** · {count(len(tags), 'tag')} · language {language}")
    with st.expander("Raw JSON response"):
        raw = json.dumps(payload, indent=2, ensure_ascii=False)
        st.download_button(
            "Download JSON", raw, file_name=f"{PurePosixPath(filename).stem}-tags.json",
            mime="application/json", key="tag_download_json",
        )
        st.json(payload, expanded=1)

if not tags:
    with col_tags:
        st.warning("The backend returned no tags for this image; there is nothing to select.")
    st.stop()


def _save(selection: list[str], suggestions: list[str], threshold: int, min_tags: int) -> None:
    try:
        accepted = set(validate_selection(selection, suggestions))
        result = store.save_feedback(
            image_key=image_key,
            filename=filename,
            source=source if image_url is None else image_url,
            backend=backend_name,
            language=language,
            threshold=float(threshold),
            min_tags=int(min_tags),
            items=[FeedbackItem(t.name, t.confidence, t.name in accepted, t.parent) for t in tags],
            width=image.width if image else None,
            height=image.height if image else None,
            thumbnail=image.thumbnail_bytes() if image else None,
            preview=image.preview_bytes() if image else None,
            saved_by=analyst(config),
            review_mode=PREFILLED,  # the box starts from the rule's selection
            missing_tags=missing_tags(st.session_state.get("tag_missing", "")),
        )
    except (SelectionError, PermissionDeniedError) as exc:
        st.error(literal(exc))
    except StoreError as exc:
        st.error(database_problem(config, exc, "save the feedback") + " Your selection is kept: try again.")
    else:
        if result.replaced_other:  # issue 10: never replace a colleague's verdict silently
            st.warning(f"You replaced the verdict {literal(result.previous_saved_by)} saved at "
                       f"{literal(when(result.previous_saved_at))}.", icon=":material/group:")
        verb = "Updated" if result.replaced else "Saved"
        st.toast(f"{verb} feedback on {count(result.items, 'tag')} ({result.accepted} accepted).",
                 icon=":material/check_circle:")
        st.session_state["last_saved"] = image_key
        if backend_name == IMAGGA:
            _send_remote_feedback(accepted)


@st.fragment
def _editor() -> None:
    """Threshold, floor, accepted tags, save and chart: a slider move reruns only this part of the page."""
    state.bind("tag_threshold", "threshold")
    state.bind("tag_min_tags", "min_tags")
    c1, c2 = st.columns([3, 1])
    threshold = c1.slider(
        "Confidence threshold", 0, 100, key="tag_threshold",
        on_change=state.keep, args=("tag_threshold", "threshold"),
        help="Tags at or above this confidence are accepted.",
    )
    min_tags = int(c2.number_input(
        "Always keep the top", min_value=0, max_value=50, step=1, key="tag_min_tags",
        on_change=state.keep, args=("tag_min_tags", "min_tags"),
        help="This many of the best tags are accepted even below the threshold (0 = none).",
    ))
    suggestions = [t.name for t in tags]
    confidence = {t.name: t.confidence for t in tags}
    overrides = store.get_setting("tag_overrides", {}) or {}
    auto = auto_select(tags, threshold, min_tags, overrides)

    context = (image_key, backend_key, language)
    if st.session_state["selection_context"] != context:
        st.session_state["selection_context"] = context
        st.session_state["selection_edited"] = False
        st.session_state["recent_auto"] = []
        st.session_state.pop("tag_selection", None)
        restored = st.session_state.pop("tag_restore_selection", None)  # edits named by the URL
        if restored is not None:
            st.session_state["selection_edited"] = True
            st.session_state["selection"] = [t for t in restored if t in confidence]
            st.session_state["tag_selection"] = st.session_state["selection"]
    if not st.session_state["selection_edited"]:
        st.session_state["tag_selection"] = auto
        if auto not in st.session_state["recent_auto"]:
            st.session_state["recent_auto"] = [*st.session_state["recent_auto"], auto][-RECENT_AUTO:]
    elif "tag_selection" not in st.session_state:  # coming back from another page
        st.session_state["tag_selection"] = [t for t in st.session_state["selection"] if t in suggestions]

    selection = st.multiselect(
        "Accepted tags (only suggested tags can be added; confidence after each)",
        options=suggestions,
        format_func=lambda name: chip_label(name, confidence[name]),
        key="tag_selection",
        on_change=_on_selection_edit,
    )
    edited = st.session_state["selection_edited"]
    below = [name for name in floor_picks(tags, threshold, min_tags, overrides) if name in selection]
    _floor_style([chip_label(name, confidence[name]) for name in below])
    st.caption(
        f"{len(selection)} of {count(len(tags), 'tag')} accepted · "
        + ("edited by hand" if edited else f"following the rule: ≥ {threshold} and always the top {min_tags}")
    )
    if below:
        st.caption(
            f"Below the threshold, kept only because the top {min_tags} are always kept (marked with a dashed "
            "outline): " + ", ".join(f"{literal(name)} ({confidence[name]:.0f})" for name in below) + "."
        )
    ties = floor_ties(tags, threshold, min_tags, overrides)
    if ties and not edited:
        last = below[-1] if below else None
        st.caption(
            f"{', '.join(literal(t) for t in ties)} {'ties' if len(ties) == 1 else 'tie'} with "
            f"{literal(last)} at {confidence[ties[0]]:.0f}; the tagger's order decided which one is kept. "
            "Add it by hand if it belongs."
        )
    published = TAG_SEPARATOR.join(selection)
    persist.publish({"threshold": threshold, "floor": min_tags,
                     "tags": published if edited and not any(TAG_SEPARATOR in t for t in selection) else None})
    st.text_input(
        "Missing tags (what the tagger should have suggested; comma-separated)", key="tag_missing",
        placeholder="e.g. dog, red ball",
        help="Free text, kept apart from the accepted tags (which only suggested tags can be): saved with the "
             "feedback, exported by the Library and counted by the Compare page as what the tagger missed.",
    )
    b1, b2 = st.columns(2)
    b1.button("Follow the rule again", key="tag_follow_rule", on_click=_follow_rule, disabled=not edited)
    with b2:
        no_save = ui_auth.refused(SAVE)
    if b2.button("Save feedback", key="tag_save", type="primary", disabled=bool(no_save)):
        _save(selection, suggestions, threshold, min_tags)
    st.vega_lite_chart(labelled_confidence_spec(tags, selection, threshold, below), width="stretch",
                       key="tag_chart")
    images_n, items_n = store.counts()
    st.caption(f"Saved so far: {count(items_n, 'tag decision')} on {count(images_n, 'image')}.")


with col_tags:
    _editor()

# --- analysis: faces, objects, text, colours, crops (ui/analysis.py) ------------------------
analysis.render(backend, backend_key, image, image_url, image_key, request, payload,
                resources.result_cache(config.db_target), filename, store)

# --- Imagga categorizers -------------------------------------------------------------------
if backend_name == IMAGGA:
    with col_tags, st.expander("Categories (Imagga categorizers)"):
        try:
            available = resources.categorizers(config.imagga_url, client)
        except TaggingError as exc:
            st.error(f"Could not list Imagga's categorizers: {literal(exc)}")
        else:
            titles = {c.id: f"{c.title} ({c.id})" if c.title else c.id for c in available}
            categorizer = st.selectbox(
                "Categorizer", list(titles), format_func=titles.__getitem__, key="tag_categorizer"
            )
            if st.button("Categorize this image", key="tag_categorize", disabled=not titles):
                st.session_state["categorized"] = (image_key, categorizer, language)
            if categorizer and st.session_state.get("categorized") == (image_key, categorizer, language):

                def _categorize() -> list:
                    if image is None:
                        send = partial(client.categorize, categorizer, image_url=image_url, language=language)
                    else:
                        plan = plan_upload(image, request.downscale_to)
                        send = partial(client.categorize_image, categorizer, plan.data, plan.filename,
                                       language=language)
                    # a paid call: charged to this identity's cap (or refused), given back if Imagga refused it
                    return paid_call(ui_auth.meter(config), send)

                try:
                    categories = resources.categories_cached(
                        config.imagga_url, image_key, categorizer, language, _categorize
                    )
                except TaggingError as exc:
                    st.error(f"Imagga could not categorize the image: {literal(exc)}")
                else:
                    table = {
                        "category": [c.name for c in categories],
                        "confidence": [round(c.confidence, 2) for c in categories],
                    }
                    st.dataframe(table, hide_index=True, key="tag_categories_table")

# --- offline categorizers (embedded backend) --------------------------------------------------
if backend_name == EMBEDDED and image is not None:
    with col_tags, st.expander("Categories (offline categorizers)"):
        offline_titles = {c.id: c.title for c in CATEGORIZERS}
        offline_categorizer = st.selectbox(
            "Categorizer", list(offline_titles), format_func=offline_titles.__getitem__,
            key="tag_offline_categorizer",
        )
        if st.button("Categorize this image", key="tag_offline_categorize"):
            st.session_state["offline_categorized"] = (image_key, backend_key, offline_categorizer)
        if st.session_state.get("offline_categorized") == (image_key, backend_key, offline_categorizer):

            def _categorize_offline() -> dict:
                nsfw = resources.nsfw_model() if offline_categorizer == NSFW_ID else None
                return categorize(offline_categorizer, image.image, tags_response=payload, nsfw=nsfw)

            try:
                body = resources.embedded_categories_cached(
                    backend_key, image_key, offline_categorizer, _categorize_offline
                )
                offline_categories = parse_categories(body)
            except TaggingError as exc:
                st.error(f"The offline categorizer failed: {literal(exc)}")
            else:
                st.dataframe(
                    {
                        "category": [c.name for c in offline_categories],
                        "confidence": [round(c.confidence, 2) for c in offline_categories],
                    },
                    hide_index=True, key="tag_offline_categories_table",
                )
