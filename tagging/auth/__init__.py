"""Who is who: identities and their roles, the checks every write goes through, the audit trail, spend caps.

``GuardedStore`` is the store as one identity may use it (pages get only that); ``SpendMeter``
charges paid Imagga calls to an identity's daily cap in the database, on any server or Dask worker.
The functions over a raw ``Store`` read and write this concern's tables (users, audit, spend).
"""

from __future__ import annotations

from tagging.auth._config import DEFAULT_ROLE_CLAIM, AuthSettings, load_auth_settings
from tagging.auth._guard import GuardedStore, SpendMeter
from tagging.auth._records import (
    AUDIT_ACTIONS,
    BATCH_RUN,
    CAP_CHANGE,
    CAP_SETTING,
    ROLE_CHANGE,
    SIGN_IN,
    AuditEntry,
    UserRow,
    audit_csv,
    audit_entries,
    cap_of,
    charge,
    record,
    seen,
    spent_today,
    table_role,
    users_of,
)
from tagging.auth._roles import (
    ACTIONS,
    ADMIN,
    ANALYST,
    APPLY_DEFAULT,
    DELETE,
    EXPORT,
    LOCAL,
    OIDC,
    OVERRIDE,
    PROXY,
    ROLES,
    RUN_BATCH,
    SAVE,
    SEND_FEEDBACK,
    SET_CAPS,
    SET_ROLES,
    TAG_IMAGGA,
    VIEWER,
    Identity,
    can,
    least_role,
    refusal,
    require,
    resolve_role,
    role_from_claim,
)

__all__ = [
    "DEFAULT_ROLE_CLAIM", "AuthSettings", "load_auth_settings",
    "ACTIONS", "ADMIN", "ANALYST", "APPLY_DEFAULT", "AUDIT_ACTIONS", "BATCH_RUN", "CAP_CHANGE",
    "CAP_SETTING", "DELETE", "EXPORT", "LOCAL", "OIDC", "OVERRIDE", "PROXY", "ROLES", "ROLE_CHANGE", "RUN_BATCH",
    "SAVE", "SEND_FEEDBACK", "SET_CAPS", "SET_ROLES", "SIGN_IN", "TAG_IMAGGA", "VIEWER", "AuditEntry",
    "GuardedStore", "Identity", "SpendMeter", "UserRow", "audit_csv", "audit_entries", "can", "cap_of", "charge",
    "least_role", "record", "refusal", "require", "resolve_role", "role_from_claim", "seen", "spent_today",
    "table_role", "users_of",
]
