"""Build ``tagging/embedded/data/imagenet-vocabulary.json``: the words the ImageNet classifier's classes stand for.

The embedded tagger turns the classifier's 1000 class probabilities into tags a person would type. Each class
stands for a few terms, with a weight (1 = whenever the class is right, the term is right):

* its WordNet hypernym chain ("egyptian cat" -> "domestic cat" -> "cat" -> "feline" -> "mammal" -> "animal"),
  following the FIRST hypernym pointer of each synset in WordNet 3.0 ``data.noun``, without the synsets a
  person would not type: the abstract top of the hierarchy and taxonomy (``STOPLIST``), and internal synsets
  that are multi-word and never tagged in the SemCor corpus (``cntlist.rev`` count 0) unless listed in ``KEEP``.
  A kept synset is named by its lemma with the highest SemCor count (``conveyance`` -> ``transport``), leaves
  by their ImageNet class name;
* scene words for classes that are places (``SCENES``: alp -> mountain, landscape; seashore -> beach, sea, ...);
* context words for classes whose training photos share a setting or imply something the model has no class
  for (``CONTEXT``: insects are photographed on plants and flowers, worn clothes on people, menus are text),
  with a weight below 1 where the word is only usually right.

Output (deterministic, one class a line, so a rebuild is byte-for-byte identical and diffs stay readable)::

    {"comment": ..., "terms": {id: {"name": str, "parent": id or null[, "setting": true]}},
     "classes": [[id or [id, weight], ...] for class 0 .. 999]}

Term ids are WordNet noun offsets, or ``x:<word>`` for scene and context words WordNet has no synset for in
this tree. A class's terms are the listed ones and all their ancestors (at the same weight).

Inputs: Debian's ``wordnet-base`` (``/usr/share/wordnet/data.noun`` and ``cntlist.rev``; WordNet 3.0,
(c) Princeton University, see ``tagging/embedded/data/WORDNET-LICENSE.txt``) and the class list
``tagging/embedded/data/imagenet-labels.json`` written by ``scripts/export_onnx.py``. Re-run::

    .venv/bin/python scripts/build_vocabulary.py          # reads /usr/share/wordnet
    .venv/bin/python scripts/build_vocabulary.py --wordnet DIR --out FILE
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tagging" / "embedded" / "data"
DEFAULT_WORDNET = Path("/usr/share/wordnet")
DEFAULT_LABELS = DATA / "imagenet-labels.json"
DEFAULT_OUT = DATA / "imagenet-vocabulary.json"
NUM_CLASSES = 1000

# Synsets never emitted as tags, by WordNet 3.0 noun offset, valued by the first lemma (checked, so another
# WordNet version fails loudly). Their children attach to the nearest kept ancestor.
STOPLIST: dict[str, str] = {
    # Top of the noun hierarchy: true of (almost) every photo, so they say nothing.
    "00001740": "entity", "00001930": "physical_entity", "00002137": "abstraction", "00002684": "object",
    "00003553": "whole", "00004258": "living_thing", "00004475": "organism", "00019128": "natural_object",
    "00019613": "substance", "00020090": "substance", "00020827": "matter", "00021939": "artifact",
    "00022903": "article", "00024264": "attribute", "00027167": "location", "00027807": "shape",
    "00033020": "communication", "03575240": "instrumentality", "03892891": "part", "03932203": "piece",
    "04377057": "system", "06254669": "medium", "08620061": "point", "14580897": "material",
    "15046900": "solid",
    # Economic and nutritional categories, not something one sees ("food" as nutrient is above every
    # beverage: an espresso is not food; the solid-food "food" stays).
    "00021265": "food",
    # Shapes: a bubble is a "globule", a "ball" (merging with sports balls by name) and a "sphere".
    "13899404": "ball", "13899200": "sphere",
    "03076708": "commodity", "03093574": "consumer_goods", "03257877": "durables", "07570720": "nutriment",
}

# Internal synsets a person would not type, by first lemma: taxonomy ("vertebrate" sits above 330 classes;
# "animal" and "mammal" say it plainly) and vague categories ("device" is above 124 classes, from a corkscrew
# to a solar dish). Each must name an ancestor of some class, so a typo fails loudly.
JARGON: frozenset[str] = frozenset({
    "vertebrate", "chordate", "placental", "diapsid", "invertebrate", "arthropod", "carnivore", "canine",
    "ungulate", "even-toed_ungulate", "odd-toed_ungulate", "ruminant", "bovid", "saurian", "passerine", "oscine",
    "arachnid", "elasmobranch", "chelonian", "anapsid", "metatherian", "prototherian",
    "procyonid", "viverrine", "proboscidean", "leporid", "lagomorph", "coelenterate", "echinoderm", "phasianid",
    "gastropod", "spermatophyte", "angiosperm", "vascular_plant", "craft", "vessel", "ware", "course", "flavorer",
    "foodstuff", "ingredient", "overgarment", "device", "structure", "implement", "covering", "conveyance",
    "restraint", "mechanism", "furnishing", "obstruction", "establishment", "geological_formation",
    "place_of_business", "mercantile_establishment", "protective_covering", "game", "support",
    "globule",
    # Issue 17: vague categories that reached 60 or more on the calibration half and that no label used
    # ("equipment 69" on a circuit board, "housing" on palaces, "depression" on a
    # stream, "wrapping" on a sign, "instrument" on a clock).
    "equipment", "instrument", "wrapping", "natural_depression", "housing", "jacket",
})

# Multi-word internal synsets that SemCor never tagged but people do say.
KEEP: frozenset[str] = frozenset({
    "big_cat", "domestic_cat", "sea_turtle", "wind_instrument", "kitchen_utensil", "sports_equipment",
    "snack_food", "baked_goods", "bird_of_prey", "place_of_worship", "public_transport", "sled_dog",
    "toy_dog", "kitchen_appliance", "stringed_instrument", "percussion_instrument", "keyboard_instrument",
    "edible_fruit", "motor_vehicle", "hunting_dog", "water_bird", "guard_dog", "sea_lion", "sailing_vessel",
    "electronic_equipment", "musical_instrument", "protective_garment",
})

# Scene words for classes that are places; the photos of these classes are landscapes.
_LANDSCAPE = ("landscape", "nature")
SCENES: dict[str, tuple[str, ...]] = {
    "alp": ("mountain", *_LANDSCAPE),
    "cliff, drop, drop-off": ("rock", *_LANDSCAPE),
    "coral reef": ("sea", "underwater", "water", "nature"),
    "geyser": ("water", *_LANDSCAPE),
    "lakeside, lakeshore": ("lake", "water", *_LANDSCAPE),
    "promontory, headland, head, foreland": ("coast", "sea", "water", *_LANDSCAPE),
    "sandbar, sand bar": ("beach", "sand", "water", "coast", "sea", *_LANDSCAPE),
    "seashore, coast, seacoast, sea-coast": ("beach", "sea", "coast", "water", *_LANDSCAPE),
    "valley, vale": _LANDSCAPE,
    "volcano": ("mountain", *_LANDSCAPE),
    "breakwater, groin, groyne, mole, bulwark, seawall, jetty": ("sea", "water", "coast"),
    "dock, dockage, docking facility": ("water", "harbor"),
    "boathouse": ("water", "lake"),
    "pier": ("water", "sea"),
    "beacon, lighthouse, beacon light, pharos": ("coast", "sea"),
    "dam, dike, dyke": ("water",),
    "fountain": ("water",),
}

# Scene words that are only sometimes right (issue 17, calibration half): an "alp" photo need not show snow
# ("snow 64" on an autumn mountain), a "valley" is often a wooded stream ("mountain 93" on one).
PARTIAL_SCENES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("snow", 0.7, ("alp",)),
    ("mountain", 0.6, ("valley, vale",)),
)

# Context words: (word, weight, class names). Weights below 1 where the word is only usually right.
_FLOWER_VISITORS = (
    "bee", "admiral", "ringlet, ringlet butterfly", "monarch, monarch butterfly, milkweed butterfly, Danaus plexippus",
    "cabbage butterfly", "sulphur butterfly, sulfur butterfly", "lycaenid, lycaenid butterfly",
)
_ON_PLANTS = (
    *_FLOWER_VISITORS, "ladybug, ladybeetle, lady beetle, ladybird, ladybird beetle", "leaf beetle, chrysomelid",
    "weevil", "grasshopper, hopper", "cricket", "walking stick, walkingstick, stick insect", "mantis, mantid",
    "cicada, cicala", "leafhopper", "lacewing, lacewing fly", "long-horned beetle, longicorn, longicorn beetle",
    "tree frog, tree-frog", "green lizard, Lacerta viridis", "American chameleon, anole, Anolis carolinensis",
    "African chameleon, Chamaeleo chamaeleon", "green snake, grass snake", "vine snake", "ant, emmet, pismire",
    "fly", "dragonfly, darning needle, devil's darning needle, sewing needle, snake feeder, snake doctor, "
    "mosquito hawk, skeeter hawk", "damselfly", "slug", "snail",
)
_FIELD_CROPS = ("hay", "rapeseed", "corn", "ear, spike, capitulum")
_WORN = (
    "abaya", "academic gown, academic robe, judge's robe", "apron", "bathing cap, swimming cap",
    "bearskin, busby, shako", "bikini, two-piece", "bolo tie, bolo, bola tie, bola", "bonnet, poke bonnet",
    "bow tie, bow-tie, bowtie", "brassiere, bra, bandeau", "bulletproof vest", "cardigan", "cloak",
    "cowboy hat, ten-gallon hat", "cuirass", "feather boa, boa", "football helmet", "fur coat", "gown",
    "hoopskirt, crinoline", "jean, blue jean, denim", "jersey, T-shirt, tee shirt", "kimono",
    "lab coat, laboratory coat",
    "lipstick, lip rouge", "maillot", "maillot, tank suit", "military uniform", "miniskirt, mini",
    "mortarboard", "overskirt", "pajama, pyjama, pj's, jammies", "pickelhaube", "poncho", "sarong", "ski mask",
    "sombrero", "stole", "suit, suit of clothes", "sunglasses, dark glasses, shades", "sweatshirt",
    "swimming trunks, bathing trunks", "trench coat", "vestment", "wig", "Windsor tie", "crash helmet",
)
_TEXTURES = (
    "maze, labyrinth", "honeycomb", "chain mail, ring mail, mail, chain armor, chain armour, ring armor, ring armour",
    "doormat, welcome mat", "dishrag, dishcloth", "window screen", "shower curtain", "wool, woolen, woollen",
    "velvet", "quilt, comforter, comfort, puff", "stone wall", "chainlink fence", "prayer rug, prayer mat",
    "tile roof", "thatch, thatched roof", "manhole cover", "mosquito net", "shoji",
)
_TEXT = (
    "menu", "crossword puzzle, crossword", "web site, website, internet site, site",
    "book jacket, dust cover, dust jacket, dust wrapper", "comic book",
)
_MONUMENTS = (
    "palace", "monastery", "castle", "church, church building", "mosque", "stupa, tope", "bell cote, bell cot",
    "dome", "triumphal arch", "obelisk", "cliff dwelling", "planetarium", "library", "steel arch bridge",
    "suspension bridge", "viaduct", "megalith, megalithic structure", "water tower", "totem pole", "vault",
)
_WATERCRAFT = (
    "canoe", "speedboat", "lifeboat", "fireboat", "gondola", "yawl", "catamaran", "trimaran", "schooner",
    "liner, ocean liner", "container ship, containership, container vessel", "paddle, boat paddle",
    "paddlewheel, paddle wheel", "submarine, pigboat, sub, U-boat", "pirate, pirate ship", "wreck",
)
_AIRCRAFT = ("airliner", "airship, dirigible", "balloon", "parachute, chute", "warplane, military plane", "wing")
# Balls and machines whose photos are taken on lawns and sports fields.
_ON_GRASS = ("soccer ball", "croquet ball", "golf ball", "rugby ball", "golfcart, golf cart", "lawn mower, mower")
_PETS = ("hamster", "guinea pig, Cavia cobaya", "Angora, Angora rabbit", "tabby, tabby cat", "tiger cat",
         "Persian cat", "Siamese cat, Siamese", "Egyptian cat")

# Words that name a setting (where, what surface) rather than an object; the tagger does not discount them on
# images the model is unsure about, since an unsure model still sees the setting (see _vocabulary.py).
SETTING_WORDS: frozenset[str] = frozenset({
    "plant", "flower", "nature", "field", "grass", "texture", "pattern", "text", "architecture", "building",
    "water", "sky", "space", "landscape", "mountain", "snow", "rock", "sea", "underwater", "lake", "coast",
    "beach", "sand", "harbor",
    # Issue 17: related words of settings are settings too.
    "mountains", "outdoor", "scenic", "ocean", "shore", "lakeside", "seashore", "green", "leaf", "leaves", "flora",
    "garden", "view", "peak", "hill", "highland", "valley",
})

CONTEXT: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("plant", 0.8, _ON_PLANTS),
    ("flower", 0.5, (*_FLOWER_VISITORS, "rapeseed", "pot, flowerpot")),
    ("nature", 1.0, _ON_PLANTS),
    ("grass", 0.6, _ON_GRASS),
    ("nature", 1.0, ("daisy", "yellow lady's slipper, yellow lady-slipper, Cypripedium calceolus, "
                              "Cypripedium parviflorum", *_FIELD_CROPS, "acorn", "hip, rose hip, rosehip",
                     "buckeye, horse chestnut, conker", "coral fungus", "agaric", "gyromitra",
                     "stinkhorn, carrion fungus", "earthstar", "hen-of-the-woods, hen of the woods, Polyporus "
                     "frondosus, Grifola frondosa", "bolete")),
    ("field", 0.7, (*_FIELD_CROPS, "harvester, reaper", "thresher, thrasher, threshing machine")),
    ("plant", 0.7, (*_FIELD_CROPS, "pot, flowerpot", "greenhouse, nursery, glasshouse")),
    ("person", 0.4, _WORN),
    ("texture", 0.8, _TEXTURES),
    ("pattern", 0.8, _TEXTURES),
    ("text", 0.9, _TEXT),
    ("text", 0.6, ("brass, memorial tablet, plaque", "street sign", "scoreboard", "envelope", "packet")),
    ("architecture", 1.0, _MONUMENTS),
    ("building", 1.0, _MONUMENTS),
    ("water", 0.6, _WATERCRAFT),
    ("sky", 0.5, _AIRCRAFT),
    ("pet", 1.0, _PETS),
    ("space", 0.6, ("space shuttle",)),
    ("rocket", 0.8, ("missile", "projectile, missile", "space shuttle")),
    ("coffee", 0.5, ("coffee mug", "espresso maker", "coffeepot")),
    ("drink", 0.5, ("coffee mug", "cup", "beer glass", "goblet", "water jug", "whiskey jug", "pop bottle, soda bottle",
                    "beer bottle", "wine bottle", "water bottle", "cocktail shaker")),
)
# Related words (issue 17): what a person also types for a photo of a kind of thing, beside its hypernyms.
# Keyed by a vocabulary word; every class whose own words include the key also stands for these words, at the
# given weight times the key's weight for that class. Weights below 1: the word is usually, not always, right.
RELATED: dict[str, tuple[tuple[str, float], ...]] = {
    "flower": (("blossom", 0.9), ("bloom", 0.9), ("petal", 0.8), ("flora", 0.8), ("garden", 0.5),
               ("flowers", 0.6), ("spring", 0.3)),
    "plant": (("green", 0.5), ("leaf", 0.5), ("leaves", 0.4), ("flora", 0.6), ("nature", 0.8)),
    "edible fruit": (("fruit", 1.0), ("fresh", 0.7), ("healthy", 0.7), ("sweet", 0.5), ("juicy", 0.4),
                     ("vitamin", 0.4), ("diet", 0.4), ("ingredient", 0.4)),
    "vegetable": (("fresh", 0.7), ("healthy", 0.7), ("produce", 0.8), ("diet", 0.4), ("ingredient", 0.5)),
    "food": (("meal", 0.4), ("delicious", 0.4), ("tasty", 0.4), ("dish", 0.3)),
    "bird": (("wildlife", 0.8), ("nature", 0.7), ("feathers", 0.6), ("wild", 0.5), ("animal", 1.0)),
    "insect": (("bug", 0.9), ("wildlife", 0.5), ("macro", 0.5), ("wings", 0.4)),
    "primate": (("wildlife", 0.8), ("wild", 0.5), ("fur", 0.5)),
    "monkey": (("wildlife", 0.8), ("wild", 0.5)),
    "rodent": (("wildlife", 0.6), ("cute", 0.5), ("fur", 0.6), ("wild", 0.4)),
    "marsupial": (("wildlife", 0.8), ("cute", 0.5), ("fur", 0.6), ("wild", 0.5)),
    "reptile": (("wildlife", 0.7), ("wild", 0.4)),
    "dog": (("cute", 0.5), ("fur", 0.5), ("puppy", 0.3), ("canine", 1.0)),
    "cat": (("cute", 0.5), ("fur", 0.6), ("kitten", 0.3), ("whiskers", 0.5)),
    "motor vehicle": (("transportation", 0.9), ("transport", 0.9), ("road", 0.5), ("street", 0.4),
                      ("traffic", 0.3), ("automobile", 0.6), ("wheel", 0.5), ("drive", 0.3)),
    "car": (("automobile", 1.0), ("auto", 0.8), ("road", 0.6), ("transportation", 1.0)),
    "bus": (("public transport", 1.0), ("transportation", 1.0), ("street", 0.6), ("city", 0.5)),
    "boat": (("water", 0.8), ("transportation", 0.6), ("vessel", 0.8)),
    "sign": (("text", 0.7), ("information", 0.4), ("street", 0.4), ("signboard", 0.6)),
    "street sign": (("road", 0.5), ("street", 0.7), ("traffic sign", 0.7), ("road sign", 0.7)),
    "text": (("letters", 0.6), ("words", 0.5), ("print", 0.4), ("font", 0.4), ("paper", 0.3)),
    "building": (("architecture", 1.0), ("city", 0.4), ("exterior", 0.4), ("window", 0.4), ("sky", 0.3),
                 ("structure", 0.6)),
    "house": (("home", 0.7), ("building", 1.0), ("architecture", 0.8), ("residential", 0.5)),
    "church": (("religion", 0.6), ("old", 0.4), ("history", 0.4), ("landmark", 0.4), ("travel", 0.4)),
    "mountain": (("mountains", 0.9), ("peak", 0.6), ("hill", 0.5), ("sky", 0.6), ("rock", 0.6), ("scenic", 0.6),
                 ("outdoor", 0.8), ("travel", 0.4), ("hiking", 0.4), ("clouds", 0.4), ("valley", 0.5),
                 ("highland", 0.6)),
    "lake": (("shore", 0.7), ("lakeside", 0.7), ("reflection", 0.5), ("calm", 0.5), ("outdoor", 0.8),
             ("sky", 0.5), ("summer", 0.3)),
    "sea": (("ocean", 0.9), ("shore", 0.7), ("horizon", 0.5), ("outdoor", 0.8), ("sky", 0.5), ("travel", 0.4),
            ("summer", 0.4), ("vacation", 0.4)),
    "beach": (("sand", 0.8), ("summer", 0.6), ("vacation", 0.5), ("shore", 0.8), ("seashore", 0.9)),
    "landscape": (("outdoor", 0.8), ("scenic", 0.7), ("sky", 0.5), ("view", 0.5)),
    "computer": (("technology", 0.9), ("electronics", 0.8), ("digital", 0.5)),
    "clock": (("time", 0.9), ("hands", 0.5), ("dial", 0.5)),
    "musical instrument": (("music", 0.9), ("instrument", 0.9)),
    "toy": (("play", 0.6), ("fun", 0.4), ("colorful", 0.3)),
    "drink": (("beverage", 1.0), ("glass", 0.3), ("refreshment", 0.5)),
    "coffee": (("caffeine", 0.8), ("cafe", 0.5), ("breakfast", 0.5), ("hot drink", 0.8), ("cup", 0.6)),
    "furniture": (("interior", 0.7), ("room", 0.6), ("home", 0.6), ("indoor", 0.7)),
    "clothing": (("fashion", 0.6), ("style", 0.3)),
    "rock": (("stone", 0.7), ("rocks", 0.7), ("stones", 0.5)),
    "space": (("astronomy", 0.6), ("universe", 0.4), ("stars", 0.4), ("night", 0.4)),
    "sky": (("clouds", 0.4), ("cloud", 0.4)),
}
# Issue 17, from the words the calibration half's labels use and the vocabulary lacked: what is true of every
# photo of the key (weight 1) or of most (below 1). Added to the keys above (and the new keys "rock", "space",
# "sky" there).
for _key, _more in {
    "dog": (("domestic dog", 1.0),),
    "landscape": (("nature", 0.8), ("trees", 0.4), ("tree", 0.4), ("clouds", 0.3)),
    "street sign": (("signpost", 0.6), ("direction", 0.4)),
    "bird": (("birds", 0.4),),
    "plant": (("plants", 0.4),),
}.items():
    RELATED[_key] = (*RELATED[_key], *_more)
"""Each key must be a vocabulary word, and no word may be its own key's ancestor (checked in build_table)."""

# Every dog and domestic cat class is also a "pet"; added by WordNet family, see build_table.
PET_FAMILIES = ("02084071",)  # dog, domestic dog


def parse_data_noun(path: Path) -> dict[str, tuple[str, list[tuple[str, int]], str | None]]:
    """Map every synset offset to (lexicographer file number, [(lemma, lex_id)], first hypernym offset)."""
    synsets: dict[str, tuple[str, list[tuple[str, int]], str | None]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("  "):  # licence header
                continue
            fields = line.split(" | ", 1)[0].split()
            offset, lexfile = fields[0], fields[1]
            word_count = int(fields[3], 16)
            lemmas = [(fields[4 + 2 * i], int(fields[5 + 2 * i], 16)) for i in range(word_count)]
            pointer_at = 4 + 2 * word_count
            pointer_count = int(fields[pointer_at])
            pointers = fields[pointer_at + 1 : pointer_at + 1 + 4 * pointer_count]
            parent = None
            for i in range(0, len(pointers), 4):
                # Each pointer: symbol, target offset, part of speech, source/target.
                if pointers[i] in ("@", "@i") and pointers[i + 2] == "n":
                    parent = pointers[i + 1]
                    break
            synsets[offset] = (lexfile, lemmas, parent)
    return synsets


def parse_cntlist(path: Path) -> dict[str, int]:
    """SemCor tag counts by sense key (``cntlist.rev``: ``sense_key sense_number tag_count``)."""
    counts = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            key, _, count = line.split()
            counts[key] = int(count)
    return counts


def lemma_counts(synset: tuple[str, list[tuple[str, int]], str | None], counts: dict[str, int]) -> list[int]:
    """SemCor count of each lemma of a noun synset (sense key ``lemma%1:lexfile:lexid::``)."""
    lexfile, lemmas, _ = synset
    return [counts.get(f"{lemma.lower()}%1:{lexfile}:{lex_id:02d}::", 0) for lemma, lex_id in lemmas]


def display_name(lemma: str) -> str:
    """A WordNet lemma or ImageNet name as a tag: underscores to spaces, lower-case."""
    return lemma.replace("_", " ").lower()


def familiar_name(synset: tuple[str, list[tuple[str, int]], str | None], counts: dict[str, int]) -> tuple[str, int]:
    """The synset's lemma with the highest SemCor count (the first lemma on ties), and that count."""
    tallies = lemma_counts(synset, counts)
    best = max(range(len(tallies)), key=lambda i: (tallies[i], -i))
    return synset[1][best][0], tallies[best]


def build_table(wordnet: Path, labels_path: Path) -> dict:
    """Compute the vocabulary (the JSON document) from WordNet 3.0 and the classifier's class list."""
    synsets = parse_data_noun(wordnet / "data.noun")
    counts = parse_cntlist(wordnet / "cntlist.rev")
    for offset, lemma in STOPLIST.items():
        found = synsets[offset][1][0][0] if offset in synsets else "<missing>"
        if found.lower() != lemma.lower():
            raise SystemExit(f"{wordnet}: synset {offset} is {found!r}, expected {lemma!r}; is this WordNet 3.0?")
    labels = json.loads(labels_path.read_text("utf-8"))
    if len(labels) != NUM_CLASSES:
        raise SystemExit(f"{labels_path}: {len(labels)} classes, expected {NUM_CLASSES}")
    index_of = {item["name"]: i for i, item in enumerate(labels)}
    leaves = [item["wnid"][1:] for item in labels]  # 'n02123045' -> '02123045'
    if len(set(leaves)) != NUM_CLASSES or not set(leaves) <= set(synsets):
        raise SystemExit(f"{labels_path}: class ids are not unique WordNet 3.0 noun synsets")
    leaf_set = set(leaves)

    ancestors = {o for leaf in leaves for o in _full_chain(leaf, synsets)}
    unknown = JARGON - {synsets[o][1][0][0].lower() for o in ancestors}
    if unknown:
        raise SystemExit(f"JARGON names no ancestor of any class: {sorted(unknown)}")

    def kept(offset: str) -> bool:
        if offset in STOPLIST or synsets[offset][1][0][0].lower() in JARGON and offset not in leaf_set:
            return False
        if offset in leaf_set:
            return True
        lemma, count = familiar_name(synsets[offset], counts)
        return count > 0 or "_" not in lemma or synsets[offset][1][0][0].lower() in KEEP

    terms: dict[str, dict[str, str | bool | None]] = {}
    chains: list[list[str]] = []
    for index, leaf in enumerate(leaves):
        chain: list[str] = []
        offset: str | None = leaf
        seen: set[str] = set()
        while offset is not None:
            if offset in seen:
                raise SystemExit(f"hypernym cycle at synset {offset}")
            seen.add(offset)
            if kept(offset):
                chain.append(offset)
            offset = synsets[offset][2]
        chains.append(chain)
        for child, parent in zip(chain, [*chain[1:], None], strict=True):
            if child == leaf:
                name = labels[index]["name"].split(",")[0].strip()
            else:
                name = familiar_name(synsets[child], counts)[0]
            terms[child] = {"name": display_name(name), "parent": parent}

    # Added words join an existing term of the same name (the one above the most classes), else a new root.
    reach = Counter(offset for chain in chains for offset in chain)
    by_name: dict[str, str] = {}
    for offset, term in sorted(terms.items(), key=lambda item: (-reach[item[0]], item[0])):
        by_name.setdefault(str(term["name"]), offset)

    def word_id(word: str) -> str:
        if word in by_name:
            return by_name[word]
        terms[f"x:{word}"] = {"name": word, "parent": None}
        by_name[word] = f"x:{word}"
        return by_name[word]

    extra: list[dict[str, float]] = [{} for _ in range(NUM_CLASSES)]

    def add(class_name: str, word: str, weight: float) -> None:
        if class_name not in index_of:
            raise SystemExit(f"{labels_path}: no class named {class_name!r}")
        term = word_id(word)
        slot = extra[index_of[class_name]]
        slot[term] = max(slot.get(term, 0.0), weight)

    for class_name, words in SCENES.items():
        for word in words:
            add(class_name, word, 1.0)
    for word, weight, class_names in (*PARTIAL_SCENES, *CONTEXT):
        for class_name in class_names:
            add(class_name, word, weight)
    for index, leaf in enumerate(leaves):
        if set(PET_FAMILIES) & set(_full_chain(leaf, synsets)):
            add(labels[index]["name"], "pet", 1.0)

    for key in RELATED:
        if key not in by_name:
            raise SystemExit(f"RELATED key {key!r} is not a word of the vocabulary")
    for index in range(NUM_CLASSES):
        # The class's own words (its chain, at weight 1) and its added words, each with the class's weight.
        own: dict[str, float] = {str(terms[o]["name"]): 1.0 for o in chains[index]}
        for term, weight in extra[index].items():
            own[str(terms[term]["name"])] = max(own.get(str(terms[term]["name"]), 0.0), weight)
        for key, weight in sorted(own.items()):
            for word, related in RELATED.get(key, ()):
                if word not in own:
                    add(labels[index]["name"], word, round(weight * related, 4))

    for word in SETTING_WORDS:
        if word not in by_name:
            raise SystemExit(f"setting word {word!r} is not a word of any scene or context")
        terms[by_name[word]]["setting"] = True

    classes = []
    for index, leaf in enumerate(leaves):
        entries: list[str | list[str | float]] = [leaf]
        for term, weight in sorted(extra[index].items()):
            if term in chains[index]:
                continue  # already one of the class's own terms, at weight 1
            entries.append(term if weight == 1.0 else [term, weight])
        classes.append(entries)
    return {
        "comment": (
            "Generated by scripts/build_vocabulary.py from WordNet 3.0 data.noun and cntlist.rev and "
            "imagenet-labels.json; do not edit. WordNet 3.0 Copyright 2006 by Princeton University, see "
            "WORDNET-LICENSE.txt."
        ),
        "terms": terms,
        "classes": classes,
    }


def _full_chain(offset: str, synsets: dict[str, tuple[str, list[tuple[str, int]], str | None]]) -> list[str]:
    chain = []
    node: str | None = offset
    while node is not None:
        chain.append(node)
        node = synsets[node][2]
    return chain


def render(table: dict) -> str:
    """Serialise the table deterministically (sorted terms, one term and one class a line)."""
    lines = ["{", f'"comment": {json.dumps(table["comment"])},', '"terms": {']
    items = sorted(table["terms"].items())
    for i, (term, node) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        lines.append(f"{json.dumps(term)}: {json.dumps(node, sort_keys=True)}{comma}")
    lines.append("},")
    lines.append('"classes": [')
    for i, entries in enumerate(table["classes"]):
        comma = "," if i < len(table["classes"]) - 1 else ""
        lines.append(f"{json.dumps(entries)}{comma}")
    lines.append("]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--wordnet", type=Path, default=DEFAULT_WORDNET,
                        help=f"folder with data.noun and cntlist.rev (default {DEFAULT_WORDNET})")
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS, help=f"class list (default {DEFAULT_LABELS})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    for name in ("data.noun", "cntlist.rev"):
        if not (args.wordnet / name).is_file():
            print(f"{args.wordnet / name} not found (apt-get install wordnet-base)", file=sys.stderr)
            return 1
    table = build_table(args.wordnet, args.labels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(table), encoding="utf-8")
    print(f"wrote {args.out}: {len(table['terms'])} terms for {len(table['classes'])} classes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
