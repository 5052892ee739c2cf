"""The embedded tagger's evaluation set: photos that ship in registry packages, labelled by hand.

Each photo lists the words a person would accept as tags and the words that are plainly wrong, written by a
person looking at the photo (not taken from any model's output). ``name/*`` stands for a family: the word and
every tag the tagger derives only from classes beneath it (``animal/*`` is animal, mammal, insect, dog, ...).

Where the photos come from (none is downloaded; a missing package only drops its photos, and the bench says so):

* ``samples/`` of this project (cat, coffee, astronaut, rocket: scikit-image's photos, CC0 / public domain,
  committed, see samples/LICENSES.md);
* the installed ``scikit-image`` wheel's ``skimage/data`` folder (camera CC0, coins and moon public domain,
  horse public domain, motorcycle from the Middlebury stereo set, textures CC0, Hubble deep field public
  domain, page): read in place, not committed;
* the ``matplotlib`` wheel's ``mpl-data/sample_data/grace_hopper.jpg`` (US Navy photo, public domain);
* the ``scikit-learn`` wheel's ``datasets/images`` (china.jpg, flower.jpg; CC-BY per its README.txt);
* Debian's ``mate-backgrounds`` package (``/usr/share/backgrounds/mate/nature``; GPL-2+, so only read from the
  installed package, never committed): close-ups of leaves, grass, flowers, water, wood, a dune, a storm.

Install them with ``pip install -r bench/requirements-bench.txt`` and ``apt-get install mate-backgrounds``.
"""

from __future__ import annotations

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


def _package_dir(module: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)


def source_dir(source: str) -> Path | None:
    """Where a source's photos are on this machine, or None when its package is not installed."""
    if source == "samples":
        return ROOT / "samples"
    if source == "skimage":
        return _package_dir("skimage", "data")
    if source == "matplotlib":
        return _package_dir("matplotlib", "mpl-data", "sample_data")
    if source == "sklearn":
        return _package_dir("sklearn", "datasets", "images")
    if source == "mate-backgrounds":
        return MATE if MATE.is_dir() else None
    raise ValueError(f"unknown source {source}")


def load(photo: Photo) -> Image.Image | None:
    """The photo as RGB (orientation applied), or None if its package is not installed."""
    folder = source_dir(photo.source)
    if folder is None or not (folder / photo.file).is_file():
        return None
    with Image.open(folder / photo.file) as raw:
        return ImageOps.exif_transpose(raw).convert("RGB")


def available() -> Iterator[tuple[Photo, Image.Image]]:
    """Every photo of the set whose package is installed, loaded."""
    for photo in PHOTOS:
        image = load(photo)
        if image is not None:
            yield photo, image


def missing_sources() -> list[str]:
    """Sources whose photos cannot be read here (their package is not installed)."""
    return sorted({p.source for p in PHOTOS if load(p) is None})
