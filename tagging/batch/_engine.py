"""Tag many images in one go: fast, stoppable, and never billed twice.

:func:`run_batch` is the engine. For every item, in this order:

1. The SHA-256 of its bytes is the image key, exactly as on the Tag page. An item with
   the same bytes as an earlier one in the batch shares that one's answer; an item whose
   answer is in the :class:`~tagging.store.ResultCache` (same backend key, image key
   and ``TagRequest.cache_key()``) is answered from disk. Neither makes a call.
2. The rest go through ``load_image`` (byte and pixel limits); a bad file fails on its
   own, with the reason, and the batch goes on.
3. The embedded tagger gets them in chunks of ``chunk_size`` images, one forward pass per
   chunk (``EmbeddedTagger.tag_batch``); if a chunk fails, its images are retried one at a
   time so only the bad one fails. Imagga gets them from a thread pool of exactly
   ``concurrency`` workers, each doing one image at a time, so never more than
   ``concurrency`` requests are in flight (a two-step upload/tag/delete is three requests
   in a row from one worker).
4. Well-formed answers are stored in the cache as they arrive, so a stopped or crashed
   batch loses nothing that was paid for.

429s: the client already retries inside its adapter, sleeping what ``Retry-After`` asks
(the worker keeps its slot while it sleeps, so the limit holds). When it still gives up,
the batch pauses *every* worker for the asked time (at most ``MAX_PAUSE_SECONDS``) and
retries the image, up to ``RATE_LIMIT_RETRIES`` times. A wait longer than that (the
plan's monthly limit), rejected credentials or an unreachable host end the batch early:
the remaining images are skipped with the reason instead of failing one by one.

Sessions: ``requests.Session`` is not documented as thread-safe (its cookie jar and
adapter mounting are shared mutable state), so for Imagga pass ``backend_factory`` (e.g.
:class:`PerThreadImagga`): every worker thread then builds its own client over its own
session, and keeps it for the whole batch (connection reuse). Without a factory the
given backend is shared by the workers.

Throttle: ``throttle`` decides when a per-image request may go: ``slot()`` holds one of the
plan's concurrent requests, ``wait()`` blocks while a 429 pause is in force and ``hold()``
starts one. In process the thread pool is the limit and the pause is shared by the threads;
on a Dask cluster (``_cluster``) a ``distributed.Semaphore`` and a shared pause-until time
make both hold across every worker.

With a cache, each per-image request goes through ``ResultCache.get_or_compute``, so when
another worker or app server is paying for the same image this one waits for that answer
instead of paying again (as far as the cache's lease makes that race-free).

The progress callback ``on_result`` is always called from the thread that called
``run_batch``, never from a worker. :class:`BatchJob` runs a batch in a background thread
for the Batch page and keeps every finished result as it arrives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from typing import Any, Protocol

from tagging.backends import Backend, ImaggaBackend, TagRequest
from tagging.batch._items import CACHED, FAILED, OK, SKIPPED, BatchItem, BatchReport, ItemResult
from tagging.errors import (
    AuthError,
    BackendConnectionError,
    BadImageError,
    PermissionDeniedError,
    RateLimitError,
    SourceReadError,
    SpendCapError,
    StoreError,
    TaggingError,
)
from tagging.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, LoadedImage, load_image
from tagging.parse import parse_tags
from tagging.store import ResultCache

log = logging.getLogger("tagging.batch")

DEFAULT_CONCURRENCY = 3
"""Imagga's plan limit as its /v2/usage reports it (``concurrency.max``)."""
MAX_CONCURRENCY = 16
DEFAULT_CHUNK_SIZE = 4
"""Images per forward pass on the embedded tagger. On 2 cores, chunks of 4 and 8 measure
alike (about 1.15x one at a time end to end: face detection and decoding are per image and
cost as much as the forward pass) and 16 is slower; 4 keeps progress and Stop fine-grained
and holds fewer decoded photos in memory. See bench/bench_batch.py."""
RATE_LIMIT_RETRIES = 2
DEFAULT_PAUSE_SECONDS = 2.0  # when a 429 does not say how long to wait
MAX_PAUSE_SECONDS = 30.0

StopFlag = threading.Event | Callable[[], bool] | None
ProgressCallback = Callable[["ItemResult", int, int], None]


# --- per-thread Imagga clients -----------------------------------------------------------
class PerThreadImagga:
    """A ``backend_factory`` for Imagga: each call builds a client over a new session.

    ``run_batch`` calls it once per worker thread (``built`` counts them) and ``close()``
    at the end, which closes every session.
    """

    def __init__(self, credentials: Any, base_url: str, meter: Callable[[int], None] | None = None,
                 **client_kwargs: Any) -> None:
        self.credentials = credentials
        self.meter = meter  # charged before each request (tagging.auth.SpendMeter)
        self.base_url = base_url
        self.client_kwargs = client_kwargs
        self._sessions: list[Any] = []
        self._lock = threading.Lock()
        self.built = 0

    def __call__(self) -> ImaggaBackend:
        import requests

        from tagging.imagga import ImaggaClient

        session = requests.Session()
        with self._lock:
            self._sessions.append(session)
            self.built += 1
        client = ImaggaClient(self.credentials, base_url=self.base_url, session=session, **self.client_kwargs)
        return ImaggaBackend(client, meter=self.meter)

    def close(self) -> None:
        """Close every session built so far."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()


# --- the engine ----------------------------------------------------------------------
class Throttle(Protocol):
    """When a per-image request may be sent (see the module docstring)."""

    def slot(self) -> AbstractContextManager[object]: ...

    def wait(self, stopped: Callable[[], bool]) -> None: ...

    def hold(self, seconds: float) -> None: ...


class _Pause:
    """A shared 'no request before' time: a 429 on one worker thread holds back all of them.

    The in-process throttle: the thread pool's size is the concurrency limit, so ``slot()``
    holds nothing.
    """

    def slot(self) -> AbstractContextManager[object]:
        return nullcontext()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def wait(self, stopped: Callable[[], bool]) -> None:
        while not stopped():
            with self._lock:
                left = self._until - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))


def _stop_check(stop: StopFlag) -> Callable[[], bool]:
    if stop is None:
        return lambda: False
    if isinstance(stop, threading.Event):
        return stop.is_set
    return stop


def _as_items(items: Iterable[BatchItem | tuple[str, bytes]]) -> list[BatchItem]:
    return [item if isinstance(item, BatchItem) else BatchItem(item[0], bytes(item[1])) for item in items]


def with_duplicates(result: ItemResult, followers: dict[int, list[int]], items: list[BatchItem]) -> list[ItemResult]:
    """A result and those of the later items with the same bytes (``followers``: first index -> their indices)."""
    results = [result]
    for index in followers.get(result.index, []):
        name = items[index].name
        if result.tagged:
            results.append(replace(result, index=index, name=name, status=CACHED,
                                   reason=f"same image as “{result.name}” in this batch"))
        elif result.status == FAILED:
            results.append(replace(result, index=index, name=name,
                                   reason=f"same image as “{result.name}”: {result.reason}"))
        else:
            results.append(replace(result, index=index, name=name))
    return results


class _Outcome(Exception):  # noqa: N818 - not an error: carries a finished result out of a compute callback
    """A result decided inside a request (failed, skipped): nothing is stored for it."""

    def __init__(self, result: ItemResult) -> None:
        super().__init__(result.reason)
        self.result = result


class _Run:
    """The state of one ``run_batch`` call (shared by its worker threads)."""

    def __init__(
        self,
        items: list[BatchItem],
        backend: Backend,
        request: TagRequest,
        backend_key: str,
        cache: ResultCache | None,
        on_result: ProgressCallback | None,
        stopped: Callable[[], bool],
        max_bytes: int,
        max_pixels: int,
        throttle: Throttle | None = None,
    ) -> None:
        self.items = items
        self.backend = backend
        self.request = request
        self.request_key = request.cache_key()
        self.backend_key = backend_key
        self.cache = cache
        self.on_result = on_result
        self.user_stopped = stopped
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.results: dict[int, ItemResult] = {}
        self.followers: dict[int, list[int]] = {}  # first index -> later items with the same bytes
        self.lock = threading.Lock()
        self.calls = 0
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.aborted: str | None = None
        self.throttle: Throttle = throttle if throttle is not None else _Pause()

    # --- shared helpers ---------------------------------------------------------------
    def stopped(self) -> bool:
        return self.aborted is not None or self.user_stopped()

    def emit(self, result: ItemResult) -> None:
        """Record a result (caller's thread only) and those of its duplicates."""
        for one in with_duplicates(result, self.followers, self.items):
            self.results[one.index] = one
            if self.on_result is not None:
                self.on_result(one, len(self.results), len(self.items))

    def cached(self, item: BatchItem, index: int) -> ItemResult | None:
        if self.cache is None:
            return None
        try:
            payload = self.cache.get(self.backend_key, item.sha256, self.request_key)
        except (StoreError, OSError, ValueError) as exc:  # a broken cache must not stop the batch
            log.warning("result cache read failed (%s); tagging instead", type(exc).__name__)
            return None
        if payload is None:
            return None
        try:
            tags = tuple(parse_tags(payload, self.request.language))
        except TaggingError:
            return None  # a damaged entry: ask again, and the new answer replaces it
        return ItemResult(index, item.name, item.sha256, CACHED, "answered from the result cache", payload, tags)

    def store(self, item: BatchItem, payload: dict[str, Any]) -> None:
        if self.cache is None:
            return
        try:
            self.cache.put(self.backend_key, item.sha256, self.request_key, payload)
        except (StoreError, OSError, TypeError, ValueError) as exc:  # the answer is still good
            log.warning("result cache write failed (%s)", type(exc).__name__)

    def load(self, index: int) -> LoadedImage | ItemResult:
        item = self.items[index]
        try:
            return load_image(item.read(), item.name, max_bytes=self.max_bytes, max_pixels=self.max_pixels)
        except BadImageError as exc:
            return self.failed(index, str(exc))

    def done(self, index: int, image: LoadedImage, payload: Any) -> ItemResult:
        """Validate an answer, cache it and make the result (a malformed answer fails)."""
        item = self.items[index]
        try:
            tags = tuple(parse_tags(payload, self.request.language))
        except TaggingError as exc:
            return self.failed(index, f"the backend's answer could not be read: {exc}")
        self.store(item, payload)
        return ItemResult(index, item.name, item.sha256, OK, "", payload, tags, image.width, image.height)

    def failed(self, index: int, reason: str) -> ItemResult:
        item = self.items[index]
        return ItemResult(index, item.name, item.sha256, FAILED, reason)

    def skipped(self, index: int) -> ItemResult:
        item = self.items[index]
        reason = f"not sent: {self.aborted}" if self.aborted else "stopped before it was tagged"
        return ItemResult(index, item.name, item.sha256, SKIPPED, reason)

    def count_call(self, images: int, delta_in_flight: int = 0) -> None:
        with self.lock:
            self.calls += images
            self.requests += 1 if images else 0
            self.in_flight += delta_in_flight
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    # --- embedded: chunks through one forward pass each ---------------------------------
    def run_chunks(self, pending: list[int], tagger: Any, chunk_size: int) -> None:
        for start in range(0, len(pending), chunk_size):
            chunk = pending[start:start + chunk_size]
            if self.stopped():
                for index in pending[start:]:
                    self.emit(self.skipped(index))
                return
            loaded: list[tuple[int, LoadedImage]] = []
            for index in chunk:
                image = self.load(index)
                if isinstance(image, ItemResult):
                    self.emit(image)
                else:
                    loaded.append((index, image))
            if not loaded:
                continue
            self.count_call(len(loaded), +1)
            try:
                payloads = tagger.tag_batch([image.image for _, image in loaded])
            except Exception as exc:  # one bad image spoils a forward pass: isolate it
                log.warning("tag_batch of %d images failed (%s); tagging one at a time", len(loaded),
                            type(exc).__name__)
                payloads = None
            finally:
                self.count_call(0, -1)
            if payloads is None:
                for index, image in loaded:
                    self.emit(self.tag_one(index, image, lambda image=image: tagger.tag_batch([image.image])[0]))
                continue
            for (index, image), payload in zip(loaded, payloads, strict=True):
                self.emit(self.done(index, image, payload))

    def tag_one(self, index: int, image: LoadedImage, call: Callable[[], Any]) -> ItemResult:
        """One backend call with the in-flight count around it; errors become a failed result."""
        self.count_call(1, +1)
        try:
            payload = call()
        except TaggingError as exc:
            return self.failed(index, str(exc))
        except Exception as exc:  # the batch must go on; the log keeps the traceback
            return self.unexpected(index, exc)
        finally:
            self.count_call(0, -1)
        return self.done(index, image, payload)

    def unexpected(self, index: int, exc: Exception) -> ItemResult:
        """A failed result for an error no backend documents, logged with its traceback."""
        log.exception("unexpected error tagging %s", self.items[index].name)
        return self.failed(index, f"unexpected error ({type(exc).__name__}): {exc}")

    # --- Imagga (or any per-image backend): a bounded thread pool -----------------------
    def run_pool(self, pending: list[int], concurrency: int, factory: Callable[[], Backend] | None) -> None:
        local = threading.local()

        def backend_here() -> Backend:
            if factory is None:
                return self.backend
            backend = getattr(local, "backend", None)
            if backend is None:
                backend = local.backend = factory()
            return backend

        def work(index: int) -> ItemResult:
            if self.stopped():
                return self.skipped(index)
            image = self.load(index)
            if isinstance(image, ItemResult):
                return image
            backend = backend_here()
            computed: list[dict[str, Any]] = []

            def compute() -> dict[str, Any]:
                computed.append(self.call(index, image, backend))
                return computed[-1]

            try:
                payload, fresh = self.fetch(index, compute, computed)
            except _Outcome as outcome:
                return outcome.result
            return self.answered(index, image, payload, fresh)

        queue = list(reversed(pending))
        running: set[Future[ItemResult]] = set()
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="batch-tag") as pool:
            while queue or running:
                # Feed at most `concurrency` images at a time, so a stop leaves nothing queued.
                while queue and len(running) < concurrency and not self.stopped():
                    running.add(pool.submit(work, queue.pop()))
                if not running:
                    break
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    self.emit(future.result())
        for index in reversed(queue):
            self.emit(self.skipped(index))

    def call(self, index: int, image: LoadedImage, backend: Backend) -> dict[str, Any]:
        """One image's request: a slot, the shared pause, 429 retries; a well-formed answer or ``_Outcome``."""
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            self.throttle.wait(self.stopped)
            if self.stopped():
                raise _Outcome(self.skipped(index))
            with self.throttle.slot():
                self.throttle.wait(self.stopped)  # a 429 elsewhere while this one waited for its slot
                if self.stopped():
                    raise _Outcome(self.skipped(index))
                self.count_call(1, +1)
                try:
                    payload = backend.tag_image(image, self.request)
                except RateLimitError as exc:
                    wait_for = exc.retry_after if exc.retry_after else DEFAULT_PAUSE_SECONDS
                    if wait_for > MAX_PAUSE_SECONDS or attempt == RATE_LIMIT_RETRIES:
                        if wait_for > MAX_PAUSE_SECONDS:
                            self.abort(str(exc))
                        raise _Outcome(self.failed(index, str(exc))) from None
                    self.throttle.hold(wait_for)  # before the slot is released: nobody slips in
                    continue
                except (AuthError, BackendConnectionError, SpendCapError, PermissionDeniedError) as exc:
                    self.abort(str(exc))  # no later image would fare better
                    raise _Outcome(self.failed(index, str(exc))) from None
                except TaggingError as exc:
                    raise _Outcome(self.failed(index, str(exc))) from None
                except Exception as exc:  # the batch must go on; the log keeps the traceback
                    raise _Outcome(self.unexpected(index, exc)) from None
                finally:
                    self.count_call(0, -1)
            try:
                parse_tags(payload, self.request.language)
            except TaggingError as exc:  # raised inside get_or_compute: a malformed answer is never stored
                raise _Outcome(self.failed(index, f"the backend's answer could not be read: {exc}")) from None
            return payload
        raise AssertionError("unreachable")  # pragma: no cover

    def fetch(
        self, index: int, compute: Callable[[], dict[str, Any]], computed: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        """The cache's answer or ``compute()``'s (stored); True when computed now."""
        if self.cache is None:
            return compute(), True
        try:
            return self.cache.get_or_compute(self.backend_key, self.items[index].sha256, self.request_key, compute)
        except (StoreError, OSError, TypeError, ValueError) as exc:  # a broken cache must not stop the batch
            log.warning("result cache failed (%s); the answer is not stored", type(exc).__name__)
            return (computed[-1], True) if computed else (compute(), True)

    def answered(self, index: int, image: LoadedImage, payload: dict[str, Any], fresh: bool) -> ItemResult:
        item = self.items[index]
        try:
            tags = tuple(parse_tags(payload, self.request.language))
        except TaggingError as exc:
            return self.failed(index, f"the stored answer could not be read: {exc}")
        if fresh:
            return ItemResult(index, item.name, item.sha256, OK, "", payload, tags, image.width, image.height)
        return ItemResult(index, item.name, item.sha256, CACHED,
                          "answered from the result cache (paid for elsewhere meanwhile)", payload, tags,
                          image.width, image.height)

    def abort(self, reason: str) -> None:
        with self.lock:
            if self.aborted is None:
                self.aborted = reason


def run_batch(
    items: Iterable[BatchItem | tuple[str, bytes]],
    backend: Backend,
    request: TagRequest,
    *,
    backend_key: str,
    cache: ResultCache | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    on_result: ProgressCallback | None = None,
    stop: StopFlag = None,
    backend_factory: Callable[[], Backend] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    throttle: Throttle | None = None,
) -> BatchReport:
    """Tag every item; see the module docstring. Never raises for one image's failure.

    ``backend_key`` must be ``tagging.backends.backend_id(...)`` of the backend so answers are
    shared with the Tag page. A backend whose ``tagger`` has ``tag_batch`` (the embedded
    one) is fed in chunks of ``chunk_size``; any other backend runs in ``concurrency``
    threads. ``on_result(result, done, total)`` is called as each image finishes; ``stop``
    (an Event or a callable) ends the batch after the images in progress: the rest are
    ``skipped``. ``throttle`` replaces the in-process limit and 429 pause (a cluster's).
    """
    if concurrency < 1 or chunk_size < 1:
        raise ValueError("concurrency and chunk_size must be at least 1")
    started = time.perf_counter()
    batch = _as_items(items)
    run = _Run(batch, backend, request, backend_key, cache, on_result, _stop_check(stop), max_bytes, max_pixels,
               throttle)

    first_of: dict[str, int] = {}
    for index, item in enumerate(batch):
        try:
            item.sha256  # noqa: B018 - reads a source once; a bad one fails alone
        except SourceReadError as exc:
            run.emit(ItemResult(index, item.name, "", FAILED, str(exc)))
            continue
        if item.sha256 in first_of:
            run.followers.setdefault(first_of[item.sha256], []).append(index)
        else:
            first_of[item.sha256] = index
    pending: list[int] = []
    for index in first_of.values():
        hit = run.cached(batch[index], index)
        if hit is not None:
            run.emit(hit)
        else:
            pending.append(index)

    tagger = getattr(backend, "tagger", None) if backend_factory is None else None
    if pending and tagger is not None and hasattr(tagger, "tag_batch"):
        run.run_chunks(pending, tagger, chunk_size)
    elif pending:
        try:
            run.run_pool(pending, min(concurrency, MAX_CONCURRENCY), backend_factory)
        finally:
            close = getattr(backend_factory, "close", None)
            if callable(close):
                close()

    results = [run.results[i] for i in range(len(batch))]
    saved = sum(1 for r in results if r.status == CACHED)
    return BatchReport(
        results=results,
        calls_made=run.calls,
        calls_saved=saved,
        requests=run.requests,
        max_in_flight=run.max_in_flight,
        stopped=run.user_stopped() and any(r.status == SKIPPED for r in results),
        aborted=run.aborted,
        seconds=time.perf_counter() - started,
    )


# --- a batch in a background thread (for the page) -------------------------------------
class BatchJob:
    """``run_batch`` in a daemon thread; finished results are readable while it runs.

    The page keeps the job in its session state: reruns (any widget) do not interrupt
    it, ``stop()`` ends it after the images in progress, and every finished result is
    kept (and already in the disk cache).
    """

    def __init__(self, items: Iterable[BatchItem | tuple[str, bytes]], backend: Backend, request: TagRequest,
                 **options: Any) -> None:
        self.items = _as_items(items)
        self.backend = backend
        self.request = request
        self.options = options
        self.started_at: float | None = None
        self.report: BatchReport | None = None
        self.error: str | None = None
        self._results: dict[int, ItemResult] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="batch-job", daemon=True)

    @property
    def total(self) -> int:
        return len(self.items)

    def start(self) -> BatchJob:
        """Start the batch in its thread; returns self."""
        self.started_at = time.perf_counter()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the batch to stop after the images in progress."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self.done

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the batch ends (True) or ``timeout`` seconds pass (False)."""
        return self._finished.wait(timeout)

    def snapshot(self) -> list[ItemResult]:
        """The results finished so far, in input order."""
        with self._lock:
            return [self._results[i] for i in sorted(self._results)]

    def _record(self, result: ItemResult, done: int, total: int) -> None:
        with self._lock:
            self._results[result.index] = result

    def _execute(self) -> BatchReport:
        """Run the batch (in the job's thread); ``ClusterJob`` runs it on a Dask cluster instead."""
        return run_batch(self.items, self.backend, self.request, on_result=self._record, stop=self._stop,
                         **self.options)

    def _run(self) -> None:
        try:
            self.report = self._execute()
        except TaggingError as exc:  # e.g. the cluster went away: said as it is
            self.error = f"{exc} The results so far are kept."
        except Exception as exc:  # shown on the page; the finished results stay
            log.exception("batch failed")
            self.error = f"The batch ended unexpectedly ({type(exc).__name__}: {exc}); the results so far are kept."
        finally:
            self._finished.set()

    def results(self) -> list[ItemResult]:
        """Every item's result once done (unfinished ones ``skipped``), else the finished ones."""
        if self.report is not None:
            return self.report.results
        finished = {r.index: r for r in self.snapshot()}
        if not self.done:
            return list(finished.values())
        return [
            finished.get(i)
            or ItemResult(i, item.name, item.known_sha256, SKIPPED, "the batch ended before it was tagged")
            for i, item in enumerate(self.items)
        ]
