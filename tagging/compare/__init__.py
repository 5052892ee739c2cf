"""Two taggers side by side: on one image, over a set, and against the analyst's own verdicts.

Taggers and sides (``_specs``), agreement on one image (``_agreement``), sets with their cost
counted before any call (``_sets``), scores against the verdicts (``_verdicts``), and the union
of two taggers' suggestions judged once, for the Review page (``_union``).
"""

from tagging.compare._agreement import (
    BOTH,
    NEITHER,
    ONLY_A,
    ONLY_B,
    SIDE_BY_SIDE_COLUMNS,
    Agreement,
    agreement,
    jaccard,
    side_by_side,
)
from tagging.compare._sets import (
    BOTH_ANSWERED,
    MISSES_COLUMNS,
    NOTED_COLUMNS,
    PER_IMAGE_COLUMNS,
    Answers,
    SetComparison,
    SetImage,
    SidePlan,
    compare_set,
    failures,
    gather,
    misses,
    noted_misses,
    plan_side,
    run_side,
    unique_images,
)
from tagging.compare._specs import (
    IMAGGA_SETUP_HINT,
    Side,
    TaggerChoice,
    TaggerSpec,
    available_taggers,
    embedded_request,
    imagga_request,
)
from tagging.compare._union import Suggestions, UnionTag, split_verdicts, union_suggestions
from tagging.compare._verdicts import (
    OWN,
    POOLED,
    SCOPES,
    VERDICT_COLUMNS,
    Truth,
    VerdictCounts,
    VerdictScore,
    score_side,
    truth_from,
    verdict_counts,
    verdict_summary,
    verdict_table,
)

__all__ = [
    "BOTH", "BOTH_ANSWERED", "IMAGGA_SETUP_HINT", "MISSES_COLUMNS", "NEITHER", "NOTED_COLUMNS", "ONLY_A", "ONLY_B",
    "OWN",
    "PER_IMAGE_COLUMNS", "POOLED", "SCOPES", "SIDE_BY_SIDE_COLUMNS", "VERDICT_COLUMNS", "Agreement", "Answers",
    "SetComparison", "SetImage", "Side", "SidePlan", "Suggestions", "TaggerChoice", "TaggerSpec", "Truth",
    "UnionTag", "VerdictCounts", "VerdictScore", "agreement", "available_taggers", "compare_set", "embedded_request",
    "failures", "gather", "imagga_request", "jaccard", "misses", "noted_misses", "plan_side", "run_side", "score_side",
    "side_by_side", "split_verdicts", "truth_from", "union_suggestions", "unique_images", "verdict_counts",
    "verdict_summary", "verdict_table",
]
