"""Imagga's v2 API: a typed client over an injectable ``requests.Session``."""

from tagging.imagga._analysis import DEFAULT_PARAMS, AnalysisResponse, analysis_query
from tagging.imagga._client import (
    CONNECT_TIMEOUT,
    DEFAULT_BASE_URL,
    READ_TIMEOUT,
    UPLOAD_READ_TIMEOUT,
    ImaggaClient,
)
from tagging.imagga._retry import DEFAULT_BACKOFF_FACTOR, DEFAULT_MAX_RETRY_AFTER, DEFAULT_RETRIES, retry_after_seconds
from tagging.imagga._values import (
    FEEDBACK_IMAGE_KEYS,
    Categorizer,
    Category,
    ImaggaCredentials,
    TagParams,
    TagsResponse,
    Usage,
    build_feedback_payload,
)

__all__ = [
    "CONNECT_TIMEOUT", "DEFAULT_BACKOFF_FACTOR", "DEFAULT_BASE_URL", "DEFAULT_MAX_RETRY_AFTER", "DEFAULT_PARAMS",
    "DEFAULT_RETRIES", "FEEDBACK_IMAGE_KEYS", "READ_TIMEOUT", "UPLOAD_READ_TIMEOUT", "AnalysisResponse", "Categorizer",
    "Category", "ImaggaClient", "ImaggaCredentials", "TagParams", "TagsResponse", "Usage", "analysis_query",
    "build_feedback_payload", "retry_after_seconds",
]
