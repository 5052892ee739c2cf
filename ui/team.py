"""The Settings page's team sections: how people sign in, who you are, roles and caps, the audit trail."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from tagging import auth
from tagging.auth import LOCAL, OIDC, PROXY, ROLES, SET_CAPS, SET_ROLES, GuardedStore
from tagging.config import ANALYST_MAX_LENGTH, Settings
from tagging.errors import PermissionDeniedError, StoreError
from ui import auth as ui_auth
from ui import state
from ui.text import literal

NO_ROLE = "(the provider's claim, else the default)"
ANY = "(any)"


def sign_in(config: Settings, store: GuardedStore) -> None:
    """How this server knows who is who, and who you are."""
    identity = store.identity
    st.subheader("Sign-in")
    how = ui_auth.mode()
    for problem in ui_auth.settings().problems:
        st.warning(literal(problem))
    if how == LOCAL:
        st.info("No sign-in: this is the single-user default. Everyone who reaches this server acts as an admin "
                "and signs verdicts with the name below. For a team, configure `[auth]` in "
                "`.streamlit/secrets.toml` (OpenID Connect) or a trusted proxy header (README, “A signed-in team”).")
    else:
        st.caption(f"Sign-in: {ui_auth.MODE_LABELS[how]}.")
    st.subheader("You")
    if how == LOCAL:
        state.bind("settings_analyst_name", "analyst_name")
        st.text_input(
            "Your name", key="settings_analyst_name", max_chars=ANALYST_MAX_LENGTH,
            on_change=state.keep, args=("settings_analyst_name", "analyst_name"),
            placeholder=config.analyst or "not set: verdicts are saved under this browser session's id",
            help="Saved with your verdicts, so a colleague who replaces one is told whose it was; this browser "
                 "remembers it. TAGGING_ANALYST sets a default for this server.",
        )
        ui_auth.remember_name()
        st.caption("Verdicts you save are signed:")
        st.text(identity.subject)
        return
    st.caption("Signed in as (your verdicts, saves and queued feedback are signed with it):")
    st.text(identity.subject)  # from the provider: shown literally
    st.caption(f"Role: {identity.role}")
    if how == OIDC:
        st.button("Sign out", key="settings_sign_out", icon=":material/logout:", on_click=st.logout)
    elif how == PROXY:
        st.caption("The identity comes from the reverse proxy's header; this server trusts it because "
                   "server.trustedUserHeaders is set, so the proxy must strip any copy a client sends.")


def _notice(kind: str, text: str) -> None:
    st.session_state["settings_team_notice"] = (kind, text)


def _save_role(store: GuardedStore) -> None:
    who = st.session_state.get("settings_role_identity") or ""
    role = st.session_state.get("settings_role_role")
    cap = st.session_state.get("settings_role_cap")
    try:
        store.set_role(who, None if role == NO_ROLE else role)
        store.set_cap(who, None if cap is None else int(cap))
    except (PermissionDeniedError, ValueError) as exc:
        _notice("error", literal(str(exc)))
        return
    except StoreError as exc:
        _notice("error", f"Could not save the role: {literal(exc)}")
        return
    _notice("success", "Saved the role and cap of " + literal(" ".join(who.split())) + ".")


def _save_team_cap(store: GuardedStore) -> None:
    cap = st.session_state.get("settings_team_cap")
    try:
        store.set_cap(None, None if cap is None else int(cap))
    except (PermissionDeniedError, StoreError) as exc:
        _notice("error", literal(str(exc)))
        return
    _notice("success", "Saved the team's daily cap.")


def roles_and_spend(config: Settings, store: GuardedStore) -> None:
    """Known identities with their roles and caps; an admin edits them. Today's paid calls."""
    identity = store.identity
    notice = st.session_state.pop("settings_team_notice", None)
    st.subheader("Spend")
    default_cap = ui_auth.settings().daily_cap
    cap = store.cap_of(identity.subject, default_cap)
    used = store.spent_today()
    st.text(f"Your paid Imagga calls today (UTC): {used} of {'no cap' if cap is None else cap}")
    no_caps = ui_auth.refused(SET_CAPS)
    team_cap = store.cap_of(None, default_cap)
    st.number_input("Team's daily cap per identity (empty: no cap)", min_value=0, step=10, value=team_cap,
                    key="settings_team_cap", disabled=bool(no_caps))
    st.button("Save the team's cap", key="settings_team_cap_save", on_click=_save_team_cap, args=(store,),
              disabled=bool(no_caps))
    if identity.source == LOCAL:
        if notice:
            getattr(st, notice[0])(notice[1])
        return
    st.subheader("Roles")
    users = store.users()
    st.dataframe({"identity": [u.identity for u in users], "role (table)": [u.role or "" for u in users],
                  "daily cap": [u.daily_cap for u in users], "last sign-in": [u.last_seen or "" for u in users],
                  "changed by": [u.updated_by or "" for u in users]}, hide_index=True, key="settings_users")
    st.caption(f"A role in the provider's `{literal(ui_auth.settings().role_claim)}` claim wins over this table; "
               "TAGGING_ADMINS are admins whatever either says.")
    no_roles = ui_auth.refused(SET_ROLES)
    with st.form("settings_role_form", border=False):
        c1, c2, c3 = st.columns([3, 2, 1])
        c1.text_input("Identity (email or subject)", key="settings_role_identity", disabled=bool(no_roles))
        c2.selectbox("Role", (NO_ROLE, *ROLES), key="settings_role_role", disabled=bool(no_roles))
        c3.number_input("Daily cap", min_value=0, step=10, value=None, key="settings_role_cap",
                        disabled=bool(no_roles))
        st.form_submit_button("Save role", on_click=_save_role, args=(store,), disabled=bool(no_roles))
    if notice:
        getattr(st, notice[0])(notice[1])


def _exported(store: GuardedStore, rows: int) -> None:
    try:
        store.record_export("audit trail CSV", rows)
    except StoreError as exc:
        _notice("warning", f"The export could not be noted in the trail: {literal(exc)}")


def audit_trail(store: GuardedStore) -> None:
    """Who did what and when: filterable, exported as CSV."""
    st.subheader("Audit trail")
    actors = sorted({u.identity for u in store.users()} | {store.identity.subject})
    c1, c2, c3 = st.columns(3)
    actor = c1.selectbox("Who", (ANY, *actors), key="settings_audit_actor")
    action = c2.selectbox("What", (ANY, *auth.AUDIT_ACTIONS), key="settings_audit_action")
    since = c3.date_input("Since", value=None, key="settings_audit_since")
    entries = store.audit(actor=None if actor == ANY else actor, action=None if action == ANY else action,
                                 since=since.isoformat() if isinstance(since, dt.date) else None)
    st.dataframe({"at (UTC)": [e.at for e in entries], "who": [e.actor for e in entries],
                  "what": [e.action for e in entries], "Imagga calls": [e.calls for e in entries],
                  "detail": [", ".join(f"{k}: {v}" for k, v in sorted(e.detail.items())) for e in entries]},
                 hide_index=True, key="settings_audit_table")
    st.download_button("Download the trail (CSV)", auth.audit_csv(entries), file_name="audit-trail.csv",
                       mime="text/csv", key="settings_audit_csv", disabled=not entries,
                       on_click=_exported, args=(store, len(entries)))
