"""Batches on a Dask cluster: the in-process engine, run chunk by chunk on the cluster's workers.

:func:`run_on_cluster` cuts a batch into chunks and submits each as one task
(``tag_chunk``) with ``Client.submit``; results come back as tasks finish. On the worker a
chunk is an ordinary :func:`run_batch` call, so every rule of the engine holds there
(partial failure, cache first, one forward pass per chunk, 429 retries), plus:

- **Reading.** Items carry a picklable ``source`` (a path or URL, see ``_sources``) and are
  read by the worker that tags them; no image travels through the scheduler. Items that
  hold their bytes (browser uploads) are ``scatter``-ed to a worker one chunk at a time,
  and only ``window`` chunks are out at once, so memory stays bounded on both sides; a
  chunk whose bytes die with their worker is scattered and submitted again.
- **The embedded model** is loaded once per worker process and kept (``worker_counters``
  counts the loads and forward passes).
- **Imagga's plan limit** holds across the cluster: every request holds a lease of a
  ``distributed.Semaphore`` with ``concurrency`` leases, named after the account (the URL
  and a hash of the API key), so two batches on the same account share it. A 429 sets a
  shared pause-until time (wall-clock seconds in the scheduler's metadata) that every worker
  waits out before its next request; worker clients do not sleep through a 429 themselves (``max_retry_after=0``),
  so the pause is the cluster's, not one thread's.
- **The result cache** is opened on the worker (``open_result_cache(TAGGING_DB)``, a file
  every worker sees or a database server) and written as each answer arrives, through
  ``get_or_compute``: a chunk that runs again (its worker was killed) or a second run of
  the batch finds the paid answers there and pays for nothing twice.
- **Stop** sets a ``distributed.Event``: running chunks finish the images in progress and
  skip the rest, no further chunk is submitted. Run the batch again to resume.

Wall-clock time (``time.time``) is what the workers agree on for the pause, so the
machines' clocks should be synchronised (NTP), as they are almost everywhere.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tagging.backends import EMBEDDED, EmbeddedBackend, ImaggaBackend, TagRequest
from tagging.batch._budget import HeldBytes
from tagging.batch._engine import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONCURRENCY,
    MAX_CONCURRENCY,
    BatchJob,
    ProgressCallback,
    StopFlag,
    _as_items,
    _stop_check,
    run_batch,
    with_duplicates,
)
from tagging.batch._items import CACHED, FAILED, SKIPPED, BatchItem, BatchReport, ItemResult
from tagging.errors import ClusterError, SourceReadError, StoreUnavailableError
from tagging.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from distributed import Client, Event, Semaphore

    from tagging.imagga import ImaggaClient, ImaggaCredentials
    from tagging.store import ResultCache

log = logging.getLogger("tagging.batch.cluster")

_ADDRESS = re.compile(r"^(?:(?:tcp|tls|ws|wss|ucx)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):\d{1,5}/?$")

CONNECT_TIMEOUT = 10.0
"""Seconds to reach the scheduler: a live one answers in milliseconds even across a data centre;
ten seconds without an answer means a wrong address or a firewall, and the analyst should know."""
WORKERS_TIMEOUT = 10.0
"""Seconds to wait for at least one worker when the scheduler has none yet (workers starting)."""
POLL_SECONDS = 0.05
"""How often the client looks for finished chunks and for a stop request."""
STOP_CHECK_SECONDS = 0.25
"""How stale a worker's view of the stop flag may be: each look is one scheduler round trip."""
SLOT_POLL_SECONDS = 0.5
"""A worker waiting for an Imagga slot looks at the stop flag this often."""
DRAIN_SECONDS = 60.0
"""After a stop, how long running chunks may take to hand back what they finished before they are cancelled."""
IMAGGA_IMAGES_PER_SLOT = 4
"""Imagga chunks hold this many images per allowed request: enough to keep the slots busy
between tasks, few enough that a killed worker's chunk is cheap to run again."""
CACHE_OPEN_ATTEMPTS = 5
MAX_SUBMITS = 3
"""How often a chunk whose bytes were lost with a worker is sent again before its images are given up."""
WORKER_MAX_RETRY_AFTER = 0.0
"""Worker clients never sleep on a 429 inside one request: the engine pauses every worker instead."""


# --- what a task needs ------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkSpec:
    """Everything a worker needs to tag a chunk (sent with every task; the credentials are never shown)."""

    backend: str
    request: TagRequest
    backend_key: str
    cache_target: str | None = None  # TAGGING_DB's value as the workers see it; None = no cache
    cache_password: str | None = field(default=None, repr=False)  # TAGGING_DB_PASSWORD, never shown
    concurrency: int = DEFAULT_CONCURRENCY  # Imagga: requests in flight across the whole cluster
    chunk_size: int = DEFAULT_CHUNK_SIZE  # embedded: images per forward pass (= per task)
    imagga_url: str = ""
    credentials: ImaggaCredentials | None = field(default=None, repr=False)
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    meter: Callable[[int], None] | None = None  # Imagga: charges each request to who started the batch

    @property
    def images_per_task(self) -> int:
        if self.backend == EMBEDDED:
            return max(1, self.chunk_size)
        return max(1, min(self.concurrency, MAX_CONCURRENCY) * IMAGGA_IMAGES_PER_SLOT)

    @property
    def account(self) -> str:
        """The Imagga account these requests count against: the URL and a short hash of the API key."""
        key = self.credentials.api_key if self.credentials is not None else ""
        return f"{self.backend_key}:{hashlib.sha256(key.encode()).hexdigest()[:12]}"

    @property
    def slots_name(self) -> str:
        return f"tagging-imagga-slots:{self.account}:{self.concurrency}"

    @property
    def pause_key(self) -> list[str]:
        return ["tagging", "imagga-pause-until", self.account]


@dataclass(frozen=True)
class _Chunk:
    """The items of one task (a value, so ``scatter`` ships it whole)."""

    items: tuple[BatchItem, ...]


# --- the worker side (module state is per worker process) ----------------------------------------
_lock = threading.Lock()
_counters: Counter[str] = Counter()
_embedded: EmbeddedBackend | None = None
_caches: dict[str, ResultCache] = {}
_idle_clients: dict[tuple[str, Any], list[ImaggaClient]] = {}
_semaphores: dict[str, Semaphore] = {}


def worker_counters() -> dict[str, int]:
    """This process's counts: model loads, forward passes, chunks, Imagga clients built (``client.run``)."""
    with _lock:
        return dict(_counters)


def _embedded_backend() -> EmbeddedBackend:
    """The embedded tagger of this worker process, loaded on first use and kept."""
    global _embedded
    with _lock:
        if _embedded is None:
            backend = EmbeddedBackend()
            backend.tagger  # noqa: B018 - load the model now, once per process
            _embedded = backend
            _counters["model_loads"] += 1
        return _embedded


def _result_cache(target: str, password: str | None) -> ResultCache:
    """This process's cache for ``target``, opened once.

    Two workers opening a new SQLite cache at the same moment can both try to switch it to
    WAL, and the loser gets "database is locked" at once (no busy wait applies there): try again.
    """
    from tagging.store import open_result_cache

    with _lock:
        if target not in _caches:
            for attempt in range(CACHE_OPEN_ATTEMPTS):
                try:
                    _caches[target] = open_result_cache(target, password)
                    break
                except StoreUnavailableError:
                    if attempt == CACHE_OPEN_ATTEMPTS - 1:
                        raise
                    time.sleep(0.1 * (attempt + 1))
        return _caches[target]


def _semaphore(name: str, leases: int) -> Semaphore:
    """The cluster-wide semaphore, bound to this worker (call from a task's own thread)."""
    from distributed import Semaphore

    with _lock:
        if name not in _semaphores:
            semaphore = Semaphore(max_leases=leases, name=name)
            semaphore.register()
            _semaphores[name] = semaphore
        return _semaphores[name]


class _PooledImagga:
    """A ``backend_factory`` whose clients (one session each) outlive the chunk: kept per process."""

    def __init__(self, credentials: ImaggaCredentials, base_url: str,
                 meter: Callable[[int], None] | None = None) -> None:
        self.key = (base_url, credentials)
        self.meter = meter
        self.credentials = credentials
        self.base_url = base_url
        self._taken: list[ImaggaClient] = []
        self._taken_lock = threading.Lock()

    def __call__(self) -> ImaggaBackend:
        with _lock:
            idle = _idle_clients.setdefault(self.key, [])
            client = idle.pop() if idle else None
        if client is None:
            import requests

            from tagging.imagga import ImaggaClient

            client = ImaggaClient(self.credentials, base_url=self.base_url, session=requests.Session(),
                                  max_retry_after=WORKER_MAX_RETRY_AFTER)
            with _lock:
                _counters["imagga_clients"] += 1
        with self._taken_lock:
            self._taken.append(client)
        return ImaggaBackend(client, meter=self.meter)

    def close(self) -> None:
        """Give every client taken by this chunk back to the process's pool."""
        with self._taken_lock:
            taken, self._taken = self._taken, []
        with _lock:
            _idle_clients.setdefault(self.key, []).extend(taken)


class _StopCheck:
    """The run's stop flag as a worker sees it: one scheduler round trip per ``STOP_CHECK_SECONDS`` at most."""

    def __init__(self, event: Event) -> None:
        self.event = event
        self._seen = False
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        with self._lock:
            if self._seen:
                return True
            now = time.monotonic()
            if now - self._checked >= STOP_CHECK_SECONDS:
                self._checked = now
                self._seen = bool(self.event.is_set())
            return self._seen


class _ClusterThrottle:
    """The engine's throttle across the cluster: a semaphore lease per request, a shared pause-until time.

    The pause-until time lives in the scheduler's metadata (``Client.set_metadata``), which every
    worker reads with a default: no key is ever "unset" and nothing waits for one.
    """

    def __init__(self, slots: Semaphore, client: Client, pause_key: list[str], stopped: Callable[[], bool]) -> None:
        self.slots = slots
        self.client = client
        self.pause_key = pause_key
        self.stopped = stopped

    def _until(self) -> float:
        return float(self.client.get_metadata(self.pause_key, 0.0) or 0.0)

    @contextmanager
    def slot(self) -> Iterator[None]:
        acquired = False
        while not acquired and not self.stopped():
            acquired = bool(self.slots.acquire(timeout=SLOT_POLL_SECONDS))
        try:
            yield  # without a lease only when stopped: the engine then sends nothing
        finally:
            if acquired:
                self.slots.release()

    def wait(self, stopped: Callable[[], bool]) -> None:
        while not stopped():
            left = self._until() - time.time()
            if left <= 0:
                return
            deadline = time.monotonic() + left
            while not stopped() and (rest := deadline - time.monotonic()) > 0:
                time.sleep(min(rest, 0.1))

    def hold(self, seconds: float) -> None:
        until = time.time() + seconds
        if until > self._until():  # a later pause set meanwhile by another worker stands
            self.client.set_metadata(self.pause_key, until)


def tag_chunk(spec: WorkSpec, chunk: _Chunk, stop_name: str) -> BatchReport:
    """A Dask task: tag one chunk on this worker with the in-process engine (indices are the chunk's)."""
    from distributed import Event, get_client

    client = get_client()
    stopped = _StopCheck(Event(stop_name, client=client))
    cache = _result_cache(spec.cache_target, spec.cache_password) if spec.cache_target else None
    options: dict[str, Any] = dict(
        backend_key=spec.backend_key, cache=cache, stop=stopped, max_bytes=spec.max_bytes,
        max_pixels=spec.max_pixels,
    )
    if spec.backend == EMBEDDED:
        report = run_batch(chunk.items, _embedded_backend(), spec.request, chunk_size=len(chunk.items), **options)
        with _lock:
            _counters["forward_passes"] += report.requests
    else:
        if spec.credentials is None:
            raise ClusterError("Imagga is not configured for this batch: no credentials were sent to the workers.")
        factory = _PooledImagga(spec.credentials, spec.imagga_url, spec.meter)
        throttle = _ClusterThrottle(_semaphore(spec.slots_name, spec.concurrency), client, spec.pause_key, stopped)
        report = run_batch(chunk.items, ImaggaBackend(None), spec.request, backend_factory=factory,
                           concurrency=min(spec.concurrency, MAX_CONCURRENCY, len(chunk.items)), throttle=throttle,
                           **options)
    with _lock:
        _counters["chunks"] += 1
    return report


def worker_ready() -> str:
    """What ``connect`` runs on every worker: it fails there when the worker cannot import ``tagging``."""
    return "ok"


# --- the client side ---------------------------------------------------------------------------
def connect(address: str, timeout: float = CONNECT_TIMEOUT) -> Client:
    """A client of the Dask scheduler at ``address`` with at least one worker that can run batches.

    Raises:
        ClusterError: unreachable scheduler, no workers, or workers that cannot import ``tagging``.
    """
    address = address.strip()
    if not _ADDRESS.match(address):
        raise ClusterError(f"“{address}” is not a Dask scheduler address; it looks like tcp://host:8786.")
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - a requirement, but say so plainly
        raise ClusterError("Dask's distributed package is not installed: pip install -r requirements.txt") from exc
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise ClusterError(
            f"Cannot reach the Dask scheduler at {address} ({_short(exc)}). Start one with “dask scheduler” and "
            "check DASK_SCHEDULER_ADDRESS or --scheduler (e.g. tcp://host:8786)."
        ) from exc
    try:
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
    except (TimeoutError, OSError) as exc:
        client.close()
        raise ClusterError(
            f"The Dask scheduler at {address} has no workers. Start some with “dask worker {address}”."
        ) from exc
    for who, probe in (("scheduler", client.run_on_scheduler), ("workers", client.run)):
        try:
            probe(worker_ready)  # the scheduler unpickles every task too, so both must import ``tagging``
        except (ImportError, AttributeError, RuntimeError) as exc:
            client.close()
            raise ClusterError(
                f"The {who} of {address} cannot run batches ({_short(exc)}): start “dask scheduler” and “dask "
                "worker” from a copy of this project with its requirements installed (PYTHONPATH pointing at it)."
            ) from exc
    return client


def _portable(item: BatchItem) -> bool:
    """Whether a worker elsewhere can read the item itself (bytes in hand, or a source such as a shared path)."""
    return item.data is not None or getattr(item.source, "portable", True)


def _in_memory(item: BatchItem) -> bool:
    """Whether the item's bytes are in this process already (hashing them reads nothing)."""
    return item.data is not None or isinstance(item.source, HeldBytes)


def _travelling(item: BatchItem) -> BatchItem:
    """The item as it goes to a worker: a source only this process can read travels as its bytes.

    One chunk at a time, so the app server never holds more than a chunk's images decompressed.
    """
    if _portable(item):
        return item
    try:
        return BatchItem(item.name, item.read())
    except SourceReadError:
        return item  # the worker reads it again and reports why it cannot


def shared_target(target: str) -> str:
    """TAGGING_DB's value as workers on other machines must see it: a URL as it is, a path made absolute."""
    return target if "://" in target else os.path.abspath(target)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


class _Collector:
    """The client's view of a running batch: results by global index, duplicates, counters."""

    def __init__(self, items: list[BatchItem], on_result: ProgressCallback | None, keep: bool) -> None:
        self.items = items
        self.on_result = on_result
        self.keep = keep
        self.results: dict[int, ItemResult] = {}
        self.done = 0
        self.saved = 0
        self.followers: dict[int, list[int]] = {}
        self.calls = 0
        self.requests = 0
        self.max_in_flight = 0

    def emit(self, result: ItemResult) -> None:
        for one in with_duplicates(result, self.followers, self.items):
            self.done += 1
            self.saved += one.status == CACHED
            if self.keep:
                self.results[one.index] = one
            if self.on_result is not None:
                self.on_result(one, self.done, len(self.items))

    def chunk_done(self, indices: list[int], report: BatchReport) -> None:
        self.calls += report.calls_made
        self.requests += report.requests
        self.max_in_flight = max(self.max_in_flight, report.max_in_flight)
        for result in report.results:
            index = indices[result.index]
            self.emit(replace(result, index=index, name=self.items[index].name))

    def chunk_lost(self, indices: list[int], status: str, reason: str) -> None:
        for index in indices:
            item = self.items[index]
            self.emit(ItemResult(index, item.name, item.known_sha256, status, reason))


def run_on_cluster(
    client: Client,
    items: Iterable[BatchItem | tuple[str, bytes]],
    spec: WorkSpec,
    *,
    on_result: ProgressCallback | None = None,
    stop: StopFlag = None,
    window: int | None = None,
    keep_results: bool = True,
) -> BatchReport:
    """Tag every item on the cluster's workers; see the module docstring. Never raises for one image.

    ``on_result(result, done, total)`` is called from this thread as results arrive (a chunk at a
    time). ``window`` is how many chunks may be out at once (default: two per worker thread,
    at least 4); no chunk is submitted more than ``window`` chunks ahead of the first unfinished
    one, so results can be written in order with a bounded buffer. ``keep_results=False`` keeps
    no result in memory (``report.results`` is then empty): for batches of any size, with
    ``on_result`` writing them out. A Ctrl-C (KeyboardInterrupt) in this thread stops like ``stop``.
    """
    from distributed import Event, as_completed

    started = time.perf_counter()
    batch = _as_items(items)
    stopped = _stop_check(stop)
    run_id = uuid.uuid4().hex
    stop_event = Event(f"tagging-stop:{run_id}", client=client)
    collector = _Collector(batch, on_result, keep_results)

    # Bytes in memory (an upload) and a source only this process can read (a member of an uploaded zip)
    # are hashed here, so identical images go out once: two workers tagging the same image in different
    # chunks would both pay. Other portable sources (a shared folder) are hashed on the workers.
    first_of: dict[str, int] = {}
    leaders: list[int] = []
    for index, item in enumerate(batch):
        if not _portable(item) or _in_memory(item):
            try:
                item.sha256  # noqa: B018 - read once, the bytes dropped again
            except SourceReadError as exc:
                collector.emit(ItemResult(index, item.name, "", FAILED, str(exc)))
                continue
        key = item.known_sha256
        if key and key in first_of:
            collector.followers.setdefault(first_of[key], []).append(index)
            continue
        if key:
            first_of[key] = index
        leaders.append(index)
    size = spec.images_per_task
    chunks = [leaders[k:k + size] for k in range(0, len(leaders), size)]
    if window is None:
        window = max(4, 2 * sum(client.nthreads().values()))

    aborted: str | None = None
    interrupted = False
    stop_sent_at: float | None = None
    running: dict[Any, int] = {}
    finished_chunks: set[int] = set()
    next_chunk = lowest_open = 0
    ac = as_completed(loop=client.loop)
    submits: Counter[int] = Counter()

    def submit(k: int) -> None:
        submits[k] += 1
        payload: Any = _Chunk(tuple(_travelling(batch[i]) for i in chunks[k]))
        if any(item.data is not None for item in payload.items):
            payload = client.scatter(payload, hash=False)  # the bytes go to a worker, not into the task graph
        # The spec travels with each task (a few hundred bytes): a scattered copy dies with its worker.
        future = client.submit(tag_chunk, spec, payload, stop_event.name,
                               key=f"tagging-chunk-{run_id}-{k}-{submits[k]}", pure=False)
        running[future] = k
        ac.add(future)

    def halt(reason: str | None = None) -> None:
        nonlocal aborted, stop_sent_at
        if reason is not None and aborted is None:
            aborted = reason
        if stop_sent_at is None:
            stop_sent_at = time.monotonic()
            stop_event.set()

    def finish(future: Any, k: int) -> None:
        outcome = _chunk_outcome(future)
        if outcome is _LOST and stop_sent_at is None and submits[k] < MAX_SUBMITS:
            log.warning("the images of chunk %d were lost with a worker; sending them again", k)
            submit(k)  # its scattered bytes died with a worker
            return
        finished_chunks.add(k)
        if isinstance(outcome, BatchReport):
            collector.chunk_done(chunks[k], outcome)
            if outcome.aborted:
                halt(outcome.aborted)
        elif outcome is _LOST:
            collector.chunk_lost(chunks[k], SKIPPED, "stopped before it was tagged" if stop_sent_at else
                                 "the cluster lost this chunk's images several times; tag again")
        else:
            reason = f"the cluster could not run a task ({type(outcome).__name__}: {_short(outcome)})"
            log.error("a batch task failed: %s", reason)
            log.debug("the task's traceback", exc_info=outcome)
            collector.chunk_lost(chunks[k], FAILED, reason)
            halt(reason)

    try:
        while True:
            try:
                if stop_sent_at is None and stopped():
                    halt()
                while (stop_sent_at is None and next_chunk < len(chunks) and next_chunk < lowest_open + window):
                    submit(next_chunk)
                    next_chunk += 1
                if not running:
                    break
                done = ac.next_batch(block=False)
                if not done:
                    if stop_sent_at is not None and time.monotonic() - stop_sent_at > DRAIN_SECONDS:
                        client.cancel(list(running))  # stuck (no worker left?): what they held stays untagged
                        for k in list(running.values()):
                            collector.chunk_lost(chunks[k], SKIPPED, "stopped before it was tagged")
                            finished_chunks.add(k)
                        running.clear()
                    time.sleep(POLL_SECONDS)
                    continue
                for future in done:
                    k = running.pop(future, None)
                    if k is not None:
                        finish(future, k)
                    future.release()
                while lowest_open in finished_chunks:
                    lowest_open += 1
            except KeyboardInterrupt:
                if interrupted:  # a second Ctrl-C: leave now; the cache keeps what was paid for
                    raise
                interrupted = True
                halt()
    finally:
        try:
            stop_event.clear()  # the scheduler forgets the event
        except (OSError, RuntimeError, TimeoutError) as exc:
            log.warning("could not clear the stop event (%s)", type(exc).__name__)

    reason = f"not sent: {aborted}" if aborted else "stopped before it was tagged"
    for k in range(next_chunk, len(chunks)):
        collector.chunk_lost(chunks[k], SKIPPED, reason)
    results: list[ItemResult] = []
    if keep_results:
        results = [collector.results[i] for i in range(len(batch))]
        if aborted:
            results = [replace(r, reason=reason) if r.status == SKIPPED else r for r in results]
    return BatchReport(
        results=results,
        calls_made=collector.calls,
        calls_saved=collector.saved,
        requests=collector.requests,
        max_in_flight=collector.max_in_flight,
        stopped=(interrupted or stopped()) and any(r.status == SKIPPED for r in results),
        aborted=aborted,
        seconds=time.perf_counter() - started,
    )


_LOST = object()  # a chunk whose task the cluster cancelled: its scattered bytes were on a worker that died


def _chunk_outcome(future: Any) -> BatchReport | BaseException | object:
    """A finished chunk's report, ``_LOST``, or the error that ended its task."""
    from distributed.client import FutureCancelledError

    try:
        return future.result()
    except FutureCancelledError:
        return _LOST
    except Exception as exc:  # any error of the task or of its worker (KilledWorker): reported, logged, batch ends
        return exc


# --- the Batch page's job ------------------------------------------------------------------------
class ClusterJob(BatchJob):
    """:class:`BatchJob`'s interface (start, stop, snapshot, results, done, report) over ``run_on_cluster``."""

    def __init__(self, items: Iterable[BatchItem | tuple[str, bytes]], spec: WorkSpec, client: Client,
                 **options: Any) -> None:
        super().__init__(items, None, spec.request)  # type: ignore[arg-type]  # no local backend
        self.spec = spec
        self.client = client
        self.options = options

    def _execute(self) -> BatchReport:
        return run_on_cluster(self.client, self.items, self.spec, on_result=self._record, stop=self._stop,
                              **self.options)
