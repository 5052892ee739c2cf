"""The command line: ``python -m tagging batch PATH...`` tags folders, globs, zips and fsspec URLs;
``copy-library SRC DST`` moves a library between databases; ``bench TARGET --images N`` writes a synthetic one.

Locally it runs the Batch page's engine (``run_batch``); with ``--scheduler`` or
``DASK_SCHEDULER_ADDRESS`` it runs on that Dask cluster's workers (``run_on_cluster``).
Answers go to the result cache beside ``TAGGING_DB`` as they arrive, so a stopped batch
(Ctrl-C) resumes where it was by running the same command again. Results are written in
input order as they arrive (CSV to stdout without ``--out``), with the selection rule of the
Batch page (the stored default threshold and per-tag overrides unless given).

Exit codes: 0 every image tagged; 1 some images failed or were not sent; 2 bad arguments or
input (paths, URLs, no images, Imagga not configured, the database); 3 the cluster cannot be
used; 130 stopped by Ctrl-C (what finished is written and cached).
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from tagging.backends import EMBEDDED, IMAGGA, IMAGGA_LANGUAGES, MODE_UPLOAD, TagRequest, backend_id
from tagging.batch import (
    CACHED,
    DEFAULT_CONCURRENCY,
    FAILED,
    MAX_CONCURRENCY,
    OK,
    SKIPPED,
    BatchItem,
    ItemResult,
    WorkSpec,
    connect,
    discover,
    require_images,
    run_batch,
    run_on_cluster,
    shared_target,
)
from tagging.batch._views import ExportWriter
from tagging.config import Settings, load_settings
from tagging.errors import BatchInputError, ClusterError, StoreError, TaggingError
from tagging.rules import DEFAULT_MIN_TAGS, DEFAULT_THRESHOLD

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_CLUSTER, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
LOCAL_WINDOW = 256
"""Images per ``run_batch`` call when running locally: results of one window are held, never the whole batch."""
SHOWN_FAILURES = 10
SECRETS_FILES = (Path.home() / ".streamlit" / "secrets.toml", Path(".streamlit") / "secrets.toml")

log = logging.getLogger("tagging.cli")


class UsageError(TaggingError):
    """A command-line argument or setting that makes the batch impossible (exit code 2)."""


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def read_secrets(files: Sequence[Path] = SECRETS_FILES) -> dict[str, str]:
    """String values of Streamlit's secrets files (the project's wins over the global one), as the pages read them."""
    secrets: dict[str, str] = {}
    for path in files:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            continue
        except (OSError, tomllib.TOMLDecodeError) as exc:
            _say(f"warning: {path} could not be read ({type(exc).__name__}); its settings are ignored.")
            continue
        secrets.update({k: v for k, v in data.items() if isinstance(v, str)})
    return secrets


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tagging", description="Image tagging from the command line.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    batch = commands.add_parser(
        "batch", help="tag many images: folders, globs, zip files, fsspec URLs",
        description="Tag every image under the given paths, locally or on a Dask cluster; answers are cached "
                    "beside TAGGING_DB, so running the same command again costs nothing for what finished.",
        epilog="Exit codes: 0 all tagged, 1 some failed or not sent, 2 bad input, 3 cluster unavailable, "
               "130 stopped (Ctrl-C; run again to resume).",
    )
    batch.add_argument("paths", nargs="+", metavar="PATH",
                       help="a file, a folder (recursive), a glob ('photos/**/*.jpg'), a zip file, or an fsspec URL "
                            "(file:///data/photos, s3://bucket/photos/ with s3fs installed)")
    batch.add_argument("--backend", choices=(EMBEDDED, IMAGGA), default=EMBEDDED,
                       help="embedded (offline, default) or imagga (needs IMAGGA_API_KEY and IMAGGA_API_SECRET)")
    batch.add_argument("--scheduler", metavar="ADDRESS",
                       help="a Dask scheduler, e.g. tcp://host:8786 (default: DASK_SCHEDULER_ADDRESS; none = "
                            "run here)")
    batch.add_argument("--out", metavar="FILE", help="results.csv or results.json (default: CSV on stdout)")
    batch.add_argument("--threshold", type=int, metavar="0-100",
                       help="select tags at or above this confidence (default: the stored default, else 60)")
    batch.add_argument("--min-tags", type=int, metavar="N",
                       help=f"never select fewer than N top tags (default {DEFAULT_MIN_TAGS})")
    batch.add_argument("--language", default="en", metavar="CODE", help="Imagga: tag language (default en)")
    batch.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
                       help=f"Imagga: requests in flight at once, across the whole cluster (your plan's limit; "
                            f"default {DEFAULT_CONCURRENCY}, at most {MAX_CONCURRENCY})")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    batch.add_argument("--verbose", action="store_true", help="list every file not read and every failure; "
                                                               "Dask's own log messages")
    copy = commands.add_parser(
        "copy-library", help="copy a library between databases (SQLite <-> PostgreSQL), resumable",
        description="Copy images, verdict sets, verdicts, settings and cached answers from SRC to DST (each a "
                    "TAGGING_DB value: a file path or a sqlite:/// or postgresql:// URL), a chunk of images per "
                    "transaction. Run it again after a stop: it resumes after the last chunk copied. It ends by "
                    "comparing row counts on both sides.",
        epilog="Exit codes: 0 copied and the counts agree, 1 the counts differ, 2 a database cannot be used.",
    )
    copy.add_argument("source", metavar="SRC")
    copy.add_argument("target", metavar="DST")
    copy.add_argument("--chunk", type=int, default=500, metavar="N", help="images per transaction (default 500)")
    bench = commands.add_parser(
        "bench", help="write a synthetic library of N images (for the benchmarks)",
        description="Add N synthetic images (one embedded/en verdict set each, a share of them reviewed) with "
                    "their verdicts to TARGET, in set-based SQL: a million images take minutes, not hours.",
    )
    bench.add_argument("target", metavar="TARGET", help="a TAGGING_DB value: file path, sqlite:/// or postgresql://")
    bench.add_argument("--images", type=int, required=True, metavar="N")
    bench.add_argument("--verdicts", type=int, default=10, metavar="N", help="verdicts per image (default 10)")
    bench.add_argument("--reviewed", type=int, default=30, metavar="PERCENT",
                       help="share of reviewed images (default 30)")
    bench.add_argument("--start", type=int, default=0, metavar="N", help="first image number (to add more)")
    return parser


def copy_library_command(args: argparse.Namespace) -> int:
    """``copy-library``: copy, resume, verify by counts."""
    from tagging.store import open_store
    from tagging.store._transfer import copy_library

    password = os.environ.get("TAGGING_DB_PASSWORD") or None
    try:
        source, target = open_store(args.source, password), open_store(args.target, password)
        report = copy_library(source, target, max(1, args.chunk),
                              progress=lambda n: _say(f"{n} images copied") if n % 50_000 < args.chunk else None)
    except StoreError as exc:
        _say(str(exc))
        return EXIT_USAGE
    for table, (a, b) in report.counts.items():
        _say(f"{table}: {a} in {source.url}, {b} in {target.url}" + ("" if a == b else "  <- differs"))
    if not report.verified:
        _say("The counts differ: DST had other rows, or SRC changed during the copy.")
        return EXIT_INCOMPLETE
    return EXIT_OK


def bench_command(args: argparse.Namespace) -> int:
    """``bench``: a synthetic library."""
    from tagging.store import open_store
    from tagging.store._transfer import generate

    try:
        store = open_store(args.target, os.environ.get("TAGGING_DB_PASSWORD") or None)
        generate(store, args.images, args.verdicts, args.reviewed, args.start,
                 progress=lambda n: _say(f"{n} images written"))
        images, verdicts = store.counts()
    except (StoreError, ValueError) as exc:
        _say(str(exc))
        return EXIT_USAGE
    _say(f"{store.url}: {images} images, {verdicts} verdicts")
    return EXIT_OK


# --- settings and checks ----------------------------------------------------------------------
def _check_out(out: str | None) -> str | None:
    if out is None:
        return None
    suffix = Path(out).suffix.lower()
    if suffix not in (".csv", ".json"):
        raise UsageError(f"--out must end in .csv or .json, not “{out}”.")
    folder = Path(out).resolve().parent
    if not folder.is_dir():
        raise UsageError(f"--out: the folder “{folder}” does not exist.")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"--out: the folder “{folder}” cannot be written to.")
    return suffix[1:]


def _rule(args: argparse.Namespace, target: str, password: str | None) -> tuple[int, int, dict[str, float]]:
    """The Batch page's rule: the stored default threshold and per-tag overrides, unless given."""
    from tagging.store import open_store

    try:
        store = open_store(target, password)
        stored = store.get_setting("default_threshold")
        overrides = store.get_setting("tag_overrides", {}) or {}
    except StoreError as exc:
        raise UsageError(f"Cannot open the feedback database: {exc} Set TAGGING_DB (and TAGGING_DB_PASSWORD) to a "
                         "database you can write to.") from exc
    threshold = args.threshold if args.threshold is not None else int(round(stored or DEFAULT_THRESHOLD))
    min_tags = args.min_tags if args.min_tags is not None else DEFAULT_MIN_TAGS
    if not 0 <= threshold <= 100:
        raise UsageError("--threshold is a confidence between 0 and 100.")
    if min_tags < 0:
        raise UsageError("--min-tags cannot be negative.")
    return threshold, min_tags, overrides


def _request(args: argparse.Namespace, settings: Settings) -> TagRequest:
    if args.backend == EMBEDDED:
        return TagRequest(language="en", mode=MODE_UPLOAD)  # exactly the pages', so answers are shared
    if settings.imagga is None:
        raise UsageError("Imagga is not configured: set IMAGGA_API_KEY and IMAGGA_API_SECRET (environment or "
                         ".streamlit/secrets.toml), or use --backend embedded.")
    if args.language not in IMAGGA_LANGUAGES:
        raise UsageError(f"--language {args.language} is not one of Imagga's languages.")
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        raise UsageError(f"--concurrency is between 1 and {MAX_CONCURRENCY}.")
    return TagRequest(language=args.language, mode=MODE_UPLOAD)


# --- output in input order ------------------------------------------------------------------------
class _InOrder:
    """Results arrive in any order; they are written in input order as soon as the ones before them are."""

    def __init__(self, writer: ExportWriter) -> None:
        self.writer = writer
        self.held: dict[int, ItemResult] = {}
        self.next = 0

    def add(self, result: ItemResult) -> None:
        self.held[result.index] = result
        ready = []
        while self.next in self.held:
            ready.append(self.held.pop(self.next))
            self.next += 1
        self.writer.write(ready)


class _Progress:
    """A tqdm bar on stderr (also without a terminal: then it prints a line every few seconds)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            tty = sys.stderr.isatty()
            self.bar = tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=tty, ascii=not tty,
                            mininterval=0.2 if tty else 5.0, smoothing=0.1)

    def update(self, counts: dict[str, int]) -> None:
        if self.bar is not None:
            self.bar.set_postfix(cached=counts[CACHED], failed=counts[FAILED], refresh=False)
            self.bar.update(1)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            _say(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --- running ------------------------------------------------------------------------------------
def _local_runner(items: list[BatchItem], args: argparse.Namespace, settings: Settings, request: TagRequest,
                  target: str) -> Callable[[Callable[[ItemResult], None], threading.Event], None]:
    from tagging.store import open_result_cache

    cache = open_result_cache(target, settings.db_password)
    if args.backend == EMBEDDED:
        from tagging.backends import EmbeddedBackend

        backend: Any = EmbeddedBackend()
        factory = None
    else:
        from tagging.backends import ImaggaBackend
        from tagging.batch import PerThreadImagga
        from tagging.imagga import ImaggaClient

        assert settings.imagga is not None
        backend = ImaggaBackend(ImaggaClient(settings.imagga, base_url=settings.imagga_url))
        factory = PerThreadImagga(settings.imagga, settings.imagga_url)
    key = backend_id(args.backend, settings.imagga_url)

    def run(emit: Callable[[ItemResult], None], stop: threading.Event) -> None:
        aborted = None
        for start in range(0, len(items), LOCAL_WINDOW):
            window = items[start:start + LOCAL_WINDOW]
            if stop.is_set() or aborted:
                reason = f"not sent: {aborted}" if aborted else "stopped before it was tagged"
                for offset, item in enumerate(window):
                    emit(ItemResult(start + offset, item.name, item.known_sha256, SKIPPED, reason))
                continue
            report = run_batch(
                window, backend, request, backend_key=key, cache=cache, concurrency=args.concurrency,
                backend_factory=factory, stop=stop, max_bytes=settings.max_upload_bytes,
                max_pixels=settings.max_pixels,
                on_result=lambda r, _done, _total, start=start: emit(replace(r, index=start + r.index)),
            )
            if report.aborted:  # credentials, an unreachable host, a long 429: the rest would fail alike
                aborted = report.aborted
                _say(f"The batch ended early: {aborted}")

    return run


def _cluster_runner(items: list[BatchItem], args: argparse.Namespace, settings: Settings, request: TagRequest,
                    target: str, address: str) -> Callable[[Callable[[ItemResult], None], threading.Event], None]:
    client = connect(address)
    spec = WorkSpec(
        backend=args.backend, request=request, backend_key=backend_id(args.backend, settings.imagga_url),
        cache_target=target, cache_password=settings.db_password, concurrency=args.concurrency,
        imagga_url=settings.imagga_url,
        credentials=settings.imagga if args.backend == IMAGGA else None, max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_pixels,
    )

    def run(emit: Callable[[ItemResult], None], stop: threading.Event) -> None:
        try:
            report = run_on_cluster(client, items, spec, on_result=lambda r, _d, _t: emit(r), stop=stop,
                                    keep_results=False)
            if report.aborted:
                _say(f"The batch ended early: {report.aborted}")
        finally:
            client.close()

    return run


def _tag(items: list[BatchItem], runner: Callable[[Callable[[ItemResult], None], threading.Event], None],
         writer: ExportWriter, progress: _Progress, verbose: bool
         ) -> tuple[dict[str, int], bool, BaseException | None]:
    """Run the batch in a thread; write and count results here. Ctrl-C stops after the images in progress."""
    results: queue.Queue[ItemResult] = queue.Queue()
    stop = threading.Event()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            runner(results.put, stop)
        except TaggingError as exc:  # the cluster went away mid-batch, ...: reported below
            failure.append(exc)
        except Exception as exc:  # unexpected: logged with its traceback, reported below
            log.exception("the batch failed")
            failure.append(exc)

    def on_interrupt(signum: int, frame: Any) -> None:
        # Only a flag here: a KeyboardInterrupt raised at any point of this thread could cut a row in half.
        if stop.is_set():
            _say("Quit. What was tagged is in the cache: run the same command again to finish.")
            os._exit(EXIT_INTERRUPTED)
        stop.set()

    thread = threading.Thread(target=work, name="tagging-batch", daemon=True)
    ordered = _InOrder(writer)
    counts = {OK: 0, CACHED: 0, FAILED: 0, SKIPPED: 0}
    shown = 0
    interrupted = False
    seen: set[int] = set()
    previous = signal.signal(signal.SIGINT, on_interrupt)
    thread.start()
    try:
        while thread.is_alive() or not results.empty():
            if stop.is_set() and not interrupted and not failure:
                interrupted = True
                progress.note("Stopping after the images in progress… (Ctrl-C again to quit at once)")
            try:
                result = results.get(timeout=0.2)
            except queue.Empty:
                continue
            seen.add(result.index)
            counts[result.status] += 1
            if result.status == FAILED and (verbose or shown < SHOWN_FAILURES):
                shown += 1
                progress.note(f"failed: {result.name}: {result.reason}")
            ordered.add(result)
            progress.update(counts)
    finally:
        signal.signal(signal.SIGINT, previous)
    for index, item in enumerate(items):  # what never came back (the runner failed) is written as not tagged
        if index not in seen:
            counts[SKIPPED] += 1
            ordered.add(ItemResult(index, item.name, item.known_sha256, SKIPPED, "the batch ended before it was "
                                                                                  "tagged"))
    return counts, interrupted, failure[0] if failure else None


def batch(args: argparse.Namespace) -> int:
    """The ``batch`` command; returns the exit code."""
    settings = load_settings(os.environ, read_secrets())
    for problem in settings.problems:
        _say(f"warning: {problem}")
    try:
        fmt = _check_out(args.out)
        request = _request(args, settings)
        target = shared_target(settings.db_target)
        threshold, min_tags, overrides = _rule(args, target, settings.db_password)
        found = discover(args.paths, max_bytes=settings.max_upload_bytes)
        if found.skipped:
            files = "file" if len(found.skipped) == 1 else "files"
            _say(f"{len(found.skipped)} {files} not read" + (":" if args.verbose else " (--verbose lists them)."))
            if args.verbose:
                for skipped in found.skipped:
                    _say(f"  {skipped.name}: {skipped.reason}")
        items = require_images(found)
    except (UsageError, BatchInputError) as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    address = args.scheduler or settings.scheduler_address
    try:
        if address:
            runner = _cluster_runner(items, args, settings, request, target, address)
        else:
            runner = _local_runner(items, args, settings, request, target)
    except ClusterError as exc:
        _say(f"error: {exc}")
        return EXIT_CLUSTER
    where = f"on the Dask cluster at {address}" if address else "here"
    _say(f"Tagging {len(items)} images with the {args.backend} backend {where}.")

    started = time.perf_counter()
    handle: IO[str]
    partial = None
    if args.out:
        partial = Path(args.out).with_name(Path(args.out).name + ".partial")
        handle = open(partial, "w", encoding="utf-8", newline="")
    else:
        handle = sys.stdout
    writer = ExportWriter(handle, fmt or "csv", threshold, min_tags, overrides, backend=args.backend,
                          request=request)
    progress = _Progress(len(items), not args.no_progress)
    try:
        counts, interrupted, error = _tag(items, runner, writer, progress, args.verbose)
        writer.close()
    finally:
        progress.close()
        if handle is not sys.stdout:
            handle.close()
    if partial is not None:
        os.replace(partial, args.out)
    seconds = time.perf_counter() - started
    tagged = counts[OK] + counts[CACHED]
    _say(f"{tagged} of {len(items)} images tagged: {counts[OK]} now, {counts[CACHED]} from the cache (no call), "
         f"{counts[FAILED]} failed, {counts[SKIPPED]} not tagged · {seconds:.1f} s "
         f"({len(items) / seconds if seconds > 0 else 0:.1f} images/s)" + (f" · written to {args.out}" if args.out
                                                                            else ""))
    if error is not None:
        if isinstance(error, TaggingError):
            _say(f"error: {error}")
        else:
            _say(f"error: the batch ended unexpectedly ({type(error).__name__}: {error}); what finished is written "
                 "and cached.")
        return EXIT_CLUSTER if address else EXIT_INCOMPLETE
    if interrupted:
        _say("Stopped. Run the same command again to finish: what was tagged comes from the cache, free.")
        return EXIT_INTERRUPTED
    return EXIT_OK if tagged == len(items) else EXIT_INCOMPLETE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m tagging``."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "verbose", False):
        for noisy in ("distributed", "tornado", "asyncio"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
    if args.command == "copy-library":
        return copy_library_command(args)
    if args.command == "bench":
        return bench_command(args)
    if args.command == "batch":
        try:
            return batch(args)
        except KeyboardInterrupt:
            _say("Interrupted. What was tagged is in the cache: run the same command again to finish.")
            return EXIT_INTERRUPTED
    return EXIT_USAGE  # pragma: no cover - argparse requires a command
