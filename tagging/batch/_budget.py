"""A process-wide budget of the uploaded bytes that batches keep referenced.

The Batch page keeps the uploads of a batch (images, and zip archives read one member at a
time) for as long as the session can still tag or save them. ``ByteBudget`` counts those bytes
for the whole server and refuses a new reservation that would go over its capacity; a ``Hold``
is one reservation. A hold is given back when ``release()`` is called or, at the latest, when
the last object referring to it is garbage collected (``weakref.finalize``): the sources of a
batch's items refer to the hold of their upload, so the bytes count exactly as long as an
intake or a job can still read them, and a session that ends (its state dropped) gives back
everything it held without any hook.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from tagging.errors import TaggingError
from tagging.images import format_size


class BudgetExceededError(TaggingError):
    """Reserving these bytes would take the server over its budget; nothing was reserved."""

    def __init__(self, message: str, *, asked: int, held: int, capacity: int) -> None:
        super().__init__(message)
        self.asked, self.held, self.capacity = asked, held, capacity


class ByteBudget:
    """A thread-safe count of reserved bytes with a capacity (see the module docstring)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a budget needs a capacity of at least 1 byte")
        self.capacity = capacity
        self._held = 0
        self._holds = 0
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        """Bytes reserved now, by every session together."""
        with self._lock:
            return self._held

    @property
    def holds(self) -> int:
        """Reservations not yet given back."""
        with self._lock:
            return self._holds

    def reserve(self, n_bytes: int, what: str = "these uploads") -> Hold:
        """Reserve ``n_bytes``; raises ``BudgetExceededError`` (reserving nothing) if they do not fit."""
        return self.reserve_all([n_bytes], what)[0]

    def reserve_all(self, sizes: list[int], what: str = "these uploads") -> list[Hold]:
        """One hold per size, all or none: raises ``BudgetExceededError`` if together they do not fit."""
        if any(n < 0 for n in sizes):
            raise ValueError("cannot reserve a negative number of bytes")
        asked = sum(sizes)
        with self._lock:
            if self._held + asked > self.capacity:
                held = self._held
                raise BudgetExceededError(
                    f"The server cannot keep {what} ({format_size(asked)}) now: batches in progress hold "
                    f"{format_size(held)} of the {format_size(self.capacity)} it keeps for all analysts' uploads "
                    "together. Try again in a few minutes, or tag fewer or smaller files at a time.",
                    asked=asked, held=held, capacity=self.capacity,
                )
            self._held += asked
            self._holds += len(sizes)
        return [Hold(self, n) for n in sizes]

    def _give_back(self, n_bytes: int) -> None:
        with self._lock:
            self._held -= n_bytes
            self._holds -= 1


class Hold:
    """One reservation of a ``ByteBudget``; given back once (explicitly or when collected)."""

    def __init__(self, budget: ByteBudget, n_bytes: int) -> None:
        self.bytes = n_bytes
        self._finalizer = weakref.finalize(self, budget._give_back, n_bytes)

    @property
    def released(self) -> bool:
        return not self._finalizer.alive

    def release(self) -> None:
        """Give the bytes back now (a second call does nothing)."""
        self._finalizer()


@dataclass(frozen=True)
class HeldBytes:
    """A ``ByteSource`` over bytes already in memory (an uploaded image), keeping their hold alive.

    ``read`` returns the same bytes object every time (no copy). Pickled, it carries the bytes
    but not the hold: another process does not count against this server's budget.
    """

    data: bytes = field(repr=False)
    name: str = ""
    hold: Hold | None = field(default=None, repr=False, compare=False)

    def read(self) -> bytes:
        return self.data

    def __reduce__(self) -> tuple[Any, ...]:
        return (HeldBytes, (self.data, self.name))
