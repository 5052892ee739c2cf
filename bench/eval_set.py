"""The embedded tagger's evaluation set: photos that ship in registry packages, labelled by hand.

Each photo lists the words a person would accept as tags and the words that are plainly wrong, written by a
person looking at the photo (not taken from any model's output). ``name/*`` stands for a family: the word and
every tag the tagger derives only from classes beneath it (``animal/*`` is animal, mammal, insect, dog, ...).

Where the photos come from (none is downloaded or committed; a missing package only drops its photos, and the
bench says so). Install them all with ``bash bench/install_eval_photos.sh`` (Debian packages and the wheels of
``bench/requirements-bench.txt``):

* ``samples/`` of this project (cat, coffee, astronaut, rocket: scikit-image's photos, CC0 / public domain,
  committed, see samples/LICENSES.md);
* the ``scikit-image`` wheel's ``skimage/data`` (camera CC0, coins and moon public domain, horse public domain,
  motorcycle from the Middlebury stereo set, textures CC0, Hubble deep field public domain, page, chalk text);
* the ``matplotlib`` wheel's ``mpl-data/sample_data/grace_hopper.jpg`` (US Navy photo, public domain);
* the ``scikit-learn`` wheel's ``datasets/images`` (china.jpg, flower.jpg; CC-BY per its README.txt);
* the ``imgaug`` wheel's ``quokka.jpg`` and the ``ultralytics`` wheel's ``assets`` (a bus with pedestrians, two
  coaches), installed with ``--no-deps``: only their files are read, never imported;
* Debian's ``mate-backgrounds`` (GPL-2+: nature close-ups), ``opencv-doc`` (its ``examples``: people, fruit,
  animals, buildings, street signs, text, objects; BSD/Apache), ``plasma-workspace-wallpapers`` (GPL-2+: lakes,
  forest, leaves, cups, a kite), ``lomiri-wallpapers-16.04``/``-20.04`` (CC-BY/CC-BY-SA: mountains, a stream,
  dogs, birds, a fig, an interior) and ``imagemagick-6-doc`` (bluebells).

The first 29 photos (``PHOTOS``) were labelled for issue 9; ``MORE_PHOTOS`` were added for issue 17, labelled by
hand from the photos before any tagger ran on them (the commit that adds them changes nothing else). ``half``
splits the whole set into a calibration half and a report half by a hash of the name.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
MATE = Path("/usr/share/backgrounds/mate/nature")

# Families that are plainly wrong on most photos; each photo adds or drops from these.
NOT_ALIVE = ("animal/*", "person", "face", "people", "food/*")
NO_PEOPLE = ("person", "face", "people")


@dataclass(frozen=True)
class Photo:
    """One labelled photo."""

    name: str
    source: str  # samples, skimage, matplotlib, sklearn, mate-backgrounds
    file: str  # path inside the source
    accepted: tuple[str, ...]
    wrong: tuple[str, ...]
    portrait: bool = False  # a person is the subject: must get person >= 60
    people: bool = False  # shows a person at all (portraits do); without: no person/face >= 50


PHOTOS: tuple[Photo, ...] = (
    Photo("cat", "samples", "cat.jpg",
          ("cat/*", "kitten", "pet", "animal", "mammal", "feline", "whiskers", "fur"),
          (*NO_PEOPLE, "dog/*", "food/*", "vehicle/*", "plant/*")),
    Photo("coffee", "samples", "coffee.jpg",
          ("coffee", "espresso", "cup", "coffee cup", "coffee mug", "drink", "beverage", "saucer", "spoon",
           "caffeine", "table", "cafe", "breakfast", "hot drink"),
          (*NO_PEOPLE, "animal/*", "vehicle/*", "plant/*")),
    Photo("astronaut", "samples", "astronaut.jpg",
          ("person", "face", "portrait", "woman", "astronaut", "spacesuit", "flag", "space shuttle", "helmet",
           "uniform", "smile", "adult"),
          ("animal/*", "food/*", "vehicle/*", "bobsled", "football helmet"),
          portrait=True, people=True),
    Photo("rocket", "samples", "rocket.jpg",
          ("rocket", "missile", "projectile", "launch", "spacecraft", "space shuttle", "launch pad", "tower",
           "night", "sky", "space", "lights"),
          (*NOT_ALIVE, "plant/*")),
    Photo("camera", "skimage", "camera.png",
          ("person", "man", "face", "photographer", "camera", "tripod", "movie camera", "reflex camera",
           "coat", "field", "grass", "lawn", "black and white", "monochrome", "adult"),
          ("animal/*", "food/*", "vehicle/*"),
          portrait=True, people=True),
    Photo("coins", "skimage", "coins.png",
          ("coin", "coins", "money", "currency", "metal", "silver", "antique", "collection", "cash"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("horse", "skimage", "horse.png",
          ("horse", "animal", "mammal", "equine", "silhouette", "stallion", "pony", "sorrel", "pet"),
          (*NO_PEOPLE, "food/*", "plant/*", "dog/*", "cat/*", "bird/*", "vehicle/*")),
    Photo("motorcycle", "skimage", "motorcycle_left.png",
          ("motorcycle", "motorbike", "bike", "vehicle", "motor vehicle", "moped", "motor scooter", "garage",
           "wheel", "transport", "transportation", "engine"),
          (*NOT_ALIVE, "plant/*")),
    Photo("brick", "skimage", "brick.png",
          ("brick", "wall", "brick wall", "pattern", "texture", "pavement", "stone", "masonry", "tile", "floor",
           "architecture", "building material"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("grass", "skimage", "grass.png",
          ("grass", "lawn", "plant", "nature", "ground", "texture", "hay", "field", "meadow"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("gravel", "skimage", "gravel.png",
          ("gravel", "stone", "stones", "rock", "pebble", "ground", "texture", "pattern"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("hubble", "skimage", "hubble_deep_field.jpg",
          ("space", "galaxy", "star", "stars", "universe", "astronomy", "night", "sky", "cosmos"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("moon", "skimage", "moon.png",
          ("moon", "lunar surface", "crater", "surface", "space", "astronomy", "rock", "planet"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("page", "skimage", "page.png",
          ("text", "page", "paper", "document", "book", "print", "letter", "words", "font", "newspaper"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("grace hopper", "matplotlib", "grace_hopper.jpg",
          ("person", "face", "portrait", "woman", "uniform", "military uniform", "officer", "hat", "glasses",
           "adult", "flag"),
          ("animal/*", "food/*", "vehicle/*"),
          portrait=True, people=True),
    Photo("china", "sklearn", "china.jpg",
          ("pagoda", "temple", "building", "architecture", "tower", "palace", "lake", "water", "tree",
           "landscape", "sky", "stupa", "monastery", "roof", "travel", "park"),
          (*NOT_ALIVE,)),
    Photo("flower", "sklearn", "flower.jpg",
          ("flower", "dahlia", "plant", "blossom", "bloom", "petal", "garden", "nature", "flora", "orange"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("water drop", "mate-backgrounds", "Aqua.jpg",
          ("water", "drop", "splash", "droplet", "liquid", "drip", "ripple"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("leaf", "mate-backgrounds", "Blinds.jpg",
          ("leaf", "plant", "green", "nature", "foliage", "texture", "macro"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("dune", "mate-backgrounds", "Dune.jpg",
          ("grass", "beach", "dune", "sea", "coast", "seashore", "nature", "sky", "landscape", "plant", "sand",
           "summer", "water", "ocean"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("gerbera", "mate-backgrounds", "FreshFlower.jpg",
          ("flower", "petal", "plant", "blossom", "bloom", "nature", "gerbera", "daisy", "orange"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("marigold", "mate-backgrounds", "Garden.jpg",
          ("flower", "marigold", "plant", "blossom", "garden", "nature", "petal", "bloom"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("meadow", "mate-backgrounds", "GreenMeadow.jpg",
          ("grass", "green", "plant", "lawn", "meadow", "field", "nature", "spring"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("ladybird", "mate-backgrounds", "LadyBird.jpg",
          ("ladybug", "ladybird", "insect", "beetle", "bug", "animal", "flower", "plant", "nature",
           "forget-me-not", "grass", "macro", "invertebrate"),
          (*NO_PEOPLE, "food/*", "vehicle/*", "mammal/*", "bird/*")),
    Photo("raindrops", "mate-backgrounds", "RainDrops.jpg",
          ("leaf", "water", "drop", "raindrop", "plant", "green", "nature", "rain", "dew", "grass"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("storm", "mate-backgrounds", "Storm.jpg",
          ("storm", "sky", "cloud", "clouds", "weather", "landscape", "road", "highway", "field", "nature",
           "rain"),
          (*NOT_ALIVE,)),
    Photo("dandelion", "mate-backgrounds", "TwoWings.jpg",
          ("dandelion", "seed", "plant", "flower", "nature", "macro"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("wood", "mate-backgrounds", "Wood.jpg",
          ("wood", "plank", "board", "texture", "floor", "timber", "grain", "surface", "table", "deck"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("yellow flower", "mate-backgrounds", "YellowFlower.jpg",
          ("flower", "petal", "yellow", "plant", "blossom", "daisy", "bloom", "nature", "gerbera"),
          (*NOT_ALIVE, "vehicle/*")),
)


# --- Added for issue 17 (written by hand from the photos, before any tagger ran on them) ---------------------
ON_WATER = ("vessel", "craft", "vehicle", "watercraft")

MORE_PHOTOS: tuple[Photo, ...] = (
    Photo("soccer player", "opencv-doc", "data/messi5.jpg",
          ("person", "man", "people", "athlete", "football", "soccer", "soccer ball", "ball", "player", "sport",
           "stadium", "crowd", "grass", "field", "game", "kick", "uniform", "adult", "team", "jersey", "audience",
           "spectator", "competition", "football player"),
          ("animal/*", "food/*", "vehicle/*"),
          portrait=True, people=True),
    Photo("fruits", "opencv-doc", "data/fruits.jpg",
          ("fruit", "orange", "lemon", "lime", "kiwi", "citrus", "food", "fresh", "healthy", "slice", "juicy",
           "vitamin", "produce", "cabbage", "red cabbage", "vegetable", "colorful", "tropical", "sweet",
           "ingredient", "diet", "grapefruit", "edible fruit", "citrus fruit"),
          (*NO_PEOPLE, "animal/*", "vehicle/*")),
    Photo("apple", "opencv-doc", "data/apple.jpg",
          ("apple", "fruit", "food", "red", "fresh", "healthy", "produce", "sweet", "diet", "table", "edible fruit",
           "pome"),
          (*NO_PEOPLE, "animal/*", "vehicle/*")),
    Photo("orange", "opencv-doc", "data/orange.jpg",
          ("orange", "fruit", "food", "citrus", "fresh", "healthy", "produce", "tangerine", "mandarin", "sweet",
           "vitamin", "edible fruit", "citrus fruit", "table"),
          (*NO_PEOPLE, "animal/*", "vehicle/*")),
    Photo("mandrill", "opencv-doc", "data/baboon.jpg",
          ("mandrill", "baboon", "monkey", "primate", "animal", "mammal", "wildlife", "fur", "eyes", "nose",
           "colorful", "wild", "old world monkey"),
          ("person", "people", "food/*", "vehicle/*", "plant/*")),
    Photo("butterfly", "opencv-doc", "data/butterfly.jpg",
          ("butterfly", "insect", "animal", "wings", "leaf", "plant", "nature", "swallowtail", "invertebrate",
           "bug", "wildlife", "green", "macro", "garden", "arthropod"),
          (*NO_PEOPLE, "food/*", "vehicle/*", "bird/*", "mammal/*")),
    Photo("hotel", "opencv-doc", "data/building.jpg",
          ("building", "architecture", "hotel", "apartment", "city", "urban", "facade", "windows", "window",
           "structure", "house", "office", "exterior", "sky", "tree", "modern", "residential", "lawn", "grass",
           "balcony", "apartment building", "office building"),
          (*NOT_ALIVE, "planetarium")),
    Photo("palace", "opencv-doc", "data/home.jpg",
          ("building", "architecture", "palace", "tower", "sky", "clouds", "cloud", "birds", "bird", "mosque",
           "temple", "dome", "travel", "landmark", "history", "old", "monument", "blue", "city", "castle"),
          ("person", "face", "people", "food/*", "vehicle/*")),
    Photo("squirrel", "opencv-doc", "data/squirrel_cls.jpg",
          ("squirrel", "rodent", "animal", "mammal", "wildlife", "nature", "tree", "branch", "fur", "cute",
           "red squirrel", "fox squirrel", "wild", "leaves", "leaf", "green", "forest", "park"),
          (*NO_PEOPLE, "food/*", "vehicle/*", "bird/*", "dog/*", "cat/*")),
    Photo("circuit board", "opencv-doc", "data/board.jpg",
          ("circuit board", "circuit", "electronics", "chip", "microchip", "board", "computer", "hardware",
           "technology", "component", "capacitor", "printed circuit", "printed circuit board", "resistor",
           "motherboard", "electronic", "green", "processor", "semiconductor"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("starry night", "opencv-doc", "data/starry_night.jpg",
          ("painting", "art", "night", "sky", "stars", "star", "van gogh", "moon", "village", "tree", "cypress",
           "landscape", "artwork", "blue", "swirl", "canvas", "oil painting", "picture frame", "frame"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("aerial town", "opencv-doc", "data/aero1.jpg",
          ("aerial", "city", "town", "landscape", "urban", "buildings", "building", "aerial view", "road", "river",
           "lake", "water", "forest", "tree", "houses", "cityscape", "suburb", "residential", "view"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("aerial coast", "opencv-doc", "data/aero3.jpg",
          ("aerial", "city", "town", "landscape", "urban", "buildings", "building", "aerial view", "road", "beach",
           "coast", "sea", "shore", "water", "forest", "tree", "houses", "cityscape", "suburb", "residential",
           "view", "seashore"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("old street", "opencv-doc", "data/leuvenA.jpg",
          ("street", "building", "architecture", "house", "brick", "old", "town", "village", "cobblestone", "road",
           "historic", "medieval", "sky", "clouds", "alley", "europe", "travel", "city", "window", "wall",
           "chimney", "roof", "lamp", "lamppost", "pavement"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("car rear", "opencv-doc", "data/licenseplate_motion.jpg",
          ("car", "vehicle", "motor vehicle", "automobile", "license plate", "number plate", "traffic", "road",
           "street", "blur", "motion", "transportation", "sedan", "tail light", "transport", "rear", "speed",
           "driving", "wheeled vehicle"),
          (*NOT_ALIVE, "plant/*")),
    Photo("ball in corridor", "opencv-doc", "data/basketball1.png",
          ("person", "man", "men", "people", "ball", "basketball", "playing", "game", "corridor", "hallway",
           "indoor", "office", "black and white", "monochrome", "throw", "two", "adult", "shirt", "jeans", "room",
           "wall", "door"),
          ("animal/*", "food/*", "vehicle/*"),
          portrait=True, people=True),
    Photo("groceries", "opencv-doc", "data/box_in_scene.png",
          ("box", "boxes", "package", "food", "groceries", "packaging", "carton", "rice", "pasta", "chair", "bag",
           "shopping", "black and white", "monochrome", "cereal", "product", "grocery store", "grocery"),
          ("person", "face", "people", "animal/*", "vehicle/*")),
    Photo("small dog", "opencv-doc", "data/chicky_512.png",
          ("dog", "pet", "animal", "mammal", "puppy", "pekinese", "shih-tzu", "canine", "domestic dog", "fur",
           "cute", "tongue", "lap dog", "toy dog", "lhasa", "japanese spaniel", "tibetan terrier", "pug",
           "brussels griffon", "griffon", "small dog"),
          (*NO_PEOPLE, "cat/*", "food/*", "vehicle/*")),
    Photo("graffiti", "opencv-doc", "data/graf1.png",
          ("graffiti", "art", "street art", "wall", "painting", "mural", "colorful", "drawing", "cartoon", "urban",
           "paint", "spray paint", "design", "illustration"),
          ("food/*",)),
    Photo("toys", "opencv-doc", "data/rubberwhale1.png",
          ("toy", "toys", "wood", "wooden", "shell", "seashell", "letters", "blanket", "fabric", "colorful",
           "lattice", "box", "indoor", "still life", "play", "knit", "craft", "textile"),
          ("person", "face", "people", "food/*", "vehicle/*")),
    Photo("sweets", "opencv-doc", "data/smarties.png",
          ("candy", "sweets", "chocolate", "smarties", "colorful", "balls", "confectionery", "food", "dessert",
           "sweet", "snack", "colors", "round", "dots", "sugar", "treat", "white background"),
          (*NO_PEOPLE, "animal/*", "vehicle/*", "plant/*")),
    Photo("desk objects", "opencv-doc", "data/stuff.jpg",
          ("pencil", "pen", "lighter", "ball", "coin", "table", "desk", "objects", "office", "cap", "still life",
           "items", "writing"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("sudoku", "opencv-doc", "data/sudoku.png",
          ("sudoku", "puzzle", "newspaper", "paper", "numbers", "grid", "game", "text", "print", "crossword",
           "page", "document", "crossword puzzle", "digits", "black and white"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("blurred text", "opencv-doc", "data/text_defocus.jpg",
          ("text", "paper", "document", "page", "blur", "blurred", "out of focus", "print", "letters", "words",
           "book", "formula", "equation", "math", "science"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("aloe", "opencv-doc", "data/aloeL.jpg",
          ("aloe", "plant", "pot", "flowerpot", "houseplant", "succulent", "green", "leaves", "wallpaper", "pattern",
           "indoor", "potted plant", "terracotta", "agave", "nature", "vase"),
          (*NO_PEOPLE, "animal/*", "food/*", "vehicle/*")),
    Photo("notebook", "opencv-doc", "data/ela_original.jpg",
          ("notebook", "book", "elastic", "band", "cover", "black", "diary", "journal", "planner", "notepad",
           "stationery", "close-up", "paper", "office", "leather", "page"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("potted plant", "opencv-doc", "alphamat/input_images/plant.jpg",
          ("plant", "potted plant", "houseplant", "pot", "flowerpot", "leaves", "green", "bamboo", "clip",
           "clothespin", "barcode", "indoor", "office", "shelf", "bag", "backpack", "nature", "box", "vase"),
          (*NO_PEOPLE, "animal/*", "food/*", "vehicle/*")),
    Photo("parking sign", "opencv-doc", "text/scenetext01.jpg",
          ("sign", "street sign", "notice", "text", "parking", "parking sign", "street", "road", "car", "vehicle",
           "motor vehicle", "tree", "trees", "pole", "city", "urban", "newspaper box", "person", "people", "woman",
           "man", "sidewalk", "traffic sign", "warning", "red"),
          ("animal/*", "food/*"),
          people=True),
    Photo("road sign", "opencv-doc", "text/scenetext02.jpg",
          ("sign", "road sign", "signpost", "direction", "text", "street sign", "arrow", "tree", "trees", "park",
           "board", "information", "green", "guide", "traffic sign"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("copy centre", "opencv-doc", "text/scenetext03.jpg",
          ("sign", "text", "shop", "store", "building", "architecture", "walkway", "arcade", "columns", "column",
           "pillar", "flowers", "flower", "hanging basket", "concrete", "colonnade", "city", "storefront",
           "ceiling", "covered walkway"),
          ("animal/*", "food/*", "vehicle/*"),
          people=True),
    Photo("generator", "opencv-doc", "text/scenetext04.jpg",
          ("generator", "box", "container", "palm tree", "palm", "tree", "wall", "stone wall", "building", "text",
           "sign", "label", "yellow", "outdoor", "garden", "plant", "sky", "metal", "cabinet"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("no parking", "opencv-doc", "text/scenetext05.jpg",
          ("barrier", "barricade", "fence", "no parking", "sign", "road", "street", "text", "sidewalk", "pavement",
           "yellow", "traffic", "parking", "warning", "railing", "asphalt", "curb"),
          (*NOT_ALIVE,)),
    Photo("galleries", "opencv-doc", "text/scenetext06.jpg",
          ("building", "house", "architecture", "shop", "store", "gallery", "pub", "sign", "text", "car", "street",
           "town", "village", "window", "windows", "facade", "roof", "chimney", "sky", "vehicle", "motor vehicle",
           "old", "historic", "road sign", "lamp"),
          ("animal/*", "food/*")),
    Photo("hotel sign", "opencv-doc", "text/scenetext_segmented_word01.jpg",
          ("hotel", "sign", "text", "flowers", "flower", "plant", "geranium", "red", "window box", "signboard",
           "building", "letters", "facade", "window", "pub"),
          (*NO_PEOPLE, "animal/*", "food/*", "vehicle/*")),
    Photo("shop sign", "opencv-doc", "text/scenetext_segmented_word02.jpg",
          ("sign", "shop", "store", "storefront", "text", "stationery", "signboard", "shopfront", "plants", "plant",
           "flowers", "blue", "letters", "window", "facade", "retail", "building"),
          (*NO_PEOPLE, "animal/*", "food/*", "vehicle/*")),
    Photo("service sign", "opencv-doc", "text/scenetext_segmented_word03.jpg",
          ("sign", "text", "green", "notice", "signboard", "taxi", "service", "letters", "board", "yellow", "wall",
           "information", "words"),
          (*NOT_ALIVE, "plant/*")),
    Photo("beer sign", "opencv-doc", "text/scenetext_segmented_word04.jpg",
          ("sign", "logo", "text", "brand", "beer", "advertising", "advertisement", "banner", "blue", "letters",
           "shop", "store", "can", "cans", "drink", "beverage", "alcohol", "lager", "display", "supermarket"),
          (*NO_PEOPLE, "animal/*", "vehicle/*", "plant/*")),
    Photo("projector", "opencv-doc", "text/scenetext_segmented_word05.jpg",
          ("projector", "text", "logo", "brand", "sanyo", "electronics", "device", "multimedia projector", "label",
           "grey", "plastic", "close-up", "technology", "letters"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("word here", "opencv-doc", "text/scenetext_word02.jpg",
          ("text", "word", "letters", "sign", "here", "font", "print", "label", "black and white", "typography"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("word riser", "opencv-doc", "text/scenetext_word03.jpg",
          ("text", "word", "letters", "sign", "display", "led", "red", "font", "screen", "typography", "label"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("word produkt", "opencv-doc", "text/scenetext_word04.jpg",
          ("text", "word", "letters", "display", "lcd", "screen", "green", "digital", "font", "sign", "label",
           "typography"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("playing cards", "opencv-doc", "data/cards.png",
          ("playing cards", "playing card", "cards", "card", "game", "diamonds", "poker", "deck", "gambling",
           "casino", "red", "white background"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("sheet music", "opencv-doc", "data/notes.png",
          ("music", "sheet music", "notes", "musical notes", "score", "melody", "staff", "song", "treble clef",
           "black and white", "text", "document"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("jetty", "plasma-workspace-wallpapers", "BytheWater/contents/images/2560x1600.jpg",
          ("pier", "jetty", "dock", "deck", "wood", "wooden", "boardwalk", "lake", "water", "sea", "sky", "sunset",
           "evening", "horizon", "planks", "blur", "bokeh", "light", "nature", "outdoor", "lakeside", "shore"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("pier in fog", "plasma-workspace-wallpapers", "ColdRipple/contents/images/2560x1600.jpg",
          ("pier", "jetty", "dock", "wood", "wooden", "lake", "water", "fog", "mist", "foggy", "black and white",
           "monochrome", "grey", "calm", "sea", "minimal", "gray", "boardwalk", "lakeside", "shore"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("cups", "plasma-workspace-wallpapers", "ColorfulCups/contents/images/2560x1600.jpg",
          ("cups", "cup", "plastic cups", "party", "colorful", "red", "blue", "pattern", "drink", "beer pong",
           "disposable cup", "plastic", "many", "top view", "repetition", "container", "containers"),
          (*NO_PEOPLE, "animal/*", "vehicle/*", "plant/*")),
    Photo("foggy lake", "plasma-workspace-wallpapers", "DarkestHour/contents/images/2560x1600.jpg",
          ("lake", "water", "fog", "mist", "night", "dusk", "dark", "blue", "calm", "reflection", "horizon",
           "landscape", "trees", "island", "sky", "evening", "nature", "twilight", "lakeside"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("rowing boats", "plasma-workspace-wallpapers", "EveningGlow/contents/images/2560x1600.jpg",
          ("boat", "boats", "rowboat", "rowing boat", "lake", "water", "sunset", "sky", "clouds", "mountains",
           "mountain", "shore", "beach", "pier", "dock", "landscape", "evening", "dusk", "nature", "canoe",
           "lakeside", *ON_WATER),
          ("person", "face", "people", "animal/*", "food/*")),
    Photo("fallen leaf", "plasma-workspace-wallpapers", "FallenLeaf/contents/images/2560x1600.jpg",
          ("leaf", "leaves", "autumn", "fall", "maple", "maple leaf", "orange", "red", "ground", "nature", "bokeh",
           "close-up", "season", "plant", "foliage", "dry", "forest floor"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("curved facade", "plasma-workspace-wallpapers", "Grey/contents/images/2560x1600.jpg",
          ("architecture", "building", "facade", "modern", "abstract", "black and white", "monochrome", "curves",
           "lines", "pattern", "structure", "design", "wave", "contemporary", "geometric", "grey", "exterior",
           "stadium"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("kite", "plasma-workspace-wallpapers", "Kite/contents/images/2560x1600.jpg",
          ("kite", "sky", "blue", "clouds", "cloud", "flying", "wind", "summer", "colorful", "toy", "air",
           "blue sky"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("moss", "plasma-workspace-wallpapers", "OneStandsOut/contents/images/2560x1600.jpg",
          ("moss", "plants", "plant", "green", "nature", "top view", "pattern", "texture", "forest floor", "ground",
           "grass", "leaves", "fern", "close-up", "garden", "succulent"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("forest path", "plasma-workspace-wallpapers", "Path/contents/images/2560x1600.jpg",
          ("forest", "woods", "trees", "tree", "path", "trail", "nature", "green", "pine", "spruce", "landscape",
           "fern", "moss", "woodland", "park", "grass", "wilderness", "conifer", "hiking", "plant"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("lake at dusk", "plasma-workspace-wallpapers", "summer_1am/contents/images/2560x1600.jpg",
          ("lake", "water", "sky", "dusk", "sunset", "twilight", "evening", "reflection", "calm", "horizon", "reeds",
           "landscape", "nature", "purple", "pink", "sea", "night", "shore", "island", "trees", "summer",
           "tranquil", "lakeside"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("bridge cables", "lomiri-wallpapers", "Bridge_by_Sander_Klootwijk.jpg",
          ("bridge", "cable", "cables", "sky", "blue", "clouds", "suspension bridge", "steel", "wire", "structure",
           "landscape", "horizon", "architecture", "engineering", "metal", "field"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("dragonfly", "lomiri-wallpapers", "Dragonfly_by_Bolly.jpg",
          ("dragonfly", "insect", "animal", "tree", "leaves", "leaf", "branch", "sky", "nature", "plant", "green",
           "summer", "wildlife", "wings", "bug", "invertebrate", "damselfly", "arthropod"),
          (*NO_PEOPLE, "food/*", "vehicle/*", "mammal/*", "bird/*")),
    Photo("nuthatch", "lomiri-wallpapers", "Kleiber_by_Lukas_Baubkus.jpg",
          ("bird", "nuthatch", "animal", "tree", "trunk", "bark", "wildlife", "nature", "wood", "songbird",
           "small bird", "wild", "feathers", "blur", "bokeh"),
          (*NO_PEOPLE, "food/*", "vehicle/*", "mammal/*")),
    Photo("fig", "lomiri-wallpapers", "Picture_0B_by_freespace.jpg",
          ("fig", "fruit", "food", "bowl", "plate", "red", "orange", "dish", "concrete", "stone", "shadow",
           "top view", "healthy", "sweet", "still life", "minimal", "edible fruit"),
          (*NO_PEOPLE, "animal/*", "vehicle/*")),
    Photo("brushes", "lomiri-wallpapers", "Picture_1A_by_freespace.jpg",
          ("brush", "brushes", "paintbrush", "paint", "painting", "art", "color", "colorful", "artist", "bristles",
           "tools", "craft", "studio", "blue", "pink", "creative", "broom"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("wine and drum", "lomiri-wallpapers", "Wine_by_Jakkub_Mede.jpg",
          ("wine", "bottle", "wine bottle", "glass", "wineglass", "table", "drum", "djembe", "bongo", "interior",
           "room", "furniture", "home", "indoor", "speaker", "loudspeaker", "beanbag", "living room",
           "coffee grinder", "floor", "music", "instrument", "musical instrument", "percussion instrument"),
          (*NO_PEOPLE, "animal/*", "vehicle/*")),
    Photo("autumn mountain", "lomiri-wallpapers", "aitzgorri_by_Aitzol_Berasategi.jpg",
          ("mountain", "mountains", "landscape", "autumn", "fall", "forest", "trees", "tree", "meadow", "grass",
           "field", "hill", "sky", "clouds", "nature", "larch", "rock", "cliff", "valley", "scenic", "outdoor",
           "pasture", "alp", "highland"),
          (*NOT_ALIVE, "vehicle/*", "snow")),
    Photo("bird lamp", "lomiri-wallpapers", "free_by_Peter_Nerlich.jpg",
          ("lamp", "light", "lights", "bird", "ornament", "decoration", "figurine", "toy", "ceiling", "hanging",
           "chandelier", "lighting", "interior", "wings", "flying", "globe", "indoor", "lampshade"),
          ("person", "face", "people", "food/*", "vehicle/*")),
    Photo("two spaniels", "lomiri-wallpapers", "friends_by_Aitzol_Berasategi.jpg",
          ("dog", "dogs", "spaniel", "cocker spaniel", "pet", "animal", "mammal", "window", "house", "wooden",
           "wood", "cute", "two", "puppy", "canine", "domestic dog", "brown", "curtain", "building", "farm", "door",
           "sporting dog", "gun dog", "springer spaniel", "english springer", "sussex spaniel"),
          ("person", "face", "people", "cat/*", "food/*", "vehicle/*")),
    Photo("wall clock", "lomiri-wallpapers", "greentock_by_Peter_Nerlich.jpg",
          ("clock", "wall clock", "time", "hands", "modern", "design", "minimal", "grey", "wall", "dial", "watch",
           "close-up", "analog clock", "texture", "shadow", "timepiece"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
    Photo("forest stream", "lomiri-wallpapers", "life_by_Aitzol_Berasategi.jpg",
          ("stream", "creek", "river", "water", "forest", "trees", "tree", "rocks", "rock", "stone", "nature",
           "woods", "waterfall", "moss", "landscape", "green", "brook", "wilderness", "cascade", "outdoor", "leaves",
           "plant"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("rocky mountain", "lomiri-wallpapers", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
          ("mountain", "mountains", "landscape", "rock", "rocks", "snow", "sky", "clouds", "cloud", "meadow", "grass",
           "path", "trail", "alp", "alpine", "peak", "hiking", "nature", "valley", "highland", "cliff", "summit",
           "scenic", "field"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("dandelion clocks", "lomiri-wallpapers", "seeding_by_Clements_Engelhardt.jpg",
          ("dandelion", "seed", "seeds", "flower", "plant", "meadow", "grass", "field", "nature", "sunset", "summer",
           "spring", "bokeh", "backlight", "wildflower", "weed", "blowball", "evening", "sun"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("mountain sunset", "lomiri-wallpapers", "sunset_by_Aitzol_Berasategi.jpg",
          ("sunset", "sun", "sunrise", "sky", "mountains", "mountain", "landscape", "hill", "horizon", "sunlight",
           "evening", "dusk", "nature", "rock", "rocks", "grass", "field", "light", "stone", "summit", "panorama",
           "valley", "highland"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("bluebells", "imagemagick-6-doc", "bluebells_darker.jpg",
          ("bluebell", "flower", "flowers", "plant", "purple", "blue", "violet", "nature", "spring", "garden", "bloom",
           "blossom", "wildflower", "hyacinth", "macro", "stem", "green"),
          (*NOT_ALIVE, "vehicle/*")),
    Photo("quokka", "imgaug", "quokka.jpg",
          ("quokka", "marsupial", "animal", "mammal", "wallaby", "wildlife", "cute", "fur", "kangaroo", "nature",
           "grey", "wild", "australia"),
          (*NO_PEOPLE, "food/*", "vehicle/*", "dog/*", "cat/*", "bird/*")),
    Photo("bus", "ultralytics", "assets/bus.jpg",
          ("bus", "vehicle", "public transport", "transport", "transportation", "street", "city", "people", "person",
           "man", "woman", "men", "pedestrian", "pedestrians", "sidewalk", "road", "building", "urban", "walking",
           "coat", "electric bus", "minibus", "motor vehicle", "jeans", "tree", "wheeled vehicle", "trolleybus"),
          ("animal/*", "food/*"),
          portrait=True, people=True),
    Photo("coaches", "ultralytics", "assets/zidane.jpg",
          ("person", "man", "men", "people", "suit", "tie", "coach", "crowd", "stadium", "football", "soccer",
           "pointing", "shouting", "adult", "face", "two", "business suit", "jacket", "sport", "audience",
           "manager", "necktie"),
          ("animal/*", "food/*", "vehicle/*"),
          portrait=True, people=True),
    Photo("chalk formulas", "skimage", "text.png",
          ("text", "handwriting", "writing", "chalk", "math", "equation", "formula", "numbers", "blackboard",
           "chalkboard", "pavement", "asphalt", "grey", "black and white", "letters", "symbols", "ground",
           "drawing"),
          (*NOT_ALIVE, "vehicle/*", "plant/*")),
)

ALL_PHOTOS: tuple[Photo, ...] = PHOTOS + MORE_PHOTOS


def _package_dir(module: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)


DEBIAN_DIRS = {
    "mate-backgrounds": MATE,
    "opencv-doc": Path("/usr/share/doc/opencv-doc/examples"),
    "plasma-workspace-wallpapers": Path("/usr/share/wallpapers"),
    "lomiri-wallpapers": Path("/usr/share/backgrounds"),
    "imagemagick-6-doc": Path("/usr/share/doc/imagemagick-6-common/html/images"),
}
"""Debian packages of the set and where their photos are (``bench/install_eval_photos.sh`` installs them)."""
WHEEL_DIRS = {
    "skimage": ("skimage", "data"),
    "matplotlib": ("matplotlib", "mpl-data", "sample_data"),
    "sklearn": ("sklearn", "datasets", "images"),
    "imgaug": ("imgaug",),
    "ultralytics": ("ultralytics",),
}
"""Wheels of the set (module, folder inside it); ``bench/requirements-bench.txt`` installs them."""


def source_dir(source: str) -> Path | None:
    """Where a source's photos are on this machine, or None when its package is not installed."""
    if source == "samples":
        return ROOT / "samples"
    if source in WHEEL_DIRS:
        module, *parts = WHEEL_DIRS[source]
        return _package_dir(module, *parts)
    if source in DEBIAN_DIRS:
        folder = DEBIAN_DIRS[source]
        return folder if folder.is_dir() else None
    raise ValueError(f"unknown source {source}")


CALIBRATION, REPORT = "calibration", "report"


def half(photo: Photo) -> str:
    """The half a photo belongs to, fixed by the sha256 of its name (not by anything a tagger says).

    Every choice (constants, what to keep) is made on the calibration half; the report half only measures.
    """
    return CALIBRATION if hashlib.sha256(photo.name.encode("utf-8")).digest()[0] % 2 == 0 else REPORT


def photos(which: str = "all") -> tuple[Photo, ...]:
    """The photos of one half (``calibration`` or ``report``) or ``all``."""
    if which == "all":
        return ALL_PHOTOS
    if which not in (CALIBRATION, REPORT):
        raise ValueError(f"unknown half {which!r}")
    return tuple(p for p in ALL_PHOTOS if half(p) == which)


def load(photo: Photo) -> Image.Image | None:
    """The photo as RGB (orientation applied), or None if its package is not installed."""
    folder = source_dir(photo.source)
    if folder is None or not (folder / photo.file).is_file():
        return None
    with Image.open(folder / photo.file) as raw:
        return ImageOps.exif_transpose(raw).convert("RGB")


def available(which: str = "all") -> Iterator[tuple[Photo, Image.Image]]:
    """Every photo of the set (or of one half) whose package is installed, loaded."""
    for photo in photos(which):
        image = load(photo)
        if image is not None:
            yield photo, image


def missing_sources(which: str = "all") -> list[str]:
    """Sources whose photos cannot be read here (their package is not installed)."""
    return sorted({p.source for p in photos(which) if load(p) is None})


def views(image: Image.Image) -> list[Image.Image]:
    """Six views of one photo that keep its labels true: the whole, mirrored, the central 80%, the top-left and
    bottom-right 85%, and half size.

    Choices made on the calibration half are scored on these views too (``bench_tagger.py --augmented``): 48
    photos are few, and a setting that only looks good on them (the way the photo happens to be framed) does
    worse on their views. The labels are the photo's: a view never hides its subject.
    """
    width, height = image.size
    return [
        image,
        ImageOps.mirror(image),
        image.crop((round(0.1 * width), round(0.1 * height), round(0.9 * width), round(0.9 * height))),
        image.crop((0, 0, round(0.85 * width), round(0.85 * height))),
        image.crop((round(0.15 * width), round(0.15 * height), width, height)),
        image.resize((max(1, width // 2), max(1, height // 2)), Image.Resampling.BILINEAR),
    ]
