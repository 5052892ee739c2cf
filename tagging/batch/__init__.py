"""Batches: many images (files or zip archives) tagged fast, stoppably, never billed twice.

``run_batch`` is the in-process engine (threads for Imagga, batched forward passes for the
embedded tagger); ``BatchJob`` runs it in a background thread for the Batch page. The
views turn results into tables and exports and save them to the store.
"""

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
from tagging.batch._engine import (
    CACHED,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONCURRENCY,
    FAILED,
    MAX_CONCURRENCY,
    OK,
    SKIPPED,
    STATUSES,
    BatchItem,
    BatchJob,
    BatchReport,
    ByteSource,
    ItemResult,
    PerThreadImagga,
    run_batch,
)
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
    "CACHED", "DEFAULT_CHUNK_SIZE", "DEFAULT_CONCURRENCY", "FAILED", "MAX_CONCURRENCY", "OK", "SKIPPED", "STATUSES",
    "ArchiveContents", "ArchiveError", "BatchItem", "BatchJob", "BatchReport", "ByteSource", "ItemResult",
    "PerThreadImagga", "SaveSummary", "Skipped", "export_csv", "export_json", "extract_images", "is_zip",
    "results_frame", "run_batch", "sanitize_member_name", "save_batch", "select", "sniff_image", "tag_frequency",
    # lazy archives and the upload budget (issue 10)
    "ArchiveIndex", "BudgetExceededError", "ByteBudget", "HeldBytes", "Hold", "ZipBytes", "ZipMember", "scan_archive",
]
