"""Settings from environment variables and Streamlit secrets (passed in as a plain mapping).

Environment variables win over ``.streamlit/secrets.toml``. Credentials are kept in an
``ImaggaCredentials`` value whose ``repr`` masks them. The database: ``TAGGING_DB`` is a file
path, a ``sqlite:///`` URL or a ``postgresql://`` URL; a PostgreSQL password comes from
``TAGGING_DB_PASSWORD`` (preferred) or the URL, and is kept apart from the target (``db_target``
never holds it, so showing the target never shows the password).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagging.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from tagging.imagga import DEFAULT_BASE_URL, ImaggaCredentials
from tagging.store import DEFAULT_DB_PATH, display, without_password

ANALYST_MAX_LENGTH = 80


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment.

    ``db_target`` is ``TAGGING_DB`` without any password (safe to show); ``db_password`` is
    kept out of ``repr``. ``analyst`` is ``TAGGING_ANALYST`` (the name saved with verdicts).
    """

    imagga: ImaggaCredentials | None
    imagga_url: str
    db_target: str
    max_upload_bytes: int
    max_pixels: int
    problems: tuple[str, ...] = ()
    db_password: str | None = field(default=None, repr=False)
    analyst: str | None = None
    scheduler_address: str | None = None  # DASK_SCHEDULER_ADDRESS: batches run on that Dask cluster

    @property
    def imagga_configured(self) -> bool:
        return self.imagga is not None

    @property
    def db_path(self) -> Path | str:
        """``db_target`` as before: a Path for a file, the URL (without password) otherwise."""
        return self.db_target if "://" in self.db_target else Path(self.db_target)

    @property
    def db_display(self) -> str:
        """The database as shown on pages: a file path, or a URL with any password as ``***``."""
        return display(self.db_target, self.db_password)


def _lookup(name: str, env: Mapping[str, str], secrets: Mapping[str, Any]) -> str | None:
    value = env.get(name)
    if value is None or not str(value).strip():
        value = secrets.get(name)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def load_settings(env: Mapping[str, str], secrets: Mapping[str, Any] | None = None) -> Settings:
    """Read the settings; problems (a half-configured key, a bad number) are collected, not raised."""
    secrets = secrets or {}
    problems: list[str] = []
    key = _lookup("IMAGGA_API_KEY", env, secrets)
    secret = _lookup("IMAGGA_API_SECRET", env, secrets)
    credentials = None
    if key and secret:
        credentials = ImaggaCredentials(api_key=key, api_secret=secret)
    elif key or secret:
        missing = "IMAGGA_API_SECRET" if key else "IMAGGA_API_KEY"
        problems.append(f"Imagga is half-configured: {missing} is not set, so the embedded tagger is used.")
    url = (_lookup("IMAGGA_API_URL", env, secrets) or DEFAULT_BASE_URL).rstrip("/")
    db_target, url_password = without_password(_lookup("TAGGING_DB", env, secrets) or str(DEFAULT_DB_PATH))
    db_password = _lookup("TAGGING_DB_PASSWORD", env, secrets) or url_password
    analyst = _lookup("TAGGING_ANALYST", env, secrets)
    if analyst is not None:
        analyst = " ".join(analyst.split())[:ANALYST_MAX_LENGTH] or None
    max_bytes = DEFAULT_MAX_BYTES
    raw_mb = _lookup("TAGGING_MAX_UPLOAD_MB", env, secrets)
    if raw_mb is not None:
        try:
            max_bytes = int(float(raw_mb) * 1024 * 1024)
            if max_bytes <= 0:
                raise ValueError
        except ValueError:
            problems.append(f"TAGGING_MAX_UPLOAD_MB={raw_mb!r} is not a positive number; using 25 MB.")
            max_bytes = DEFAULT_MAX_BYTES
    return Settings(
        imagga=credentials,
        imagga_url=url,
        db_target=db_target,
        max_upload_bytes=max_bytes,
        max_pixels=DEFAULT_MAX_PIXELS,
        problems=tuple(problems),
        db_password=db_password,
        analyst=analyst,
        scheduler_address=_lookup("DASK_SCHEDULER_ADDRESS", env, secrets),
    )
