"""The tables of this concern: roles an admin sets, the audit trail, each identity's paid calls per day."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite as sqlite_dialect

from tagging.auth._roles import ROLES
from tagging.errors import SpendCapError
from tagging.store import Store
from tagging.store._schema import audit, settings, spend, users

SIGN_IN, ROLE_CHANGE, CAP_CHANGE = "sign-in", "role change", "cap change"
DELETE, APPLY_DEFAULT, OVERRIDE, EXPORT, BATCH_RUN, SEND_FEEDBACK = (
    "delete", "apply default", "override change", "export", "batch run", "send feedback")
AUDIT_ACTIONS = (SIGN_IN, DELETE, APPLY_DEFAULT, OVERRIDE, EXPORT, ROLE_CHANGE, CAP_CHANGE, BATCH_RUN, SEND_FEEDBACK)
CAP_SETTING = "daily_imagga_cap"  # the team's default per-identity daily cap (settings table)
# Detail keys that never enter the trail, whatever a caller passes (it is shown and exported).
_SECRET_WORDS = ("secret", "password", "token", "key")


def _now() -> datetime:
    return datetime.now(UTC)


def _insert(store: Store, table: sa.Table) -> Any:
    return (pg.insert if store.dialect == "postgresql" else sqlite_dialect.insert)(table)


@dataclass(frozen=True)
class UserRow:
    """An identity the app knows: its role and daily cap as an admin set them (None: not set)."""

    identity: str
    role: str | None
    daily_cap: int | None
    updated_by: str | None
    updated_at: str | None
    last_seen: str | None


@dataclass(frozen=True)
class AuditEntry:
    """Who did what and when (UTC, ISO 8601); ``calls`` are paid Imagga calls, for a batch run."""

    at: str
    actor: str
    action: str
    detail: dict[str, Any]
    calls: int | None = None


# --- users and roles ----------------------------------------------------------------------
def users_of(store: Store) -> list[UserRow]:
    """Every identity seen or given a role, by identity."""
    with store.reading() as conn:
        rows = conn.execute(sa.select(users).order_by(users.c.identity)).all()
    return [UserRow(r.identity, r.role, r.daily_cap, r.updated_by, r.updated_at, r.last_seen) for r in rows]


def table_role(store: Store, identity: str) -> str | None:
    """The role an admin gave ``identity`` on Settings, if any."""
    with store.reading() as conn:
        return conn.execute(sa.select(users.c.role).where(users.c.identity == identity)).scalar()


def seen(store: Store, identity: str) -> None:
    """Note that ``identity`` signed in (and record it in the trail)."""
    now = _now().isoformat(timespec="seconds")
    with store.writing() as conn:
        conn.execute(_insert(store, users).values(identity=identity, last_seen=now)
                     .on_conflict_do_update(index_elements=["identity"], set_={"last_seen": now}))
        conn.execute(audit.insert().values(at=now, actor=identity, action=SIGN_IN, detail="{}"))


def _set_user(store: Store, actor: str, identity: str, column: str, value: Any, action: str) -> None:
    now = _now().isoformat(timespec="seconds")
    identity = " ".join(identity.split())
    if not identity:
        raise ValueError("name the identity (an email or the provider's subject)")
    with store.writing() as conn:
        before = conn.execute(sa.select(users.c[column]).where(users.c.identity == identity)).scalar()
        values = {column: value, "updated_by": actor, "updated_at": now}
        conn.execute(_insert(store, users).values(identity=identity, **values)
                     .on_conflict_do_update(index_elements=["identity"], set_=values))
        conn.execute(audit.insert().values(at=now, actor=actor, action=action, detail=json.dumps(
            {"identity": identity, "from": before, "to": value}, sort_keys=True)))


def set_role(store: Store, actor: str, identity: str, role: str | None) -> None:
    """Give ``identity`` a role (None: back to the provider's claim or the default); recorded in the trail."""
    if role is not None and role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    _set_user(store, actor, identity, "role", role, ROLE_CHANGE)


def set_cap(store: Store, actor: str, identity: str | None, cap: int | None) -> None:
    """Set one identity's daily cap of paid calls, or with ``identity`` None the team's default (None: no cap)."""
    if cap is not None and cap < 0:
        raise ValueError("a cap is a number of calls, 0 or more")
    if identity is not None:
        _set_user(store, actor, identity, "daily_cap", cap, CAP_CHANGE)
        return
    store.set_setting(CAP_SETTING, cap)
    record(store, actor, CAP_CHANGE, {"identity": "everyone (default)", "to": cap})


# --- the audit trail --------------------------------------------------------------------------
def _clean(detail: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in detail.items() if not any(word in k.lower() for word in _SECRET_WORDS)}


def record(store: Store, actor: str, action: str, detail: Mapping[str, Any] | None = None,
           calls: int | None = None) -> None:
    """Add one entry to the audit trail (detail keys that name a secret are dropped)."""
    with store.writing() as conn:
        conn.execute(audit.insert().values(at=_now().isoformat(timespec="seconds"), actor=actor, action=action,
                                           detail=json.dumps(_clean(detail or {}), sort_keys=True, default=str),
                                           calls=calls))


def audit_entries(store: Store, *, actor: str | None = None, action: str | None = None,
                  since: str | None = None, limit: int = 1000) -> list[AuditEntry]:
    """The trail, newest first, optionally of one actor, one action, from an ISO date on."""
    query = sa.select(audit).order_by(audit.c.id.desc()).limit(limit)
    if actor:
        query = query.where(audit.c.actor == actor)
    if action:
        query = query.where(audit.c.action == action)
    if since:
        query = query.where(audit.c.at >= since)
    with store.reading() as conn:
        rows = conn.execute(query).all()
    return [AuditEntry(r.at, r.actor, r.action, json.loads(r.detail), r.calls) for r in rows]


def audit_csv(entries: list[AuditEntry]) -> bytes:
    """The entries as CSV (UTF-8): at, actor, action, calls, detail (JSON)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at", "actor", "action", "calls", "detail"])
    for e in entries:
        cells = [e.at, e.actor, e.action, "" if e.calls is None else e.calls, json.dumps(e.detail, sort_keys=True)]
        # a cell starting with = + - @ is a formula to a spreadsheet: quote it as text
        writer.writerow([f"'{c}" if isinstance(c, str) and c[:1] in "=+-@" else c for c in cells])
    return out.getvalue().encode()


# --- spend ---------------------------------------------------------------------------------------
def today() -> str:
    return _now().date().isoformat()


def cap_of(store: Store, identity: str | None, default: int | None = None) -> int | None:
    """``identity``'s daily cap: its own, else the team's (Settings), else ``default`` (None: no cap).

    With ``identity`` None: the team's, else ``default``.
    """
    with store.reading() as conn:
        return _cap(conn, identity, default)


def _cap(conn: Any, identity: str | None, default: int | None) -> int | None:
    own = None if identity is None else conn.execute(
        sa.select(users.c.daily_cap).where(users.c.identity == identity)).scalar()
    if own is not None:
        return int(own)
    team = conn.execute(sa.select(settings.c.value).where(settings.c.key == CAP_SETTING)).scalar()
    team = json.loads(team) if team is not None else None
    return int(team) if team is not None else default


def spent_today(store: Store, identity: str) -> int:
    """Paid calls ``identity`` made today (UTC), on every server and worker."""
    with store.reading() as conn:
        value = conn.execute(sa.select(spend.c.calls).where(spend.c.identity == identity,
                                                            spend.c.day == today())).scalar()
    return int(value or 0)


def charge(store: Store, identity: str, calls: int = 1, default_cap: int | None = None) -> int:
    """Count ``calls`` paid calls against ``identity``'s daily cap, or raise SpendCapError; return today's total.

    Read, check and increment happen in one transaction holding the row (SQLite's write lock, a
    PostgreSQL row lock), so servers and Dask workers charging at once never exceed the cap together.
    A negative ``calls`` gives calls back (never below zero: a call charged before midnight UTC and given
    back after it leaves the new day untouched at zero).
    """
    day = today()
    with store.writing() as conn:
        conn.execute(_insert(store, spend).values(identity=identity, day=day, calls=0)
                     .on_conflict_do_nothing(index_elements=["identity", "day"]))
        used = int(conn.execute(sa.select(spend.c.calls).where(spend.c.identity == identity, spend.c.day == day)
                                .with_for_update()).scalar_one())
        cap = _cap(conn, identity, default_cap)
        if calls > 0 and cap is not None and used + calls > cap:  # a give-back always goes through
            raise SpendCapError(
                f"{identity} has used {used} of the {cap} paid Imagga calls allowed per day; the cap resets at "
                "midnight UTC, or an admin can raise it on Settings."
            )
        total = max(0, used + calls)
        conn.execute(spend.update().where(spend.c.identity == identity, spend.c.day == day).values(calls=total))
    return total
