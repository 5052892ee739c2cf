"""Settings page: which backend is configured, a connection test with usage, the feedback outbox."""

from __future__ import annotations

import streamlit as st

from tagging.auth import SEND_FEEDBACK
from tagging.errors import AuthError, BackendConnectionError, PermissionDeniedError, StoreError, TaggingError
from tagging.store import deliver_pending
from ui import auth, resources, team, tune
from ui.page import database_problem, start_page
from ui.text import count, literal

# Warn when this share of the month's quota is used.
QUOTA_WARNING = 0.8

config, store = start_page()

st.title("Settings")
for problem in config.problems:
    st.warning(literal(problem))

st.subheader("Storage")
try:
    images_n, items_n = store.counts()
    cache_n = len(resources.result_cache(config.db_target))
    version = store.schema_version()
except StoreError as exc:
    st.error(database_problem(config, exc, "read the database"))
    st.stop()
st.text(f"Database: {config.db_display}")  # as typed, never as Markdown; a password shows as ***
try:
    stored_default = store.get_setting("default_threshold")
except StoreError as exc:
    st.error(database_problem(config, exc, "read the default threshold"))
    st.stop()
st.markdown(
    f"- {count(items_n, 'tag decision')} saved on {count(images_n, 'image')} (schema v{version})\n"
    f"- {tune.default_text(stored_default)}\n"
    f"- Answers kept in the same database: {count(cache_n, 'tagger answer')} "
    "(an image already tagged with the same backend and settings is never sent again)"
)

try:
    team.sign_in(config, store)
    team.roles_and_spend(config, store)
    team.audit_trail(store)
except StoreError as exc:
    st.error(database_problem(config, exc, "read the team's roles and audit trail"))

st.subheader("Imagga")
if not config.imagga_configured:
    st.info(
        "Imagga is not configured, so the app tags with the embedded offline tagger. To use Imagga, set "
        "`IMAGGA_API_KEY` and `IMAGGA_API_SECRET` (and optionally `IMAGGA_API_URL`) in the environment or in "
        "`.streamlit/secrets.toml` (see `.streamlit/secrets.toml.example`), then restart the app."
    )
    st.stop()

client = resources.imagga_client(config.imagga_url, config.imagga)
st.markdown(f"API base URL: {literal(config.imagga_url)} · credentials: configured (never shown)")

if st.button("Test connection", key="settings_test_connection", type="primary"):
    st.session_state.pop("settings_usage", None)
    try:
        st.session_state["settings_usage"] = client.usage()
    except AuthError as exc:
        st.error(f"Wrong key or secret. {literal(exc)}")
    except BackendConnectionError as exc:
        st.error(f"Imagga could not be reached at {literal(config.imagga_url)}: check IMAGGA_API_URL. "
                 f"{literal(exc)}")
    except TaggingError as exc:
        st.error(f"The connection test failed: {literal(exc)}")

usage = st.session_state.get("settings_usage")
if usage is not None:
    st.success("Connected: Imagga accepted the credentials.")
    c1, c2, c3 = st.columns(3)
    c1.metric("Processed this month", usage.monthly_processed if usage.monthly_processed is not None else "–",
              help="– when Imagga did not say.")
    c2.metric("Monthly limit", usage.monthly_limit if usage.monthly_limit is not None else "–")
    c3.metric("Requests at the same time", usage.concurrency_max if usage.concurrency_max is not None else "–")
    fraction = usage.quota_fraction
    if fraction is not None:
        st.progress(min(1.0, fraction), text=f"{fraction:.0%} of the month's quota used")
        if fraction >= 1:
            st.error("The monthly quota is used up: Imagga will refuse further requests until the period ends.")
        elif fraction >= QUOTA_WARNING:
            left = (usage.monthly_limit or 0) - (usage.monthly_processed or 0)
            st.warning(f"The quota is nearly used up: {count(left, 'image')} left this billing period.")
    if usage.billing_period_end:
        st.caption(f"Billing period ends {literal(usage.billing_period_end)}.")

st.subheader("Feedback outbox")
queued = len(store.pending("imagga"))
no_send = auth.refused(SEND_FEEDBACK)
if st.button("Send queued feedback now", key="settings_send_outbox", disabled=queued == 0 or bool(no_send)):
    try:
        report = deliver_pending(store, client, "imagga")
        store.record_sent(report.sent)
    except PermissionDeniedError as exc:
        st.error(literal(exc))
        st.stop()
    except StoreError as exc:
        st.error(database_problem(config, exc, "send the queued feedback"))
        st.stop()
    if report.errors:
        st.error(f"Sent {report.sent}; {report.remaining} still waiting. Last error: {literal(report.errors[-1])}")
    elif report.remaining:  # another server is sending them right now (each message goes out once)
        st.info(f"Sent {count(report.sent, 'feedback message')}; {report.remaining} "
                f"{'is' if report.remaining == 1 else 'are'} being sent by another server.")
    else:
        st.success(f"Sent {count(report.sent, 'feedback message')}.")
pending = store.pending("imagga")
if not pending:
    st.success("Every feedback message has been delivered to Imagga.")
else:
    st.warning(f"{count(len(pending), 'feedback message')} waiting to be sent; each is kept until Imagga accepts it.")
    st.dataframe(
        {
            "image": [p.image_key[:12] for p in pending],
            "attempts": [p.attempts for p in pending],
            "last error": [p.last_error or "" for p in pending],
        },
        hide_index=True,
        key="settings_outbox_table",
    )
