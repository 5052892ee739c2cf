"""The embedded offline tagger that ships with the project (no key, no network)."""

from tagging.embedded._tagger import MAX_TAGS, MIN_CONFIDENCE, EmbeddedTagger, face_confidence

__all__ = ["MAX_TAGS", "MIN_CONFIDENCE", "EmbeddedTagger", "face_confidence"]
