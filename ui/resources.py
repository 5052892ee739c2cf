"""Cached clients, models and results (module level, so every page shares one cache)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from tagging import backends
from tagging.backends import IMAGGA, EmbeddedBackend, ImaggaBackend
from tagging.batch import connect
from tagging.config import Settings, load_settings
from tagging.embedded import DEFAULT_MANIFEST_ID, Manifest, NsfwModel, TextReader, list_manifests
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


def embedded_backend(manifest_id: str | None = None) -> EmbeddedBackend:
    """The offline tagger for a model manifest (None or the shipped id: the shipped model), loaded once."""
    return _embedded_backend(None if manifest_id == DEFAULT_MANIFEST_ID else manifest_id)


@st.cache_resource(show_spinner="Loading the embedded tagger…")
def _embedded_backend(manifest_id: str | None) -> EmbeddedBackend:
    backend = EmbeddedBackend(manifest=manifest_id)
    backend.tagger  # noqa: B018 - load the model now, under the spinner
    return backend


@st.cache_resource(show_spinner=False)
def embedded_manifests() -> list[Manifest]:
    """The offline models available (the shipped one first), listed once per process."""
    return list_manifests()


def text_reader() -> TextReader:
    """RapidOCR (offline text reading): the shipped embedded backend's, so the Tag and Batch pages share one."""
    return embedded_backend(None).analyzer.text_reader


@st.cache_resource(show_spinner="Loading the offline nsfw model…")
def nsfw_model() -> NsfwModel:
    """The open_nsfw model behind the offline nsfw categorizer, shared by every session."""
    return NsfwModel()


@st.cache_data(show_spinner=False, max_entries=64)
def embedded_categories_cached(
    backend_key: str, image_key: str, categorizer_id: str, _call: Callable[[], dict]
) -> dict:
    """One offline categorizer's answer (Imagga's JSON shape) for one image and model, computed once."""
    return _call()


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
    """The Imagga backend for the configured credentials (caller checks they exist), charging this session's cap."""
    from ui import auth

    assert config.imagga is not None
    return ImaggaBackend(imagga_client(config.imagga_url, config.imagga), meter=auth.meter(config))


def backend_id(name: str, config: Settings, manifest_id: str | None = None) -> str:
    """A cache-key name for a backend (``tagging.backends.backend_id``, shared with the command line)."""
    return backends.backend_id(name, config.imagga_url, manifest_id)


@dataclass(frozen=True)
class _Connection:
    """A ``distributed.Client`` in a box: a Client is awaitable, which ``st.cache_resource`` refuses to return."""

    client: Any


@st.cache_resource(show_spinner="Connecting to the Dask cluster…")
def _dask_connection(address: str) -> _Connection:
    return _Connection(connect(address))


def dask_client(address: str) -> Any:
    """One ``distributed.Client`` per scheduler address and process; a closed one is replaced.

    Raises ``ClusterError`` (not cached) when the scheduler or its workers cannot be used.
    """
    client = _dask_connection(address).client
    if client.status not in ("running", "connecting"):
        _dask_connection.clear()
        client = _dask_connection(address).client
    return client


@st.cache_resource(show_spinner=False)
def _open_store(db_target: str, password_digest: str, _password: str | None) -> Store:
    return open_store(db_target, _password)


def store(db_target: str) -> Store:
    """The store named by ``TAGGING_DB`` (SQLite or PostgreSQL), one per process; opening it runs migrations.

    The password comes from the settings (never from the argument, which pages may show);
    a changed password opens the store anew.
    """
    config = settings()
    password = config.db_password if db_target == config.db_target else None
    digest = hashlib.sha256((password or "").encode()).hexdigest()
    return _open_store(db_target, digest, password)


@st.cache_resource(show_spinner=False)
def _result_cache(db_target: str, _store: Store) -> ResultCache:
    return open_result_cache(_store)


def result_cache(db_target: str) -> ResultCache:
    """The cache of backend answers, in the same database as the store (shared by every server on it)."""
    opened = store(db_target)
    return _result_cache(f"{db_target}#{id(opened)}", opened)


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
    """Retry the outbox once per process start (later retries are the Settings page's button).

    The server's own retry of messages already queued, not a user's action: on the unguarded store.
    """
    return deliver_pending(store(db_path), _client, IMAGGA)


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
