"""Which taggers can be compared, and one side of a comparison: a tagger spec and its selection rule.

A *tagger* is a backend as the store names it (``"embedded"``, ``"imagga"``; the ONNX manifests
will add ``"embedded:<manifest-id>"``). A *spec* is a tagger plus the parameters it is asked with
(a ``TagRequest``: language, Imagga's ``decrease_parents``, custom tagger, server-side threshold,
limit, upload mode and downscaling). A *side* is a spec plus the auto-select rule applied to its
answer (threshold and floor), which costs nothing to change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tagging.backends import EMBEDDED, IMAGGA, IMAGGA_LANGUAGES, LABELS, MODE_TWO_STEP, MODE_UPLOAD, TagRequest
from tagging.config import Settings
from tagging.models import Tag
from tagging.rules import DEFAULT_MIN_TAGS, DEFAULT_THRESHOLD, auto_select

IMAGGA_SETUP_HINT = (
    "Set IMAGGA_API_KEY and IMAGGA_API_SECRET (environment variables, or .streamlit/secrets.toml) and "
    "restart the app to compare Imagga as well."
)
# Imagga requests per image tagged: one multipart POST, or upload + tag + delete.
REQUESTS_PER_IMAGE = {MODE_UPLOAD: 1, MODE_TWO_STEP: 3}


@dataclass(frozen=True)
class TaggerChoice:
    """A tagger the settings make available: its store name, a label, what it can be asked."""

    backend: str
    label: str
    languages: tuple[str, ...] = ("en",)
    remote: bool = False  # sends the image to a paid service: calls are requests and cost money

    @property
    def takes_imagga_parameters(self) -> bool:
        return self.backend == IMAGGA


def available_taggers(
    settings: Settings, embedded_models: Sequence[tuple[str, str]] = ()
) -> list[TaggerChoice]:
    """Every tagger a comparison can use with these settings, Imagga first when it is configured.

    ``embedded_models`` are extra offline models as ``(manifest id, label)`` pairs; each becomes
    the tagger ``"embedded:<manifest id>"``. The shipped embedded tagger is always offered.
    """
    choices = []
    if settings.imagga_configured:
        choices.append(TaggerChoice(IMAGGA, LABELS[IMAGGA], IMAGGA_LANGUAGES, remote=True))
    choices.append(TaggerChoice(EMBEDDED, LABELS[EMBEDDED]))
    choices.extend(TaggerChoice(f"{EMBEDDED}:{model_id}", label) for model_id, label in embedded_models)
    return choices


def imagga_request(
    language: str = "en",
    *,
    decrease_parents: bool = False,
    tagger_id: str = "",
    server_threshold: float = 0.0,
    limit: int = 0,
    downscale_to: int = 0,
    mode: str = MODE_UPLOAD,
    extra_languages: Sequence[str] = (),
) -> TagRequest:
    """A ``TagRequest`` for Imagga built from widget values, exactly as the Tag page builds it.

    Off values (False, "", 0) become None, so equal settings give equal cache keys and an answer
    the Tag or Batch page already paid for is reused.
    """
    return TagRequest(
        language=language, mode=mode, downscale_to=int(downscale_to) or None,
        extra_languages=tuple(extra_languages),
        limit=int(limit) or None,
        threshold=float(server_threshold) or None,
        decrease_parents=True if decrease_parents else None,
        tagger_id=tagger_id.strip() or None,
    )


def embedded_request() -> TagRequest:
    """The embedded tagger's request: the Tag and Batch pages' own, so their answers are shared."""
    return TagRequest(language="en", mode=MODE_UPLOAD)


@dataclass(frozen=True)
class TaggerSpec:
    """A tagger and the parameters it is asked with."""

    backend: str
    request: TagRequest

    @property
    def language(self) -> str:
        return self.request.language

    @property
    def remote(self) -> bool:
        return self.backend == IMAGGA

    @property
    def requests_per_image(self) -> int:
        """HTTP requests one image costs (0 for an offline tagger)."""
        return REQUESTS_PER_IMAGE.get(self.request.mode, 1) if self.remote else 0

    def describe(self, labels: Mapping[str, str] | None = None) -> str:
        """A short plain-text description: the tagger and every parameter that is not the default."""
        labels = labels or LABELS
        parts = [labels.get(self.backend, self.backend)]
        if self.remote:
            r = self.request
            parts.append(r.language)
            if r.decrease_parents:
                parts.append("decrease parents")
            if r.tagger_id:
                parts.append(f"tagger {r.tagger_id}")
            if r.threshold:
                parts.append(f"server threshold {r.threshold:g}")
            if r.limit:
                parts.append(f"limit {r.limit}")
            if r.mode == MODE_TWO_STEP:
                parts.append("two-step upload")
            parts.append(f"downscaled to {r.downscale_to} px" if r.downscale_to else "original size")
        return " · ".join(parts)


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a spec and the auto-select rule applied to its answers."""

    spec: TaggerSpec
    threshold: float = DEFAULT_THRESHOLD
    min_tags: int = DEFAULT_MIN_TAGS
    name: str = "A"

    def select(self, tags: Sequence[Tag], overrides: Mapping[str, float] | None = None) -> list[str]:
        """The side's auto-selected tags (``tagging.rules.auto_select`` at its threshold and floor)."""
        return auto_select(tags, self.threshold, self.min_tags, overrides)

    def describe(self) -> str:
        return f"{self.spec.describe()} · threshold {self.threshold:g}, never fewer than {self.min_tags} tags"
