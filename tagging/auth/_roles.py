"""Roles, the actions each may take, and the identity a session acts as."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tagging.errors import PermissionDeniedError

VIEWER, ANALYST, ADMIN = "viewer", "analyst", "admin"
ROLES = (VIEWER, ANALYST, ADMIN)  # each has every right of the ones before it

# Actions, with the least role that may take them and how a refusal names them.
EXPORT = "export"
SAVE = "save"
RUN_BATCH = "run_batch"
TAG_IMAGGA = "tag_imagga"
DELETE = "delete"
APPLY_DEFAULT = "apply_default"
OVERRIDE = "override"
SEND_FEEDBACK = "send_feedback"
SET_CAPS = "set_caps"
SET_ROLES = "set_roles"
ACTIONS: dict[str, tuple[str, str]] = {
    EXPORT: (VIEWER, "export"),
    SAVE: (ANALYST, "save or review verdicts"),
    RUN_BATCH: (ANALYST, "run batches"),
    TAG_IMAGGA: (ANALYST, "make paid Imagga calls"),
    DELETE: (ADMIN, "delete from the library"),
    APPLY_DEFAULT: (ADMIN, "apply the database-wide default threshold"),
    OVERRIDE: (ADMIN, "change per-tag thresholds"),
    SEND_FEEDBACK: (ADMIN, "send feedback to Imagga"),
    SET_CAPS: (ADMIN, "set spend caps"),
    SET_ROLES: (ADMIN, "change roles"),
}

LOCAL, OIDC, PROXY = "local", "oidc", "proxy"  # where an identity comes from


@dataclass(frozen=True)
class Identity:
    """Who a session acts as. ``subject`` (an email, else the provider's subject) signs what they save.

    ``source`` is ``oidc`` (Streamlit's st.login), ``proxy`` (a trusted reverse proxy's header) or
    ``local`` (no sign-in: the single-user default, a name remembered per browser).
    """

    subject: str
    role: str
    source: str = LOCAL

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {self.role!r}")
        if not self.subject.strip():
            raise ValueError("an identity needs a subject")

    @property
    def signed_in(self) -> bool:
        return self.source != LOCAL


def least_role(action: str) -> str:
    """The least role that may take ``action``."""
    return ACTIONS[action][0]


def can(identity: Identity, action: str) -> bool:
    """Whether ``identity``'s role may take ``action``."""
    return ROLES.index(identity.role) >= ROLES.index(least_role(action))


def refusal(identity: Identity, action: str) -> str | None:
    """Why ``identity`` may not take ``action`` (a sentence for the page), or None when it may."""
    if can(identity, action):
        return None
    role, what = ACTIONS[action]
    return f"Only the {role} role or above may {what}; your role is {identity.role}."


def require(identity: Identity, action: str) -> None:
    """Raise PermissionDeniedError unless ``identity`` may take ``action``."""
    reason = refusal(identity, action)
    if reason is not None:
        raise PermissionDeniedError(reason)


def role_from_claim(value: object) -> str | None:
    """The highest role named by a claim's value (a string, or a list of group names), if any."""
    names: Iterable[object] = value if isinstance(value, list | tuple) else str(value or "").replace(",", " ").split()
    found = [str(n).strip().lower() for n in names]
    return next((r for r in reversed(ROLES) if r in found), None)


def resolve_role(subject: str, *, claim: object = None, table_role: str | None = None,
                 admins: Iterable[str] = (), default: str = VIEWER) -> str:
    """A signed-in identity's role: a bootstrap admin; else the provider's claim; else the table; else ``default``.

    ``admins`` (``TAGGING_ADMINS``) lets the first admin in before anyone has edited the table.
    """
    if subject.lower() in {a.strip().lower() for a in admins if a.strip()}:
        return ADMIN
    return role_from_claim(claim) or (table_role if table_role in ROLES else None) or default
