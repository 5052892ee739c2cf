"""A batch's values: the items going in (bytes held or read on demand) and what came out of each."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from tagging.models import Tag

OK, CACHED, FAILED, SKIPPED = "ok", "cached", "failed", "skipped"
STATUSES = (OK, CACHED, FAILED, SKIPPED)


class ByteSource(Protocol):
    """Where an item's bytes live when they are not held in memory (a file, an archive member, a URL).

    ``read`` returns the whole content or raises ``SourceReadError``. Sources are small
    picklable values, so an item can travel to a cluster worker that reads it there; a source
    whose bytes only this process holds says so with ``portable = False`` (absent means True).
    """

    def read(self) -> bytes: ...


@dataclass(frozen=True)
class BatchItem:
    """One image of a batch: its display name and its untouched bytes, held or read on demand.

    Give ``data`` (bytes in memory) or ``source`` (read each time they are needed, so a
    batch of thousands holds only the images in progress). ``sha256`` is computed on first
    use and kept; reading a source may raise ``SourceReadError``.
    """

    name: str
    data: bytes | None = field(default=None, repr=False, compare=False)
    source: ByteSource | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if (self.data is None) == (self.source is None):
            raise ValueError("a BatchItem needs either data or a source")
        if self.data is not None:
            self.__dict__["sha256"] = hashlib.sha256(self.data).hexdigest()

    def read(self) -> bytes:
        """The item's bytes (read from its source each time when not held)."""
        if self.data is not None:
            return self.data
        assert self.source is not None
        return self.source.read()

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.read()).hexdigest()

    @property
    def known_sha256(self) -> str:
        """The SHA-256 if it was computed already, else "" (never reads)."""
        return self.__dict__.get("sha256", "")


@dataclass(frozen=True)
class ItemResult:
    """What happened to one image.

    ``status`` is ``ok`` (tagged by a call now), ``cached`` (no call: the disk cache or
    an identical image earlier in the batch), ``failed`` or ``skipped`` (stopped before
    it was sent); ``reason`` says why for the last two, or where a cached answer came
    from. ``tags`` are parsed in the request's language, best first.
    """

    index: int
    name: str
    image_key: str
    status: str
    reason: str = ""
    payload: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    tags: tuple[Tag, ...] = field(default=(), repr=False, compare=False)
    width: int | None = None
    height: int | None = None

    @property
    def tagged(self) -> bool:
        return self.status in (OK, CACHED)


@dataclass
class BatchReport:
    """The outcome of a batch: one result per item, in input order, and the counters.

    ``stopped`` is True when a stop left images untagged (``skipped``); ``aborted`` says
    why the batch ended early on its own (credentials, unreachable host, long 429).
    ``calls_made`` counts images sent to the backend (attempts, including failed ones);
    ``calls_saved`` counts images answered without a call. ``requests`` is the number of
    backend invocations: forward passes on the embedded tagger, HTTP tag calls on Imagga.
    """

    results: list[ItemResult]
    calls_made: int = 0
    calls_saved: int = 0
    requests: int = 0
    max_in_flight: int = 0
    stopped: bool = False
    aborted: str | None = None
    seconds: float = 0.0

    def count(self, status: str) -> int:
        """How many results have this status."""
        return sum(1 for r in self.results if r.status == status)

    @property
    def images_per_second(self) -> float:
        return len(self.results) / self.seconds if self.seconds > 0 else 0.0
