"""Streamlit helpers of the Review page: its session, the image it shows, the chart, the words."""

from __future__ import annotations

import copy
import math
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import streamlit as st

from tagging.auth import GuardedStore
from tagging.backends import LABELS
from tagging.models import Tag
from tagging.review import CACHED, ORDERS, STORED, Card, Pace, ReviewSession
from tagging.store import Store
from ui import persist
from ui.charts import NOT_SELECTED, SELECTED, chart_height, confidence_chart
from ui.page import literal
from ui.text import count

SIDE_NAMES = "ABCDEFGH"
CHART_STEP = 20
PREVIEWS_KEPT = 64  # previews held in memory (one process): about 5 MB at 80 KB each
SESSIONS_KEPT = 32  # review sessions a reload can come back to (one process); each holds at most 200 steps
SESSION_PARAM = "review"  # the URL's key of the browser's review session
# URL key -> (session key, parse): the queue's filters, so a reload or a shared link opens the same queue.
FILTER_PARAMS = {
    "order": ("review_order", lambda v: v if v in ORDERS else None),
    "tagger": ("review_backend", str),
    "lang": ("review_language", str),
    "batch": ("review_batch", str),
    "tag": ("review_tag", str),
    "union": ("review_union", lambda v: v == "1"),
    "blind": ("review_blind", lambda v: v == "1"),
    "threshold": ("threshold", persist.int_between(0, 100)),
}
_TAGS, _RULE = "tags", "threshold"
# The next card's image is drawn in this container: out of sight and out of the layout, yet loaded.
PREFETCH_STYLE = ("<style>.st-key-review_prefetch {position: absolute; width: 1px; height: 1px; overflow: hidden; "
                  "opacity: 0; pointer-events: none;}</style>")


@st.cache_data(show_spinner=False, max_entries=PREVIEWS_KEPT)
def preview(db_key: str, image_key: str, _store: Store) -> bytes | None:
    """The image to review by (``Store.preview``), read once per image and database."""
    return _store.preview(image_key)


@lru_cache(maxsize=1)
def _template() -> dict[str, Any]:
    """``ui.charts.confidence_chart``'s Vega-Lite spec, made once, with named datasets and bars sorted by confidence.

    Altair validates a chart against the whole Vega-Lite schema on every ``to_dict`` (about 70 ms on
    2 cores, a quarter of a review step's budget), so the spec is built once and each card fills in
    its rows. The spec stays the same from card to card (the bars are sorted by their confidence,
    not by a list of names), so the browser swaps the chart's data instead of drawing it anew.
    """
    spec = confidence_chart([Tag("a", 90.0), Tag("b", 10.0)], ["a"], 50.0).to_dict()
    spec.pop("datasets")
    bars, rule = spec["layer"]
    bars["data"] = {"name": _TAGS}
    rule["data"] = {"name": _RULE}
    bars["encoding"]["y"]["sort"] = "-x"
    return spec


def chart_spec(tags: Sequence[Tag], selected: Iterable[str], threshold: float) -> dict[str, Any]:
    """The confidence chart of ``tags`` (``ui.charts.confidence_chart``, the same look) as a Vega-Lite dict."""
    chosen = set(selected)
    spec = copy.deepcopy(_template())
    spec["datasets"] = {
        _TAGS: [{"tag": t.name, "confidence": round(t.confidence, 2),
                 "status": SELECTED if t.name in chosen else NOT_SELECTED} for t in tags],
        _RULE: [{"threshold": float(threshold)}],
    }
    # Heights in steps of 20 tags: within a step the spec does not change, only its data.
    spec["height"] = chart_height(CHART_STEP * max(1, math.ceil(len(tags) / CHART_STEP))) - 60
    return spec


def backend_label(backend: str) -> str:
    return LABELS.get(backend, backend)


def side_legend(card: Card) -> str:
    """Which tagger each side is, Markdown-safe: ``A: Embedded tagger (offline) · B: Imagga API (cached answer)``."""
    parts = []
    for name, side, origin in zip(SIDE_NAMES, card.sides, card.origins, strict=False):
        where = {CACHED: " (answer in the result cache)", STORED: " (its own automatic verdicts)"}.get(origin, "")
        parts.append(f"{name}: {literal(backend_label(side.backend))}{where}")
    return " · ".join(parts)


def tag_label(card: Card, name: str) -> str:
    """A toggle's label, Markdown-safe: the tag and its confidence (each side's, in a union)."""
    confidences = card.confidences(name)
    if len(confidences) == 1:
        values = f"{confidences[0]:.0f}"
    else:
        values = " | ".join("–" if c is None else f"{c:.0f}" for c in confidences)
    return f"{literal(name)} · {values}"


def pace_text(pace: Pace) -> str:
    if pace.images_per_minute is None:
        return "pace: after the first verdict"
    return f"{pace.images_per_minute:.1f} images per minute ({pace.verdicts_per_minute:.0f} tag verdicts per minute)"


def missing_tags(text: str) -> list[str]:
    """The tags of a missing-tags note as typed: split on commas (or semicolons), blanks dropped."""
    return [t.strip() for t in re.split(r"[,;]", text or "") if t.strip()]


def selection_caption(review: ReviewSession, chosen: Sequence[str], card: Card) -> str:
    """What the accepted-tags box holds and where it came from, Markdown-safe (numbers and fixed words only)."""
    accepted = f"{len(chosen)} of {count(len(card.names), 'tag')} accepted"
    decided = review.current_decided
    if decided is not None:
        origin = "as you decided it earlier" if list(chosen) == list(decided) else "changed since you decided it"
    elif review.blind:
        origin = "blind review: nothing was pre-filled" if not chosen else "blind review: your picks"
    elif list(chosen) == list(review.selection):
        origin = (f"pre-filled by the rule: {review.rule.threshold:g} or more, and never fewer than the top "
                  f"{count(review.rule.min_tags, 'tag')}")
    else:
        origin = "changed by you from the rule's picks"
    return f"{accepted} · {origin}"


def end_of_queue_text(skipped: int, remaining: int) -> str:
    """The end of the queue with entries still waiting: why they wait, in true numbers."""
    parts = []
    if skipped:
        parts.append(f"{count(skipped, 'image')} you skipped")
    others = remaining - skipped
    if others > 0:
        parts.append(f"{count(others, 'image')} not shown yet (saved meanwhile, or passed over)")
    return "End of the queue: " + " and ".join(parts or [count(remaining, "image")]) + " still wait."


# --- a reload comes back to the same review (the session's id in the URL, the session in this process) ----
@st.cache_resource
def _kept() -> tuple[OrderedDict[str, ReviewSession], threading.Lock]:
    return OrderedDict(), threading.Lock()


def kept_session(store: Store) -> ReviewSession | None:
    """The review session named in the URL, if this process still keeps it and it reads this store."""
    token = st.query_params.get(SESSION_PARAM)
    sessions, lock = _kept()
    with lock:
        review = sessions.get(token) if token else None
    if review is None:
        return None
    if review.store is store:
        return review
    if isinstance(store, GuardedStore) and store.same_as(review.store):  # a reload: same person, new session
        review.store = store
        return review
    return None


def keep_session(review: ReviewSession) -> None:
    """Keep ``review`` (the last ``SESSIONS_KEPT``) under an id in the URL, so a reload finds it again."""
    sessions, lock = _kept()
    token = st.query_params.get(SESSION_PARAM)
    with lock:
        if not token or sessions.get(token) is not review:
            token = next((k for k, v in sessions.items() if v is review), None) or uuid.uuid4().hex[:16]
        sessions[token] = review
        sessions.move_to_end(token)
        while len(sessions) > SESSIONS_KEPT:
            sessions.popitem(last=False)
    if st.query_params.get(SESSION_PARAM) != token:
        st.query_params[SESSION_PARAM] = token


def restore_filters() -> None:
    """Once per browser session: the queue's filters from the URL (a reload or an opened link)."""
    for param, value in persist.restore("review", {p: parse for p, (_, parse) in FILTER_PARAMS.items()}).items():
        if value is not None:
            st.session_state[FILTER_PARAMS[param][0]] = value


def save_filters() -> None:
    """The queue's filters into the URL (left out at their defaults)."""
    values = {}
    for param, (key, _) in FILTER_PARAMS.items():
        value = st.session_state.get(key)
        if isinstance(value, bool):
            values[param] = "1" if value else None
        else:
            values[param] = None if value in (None, "", "(any)") or (param == "order" and value == ORDERS[0]) else value
    persist.publish(values)
