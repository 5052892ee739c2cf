"""Batches: many images (files or zip archives) tagged fast, stoppably, never billed twice.

``run_batch`` is the in-process engine (threads for Imagga, batched forward passes for the
embedded tagger); ``BatchJob`` runs it in a background thread for the Batch page.
``run_on_cluster`` runs the same engine chunk by chunk on a Dask cluster's workers
(``ClusterJob`` for the page). ``discover`` lists the images of folders, globs, zips and
fsspec URLs as lazily read items. The views turn results into tables and exports and
save them to the store.
"""

from tagging.batch._analysis import SUMMARY_COLUMNS, THUMBNAILS_KEPT, analyse_batch, summary_of
from tagging.batch._archive import (
    ArchiveContents,
    ArchiveError,
    ArchiveIndex,
    Skipped,
    ZipBytes,
    ZipMember,
    extract_images,
    is_zip,
    sanitize_member_name,
    scan_archive,
    sniff_image,
)
from tagging.batch._budget import BudgetExceededError, ByteBudget, HeldBytes, Hold
from tagging.batch._cluster import (
    ClusterJob,
    WorkSpec,
    connect,
    run_on_cluster,
    shared_target,
    worker_counters,
)
from tagging.batch._engine import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONCURRENCY,
    MAX_CONCURRENCY,
    BatchJob,
    PerThreadImagga,
    Throttle,
    run_batch,
)
from tagging.batch._items import CACHED, FAILED, OK, SKIPPED, STATUSES, BatchItem, BatchReport, ByteSource, ItemResult
from tagging.batch._sources import Discovery, FileSource, ZipMemberSource, discover, require_images, shown_url
from tagging.batch._views import (
    SaveSummary,
    export_csv,
    export_json,
    results_frame,
    save_batch,
    select,
    tag_frequency,
)

__all__ = [
    "SUMMARY_COLUMNS", "THUMBNAILS_KEPT", "analyse_batch", "summary_of",
    "CACHED", "DEFAULT_CHUNK_SIZE", "DEFAULT_CONCURRENCY", "FAILED", "MAX_CONCURRENCY", "OK", "SKIPPED", "STATUSES",
    "ArchiveContents", "ArchiveError", "ArchiveIndex", "BatchItem", "BatchJob", "BatchReport", "BudgetExceededError",
    "ByteBudget", "ByteSource", "ClusterJob", "Discovery", "FileSource", "HeldBytes", "Hold", "ItemResult",
    "PerThreadImagga", "SaveSummary", "Skipped", "Throttle", "WorkSpec", "ZipBytes", "ZipMember", "ZipMemberSource",
    "connect", "discover", "export_csv", "export_json", "extract_images", "is_zip", "require_images", "results_frame",
    "run_batch", "run_on_cluster", "sanitize_member_name", "save_batch", "scan_archive", "select", "shared_target",
    "shown_url", "sniff_image", "tag_frequency", "worker_counters",
]
