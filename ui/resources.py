"""Cached clients, models and results (module level, so every page shares one cache)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from tagging.backends import EMBEDDED, IMAGGA, EmbeddedBackend, ImaggaBackend
from tagging.config import Settings, load_settings
from tagging.images import LoadedImage, downscale, encode_jpeg, load_image
from tagging.imagga import Categorizer, Category, ImaggaClient, ImaggaCredentials
from tagging.store import DeliveryReport, ResultCache, Store, deliver_pending, open_result_cache, open_store
from tagging.urlfetch import fetch_image


def _secrets() -> dict[str, Any]:
    try:
        return {k: v for k, v in st.secrets.to_dict().items() if isinstance(v, str)}
    except StreamlitSecretNotFoundError:
        return {}


def settings() -> Settings:
    """Settings from the environment and ``.streamlit/secrets.toml`` (read every run)."""
    return load_settings(os.environ, _secrets())


@st.cache_resource(show_spinner="Loading the embedded tagger…")
def embedded_backend() -> EmbeddedBackend:
    """The offline tagger, with its model loaded once per process."""
    backend = EmbeddedBackend()
    backend.tagger  # noqa: B018 - load the model now, under the spinner
    return backend


def imagga_retry_options(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Imagga client's retry settings from ``IMAGGA_RETRIES`` and ``IMAGGA_BACKOFF_FACTOR``.

    Unset or unusable values keep the client's defaults (3 retries, 0.5 s backoff factor).
    Tests set the backoff factor to 0: the retries still happen, without sleeping.
    """
    env = os.environ if env is None else env
    options: dict[str, Any] = {}
    for name, key, kind in (("IMAGGA_RETRIES", "retries", int), ("IMAGGA_BACKOFF_FACTOR", "backoff_factor", float)):
        raw = (env.get(name) or "").strip()
        try:
            value = kind(raw)
        except ValueError:
            continue
        if value >= 0:
            options[key] = value
    return options


def imagga_client(base_url: str, credentials: ImaggaCredentials) -> ImaggaClient:
    """One Imagga client (and its connection pool) per base URL, key and retry settings."""
    return _imagga_client(base_url, credentials, tuple(sorted(imagga_retry_options().items())))


@st.cache_resource(show_spinner=False)
def _imagga_client(base_url: str, credentials: ImaggaCredentials, retry_options: tuple) -> ImaggaClient:
    return ImaggaClient(credentials, base_url=base_url, **dict(retry_options))


def imagga_backend(config: Settings) -> ImaggaBackend:
    """The Imagga backend for the configured credentials (caller checks they exist)."""
    assert config.imagga is not None
    return ImaggaBackend(imagga_client(config.imagga_url, config.imagga))


def backend_id(name: str, config: Settings) -> str:
    """A cache-key name for a backend: Imagga results differ per base URL."""
    return EMBEDDED if name == EMBEDDED else f"{name}:{config.imagga_url}"


@st.cache_resource(show_spinner=False)
def store(db_path: str) -> Store:
    """The SQLite store; opening it runs pending migrations."""
    return open_store(db_path)


@st.cache_resource(show_spinner=False)
def result_cache(db_path: str) -> ResultCache:
    """The on-disk cache of backend answers that sits beside the feedback database."""
    return open_result_cache(db_path)


@st.cache_data(show_spinner=False, max_entries=256)
def tag_cached(
    backend_key: str, image_key: str, request_key: str, _call: Callable[[], dict], _disk: ResultCache | None = None
) -> dict:
    """The backend's answer for one image and parameter set, computed once.

    Only the first three arguments form the key; ``_call`` does the work on a miss of both
    this in-memory cache and the disk cache ``_disk`` (which survives restarts and is shared
    with the Batch page). Exceptions are not cached, so a failed call can be retried.
    """
    if _disk is None:
        return _call()
    return _disk.get_or_compute(backend_key, image_key, request_key, _call)[0]


@st.cache_data(show_spinner=False, ttl=3600)
def categorizers(base_url: str, _client: ImaggaClient) -> list[Categorizer]:
    """Imagga's categorizers, asked once an hour per base URL."""
    return _client.list_categorizers()


@st.cache_data(show_spinner=False, max_entries=64)
def categories_cached(
    base_url: str, image_key: str, categorizer_id: str, language: str, _call: Callable[[], list[Category]]
) -> list[Category]:
    """One categorizer's answer for one image, asked once."""
    return _call()


@st.cache_resource(show_spinner="Sending queued feedback to Imagga…")
def startup_delivery(db_path: str, base_url: str, _store: Store, _client: ImaggaClient) -> DeliveryReport:
    """Retry the outbox once per process start (later retries are the Settings page's button)."""
    return deliver_pending(_store, _client, IMAGGA)


@st.cache_data(show_spinner=False, max_entries=32, ttl=600)
def fetch_url_cached(url: str, max_bytes: int) -> bytes:
    """An image URL's bytes, fetched once (with the SSRF guard) for ten minutes."""
    return fetch_image(url, max_bytes=max_bytes)


@st.cache_resource(show_spinner=False, max_entries=8)
def load_image_cached(
    sha256: str, filename: str, max_bytes: int, max_pixels: int, _data: bytes
) -> LoadedImage:
    """Decode an image once per content hash, so moving a slider does not decode it again."""
    return load_image(_data, filename, max_bytes=max_bytes, max_pixels=max_pixels)


@st.cache_data(show_spinner=False, max_entries=16)
def display_jpeg(sha256: str, _image: LoadedImage, max_side: int = 1024) -> bytes:
    """A JPEG copy for the page, at most ``max_side`` pixels long (orientation applied)."""
    return encode_jpeg(downscale(_image.image, max_side), quality=85)


def clear_all() -> None:
    """Forget every cached result and resource (tests call this between runs)."""
    st.cache_data.clear()
    st.cache_resource.clear()
