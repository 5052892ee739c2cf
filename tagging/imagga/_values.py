"""Imagga's values: credentials, request parameters, typed answers and the feedback body."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tagging.errors import AuthError


# --- values -------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class ImaggaCredentials:
    """Imagga API key (HTTP Basic user) and secret (password); repr and str mask both.

    Raises:
        AuthError: if the key or the secret is empty.
    """

    api_key: str
    api_secret: str

    def __post_init__(self) -> None:
        if not (self.api_key or "").strip() or not (self.api_secret or "").strip():
            raise AuthError(
                "Imagga credentials are missing — set IMAGGA_API_KEY and IMAGGA_API_SECRET."
            )

    def __repr__(self) -> str:
        return "ImaggaCredentials(api_key='***', api_secret='***')"

    __str__ = __repr__


@dataclass(frozen=True)
class TagParams:
    """Optional parameters of ``/v2/tags``; ``to_query()`` omits the ones left as None.

    ``languages`` becomes ``language=en,de`` (each tag then has one name per language);
    ``tagger_id`` selects a custom tagger through the path ``/v2/tags/{tagger_id}``.

    Raises:
        ValueError: for an empty language list, ``limit`` < 1 (other than -1, Imagga's
            "all") or ``threshold`` outside 0-100.
    """

    languages: tuple[str, ...] = ("en",)
    limit: int | None = None
    threshold: float | None = None
    decrease_parents: bool | None = None
    verbose: bool | None = None
    tagger_id: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.languages, str):  # TagParams(languages="en") is a common slip
            object.__setattr__(self, "languages", (self.languages,))
        langs = tuple(lang.strip() for lang in self.languages if lang and lang.strip())
        if not langs:
            raise ValueError("TagParams.languages needs at least one language code")
        object.__setattr__(self, "languages", langs)
        if self.limit is not None and self.limit != -1 and self.limit < 1:
            raise ValueError("TagParams.limit must be a positive number of tags (or -1 for all)")
        if self.threshold is not None and not 0 <= self.threshold <= 100:
            raise ValueError("TagParams.threshold is a confidence between 0 and 100")
        if self.tagger_id is not None and not self.tagger_id.strip():
            object.__setattr__(self, "tagger_id", None)

    @property
    def path(self) -> str:
        """``/tags`` or ``/tags/{tagger_id}`` (relative to the base URL)."""
        if self.tagger_id:
            return f"/tags/{quote(self.tagger_id, safe='')}"
        return "/tags"

    def to_query(self) -> dict[str, str]:
        """Query parameters for ``/v2/tags``, omitting every parameter left as None."""
        query = {"language": ",".join(self.languages)}
        if self.limit is not None:
            query["limit"] = str(int(self.limit))
        if self.threshold is not None:
            query["threshold"] = format(float(self.threshold), "g")
        if self.decrease_parents is not None:
            query["decrease_parents"] = "1" if self.decrease_parents else "0"
        if self.verbose is not None:
            query["verbose"] = "1" if self.verbose else "0"
        return query


@dataclass(frozen=True)
class TagsResponse:
    """A successful ``/v2/tags`` answer: ``tags`` is ``raw["result"]["tags"]`` as sent.

    Parsing the tags into :class:`tagging.models.Tag` is ``tagging.parse``'s job.
    """

    tags: list[dict[str, Any]]
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Categorizer:
    """One categorizer listed by ``/v2/categorizers``."""

    id: str
    title: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Category:
    """One category of an image; ``name`` is in the requested language when present."""

    name: str
    confidence: float
    names: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Usage:
    """The account's usage from ``/v2/usage``; a field Imagga did not send is None."""

    monthly_limit: int | None = None
    monthly_processed: int | None = None
    monthly_requests: int | None = None
    daily_processed: int | None = None
    concurrency_max: int | None = None
    concurrency_now: int | None = None
    billing_period_start: str | None = None
    billing_period_end: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def quota_fraction(self) -> float | None:
        """Share of the monthly limit already processed (0.0-1.0+), None if unknown."""
        if self.monthly_limit is None or self.monthly_processed is None:
            return None
        if self.monthly_limit <= 0:
            return None
        return self.monthly_processed / self.monthly_limit

    @classmethod
    def from_result(cls, result: Mapping[str, Any], raw: dict[str, Any]) -> Usage:
        """Build from ``/v2/usage``'s ``result``; tolerant of missing and extra fields.

        Older answers carried ``"limits": {"concurrency": 3, "monthly": 70000}``; those
        are used when the newer fields are missing.
        """
        concurrency = result.get("concurrency")
        concurrency = concurrency if isinstance(concurrency, Mapping) else {}
        limits = result.get("limits")
        limits = limits if isinstance(limits, Mapping) else {}
        monthly_limit = as_int(result.get("monthly_limit"))
        if monthly_limit is None:
            monthly_limit = as_int(limits.get("monthly"))
        concurrency_max = as_int(concurrency.get("max"))
        if concurrency_max is None:
            concurrency_max = as_int(limits.get("concurrency"))
        return cls(
            monthly_limit=monthly_limit,
            monthly_processed=as_int(result.get("monthly_processed")),
            monthly_requests=as_int(result.get("monthly_requests")),
            daily_processed=as_int(result.get("daily_processed")),
            concurrency_max=concurrency_max,
            concurrency_now=as_int(concurrency.get("now")),
            billing_period_start=as_str(result.get("billing_period_start")),
            billing_period_end=as_str(result.get("billing_period_end")),
            raw=raw,
        )


# --- feedback body --------------------------------------------------------------------
FEEDBACK_IMAGE_KEYS = ("image_url", "image_upload_id", "image_sha256")


def build_feedback_payload(
    image_ref: Mapping[str, str],
    accepted: Iterable[str],
    rejected: Iterable[str],
    language: str = "en",
) -> dict[str, Any]:
    """Shape the JSON body of ``POST /v2/tags/feedback`` — the ONE place that does.

    Imagga documents the endpoint ("positive or negative signal on Imagga tags") but
    publishes no body, so this is a guess, kept here so it can be changed in one place::

        {"image_url": "https://...",          # or "image_upload_id" / "image_sha256"
         "language": "en",
         "tags": [{"tag": "cat", "feedback": "positive"},
                  {"tag": "dog", "feedback": "negative"}]}

    ``image_ref`` holds exactly one of ``image_url``, ``image_upload_id`` or
    ``image_sha256`` (an uploaded image is deleted after tagging, so its SHA-256 is the
    only lasting reference). Tags are stripped, de-duplicated, in the given order,
    accepted first.

    Raises:
        ValueError: if ``image_ref`` does not hold exactly one known key with a value,
            or a tag is both accepted and rejected.
    """
    refs = {k: v for k, v in image_ref.items() if k in FEEDBACK_IMAGE_KEYS and v}
    unknown = set(image_ref) - set(FEEDBACK_IMAGE_KEYS)
    if len(refs) != 1 or unknown:
        raise ValueError(
            "image_ref must hold exactly one of " + ", ".join(FEEDBACK_IMAGE_KEYS)
        )
    good = unique(accepted)
    bad = unique(rejected)
    both = sorted(set(good) & set(bad))
    if both:
        raise ValueError(f"tags both accepted and rejected: {', '.join(both)}")
    items = [{"tag": t, "feedback": "positive"} for t in good]
    items += [{"tag": t, "feedback": "negative"} for t in bad]
    return {**refs, "language": language, "tags": items}



# --- converters of loosely typed JSON ---------------------------------------------
def unique(tags: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for tag in tags:
        tag = str(tag).strip()
        if tag:
            seen.setdefault(tag, None)
    return list(seen)


def as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def as_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)
