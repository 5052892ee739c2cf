"""Sign-in settings read from the environment (or ``secrets.toml``): role claim, bootstrap admins, defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tagging.auth._roles import ROLES, VIEWER

DEFAULT_ROLE_CLAIM = "roles"


@dataclass(frozen=True)
class AuthSettings:
    """``TAGGING_ROLE_CLAIM`` (the claim naming a role), ``TAGGING_ADMINS`` (comma-separated identities that are
    admins whatever the claim or table say: the first admin), ``TAGGING_DEFAULT_ROLE`` (of a signed-in identity
    nobody gave a role), ``TAGGING_DAILY_IMAGGA_CAP`` (paid calls per identity and day unless Settings says
    otherwise; unset: no cap). ``problems`` are values that could not be used."""

    role_claim: str = DEFAULT_ROLE_CLAIM
    admins: tuple[str, ...] = ()
    default_role: str = VIEWER
    daily_cap: int | None = None
    problems: tuple[str, ...] = ()


def load_auth_settings(env: Mapping[str, str], secrets: Mapping[str, Any] | None = None) -> AuthSettings:
    def value(name: str) -> str:
        raw = env.get(name)
        if raw is None or not str(raw).strip():
            raw = (secrets or {}).get(name)
        return str(raw or "").strip()

    problems: list[str] = []
    role = value("TAGGING_DEFAULT_ROLE").lower() or VIEWER
    if role not in ROLES:
        problems.append(f"TAGGING_DEFAULT_ROLE must be one of {', '.join(ROLES)}; using viewer.")
        role = VIEWER
    cap: int | None = None
    if value("TAGGING_DAILY_IMAGGA_CAP"):
        try:
            cap = int(value("TAGGING_DAILY_IMAGGA_CAP"))
            if cap < 0:
                raise ValueError
        except ValueError:
            problems.append("TAGGING_DAILY_IMAGGA_CAP must be a whole number of calls (0 or more); no cap is set.")
            cap = None
    admins = tuple(a.strip().lower() for a in value("TAGGING_ADMINS").split(",") if a.strip())
    return AuthSettings(value("TAGGING_ROLE_CLAIM") or DEFAULT_ROLE_CLAIM, admins, role, cap, tuple(problems))
