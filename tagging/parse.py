"""Parse Imagga v2 tag responses (and the embedded tagger's, which has the same shape)."""

from __future__ import annotations

import math
from typing import Any

from tagging.errors import ApiError, MalformedResponseError
from tagging.models import Tag


def _check_status(payload: dict[str, Any]) -> None:
    status = payload.get("status")
    if isinstance(status, dict) and status.get("type") == "error":
        text = str(status.get("text") or "no reason given")
        raise ApiError(f"The tagging service reported an error: {text}")


def _result(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise MalformedResponseError("The tagging service answered with something that is not a JSON object.")
    _check_status(payload)
    result = payload.get("result")
    if not isinstance(result, dict):
        raise MalformedResponseError("The tagging service's answer has no 'result' object.")
    return result


def _name(names: Any, language: str, what: str) -> tuple[str, dict[str, str]]:
    if not isinstance(names, dict) or not names:
        raise MalformedResponseError(f"A {what} in the answer has no names by language.")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in names.items()):
        raise MalformedResponseError(f"A {what} in the answer has names that are not text.")
    name = names.get(language, "").strip()
    if not name:
        raise MalformedResponseError(
            f"A {what} in the answer has no name in language '{language}' "
            f"(it has: {', '.join(sorted(names))})."
        )
    return name, dict(names)


def _confidence(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MalformedResponseError("A tag in the answer has a confidence that is not a number.")
    if not 0.0 <= value <= 100.0:
        raise MalformedResponseError(f"A tag in the answer has a confidence of {value}, outside 0-100.")
    return float(value)


def parse_tags(payload: Any, language: str = "en") -> list[Tag]:
    """Return the tags of a v2 ``/tags`` response in ``language``, highest confidence first.

    Extra fields (``origin``, ``synset_id``, ...) are ignored. A repeated name keeps its
    first, highest-confidence occurrence. Equal confidences keep the backend's order.

    Raises ApiError when ``status.type`` is ``"error"`` and MalformedResponseError when the
    body is not the documented shape (no ``result``, no ``tags`` list, a tag without a
    name in ``language``, a confidence that is not a number in 0-100).
    """
    result = _result(payload)
    raw_tags = result.get("tags")
    if not isinstance(raw_tags, list):
        raise MalformedResponseError("The tagging service's answer has no 'tags' list.")
    tags: list[Tag] = []
    seen: set[str] = set()
    for item in raw_tags:
        if not isinstance(item, dict):
            raise MalformedResponseError("A tag in the answer is not a JSON object.")
        name, names = _name(item.get("tag"), language, "tag")
        confidence = _confidence(item.get("confidence"))
        parent = item.get("parent")
        parent_name = parent.get(language) if isinstance(parent, dict) else None
        if name in seen:
            continue
        seen.add(name)
        tags.append(Tag(name=name, confidence=confidence, names=names, parent=parent_name))
    tags.sort(key=lambda t: -t.confidence)  # stable: ties keep the backend's order
    return tags


def response_languages(payload: Any) -> list[str]:
    """The languages present in every tag of a response (empty when there are no tags)."""
    result = _result(payload)
    common: set[str] | None = None
    for item in result.get("tags") or []:
        names = item.get("tag") if isinstance(item, dict) else None
        keys = set(names) if isinstance(names, dict) else set()
        common = keys if common is None else common & keys
    return sorted(common or [])
