"""From class probabilities to tag confidences: the vocabulary table and the calibration.

A vocabulary (``data/imagenet-vocabulary.json``, built by ``scripts/build_vocabulary.py``) says which terms each
class of the classifier stands for, with a weight, and each term's parent. A term's raw mass on an image is
``S = sum over classes of weight x probability``; terms with the same name are one tag (their classes united).

The raw mass over-states broad terms on photos the model is unsure about: the diffuse probability of an
uncertain image lands on whatever covers the most classes ("animal" covers 40% of ImageNet, so a meadow got
animal 34). Two corrections, both measured on the evaluation set (``bench/bench_tagger.py``):

* chance correction: a term covering a share ``b`` of the classes (weighted) gets ``b`` of the mass by chance
  when the model knows nothing. With ``u`` the image's uncertainty (its normalised entropy, 0 = one class,
  1 = uniform), the expected chance mass ``c = chance_weight x u x b`` is taken out:
  ``S' = max(0, S - c) / (1 - c)``;
* certainty: the result is scaled by ``(1 - u) ** certainty_power``, so an unsure image never shows an object
  as a sure one. Setting words (nature, plant, texture, text, landscape, ...: terms marked ``setting`` in the
  table) are exempt: an unsure model still sees where the photo was taken (a leaf close-up is "ladybug 29%,
  green lizard 7%, tree frog 5%": the animal is a guess, the plants around those animals are not).

The confidence is ``100 x S' x (1 - u) ** certainty_power`` (power 0 for setting words), raised where needed
so that a parent is never less confident than its child (a cat is an animal: "cat 73" implies "animal >= 73",
even though the chance correction takes more from the broader term).

Trusted terms (a manifest option, off for the shipped model): ``Calibration.trusted`` names terms that are right
whenever they show up at all, and ``trusted_from`` the confidence from which they count as sure:
``[trusted_from, 100]`` is stretched onto ``[60, 100]`` (the threshold users start from), ``[trusted_from / 2,
trusted_from)`` onto ``[trusted_from / 2, 60)``, and lower confidences stay as they are (see ``lift``; monotone).
For the shipped model ``bench/choose_trusted.py`` chose ten words on the calibration half (nature, plant,
landscape, mammal, insect, ...: "nature" at 20 or more was accepted on 62 views of 62); on the report half that
took photos with an accepted word at 60 or more from 37% to 52%, but precision at 60 or more from 90% to 85% and
wrong selections from 0.56 to 1.30 per 10 ("insect" and "bug" on a marigold), so the shipped manifest trusts none.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tagging.errors import BackendError


@dataclass(frozen=True)
class Calibration:
    """The two corrections' strengths (see the module docstring); zeros give the raw summed mass."""

    chance_weight: float = 0.0
    certainty_power: float = 0.0
    trusted: tuple[str, ...] = ()  # terms whose confidence from ``trusted_from`` up is stretched onto 60-100
    trusted_from: float = 0.0


SURE = 60.0
"""Where a trusted term's ``trusted_from`` lands: the default threshold, from which tags are selected."""


def lift(confidences: np.ndarray, start: float) -> np.ndarray:
    """Stretch ``[start, 100]`` onto ``[SURE, 100]`` and ``[start / 2, start)`` onto ``[start / 2, SURE)``; monotone."""
    if start <= 0 or start >= SURE:
        return confidences
    half = start / 2
    upper = SURE + (confidences - start) * (100.0 - SURE) / (100.0 - start)
    ramp = half + (confidences - half) * (SURE - half) / (start - half)
    return np.where(confidences >= start, upper, np.where(confidences >= half, ramp, confidences))


@dataclass
class Vocabulary:
    """Terms (unique names), their parents, and the sparse class -> term weights."""

    names: list[str]
    parents: list[int]  # index into names, -1 for a root
    depths: list[int]
    setting: np.ndarray  # bool per term: a setting word, exempt from the certainty discount
    pair_classes: np.ndarray  # one (class, term, weight) triple per link, class closure included
    pair_terms: np.ndarray
    pair_weights: np.ndarray
    num_classes: int
    shares: np.ndarray = field(init=False)  # weighted share of the classes each term covers

    def __post_init__(self) -> None:
        self.shares = np.bincount(self.pair_terms, weights=self.pair_weights, minlength=len(self.names))
        self.shares /= self.num_classes
        self.index = {name: i for i, name in enumerate(self.names)}
        self._masks: dict[tuple[str, ...], np.ndarray] = {}
        # Children by depth, deepest level first: lifting one level at a time lifts every ancestor to its
        # best descendant.
        levels: dict[int, list[int]] = {}
        for i, parent in enumerate(self.parents):
            if parent >= 0:
                levels.setdefault(self.depths[i], []).append(i)
        self._levels = [
            (np.array(levels[d], dtype=np.intp), np.array([self.parents[i] for i in levels[d]], dtype=np.intp))
            for d in sorted(levels, reverse=True)
        ]

    def masses(self, probabilities: np.ndarray) -> np.ndarray:
        """Raw mass of every term for one probability row (length ``num_classes``)."""
        # bincount, not a matrix product: BLAS threads would spin and steal the cores from the next forward pass.
        return np.bincount(
            self.pair_terms, weights=probabilities[self.pair_classes] * self.pair_weights, minlength=len(self.names)
        )

    def confidences(self, probabilities: np.ndarray, calibration: Calibration) -> np.ndarray:
        """Calibrated confidence (0-100) of every term for one probability row."""
        masses = self.masses(probabilities)
        uncertainty = normalised_entropy(probabilities)
        chance = calibration.chance_weight * uncertainty * self.shares
        corrected = np.clip((masses - chance) / np.maximum(1.0 - chance, 1e-9), 0.0, 1.0)
        certainty = np.where(self.setting, 1.0, (1.0 - uncertainty) ** calibration.certainty_power)
        confidences = np.clip(corrected * certainty * 100.0, 0.0, 100.0)
        if calibration.trusted and calibration.trusted_from > 0:
            trusted = self.mask(calibration.trusted)
            confidences = np.where(trusted, lift(confidences, calibration.trusted_from), confidences)
        for children, parents in self._levels:
            np.maximum.at(confidences, parents, confidences[children])
        return confidences

    def mask(self, names: tuple[str, ...]) -> np.ndarray:
        """A bool per term: whether it is one of ``names`` (names the vocabulary lacks are ignored)."""
        cached = self._masks.get(names)
        if cached is None:
            cached = np.zeros(len(self.names), dtype=bool)
            cached[[self.index[n] for n in names if n in self.index]] = True
            self._masks[names] = cached
        return cached

    def classes_of(self, name: str) -> set[int]:
        """The classes a term is drawn from (any weight); empty for an unknown name."""
        term = self.index.get(name)
        if term is None:
            return set()
        return {int(c) for c in self.pair_classes[self.pair_terms == term]}


def normalised_entropy(probabilities: np.ndarray) -> float:
    """Entropy of a probability row divided by its maximum: 0 for one class, 1 for uniform."""
    p = probabilities[probabilities > 0]
    if len(probabilities) < 2:
        return 0.0
    return float(min(1.0, max(0.0, -(p * np.log(p)).sum() / math.log(len(probabilities)))))


def load_vocabulary(path: Path, num_classes: int) -> Vocabulary:
    """Read a vocabulary table. Raises ``BackendError`` if it is unusable or does not fit the model."""
    try:
        table = json.loads(path.read_text("utf-8"))
        return vocabulary_from_table(table, num_classes)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise BackendError(f"The embedded tagger's vocabulary {path.name} is unusable: {exc}") from exc


def flat_vocabulary(labels: list[str], num_classes: int) -> Vocabulary:
    """A vocabulary without hierarchy: class i is the tag ``labels[i]`` (a manifest with only labels).

    Raises ``BackendError`` if the number of labels is not the model's number of classes.
    """
    if len(labels) != num_classes:
        raise BackendError(f"The labels list has {len(labels)} names, the model has {num_classes} classes.")
    terms = {str(i): {"name": name.split(",")[0].strip().lower(), "parent": None} for i, name in enumerate(labels)}
    return vocabulary_from_table({"terms": terms, "classes": [[str(i)] for i in range(len(labels))]}, len(labels))


def vocabulary_from_table(table: dict[str, Any], num_classes: int) -> Vocabulary:
    """Build the runtime form of a vocabulary table (see ``scripts/build_vocabulary.py`` for the format)."""
    terms: dict[str, dict[str, Any]] = table["terms"]
    classes: list[list[Any]] = table["classes"]
    if len(classes) != num_classes:
        raise ValueError(f"it describes {len(classes)} classes, the model has {num_classes}")
    for term_id, term in terms.items():
        if term["parent"] is not None and term["parent"] not in terms:
            raise ValueError(f"term {term_id} has an unknown parent {term['parent']}")

    def ancestors(term_id: str) -> list[str]:
        chain, seen = [], set()
        node: str | None = term_id
        while node is not None:
            if node in seen:
                raise ValueError(f"cycle through term {node}")
            seen.add(node)
            chain.append(node)
            node = terms[node]["parent"]
        return chain

    # Terms with the same name are one tag: its classes are the union, its parent the parent of the
    # same-named term that covers the most classes.
    links: dict[tuple[int, str], float] = {}
    reach: dict[str, int] = {}
    for class_index, entries in enumerate(classes):
        for entry in entries:
            term_id, weight = (entry, 1.0) if isinstance(entry, str) else (str(entry[0]), float(entry[1]))
            if term_id not in terms:
                raise ValueError(f"class {class_index} names an unknown term {term_id}")
            for node in ancestors(term_id):
                name = terms[node]["name"]
                key = (class_index, name)
                if weight > links.get(key, 0.0):
                    links[key] = weight
                reach[node] = reach.get(node, 0) + 1
    names = sorted({name for _, name in links})
    index = {name: i for i, name in enumerate(names)}
    representative: dict[str, str] = {}
    for node in sorted(reach, key=lambda n: (-reach[n], n)):
        representative.setdefault(terms[node]["name"], node)
    parents = []
    for name in names:
        parent = terms[representative[name]]["parent"]
        parent_index = -1 if parent is None else index.get(terms[parent]["name"], -1)
        parents.append(-1 if parent_index == index[name] else parent_index)
    depths = []
    for i in range(len(names)):
        depth, node, seen = 0, parents[i], {i}
        while node >= 0 and node not in seen:  # same-name merging can make a name its own ancestor
            seen.add(node)
            depth, node = depth + 1, parents[node]
        depths.append(depth)
    setting_names = {term["name"] for term in terms.values() if term.get("setting")}
    ordered = sorted(links.items())
    return Vocabulary(
        names=names,
        parents=parents,
        depths=depths,
        setting=np.array([name in setting_names for name in names], dtype=bool),
        pair_classes=np.array([c for (c, _), _ in ordered], dtype=np.intp),
        pair_terms=np.array([index[n] for (_, n), _ in ordered], dtype=np.intp),
        pair_weights=np.array([w for _, w in ordered], dtype=np.float64),
        num_classes=num_classes,
    )
