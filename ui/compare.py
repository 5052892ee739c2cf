"""Streamlit helpers of the Compare page: each side's controls, tagging one image with its cost, the sets'
sources, and the charts."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import altair as alt
import pandas as pd
import streamlit as st

from tagging import compare
from tagging.backends import EMBEDDED, IMAGGA, IMAGGA_MODES, MODE_UPLOAD, Backend, TagRequest
from tagging.batch import PerThreadImagga
from tagging.compare import SetImage, Side, TaggerChoice, TaggerSpec
from tagging.config import Settings
from tagging.errors import SourceReadError, TaggingError
from tagging.images import LoadedImage
from tagging.models import Tag
from tagging.parse import parse_tags
from tagging.rules import DEFAULT_MIN_TAGS
from tagging.store import ResultCache, Store, TagSearch, library
from ui import auth, resources
from ui.batch import MAX_BATCH_IMAGES, collect_uploads
from ui.charts import chart_height
from ui.library import data_url

SIDE_COLORS = {"A": "#e4572e", "B": "#1f77b4"}
THUMBNAILS_SHOWN = 200  # thumbnails read for the per-image table (the library keeps one per image)
CHART_TAGS = 30
# Imagga's default long side before upload: the Tag page's (bench/bench_upload.py), so its answers are reused.
DEFAULT_DOWNSCALE = 1600
FROM_CACHE, CALLED = "cache", "call"


# --- which taggers, in words ----------------------------------------------------------------------
def choices_notice(choices: Sequence[TaggerChoice], imagga_configured: bool) -> str:
    """What the two sides can be, said plainly: a different offline model for B when one is installed, else why not."""
    offline = [c for c in choices if not c.remote]
    if imagga_configured:
        return ""
    if len(offline) > 1:
        return (f"Imagga is not configured, so the page compares the offline models installed here: side B starts "
                f"on {offline[1].label}, a different model from side A's {offline[0].label}. "
                + compare.IMAGGA_SETUP_HINT)
    return ("Only one offline model is installed, so both sides run the same model and can differ only by their "
            "threshold and floor. Add another model manifest to models/ (see models/README.md) for a genuinely "
            "different second tagger. " + compare.IMAGGA_SETUP_HINT)


def with_thumbnails(per_image: pd.DataFrame, thumbnails: dict[str, bytes]) -> pd.DataFrame:
    """The per-image table without its key, a thumbnail first where the library keeps one."""
    frame = per_image.drop(columns=["key"])
    if thumbnails:
        frame.insert(0, "thumbnail", [data_url(thumbnails.get(k)) for k in per_image["key"]])
    return frame


# --- each side's controls ------------------------------------------------------------------------
def _side_defaults(prefix: str, default_backend: str, default_threshold: int) -> dict:
    return {
        f"{prefix}_tagger": default_backend, f"{prefix}_language": "en", f"{prefix}_extra_languages": [],
        f"{prefix}_decrease_parents": False, f"{prefix}_tagger_id": "", f"{prefix}_server_threshold": 0.0,
        f"{prefix}_limit": 0, f"{prefix}_mode": MODE_UPLOAD, f"{prefix}_downscale": DEFAULT_DOWNSCALE,
        f"{prefix}_threshold": default_threshold, f"{prefix}_min_tags": DEFAULT_MIN_TAGS,
    }


def side_controls(
    name: str, choices: Sequence[TaggerChoice], default_choice: int, default_threshold: int
) -> Side:
    """The sidebar widgets of side ``name`` ("A" or "B"): tagger, its parameters, threshold and floor.

    Widgets take their first values from the session (``adopt`` writes there too), never from a
    ``value=`` argument, so setting them from a callback needs no second source of truth.
    """
    prefix = f"compare_{name.lower()}"
    backends = [c.backend for c in choices]
    by_backend = {c.backend: c for c in choices}
    default_backend = backends[min(default_choice, len(backends) - 1)]
    for key, value in _side_defaults(prefix, default_backend, default_threshold).items():
        st.session_state.setdefault(key, value)
    if st.session_state[f"{prefix}_tagger"] not in backends:
        st.session_state[f"{prefix}_tagger"] = default_backend
    st.subheader(f"Tagger {name}")
    backend = st.selectbox(
        "Tagger", backends, format_func=lambda b: by_backend[b].label, key=f"{prefix}_tagger",
        disabled=len(backends) == 1,
    )
    choice = by_backend[backend]
    if choice.takes_imagga_parameters:
        if st.session_state[f"{prefix}_language"] not in choice.languages:
            st.session_state[f"{prefix}_language"] = choice.languages[0]
        language = st.selectbox("Tag language", choice.languages, key=f"{prefix}_language")
        with st.expander("Imagga parameters"):
            extra = st.multiselect("Also ask for", [lang for lang in choice.languages if lang != language],
                                   key=f"{prefix}_extra_languages",
                                   help="Part of the request, so of the cache key: as on the Tag and Batch pages.")
            decrease_parents = st.checkbox("Decrease parents", key=f"{prefix}_decrease_parents",
                                           help="Lower the confidence of general parent tags.")
            tagger_id = st.text_input("Custom tagger id", key=f"{prefix}_tagger_id", placeholder="optional")
            server_threshold = st.number_input(
                "Server-side threshold (0 = none)", min_value=0.0, max_value=100.0, key=f"{prefix}_server_threshold",
            )
            limit = st.number_input("Limit (0 = all tags)", min_value=0, max_value=500, key=f"{prefix}_limit")
            mode = st.selectbox("Imagga request", list(IMAGGA_MODES), format_func=IMAGGA_MODES.__getitem__,
                                key=f"{prefix}_mode")
            downscale = st.number_input(
                "Downscale before upload (long side, px; 0 = off)", min_value=0, max_value=8192, step=256,
                key=f"{prefix}_downscale",
                help="The Tag page's default, so its answers are reused; answers are cached per parameter set.",
            )
        request = compare.imagga_request(
            language, decrease_parents=decrease_parents, tagger_id=tagger_id, server_threshold=server_threshold,
            limit=int(limit), downscale_to=int(downscale), mode=mode, extra_languages=extra,
        )
    else:
        request = compare.embedded_request()
    c1, c2 = st.columns([3, 2])
    threshold = c1.slider("Threshold", 0, 100, key=f"{prefix}_threshold",
                          help="This side's own threshold; moving it calls nothing.")
    min_tags = c2.number_input("Never fewer than (top tags)", min_value=0, max_value=50, step=1,
                               key=f"{prefix}_min_tags", help="The floor: at least this many of the best tags.")
    return Side(TaggerSpec(backend, request), float(threshold), int(min_tags), name)


def adopt(name: str, backend: str, request: TagRequest) -> None:
    """on_click: give side ``name`` this tagger and these parameters (the Batch page's), so its answers are reused."""
    prefix = f"compare_{name.lower()}"
    st.session_state[f"{prefix}_tagger"] = backend
    if backend == IMAGGA:
        st.session_state.update({
            f"{prefix}_language": request.language,
            f"{prefix}_extra_languages": [lang for lang in request.extra_languages if lang != request.language],
            f"{prefix}_decrease_parents": bool(request.decrease_parents),
            f"{prefix}_tagger_id": request.tagger_id or "",
            f"{prefix}_server_threshold": float(request.threshold or 0.0),
            f"{prefix}_limit": int(request.limit or 0),
            f"{prefix}_mode": request.mode,
            f"{prefix}_downscale": int(request.downscale_to or 0),
        })


# --- backends -----------------------------------------------------------------------------------
def backend_for(spec: TaggerSpec, config: Settings) -> Backend:
    """The cached backend object of a spec. Raises TaggingError for a tagger that is not available."""
    if spec.backend == IMAGGA:
        if config.imagga is None:
            raise TaggingError(compare.IMAGGA_SETUP_HINT)
        return resources.imagga_backend(config)
    if spec.backend == EMBEDDED:
        return resources.embedded_backend()
    if spec.backend.startswith(f"{EMBEDDED}:"):
        return resources.embedded_backend(spec.backend.split(":", 1)[1])
    raise TaggingError(f"The tagger “{spec.backend}” is not available in this installation.")


def backend_key(spec: TaggerSpec, config: Settings) -> str:
    """The result cache's backend key, exactly the other pages'."""
    if spec.backend.startswith(f"{EMBEDDED}:"):
        return resources.backend_id(EMBEDDED, config, spec.backend.split(":", 1)[1])
    return resources.backend_id(spec.backend, config)


def batch_options(spec: TaggerSpec, config: Settings) -> dict:
    """``run_batch`` options for a side: one session per worker thread for Imagga, as on the Batch page."""
    options: dict = {"max_bytes": config.max_upload_bytes, "max_pixels": config.max_pixels}
    if spec.backend == IMAGGA and config.imagga is not None:
        options["backend_factory"] = PerThreadImagga(config.imagga, config.imagga_url, auth.meter(config))
    return options


# --- one image ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OneAnswer:
    """One side's answer for one image, what it cost in this session, or why there is none."""

    tags: tuple[Tag, ...] = ()
    cost: str = FROM_CACHE
    error: str | None = None


def tag_one(side: Side, image: LoadedImage, config: Settings, cache: ResultCache) -> OneAnswer:
    """Tag one image on one side through the shared result cache; a cached answer calls nothing.

    What it cost is remembered per answer in the session, so a rerun (a slider) still says whether
    this session paid a call for it or found it in the cache.
    """
    spec = side.spec
    try:
        key = backend_key(spec, config)
        backend = backend_for(spec, config)
    except TaggingError as exc:
        return OneAnswer(error=str(exc))
    calls = []

    def call() -> dict:
        calls.append(1)
        payload = backend.tag_image(image, spec.request)
        parse_tags(payload, spec.language)  # only well-formed answers are cached
        return payload

    try:
        payload = resources.tag_cached(key, image.sha256, spec.request.cache_key(), call, cache)
        tags = parse_tags(payload, spec.language)
    except TaggingError as exc:
        return OneAnswer(error=str(exc))
    remembered = (key, image.sha256, spec.request.cache_key())
    costs = st.session_state["compare_costs"]
    if calls or remembered not in costs:
        costs = {**costs, remembered: CALLED if calls else FROM_CACHE}  # a new dict: DEFAULTS' is shared
        st.session_state["compare_costs"] = costs
    return OneAnswer(tuple(tags), costs[remembered])


def count(n: int, noun: str) -> str:
    """``1 call``, ``2 calls``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def cost_text(answer: OneAnswer, spec: TaggerSpec) -> str:
    """What one side's answer cost, in plain words."""
    if answer.cost == FROM_CACHE:
        return "Answered from the result cache: no call."
    if spec.remote:
        return f"1 call made in this session: {count(spec.requests_per_image, 'Imagga request')}."
    return "1 call made in this session (offline: no request, no cost)."


def tags_frame(tags: Sequence[Tag], selected: Sequence[str]) -> pd.DataFrame:
    chosen = set(selected)
    return pd.DataFrame(
        {"tag": [t.name for t in tags], "confidence": [round(t.confidence, 1) for t in tags],
         "selected": [t.name in chosen for t in tags]},
        columns=["tag", "confidence", "selected"],
    )


def comparison_chart(frame: pd.DataFrame, side_a: Side, side_b: Side, top: int = CHART_TAGS) -> alt.LayerChart:
    """Both sides' confidences per tag in one chart (``compare.side_by_side`` rows, best first):
    a bar per side, solid when that side selects the tag, pale when not; each side's threshold a rule."""
    shown = frame.head(top)
    long = pd.concat(
        [
            pd.DataFrame({"tag": shown["tag"], "side": side, "confidence": shown[f"confidence {side}"],
                          "selected": shown[f"selected {side}"].map({True: "selected", False: "not selected"})})
            for side in ("A", "B")
        ],
        ignore_index=True,
    ).dropna(subset=["confidence"])
    order = list(shown["tag"])
    colors = alt.Scale(domain=list(SIDE_COLORS), range=list(SIDE_COLORS.values()))
    bars = (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("confidence:Q", title="confidence", scale=alt.Scale(domain=[0, 100])),
            y=alt.Y("tag:N", sort=order, title=None, axis=alt.Axis(labelOverlap=False, labelLimit=180)),
            yOffset=alt.YOffset("side:N", sort=["A", "B"]),
            color=alt.Color("side:N", scale=colors, legend=alt.Legend(title="tagger", orient="bottom")),
            opacity=alt.Opacity(
                "selected:N", scale=alt.Scale(domain=["selected", "not selected"], range=[1.0, 0.3]),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
            tooltip=["tag", "side", alt.Tooltip("confidence:Q", format=".1f"), "selected"],
        )
    )
    rules = (
        alt.Chart(pd.DataFrame({"side": ["A", "B"], "threshold": [side_a.threshold, side_b.threshold]}))
        .mark_rule(strokeDash=[6, 3], size=2)
        .encode(x="threshold:Q", color=alt.Color("side:N", scale=colors, legend=None),
                tooltip=["side", "threshold"])
    )
    return (bars + rules).properties(height=chart_height(2 * len(shown)))


# --- sets -------------------------------------------------------------------------------------------
@dataclass
class SetSource:
    """The images of a set, what was not read, and a note on where they come from."""

    images: list[SetImage]
    skipped: list[tuple[str, str]]
    tagged_by: TaggerSpec | None = None  # the Batch page's tagger and parameters, for a batch


def from_uploads(files: Sequence) -> SetSource:
    """Uploaded images and zips (read as on the Batch page, kept apart from its uploads)."""
    intake = collect_uploads(files, state_key="_compare_intake")
    images = [SetImage(item.sha256, item.name, item) for item in intake.items]
    skipped = [(s.name, s.reason) for s in intake.skipped] + [("", p) for p in intake.problems]
    return SetSource(images, skipped)


def from_batch_page() -> SetSource | None:
    """The Batch page's last finished batch in this session (its bytes are still held), or None."""
    job = st.session_state.get("batch_job")
    if job is None or not job.done:
        return None
    images, skipped = [], []
    for item in job.items:
        try:
            images.append(SetImage(item.sha256, item.name, item))
        except SourceReadError as exc:
            skipped.append((item.name, str(exc)))
    meta = st.session_state.get("batch_meta") or {}
    request = meta.get("request")
    tagged_by = TaggerSpec(meta["backend"], request) if meta.get("backend") and request is not None else None
    return SetSource(images, skipped, tagged_by)


def from_library(store: Store, tags: Sequence[str], limit: int = MAX_BATCH_IMAGES) -> SetSource:
    """Library images carrying any of ``tags`` (all when empty), newest first, at most ``limit``.

    The library keeps a thumbnail, not the original: these images can only be compared where the
    result cache already holds an answer.
    """
    search = library.search_of(tags, library.ANY_OF, [t for t, _ in store.library_tags()]) if tags else TagSearch()
    images: list[SetImage] = []
    seen: set[str] = set()
    for chunk in store.iter_library(search, chunk=limit + 1):  # reads pages only until the bound is passed
        for e in chunk:
            if e.image_key not in seen:
                seen.add(e.image_key)
                images.append(SetImage(e.image_key, e.filename))
        if len(images) > limit:
            break
    images = compare.unique_images(images)
    skipped = [(i.name, f"more than {limit} images in one comparison") for i in images[limit:]]
    if len(images) > limit:
        beyond = store.library_size(search)[1] - len(images)
        if beyond > 0:
            skipped.append((f"and {beyond} more images", f"more than {limit} images in one comparison"))
    return SetSource(images[:limit], skipped)


def gathered(side: Side, images: Sequence[SetImage], config: Settings, cache: ResultCache) -> dict[str, list[Tag]]:
    """``compare.gather`` for a side, kept in the session until the set, the spec or the cache (a run) changes."""
    key = backend_key(side.spec, config)
    signature = (key, side.spec.request.cache_key(), tuple(i.key for i in images),
                 st.session_state["compare_generation"])
    memo_key = f"_compare_gathered_{side.name}"
    held = st.session_state.get(memo_key)
    if held is not None and held[0] == signature:
        return held[1]
    answers = compare.gather(cache, key, side.spec, [i.key for i in images])
    st.session_state[memo_key] = (signature, answers)
    return answers


def plan_frame(plans: dict[str, compare.SidePlan], sides: dict[str, Side]) -> pd.DataFrame:
    """The cost of a run, per side, before it is made."""
    rows = []
    for name, plan in plans.items():
        remote = sides[name].spec.remote
        rows.append({
            "side": name, "images": plan.images, "from the cache": len(plan.cached),
            "new calls now": plan.new_calls, "Imagga requests now": plan.requests if remote else None,
            "over the bound (a later run)": len(plan.over_limit),
            "cannot be tagged (no original kept)": len(plan.unavailable),
        })
    return pd.DataFrame(rows)


def run_sides(
    images: Sequence[SetImage], plans: dict[str, compare.SidePlan], sides: dict[str, Side], config: Settings,
    cache: ResultCache, progress: Callable[[str, int, int], None],
) -> dict[str, dict]:
    """Make every side's planned calls; returns what each run cost and what failed (for the page)."""
    summary: dict[str, dict] = {}
    for name, plan in plans.items():
        if not plan.new_calls:
            continue
        spec = sides[name].spec
        try:
            backend = backend_for(spec, config)
        except TaggingError as exc:
            summary[name] = {"calls": 0, "requests": 0, "failed": [], "aborted": str(exc)}
            continue
        report = compare.run_side(
            images, plan, backend, spec, backend_key=backend_key(spec, config), cache=cache,
            on_result=lambda _r, done, total, name=name: progress(name, done, total), **batch_options(spec, config),
        )
        summary[name] = {
            "calls": report.calls_made, "requests": report.calls_made * spec.requests_per_image,
            "failed": compare.failures(report), "aborted": report.aborted,
        }
    return summary


def f1_chart(scores: Sequence[compare.VerdictScore]) -> alt.LayerChart:
    """Each side's F1 against its threshold; a point at its best threshold."""
    curves = pd.concat(
        [s.curve.assign(side=s.side.name)[["threshold", "f1", "precision", "recall", "side"]] for s in scores],
        ignore_index=True,
    )
    colors = alt.Scale(domain=list(SIDE_COLORS), range=list(SIDE_COLORS.values()))
    lines = (
        alt.Chart(curves)
        .mark_line(interpolate="step-after")
        .encode(
            x=alt.X("threshold:Q", scale=alt.Scale(domain=[0, 100])),
            y=alt.Y("f1:Q", title="F1 against your verdicts", scale=alt.Scale(domain=[0, 1]),
                    axis=alt.Axis(format="%")),
            color=alt.Color("side:N", scale=colors, legend=alt.Legend(title="tagger", orient="bottom")),
            tooltip=["side", "threshold", alt.Tooltip("f1:Q", format=".1%"),
                     alt.Tooltip("precision:Q", format=".1%"), alt.Tooltip("recall:Q", format=".1%")],
        )
    )
    best = pd.DataFrame([
        {"side": s.side.name, "threshold": s.recommendation.threshold, "f1": s.recommendation.f1}
        for s in scores if s.recommendation.threshold is not None and not math.isnan(s.recommendation.f1)
    ], columns=["side", "threshold", "f1"])
    points = alt.Chart(best).mark_point(size=90, filled=True).encode(
        x="threshold:Q", y="f1:Q", color=alt.Color("side:N", scale=colors, legend=None),
        tooltip=["side", "threshold", alt.Tooltip("f1:Q", format=".1%")],
    )
    return (lines + points).properties(height=300)


def truth_for(store: Store, side: Side, scope: str, image_keys: Sequence[str]) -> compare.Truth:
    """The verdicts on ``image_keys`` a side is scored against: every backend's in its language, or its own
    backend's only. Only those images' verdicts are read.

    Raises ``StoreError`` when the store cannot be read.
    """
    language = side.spec.language
    if scope == compare.OWN:
        backends = [side.spec.backend]
    else:
        backends = store.reviewed_backends(language, image_keys)
    return compare.truth_from({b: store.feedback_by_image(b, language, image_keys=image_keys) for b in backends})
