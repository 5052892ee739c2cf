"""Who this session is (st.login / st.user, a trusted proxy's header, or no sign-in) and what it may do.

The checks that matter are in ``tagging.auth.GuardedStore`` (the only store pages get); what this
module adds is the page's side: the sign-in screen, a name remembered per browser when nobody
signs in, the reasons shown beside a disabled action, and the warning of an exposed server.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import unquote

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from tagging import auth
from tagging.auth import ADMIN, LOCAL, OIDC, PROXY, TAG_IMAGGA, AuthSettings, Identity
from tagging.config import ANALYST_MAX_LENGTH, Settings
from tagging.errors import PermissionDeniedError
from tagging.store import Store
from ui import persist

COOKIE = "tagging_analyst"  # the name an analyst typed, remembered by this browser (no sign-in only)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
MODE_LABELS = {LOCAL: "no sign-in", OIDC: "OpenID Connect (st.login)", PROXY: "a trusted proxy's header"}


def settings() -> AuthSettings:
    try:
        secrets = {k: v for k, v in st.secrets.to_dict().items() if isinstance(v, str)}
    except StreamlitSecretNotFoundError:
        secrets = {}
    return auth.load_auth_settings(os.environ, secrets)


def mode() -> str:
    """``oidc`` with an ``[auth]`` section in secrets.toml, ``proxy`` with server.trustedUserHeaders, else ``local``."""
    try:
        if "auth" in st.secrets:
            return OIDC
    except StreamlitSecretNotFoundError:
        pass
    return PROXY if st.config.get_option("server.trustedUserHeaders") else LOCAL


def exposed_address() -> str | None:
    """Where the server listens when that is beyond this machine (unset: every interface), else None."""
    address = st.config.get_option("server.address")
    if address and address in LOOPBACK:
        return None
    return address or "every network interface"


def current() -> Identity:
    """This run's identity (set by ``identify``, which ``ui.page.start_page`` calls first)."""
    return st.session_state["identity"]


def identify(config: Settings, store: Store) -> Identity:
    """Who this session is; shows the sign-in screen and stops the run when sign-in is needed."""
    how = mode()
    if how == LOCAL:
        identity = Identity(local_name(config), ADMIN, LOCAL)
    else:
        if how == OIDC and not st.user.is_logged_in:
            _sign_in_screen()
            st.stop()
        user = st.user.to_dict()
        subject = " ".join(str(_subject(user, how) or "").split())
        if not subject:
            st.error("Sign-in is required, but the reverse proxy sent no identity header: sign in through the "
                     "team's proxy address, not this server's own port.")
            st.stop()
        config_auth = settings()
        role = auth.resolve_role(subject, claim=user.get(config_auth.role_claim),
                                 table_role=auth.table_role(store, subject), admins=config_auth.admins,
                                 default=config_auth.default_role)
        identity = Identity(subject, role, how)
        if st.session_state.get("_signed_in_as") != subject:
            auth.seen(store, subject)  # a sign-in, in the trail
            st.session_state["_signed_in_as"] = subject
    st.session_state["identity"] = identity
    return identity


def _subject(user: dict, how: str) -> object:
    if how == OIDC:
        return user.get("email") or user.get("sub")
    # proxy: the st.user keys server.trustedUserHeaders fills; an email if one is mapped
    keys = list(st.config.get_option("server.trustedUserHeaders").values())
    if "email" in keys and user.get("email"):
        return user["email"]
    return next((user[k] for k in keys if user.get(k)), None)


def _sign_in_screen() -> None:
    st.title("Sign in")
    st.write("This team's dashboard needs to know who you are: your verdicts are signed with your identity and "
             "your role decides what you may change.")
    st.button("Sign in", key="auth_sign_in", type="primary", icon=":material/login:", on_click=st.login)


# --- no sign-in: the name remembered by this browser -----------------------------------------------
def _cookie() -> str:
    value = st.context.cookies.get(COOKIE)
    return _clean(unquote(value)) if isinstance(value, str) else ""


def _clean(name: object) -> str:
    return " ".join(str(name or "").split())[:ANALYST_MAX_LENGTH]


def local_name(config: Settings) -> str:
    """The name set on Settings (remembered by this browser), else TAGGING_ANALYST, else this session's id."""
    if not st.session_state.get("_cookie_read"):
        remembered = _cookie()
        if remembered and not st.session_state.get("analyst_name"):
            st.session_state["analyst_name"] = remembered
        st.session_state["_cookie_read"] = True
    return _clean(st.session_state.get("analyst_name")) or config.analyst or st.session_state["analyst_session"]


def remember_name() -> None:
    """Have the browser keep the Settings page's name (a cookie), so a reload signs with it again."""
    name = _clean(st.session_state.get("analyst_name"))
    browser_has = st.session_state.get("_cookie_set", _cookie())
    if name == browser_has:
        return
    persist.set_cookie(COOKIE, name)  # an empty name clears it
    st.session_state["_cookie_set"] = name


# --- what the page shows for an action this identity may not take -----------------------------------
def refused(action: str, *, show: bool = True) -> str | None:
    """Why this session may not take ``action`` (also shown as a caption unless ``show`` is False), or None."""
    reason = auth.refusal(current(), action)
    if reason and show:
        st.caption(f":material/lock: {reason}")
    return reason


class _Refused:
    """A meter for an identity that may not pay: every call raises the reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __call__(self, calls: int = 1) -> None:
        raise PermissionDeniedError(self.reason)


def meter(config: Settings) -> Callable[[int], None]:
    """What charges this session's paid Imagga calls (a ``SpendMeter`` a Dask worker can use too)."""
    identity = current()
    reason = auth.refusal(identity, TAG_IMAGGA)
    if reason:
        return _Refused(reason)
    return auth.SpendMeter(config.db_target, identity.subject, settings().daily_cap, config.db_password)
