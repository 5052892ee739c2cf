"""The charts' fast specs draw what the Altair charts they come from draw."""

from __future__ import annotations

import pandas as pd

from tagging.models import Tag
from ui.batch import frequency_chart, frequency_spec
from ui.charts import FLOOR, NOT_SELECTED, SELECTED, labelled_confidence_chart, labelled_confidence_spec


def _same_chart(fast: dict, altair: dict) -> None:
    data = altair.pop("datasets")
    rows = data[altair.pop("data")["name"]]
    assert fast.pop("data")["values"] == rows
    for layer in altair["layer"]:
        if "data" in layer:
            layer["data"] = {"values": data[layer["data"]["name"]]}
    assert fast == altair


def test_the_tag_chart_spec_is_the_altair_chart_with_this_images_data():
    tags = [Tag("sky", 91.0), Tag("tree", 42.0), Tag("cloud", 42.0), Tag("car", 7.5)]
    fast = labelled_confidence_spec(tags, ["sky", "tree"], 60, ["tree"])
    altair = labelled_confidence_chart(tags, ["sky", "tree"], 60, ["tree"]).to_dict()
    assert [row["status"] for row in fast["data"]["values"]] == [SELECTED, FLOOR, NOT_SELECTED, NOT_SELECTED]
    _same_chart(fast, altair)


def test_the_frequency_chart_spec_is_the_altair_chart_with_this_batchs_data():
    frame = pd.DataFrame({"tag": ["cat", "pet", "sofa"], "images": [3, 2, 1], "share": [1.0, 0.67, 0.33]})
    _same_chart(frequency_spec(frame), frequency_chart(frame).to_dict())
