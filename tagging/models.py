"""Typed values shared across the package."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Tag:
    """One suggested tag in one language.

    ``names`` keeps every language the backend returned; ``name`` is the one chosen.
    ``parent`` is the WordNet parent term the embedded tagger adds (None for Imagga).
    """

    name: str
    confidence: float
    names: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    parent: str | None = None
