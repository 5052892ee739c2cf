"""A bounded, thread-safe shelf of recent things kept by key (a content hash), oldest dropped first.

The pages keep each browser's last upload and last batch on one so that a reload, or a link to
the same page state, finds them again. Bounded twice: by the number of entries and by their total
size in bytes; an entry dropped to make room (or forgotten) gets its ``on_drop`` call, so a batch
still running can be stopped and the memory its uploads hold given back.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HEX = frozenset("0123456789abcdef")


def is_content_key(value: str | None, length: int = 64) -> bool:
    """Whether ``value`` looks like a shelf key: ``length`` lowercase hex digits (a SHA-256 by default)."""
    return isinstance(value, str) and len(value) == length and set(value) <= HEX


@dataclass(frozen=True)
class Shelved:
    """One entry: what was kept, its size, and what to do when it leaves the shelf."""

    value: Any
    size: int
    on_drop: Callable[[], None] | None = None


class Shelf:
    """Keeps at most ``max_entries`` values and ``max_bytes`` bytes; the least recently used leaves first."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("a shelf needs room for at least one entry and one byte")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Shelved] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    @property
    def bytes(self) -> int:
        """The total size of what is kept now."""
        with self._lock:
            return sum(e.size for e in self._entries.values())

    def put(self, key: str, value: Any, size: int = 0, on_drop: Callable[[], None] | None = None) -> bool:
        """Keep ``value`` under ``key`` (replacing what was there); False, keeping nothing, if it can never fit."""
        if size > self.max_bytes:
            return False
        dropped: list[Shelved] = []
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None and old.value is not value:
                dropped.append(old)
            self._entries[key] = Shelved(value, size, on_drop)
            total = sum(e.size for e in self._entries.values())
            while len(self._entries) > self.max_entries or total > self.max_bytes:
                _, oldest = self._entries.popitem(last=False)
                total -= oldest.size
                dropped.append(oldest)
        _drop(dropped)
        return True

    def get(self, key: str | None) -> Any | None:
        """The value kept under ``key`` (now the most recently used), or None."""
        if key is None:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry.value

    def forget(self, key: str | None) -> None:
        """Drop ``key``'s entry (its ``on_drop`` runs); nothing if it is not kept."""
        with self._lock:
            entry = self._entries.pop(key, None) if key is not None else None
        _drop([entry] if entry else [])

    def clear(self) -> None:
        """Drop everything (tests)."""
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        _drop(entries)


def _drop(entries: list[Shelved]) -> None:
    for entry in entries:  # outside the lock: a callback may take its time (a batch stopping)
        if entry.on_drop is not None:
            entry.on_drop()
