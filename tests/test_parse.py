from __future__ import annotations

import pytest

from tagging.errors import ApiError, MalformedResponseError
from tagging.parse import parse_tags, response_languages

CONTRACT_EXAMPLE = {
    "result": {
        "tags": [
            {"confidence": 76.4135513305664, "tag": {"en": "mountain"}},
            {"confidence": 69.7975997924805, "tag": {"en": "highland"}},
            {"confidence": 54.8374099731445, "tag": {"en": "mountains"}},
            {"confidence": 54.5085144042969, "tag": {"en": "landscape"}},
            {"confidence": 38.0158271789551, "tag": {"en": "sky"}},
        ]
    },
    "status": {"text": "", "type": "success"},
}


def test_contract_example():
    tags = parse_tags(CONTRACT_EXAMPLE)
    assert [t.name for t in tags] == ["mountain", "highland", "mountains", "landscape", "sky"]
    assert tags[0].confidence == pytest.approx(76.4135513305664)
    assert tags[0].parent is None


def test_languages_and_extra_fields():
    body = {
        "result": {
            "tags": [
                {"confidence": 50, "tag": {"en": "cat", "de": "Katze"}, "origin": "additional", "synset_id": "x"},
                {"confidence": 80, "tag": {"en": "pet", "de": "Haustier"}, "parent": {"en": "animal"}},
            ]
        },
        "status": {"type": "success", "text": ""},
    }
    de = parse_tags(body, "de")
    assert [t.name for t in de] == ["Haustier", "Katze"]
    assert de[1].names == {"en": "cat", "de": "Katze"}
    en = parse_tags(body)
    assert en[0].parent == "animal"
    assert response_languages(body) == ["de", "en"]


def test_missing_language_is_malformed():
    with pytest.raises(MalformedResponseError, match="'fr'"):
        parse_tags(CONTRACT_EXAMPLE, "fr")


def test_duplicates_keep_first_and_ties_keep_order():
    body = {"result": {"tags": [
        {"confidence": 40, "tag": {"en": "b"}},
        {"confidence": 40, "tag": {"en": "a"}},
        {"confidence": 30, "tag": {"en": "b"}},
    ]}}
    assert [(t.name, t.confidence) for t in parse_tags(body)] == [("b", 40.0), ("a", 40.0)]


def test_empty_tags():
    assert parse_tags({"result": {"tags": []}, "status": {"type": "success"}}) == []


@pytest.mark.parametrize(
    "body",
    [
        "<html>502</html>",
        [],
        {},
        {"status": {"type": "success"}},
        {"result": []},
        {"result": {}},
        {"result": {"tags": {}}},
        {"result": {"tags": ["cat"]}},
        {"result": {"tags": [{"confidence": "high", "tag": {"en": "cat"}}]}},
        {"result": {"tags": [{"confidence": True, "tag": {"en": "cat"}}]}},
        {"result": {"tags": [{"confidence": float("nan"), "tag": {"en": "cat"}}]}},
        {"result": {"tags": [{"confidence": 101, "tag": {"en": "cat"}}]}},
        {"result": {"tags": [{"confidence": 50, "tag": "cat"}]}},
        {"result": {"tags": [{"confidence": 50, "tag": {"en": 3}}]}},
        {"result": {"tags": [{"confidence": 50, "tag": {"en": "  "}}]}},
        {"result": {"tags": [{"confidence": 50}]}},
    ],
)
def test_malformed(body):
    with pytest.raises(MalformedResponseError):
        parse_tags(body)


def test_status_error_uses_service_text():
    with pytest.raises(ApiError, match="Invalid image"):
        parse_tags({"status": {"type": "error", "text": "Invalid image"}})
