"""Review page: turn automatic verdicts into reviewed ones, one image at a time, from the keyboard.

The queue is the store's automatic verdict sets (batches, cached answers added to it), paged in
the query. One ``tagging.review.ReviewSession`` per browser session walks it; the panel is a
fragment, so a keystroke reruns only the panel: one write, the next card from the session's
buffer, its preview from memory. No tagging backend is called here.
"""

from __future__ import annotations

import streamlit as st

from tagging import review as review_module
from tagging.auth import SAVE
from tagging.errors import PermissionDeniedError, SelectionError, StoreError
from tagging.review import CACHE_BATCH, ORDERS, Card, ReviewSession, Rule, overrides_key, queue_cached_answers
from tagging.store import NEAREST, NEWEST, OLDEST, ReviewFilters
from ui import auth, resources, state
from ui import review as ui
from ui.page import analyst, database_problem, literal, start_page
from ui.text import count

ORDER_LABELS = {NEAREST: "Closest calls first (a tag near the threshold)", NEWEST: "Newest first",
                OLDEST: "Oldest first"}
ANY = "(any)"
TOGGLES = 9  # number keys 1-9 toggle the first nine tags
KEYS = {"accept": "A", "reject": "X", "skip": "S", "back": "B", "undo": "U"}


def _fail(message: str) -> None:
    st.error(message)
    st.stop()


def _notice(kind: str, text: str) -> None:
    st.session_state["review_notice"] = (kind, text)


def _selection_key() -> str:
    """The accepted-tags box of the card on screen: a key of its own per card, so a value the browser sends
    for the card before (a key pressed before the next card arrived) never lands on the next one."""
    return f"review_selection_{st.session_state['review_shown']}"


def _missing_key() -> str:
    """The card's missing-tags note, keyed per card like its accepted-tags box."""
    return f"review_missing_{st.session_state['review_shown']}"


def _too_soon(review: ReviewSession) -> bool:
    """Whether the current card cannot have been seen: never drawn (its run was cut short), or only just."""
    drawn = st.session_state["review_shown"] == review.shown
    if drawn and review.looked_at(review_module.MIN_LOOK_SECONDS):
        return False
    _notice("info", "That key came before the image was on screen (a key held down, or pressed twice): "
                    "nothing was saved for it.")
    return True


def _act(action: str) -> None:
    """A button's (or its shortcut's) callback: one step of the review."""
    review: ReviewSession = st.session_state["review_session"]
    if action in ("accept", "reject", "skip") and (review.current is None or _too_soon(review)):
        return
    try:
        if action in ("accept", "reject"):
            chosen = list(st.session_state.get(_selection_key()) or []) if action == "accept" else []
            outcome = review.decide(chosen, ui.missing_tags(st.session_state.get(_missing_key(), "")))
            if outcome.replaced_others:
                names = ", ".join(literal(n) for n in outcome.replaced_others)
                _notice("warning", f"You replaced the review of {names} on the last image.")
        elif action == "skip":
            review.skip()
        elif action == "back":
            if not review.back():
                _notice("info", "This is the first image of the session.")
            elif review.current_decided is not None:
                _notice("info", "You already decided this image: it shows what you saved. Accept or reject "
                                "again to replace that verdict, or press Undo to put it back in the queue.")
        elif action == "undo":
            outcome = review.undo()
            if outcome is None:
                _notice("info", "Nothing to undo.")
            elif outcome.not_withdrawn:
                _notice("warning", "Undone here, but Imagga already has the feedback (sent, or being sent by a server "
                                   "right now): it cannot be taken back.")
    except (SelectionError, PermissionDeniedError) as exc:
        _notice("error", literal(str(exc)))
    except StoreError as exc:
        _notice("error", database_problem(config, exc, "save the review") + " Nothing was lost: press again.")


def _toggle(name: str) -> None:
    review: ReviewSession = st.session_state["review_session"]
    if review.current is None or name not in review.current.names or _too_soon(review):
        return
    key = _selection_key()
    chosen = list(st.session_state.get(key) or [])
    st.session_state[key] = [t for t in chosen if t != name] if name in chosen else [*chosen, name]


def _add_cached(rule: Rule) -> None:
    try:
        added = queue_cached_answers(store, resources.result_cache(config.db_target), rule, saved_by=analyst(config))
    except StoreError as exc:
        _notice("error", database_problem(config, exc, "add the cached answers to the queue"))
        return
    except PermissionDeniedError as exc:
        _notice("error", literal(str(exc)))
        return
    st.session_state["review_signature"] = None  # read the queue again
    _notice("success", f"Added {count(added, 'saved answer')} to the queue (batch “{CACHE_BATCH}”).")


def _actions(review: ReviewSession, card_shown: bool) -> None:
    """The five action buttons, always drawn in the same place.

    A shortcut is bound when its button appears and unbound when it goes; a button that moved
    (another place in the page) would be drawn anew before the old one is removed, and the removal
    would take the key from the new one too. So the row never moves and never goes away.
    """
    no_save = auth.refused(SAVE, show=False)
    with st.container(horizontal=True, gap="small", key="review_actions"):
        st.button("Accept as shown", key="review_accept", type="primary", shortcut=KEYS["accept"],
                  on_click=_act, args=("accept",), disabled=not card_shown or bool(no_save),
                  help=no_save or "Save the accepted tags, reject the rest, show the next.")
        st.button("Reject all", key="review_reject", shortcut=KEYS["reject"], on_click=_act, args=("reject",),
                  disabled=not card_shown or bool(no_save), help=no_save)
        st.button("Skip", key="review_skip", shortcut=KEYS["skip"], on_click=_act, args=("skip",),
                  disabled=not card_shown, help="Leave it in the queue.")
        st.button("Back", key="review_back", shortcut=KEYS["back"], on_click=_act, args=("back",),
                  disabled=not review.history)
        st.button("Undo", key="review_undo", shortcut=KEYS["undo"], on_click=_act, args=("undo",),
                  disabled=not review.undo_stack, help="Put the last verdict back as it was.")
    if no_save:
        st.caption(f":material/lock: {no_save}")


def _card(review: ReviewSession, card: Card) -> None:
    if st.session_state["review_shown"] != review.shown:  # another card: pre-fill its own box
        st.session_state.pop(_selection_key(), None)
        st.session_state.pop(_missing_key(), None)
        st.session_state["review_shown"] = review.shown
        st.session_state[_selection_key()] = list(review.selection)
        st.session_state[_missing_key()] = ", ".join(review.missing)
    key = _selection_key()
    item = card.item
    chosen = [t for t in st.session_state.get(key) or [] if t in card.names]
    if chosen != st.session_state.get(key):  # the whitelist, also for a value set from outside
        st.session_state[key] = chosen

    col_image, col_tags = st.columns([3, 2], gap="large")  # the photo is what is judged: the larger column
    with col_image:
        try:
            image = ui.preview(config.db_target, item.image_key, store)
        except StoreError as exc:
            image = None
            st.warning(database_problem(config, exc, "read the image"))
        size = f" · {item.width}×{item.height}" if item.width and item.height else ""
        caption = f"{literal(item.filename)}{size}"
        if image is not None:
            st.image(image, caption=caption, width="stretch")
        else:
            st.info("No picture of this image is stored (it was saved without one).")
            st.caption(caption)
        st.caption(f"{literal(ui.backend_label(item.backend))} · {literal(item.language)}"
                   + (f" · batch {literal(item.batch)}" if item.batch else "")
                   + (f" · saved by {literal(item.saved_by)}" if item.saved_by else ""))
        upcoming = review.upcoming()
        if upcoming is not None:  # the next image, loaded unseen: the browser has it when it is shown
            try:
                following = ui.preview(config.db_target, upcoming.image_key, store)
            except StoreError:
                following = None
            if following is not None:
                with st.container(key="review_prefetch"):
                    st.image(following, width="stretch")  # the card's own call: the same media URL
    with col_tags:
        toggles = card.names[:TOGGLES]
        with st.container(horizontal=True, gap="small"):
            for number, name in enumerate(toggles, start=1):
                st.button(ui.tag_label(card, name), key=f"review_toggle_{number}", shortcut=str(number),
                          type="primary" if name in chosen else "secondary", on_click=_toggle, args=(name,))
        st.multiselect(
            "Accepted tags (only suggested tags; every other suggestion is rejected)", options=card.names, key=key,
            placeholder="No tag accepted" if card.names else "The tagger suggested no tag",
        )
        st.caption(ui.selection_caption(review, chosen, card))
        st.text_input("Missing tags (what the tagger should have suggested; comma-separated)", key=_missing_key(),
                      placeholder="e.g. dog, red ball",
                      help="Free text, kept apart from the accepted tags: saved with the verdict, exported by the "
                           "Library and counted by the Compare page as what each tagger missed.")
        if len(card.sides) > 1:
            st.caption("Every tagger's suggestions, judged once (confidences " + " | ".join(
                ui.SIDE_NAMES[: len(card.sides)]) + "): " + ui.side_legend(card))
        with st.expander("Confidence chart"):
            st.vega_lite_chart(ui.chart_spec(card.chart_tags, chosen, review.rule.threshold), width="stretch",
                               key="review_chart")


@st.fragment
def panel() -> None:
    """Progress, actions, the card with its tags and chart: rerun alone on every keystroke."""
    review: ReviewSession = st.session_state["review_session"]
    try:
        card = review.start()
    except StoreError as exc:
        st.error(database_problem(config, exc, "read the review queue"))
        return
    done, total = review.reviewed_count, review.total
    st.progress(done / total if total else 1.0,
                text=f"Reviewed {done} of {total} · {review.remaining} left · {ui.pace_text(review.pace())}")
    _actions(review, card is not None)
    st.caption("Keys: 1-9 toggle a tag · A accept as shown · X reject all · S skip · B back · U undo"
               + (" · blind review: nothing is pre-filled" if review.blind else ""))
    with st.container():  # a notice comes and goes here without moving what follows
        notice = st.session_state.pop("review_notice", None)
        if notice:
            getattr(st, notice[0])(notice[1])
    with st.container():
        if card is not None:
            _card(review, card)
        elif review.remaining:
            st.info(ui.end_of_queue_text(review.skipped_count, review.remaining))
            st.button("Go through them again", key="review_again", on_click=review.reconfigure)
        else:
            st.success("Nothing left to review with these filters." + (
                " Open the **Tune** page: it now rests on these verdicts." if done else ""))
            st.page_link("pages/tune.py", label="Tune the threshold", icon=":material/tune:")


# --- page ------------------------------------------------------------------------------------------
config, store = start_page()
st.html(ui.PREFETCH_STYLE)
st.title("Review")
st.caption("Images saved from a batch carry the rule's picks, unreviewed. Here you look at each image and "
           "decide which suggested tags belong; only these reviewed verdicts tune the threshold and go to "
           "Imagga as feedback.")
try:
    facets = store.review_facets()
    overrides = store.tag_overrides()
    unjudged = resources.result_cache(config.db_target).count_unjudged()
except StoreError as exc:
    _fail(database_problem(config, exc, "read the review queue"))

ui.restore_filters()  # from the URL, on a reload or an opened link
request = st.session_state.pop("review_batch_request", None)  # "Review them now" on the Batch page
if request is not None:
    st.session_state["review_batch"] = request
for key, options in (("review_backend", facets.backends), ("review_language", facets.languages),
                     ("review_batch", facets.batches)):
    if st.session_state.get(key, ANY) not in (ANY, *options):
        st.session_state[key] = ANY
state.bind("review_threshold", "threshold")
with st.sidebar:
    order = st.radio("Order", ORDERS, format_func=ORDER_LABELS.__getitem__, key="review_order")
    threshold = st.slider("Threshold of the rule", 0, 100, key="review_threshold", on_change=state.keep,
                          args=("review_threshold", "threshold"),
                          help="Pre-fills each image with the rule's selection and orders the queue (shared with "
                               "the Tag page).")
    backend = st.selectbox("Tagger", (ANY, *facets.backends), key="review_backend",
                           format_func=lambda b: b if b == ANY else ui.backend_label(b))
    language = st.selectbox("Language", (ANY, *facets.languages), key="review_language")
    batch = st.selectbox("Batch", (ANY, *facets.batches), key="review_batch")
    tag = st.text_input("Suggested tag (exact)", key="review_tag", placeholder="any").strip()
    blind = st.toggle("Blind review (nothing pre-filled)", key="review_blind",
                      help="Every tag starts unaccepted, so the rule's picks cannot sway you. Each verdict records "
                           "whether it was made blind or pre-filled; the Tune page can use the blind ones alone.")
    union = st.toggle("Judge every tagger at once", key="review_union",
                      help="Show the image's suggestions from every tagger that has not been reviewed on it (their "
                           "automatic verdicts, or answers in the result cache) as one list; a tag both suggest is "
                           "judged once, and each tagger's verdicts are saved under its own name.")
    if unjudged:
        st.caption(f"{count(unjudged, 'saved answer')} of the tagger belong to images in the library and "
                   "have no verdicts yet.")
        st.button(f"Add them to the queue ({unjudged})", key="review_add_cached", on_click=_add_cached,
                  disabled=bool(auth.refused(SAVE, show=False)),
                  args=(Rule(float(threshold), int(st.session_state["min_tags"]), overrides_key(overrides)),),
                  help="Saves the rule's selection on them as automatic verdicts, like a batch does.")

rule = Rule(float(threshold), int(st.session_state["min_tags"]), overrides_key(overrides))
filters = ReviewFilters(backend=None if backend == ANY else backend, language=None if language == ANY else language,
                        batch=None if batch == ANY else batch, tag=tag or None)
signature = (config.db_target, rule, filters, order, union, blind)
review: ReviewSession | None = st.session_state["review_session"]
if review is None and (kept := ui.kept_session(store)) is not None:  # a reload, or the link of this session
    review = kept
    if (kept.rule, kept.filters, kept.order, kept.union, kept.blind) == (rule, filters, order, union, blind):
        st.session_state["review_signature"] = signature  # carry on at the card on screen
if review is None or review.store is not store:
    review = ReviewSession(store, rule, filters, order, union, analyst=analyst(config),
                           cache=resources.result_cache(config.db_target), blind=blind)
elif st.session_state["review_signature"] != signature:
    review.reconfigure(rule=rule, filters=filters, order=order, union=union, blind=blind)
st.session_state["review_session"] = review
ui.keep_session(review)
ui.save_filters()
review.analyst = analyst(config)
st.session_state["review_signature"] = signature

if not facets.backends and st.session_state.get("review_notice") is None and not review.reviewed_count:
    st.info("No image waits for review. Tag a batch on the **Batch** page and press **Save to the "
            "library**; its images then wait here." + (" Or add the saved answers (sidebar)." if unjudged else ""))
    st.stop()
panel()
