"""Offline image tagger: an ONNX classifier described by a manifest, a vocabulary, and a face detector.

Answers in the same JSON shape as Imagga's ``/v2/tags`` endpoint, so the rest of the package parses both
backends with one code path::

    {"result": {"tags": [{"confidence": 95.1, "tag": {"en": "cat"}, "parent": {"en": "feline"}}, ...]},
     "status": {"text": "", "type": "success"}}

``parent`` is the one key Imagga does not send: the tag's parent in the vocabulary, left out for roots.

How the tags are made (details in ``_vocabulary.py`` and ``_people.py``):

* the classifier (shipped: EfficientNet-Lite0, ImageNet-1k, on ONNX Runtime) gives class probabilities;
* the vocabulary turns them into terms: hypernyms, scene and context words, each a weighted sum of class
  probabilities, calibrated for how sure the model is and how many classes a term covers;
* BlazeFace finds faces: "face" (parent "person") at the best face's score, "person" combining it with the
  classifier's cue for people (worn clothes) as independent evidence, and "people" for two or more faces (faces
  scoring under ``FACE_TAG_SCORE`` make no tags);
* NanoDet finds COCO objects (``_objects.py``): boxes in ``result.objects`` (Imagga's detections shape), each
  class a suggested tag at half its score, a detected body more evidence of a person, two of them "people";
* whole-picture words (``_picture.py``: black and white, colour names, colourful) as capped suggestions;
* text: RapidOCR's text detector glances at a small copy of each photo whose classes hint at text
  (``TEXT_CUE``; ``TextReader.glance``); where text
  covers ``TEXT_SHARE`` of it, the largest lines are read, "text" is tagged and the lines go in
  ``result.text`` (Imagga's ``/v2/text`` item shape, pixel boxes);
* never empty: when nothing reaches ``min_confidence`` the best ``NEVER_FEWER`` terms come back anyway;
* tags below the manifest's ``min_confidence`` are dropped and at most ``max_tags`` returned, most confident
  first (ties: more general term first, then by name).

The face detector runs in a worker thread while the classifier runs in the caller's, each on its own core
(see ``CLASSIFIER_THREADS``); nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tagging.embedded._classifier import OnnxClassifier
from tagging.embedded._manifest import Manifest, check_sha256, read_labels, resolve_manifest
from tagging.embedded._objects import DetectedObject, ObjectDetector
from tagging.embedded._ocr import TextReader, TextRegion, shared_reader, text_response
from tagging.embedded._people import Face, FaceDetector, faces_json
from tagging.embedded._picture import picture_words
from tagging.embedded._preprocess import InputSpec, preprocess
from tagging.embedded._vocabulary import Vocabulary, flat_vocabulary, load_vocabulary, normalised_entropy
from tagging.errors import BackendError, BadImageError

MIN_CONFIDENCE = 5.0
"""Default floor (percent) of the shipped manifest: below it, tags on unsure photos are noise (bench)."""
MAX_TAGS = 50
"""At most this many tags per image."""
NEVER_FEWER = 5
"""When no tag reaches ``min_confidence``, the best this many still come back, with their (low) confidences:
an answer is never empty."""
LOWEST_SHOWN = 0.01
"""The confidence such a tag shows at the least (a term the calibration took to 0 still ranks by its mass)."""
CONFIDENCE_DECIMALS = 4
HOMONYMS = frozenset({"kite"})
"""Detector classes whose word names something else in the vocabulary (the toy kite, ImageNet's bird of prey):
their tag stands alone instead of lifting the vocabulary's ancestors ("bird", "animal")."""
OBJECT_SURE_SCORE = 2.0
"""NanoDet score that would make a detected class a sure tag (100); lower scores scale down. The detector's
classes are suggestions: at its own score (1.0 here) the calibration half lost precision at 60 or more (78% to
71%) and gained plainly wrong selections (7 to 16: a cat on the quokka, a person in paintbrushes), so a class
tag gets half its score (at most 50); the boxes keep the score itself."""
CLASSIFIER_THREADS = max(1, (os.cpu_count() or 2) - 1)
"""Intra-op threads of the classifier: all cores but one, which the face detector gets. On 2 cores, one
thread each running side by side beats the classifier on two threads followed by the detector (bench)."""
VIEWS = 2
"""Views of each photo the classifier sees, their probabilities averaged (see ``crops``). On the calibration
half, against the whole photo alone: 2 views (the whole and its centre) took precision at 60 or more from 88% to
90%, photos with an accepted word at 60 or more from 13 to 14, accepted words among the tags from 37% to 38%,
for one more forward pass; 4 views (plus the squares at either end) gave 91%, 13 and 39% for three more."""
PIPELINE_CHUNK = 4
"""Images per classifier run when ``tag_batch`` pipelines resizing with the forward pass."""
FACE_THREADS = 1
"""BlazeFace's convolutions are too small to share: on two threads it measured slower than on one."""
TEXT_SHARE = 0.05
"""A photo whose text (as the detector marks it on a small copy) covers this share of it is read and tagged
"text". On six views of each calibration photo: 34 views reached it, all on photos labelled "text"; under it
came a bus's small print and a graffito (0.006 and 0.03), not labelled "text"."""
TEXT_CUE = 0.002
"""The glance costs about 17 ms, so it runs only on photos whose classifier probabilities give the term "text"
(book jackets, menus, web sites, crosswords ...) at least this mass. On six views of each calibration photo this
skipped 162 of 288 glances and none of the 34 that found text (the least cue among those: 0.0042)."""
TEXT_CONFIDENCE = 90.0
"""The "text" tag's confidence when the glance found text, raised to the best line's when one is read: below the
glance's record on the calibration views (34 of 34), as 34 views are few."""
FACE_TAG_SCORE = 0.6
"""A face makes the tags face, person and people only from this BlazeFace score up (the detector's own floor,
0.5, still lists it in ``result.faces``). On six views of each calibration photo the faces on photos without
people scored 0.52 to 0.57 (moss, dandelion clocks, two spaniels), and the best face on the photo with people
0.69 to 0.79: at 0.5 moss was tagged "person 56, face 56" and the floor selected both."""


def face_confidence(score: float) -> float:
    """A BlazeFace score (0-1, a sigmoid of the model's logit) as a tag confidence, 0-100."""
    return float(min(100.0, max(0.0, score * 100.0)))


@dataclass(frozen=True)
class _Candidate:
    confidence: float
    depth: int  # 0 for a root; orders a parent before a child of equal confidence
    parent: str | None


class EmbeddedTagger:
    """Tags images offline; load once (a fraction of a second) and reuse.

    ``tag``/``tag_batch`` may be called from several threads: ONNX Runtime sessions are thread-safe and
    only read.
    """

    def __init__(
        self,
        manifest: str | Path | Manifest | None = None,
        *,
        min_confidence: float | None = None,
        max_tags: int | None = None,
        detect_faces: bool = True,
        detect_objects: bool | None = None,
        views: int | None = None,
        read_text: bool | None = None,
    ) -> None:
        """Load the model (the shipped one without ``manifest``), its vocabulary, the face and object detectors.

        ``read_text`` glances for text and reads it (``TEXT_SHARE``; the reader is loaded once per process):
        None (the default) when the OCR package can be loaded (``text_unavailable`` then says why not, and the
        tags come without text), True to require it, False to skip it.
        ``detect_objects`` defaults to the manifest's ``objects`` (off for the shipped model: the detector costs
        about six times the classifier and did not pay on the calibration half; see ``OBJECT_SURE_SCORE``).

        ``manifest`` is a manifest id (see ``list_manifests``), a path to a ``.manifest.json``, or a
        ``Manifest``. ``load_seconds`` records how long loading took. Raises ``BackendError`` (its
        subclass ``ManifestError`` for a bad manifest) if anything cannot be loaded.
        """
        started = time.perf_counter()
        self.manifest = resolve_manifest(manifest)
        self.min_confidence = self.manifest.min_confidence if min_confidence is None else min_confidence
        self.max_tags = self.manifest.max_tags if max_tags is None else max_tags
        check_sha256(self.manifest)
        self.classifier = OnnxClassifier(
            self.manifest.model,
            input_name=self.manifest.input_name,
            output_name=self.manifest.output_name,
            activation=self.manifest.activation,
            threads=CLASSIFIER_THREADS,
        )
        self.num_classes = self.classifier.num_classes
        if self.manifest.vocabulary is not None:
            self.vocabulary: Vocabulary = load_vocabulary(self.manifest.vocabulary, self.num_classes)
        else:
            assert self.manifest.labels is not None
            self.vocabulary = flat_vocabulary(read_labels(self.manifest.labels), self.num_classes)
        self.calibration = self.manifest.calibration
        use_faces = detect_faces and self.manifest.faces
        self.faces: FaceDetector | None = FaceDetector(threads=FACE_THREADS) if use_faces else None
        use_objects = self.manifest.objects if detect_objects is None else detect_objects
        self.objects: ObjectDetector | None = ObjectDetector(threads=FACE_THREADS) if use_objects else None
        self.text: TextReader | None = None
        self.text_unavailable: str | None = None
        if read_text is not False:
            try:
                self.text = shared_reader()
            except BackendError as exc:
                if read_text:
                    raise
                self.text_unavailable = str(exc)
        self._text_term = self.vocabulary.index.get("text")
        self._text_words = companions(self.vocabulary, "text")
        use_worker = use_faces or use_objects
        self._face_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faces") if use_worker else None
        self._person = self.vocabulary.index.get("person")
        self.views = VIEWS if views is None else max(1, views)
        self.load_seconds = time.perf_counter() - started

    # --- public API ---------------------------------------------------------------
    def tag(self, image: Image.Image) -> dict[str, Any]:
        """Tag one image (any mode; converted to RGB); returns an Imagga v2 ``/tags``-shaped response.

        Raises ``BadImageError`` if the image cannot be decoded, ``BackendError`` if a model fails.
        """
        return self.tag_batch([image])[0]

    def tag_batch(self, images: list[Image.Image]) -> list[dict[str, Any]]:
        """Tag several images; one response per image, in order.

        The face worker detects faces while this thread runs the classifier (if the worker has not started
        by the time the classifier is done, this thread does it: see ``_result_or_run``). For more than
        ``PIPELINE_CHUNK`` images the worker also prepares the classifier's input chunk by chunk, so the
        classifier runs on one chunk while the next is resized (it would otherwise wait for all of them).
        """
        if not images:
            return []
        images = [_rgb(image) for image in images]
        worker = self._face_worker
        if worker is None:
            pixels = self._prepare(images)
            words = [picture_words(to_rgb(row, self.manifest.input)) for row in pixels[:: self.views]]
            probabilities = self._classify(pixels)
            texts = [self.read_text(image, row) for image, row in zip(images, probabilities, strict=True)]
            return [
                self.response(row, [], image.size, extra, None, text)
                for row, extra, image, text in zip(probabilities, words, images, texts, strict=True)
            ]
        chunks = [images[i : i + PIPELINE_CHUNK] for i in range(0, len(images), PIPELINE_CHUNK)]
        futures: list[Future[Any]] = []
        try:
            if len(chunks) == 1:
                futures.append(worker.submit(self.detect_batch, images))
                inputs = [self._prepare(images)]
                rows = [self._classify(inputs[0])]
            else:
                prepared = [worker.submit(self._prepare, chunk) for chunk in chunks]
                futures = [*prepared, worker.submit(self.detect_batch, images)]
                inputs, rows = [], []
                for future, chunk in zip(prepared, chunks, strict=True):
                    inputs.append(_result_or_run(future, self._prepare, chunk))
                    rows.append(self._classify(inputs[-1]))
            seen = _result_or_run(futures[-1], self.detect_batch, images)
        except BaseException:
            for future in futures:
                future.cancel()
            for future in futures:
                _wait_quietly(future)
            raise
        probabilities = np.concatenate(rows)
        words = [
            picture_words(to_rgb(pixels, self.manifest.input)) for batch in inputs for pixels in batch[:: self.views]
        ]
        texts = [self.read_text(image, row) for image, row in zip(images, probabilities, strict=True)]
        return [
            self.response(row, faces, image.size, extra, objects, text)
            for row, (faces, objects), extra, image, text in zip(probabilities, seen, words, images, texts, strict=True)
        ]

    def _prepare(self, images: list[Image.Image]) -> np.ndarray:
        """The classifier's inputs: ``self.views`` views of each image, image by image."""
        return np.stack([self.preprocess(view) for image in images for view in crops(image, self.views)])

    def _classify(self, pixels: np.ndarray) -> np.ndarray:
        """One probability row per image: the mean over its views."""
        rows = self.predict(pixels)
        return rows.reshape(-1, self.views, rows.shape[-1]).mean(axis=1)

    # --- the steps of tag_batch, public so the benchmark can time them -------------
    def preprocess(self, image: Image.Image) -> np.ndarray:
        """The classifier's input for one image (float32, no batch axis)."""
        return preprocess(image, self.manifest.input)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Run the classifier on a batch; (N, classes) probabilities, float64."""
        return self.classifier.predict(batch)

    def detect_faces(self, image: Image.Image) -> list[Face]:
        """Faces found in one image, best first (empty when face detection is off)."""
        return self.detect_faces_batch([image])[0]

    def detect_batch(self, images: list[Image.Image]) -> list[tuple[list[Face], list[DetectedObject]]]:
        """Faces and objects found in each image (what the worker thread does beside the classifier)."""
        faces = self.detect_faces_batch(images)
        objects = self.objects.detect_batch(images) if self.objects is not None else [[] for _ in images]
        return list(zip(faces, objects, strict=True))

    def read_text(self, image: Image.Image, probabilities: np.ndarray | None = None) -> list[TextRegion] | None:
        """The lines of text in one image, read only when a glance finds text covering ``TEXT_SHARE`` of it;
        None when it does not (or text reading is off), possibly empty when the read finds no line.

        With the classifier's ``probabilities`` for the image, the glance is skipped when they give the term
        "text" less than ``TEXT_CUE`` of their mass.
        """
        if self.text is None:
            return None
        if probabilities is not None and self._text_term is not None:
            if self.vocabulary.masses(probabilities)[self._text_term] < TEXT_CUE:
                return None
        share, lines = self.text.glance(image, read_from=TEXT_SHARE)
        return lines if share >= TEXT_SHARE else None

    def detect_faces_batch(self, images: list[Image.Image]) -> list[list[Face]]:
        """Faces found in each image (one forward pass)."""
        if self.faces is None:
            return [[] for _ in images]
        return self.faces.detect_batch(images)

    def response(
        self,
        probabilities: np.ndarray,
        faces: list[Face],
        size: tuple[int, int] | None = None,
        extra: dict[str, float] | None = None,
        objects: list[DetectedObject] | None = None,
        text: list[TextRegion] | None = None,
    ) -> dict[str, Any]:
        """Build the Imagga-shaped response from one probability row, the faces and objects found, and ``extra``.

        ``text`` is what ``read_text`` answered: with a list (text was seen), "text" is tagged at
        ``TEXT_CONFIDENCE`` or the best line's confidence, and the lines go in ``result.text``.

        ``extra`` maps more words (the whole-picture words) to confidences; a word the classifier also gives
        keeps the higher of the two. With the image's ``size`` (width, height) the faces and objects also go in
        ``result.faces`` (Imagga's ``/v2/faces/detections`` item shape) and ``result.objects`` with pixel boxes
        (the shared box contract), beside ``result.tags``.
        """
        vocabulary = self.vocabulary
        confidences = vocabulary.confidences(probabilities, self.calibration)
        best: dict[str, _Candidate] = {}
        floor = self.min_confidence
        shown = np.flatnonzero(confidences >= floor)
        if len(shown) == 0:
            # Never empty: the terms with the most mass, at their honest low confidences.
            masses = vocabulary.masses(probabilities)
            shown = np.lexsort((-masses, -confidences))[:NEVER_FEWER]
            confidences = np.maximum(confidences, LOWEST_SHOWN)
            floor = LOWEST_SHOWN
        for index in shown:
            parent = vocabulary.parents[index]
            best[vocabulary.names[index]] = _Candidate(
                float(confidences[index]),
                vocabulary.depths[index],
                None if parent < 0 else vocabulary.names[parent],
            )
        faces_seen = [face for face in faces if face.score >= FACE_TAG_SCORE]
        if faces_seen:
            face = face_confidence(faces_seen[0].score)
            cue = float(confidences[self._person]) if self._person is not None else 0.0
            # A face and the classifier's cue (worn clothes) are independent evidence of a person.
            person = 100.0 * (1.0 - (1.0 - face / 100.0) * (1.0 - cue / 100.0))
            held = best.get("person")
            best["person"] = _Candidate(person, 0, held.parent if held else None)
            best["face"] = _Candidate(face, (held.depth if held else 0) + 1, "person")
            if len(faces_seen) >= 2:
                # Confidence that at least two faces are there: the weaker of the top two.
                best["people"] = _Candidate(face_confidence(faces_seen[1].score), 0, None)

        counted: dict[str, list[DetectedObject]] = {}
        for found in objects or []:
            counted.setdefault(found.tag, []).append(found)
        for word, group in counted.items():
            confidence = object_confidence(group[0].score)
            if word == "person":
                if len(group) >= 2:
                    # At least two people: the weaker of the top two, or what the faces said.
                    two = object_confidence(group[1].score)
                    held = best.get("people")
                    best["people"] = _Candidate(max(two, held.confidence if held else 0.0), 0, None)
                held = best.get("person")
                # A detected body is independent evidence beside the face and the clothes.
                other = held.confidence if held else 0.0
                confidence = 100.0 * (1.0 - (1.0 - confidence / 100.0) * (1.0 - other / 100.0))
            if word in HOMONYMS:
                held = best.get(word)
                best[word] = _Candidate(max(confidence, held.confidence if held else 0.0), 0, None)
            else:
                self._raise(best, word, confidence)

        if text is not None:
            seen = max([TEXT_CONFIDENCE] + [line.confidence for line in text])
            self._raise(best, "text", seen)
            for word, share in self._text_words.items():  # letters, words, font ... at their share of "text"
                self._raise(best, word, share * seen)

        for word, confidence in (extra or {}).items():
            held = best.get(word)
            if confidence >= floor and (held is None or held.confidence < confidence):
                best[word] = _Candidate(confidence, held.depth if held else 0, held.parent if held else None)

        ranked = sorted(
            (
                (round(candidate.confidence, CONFIDENCE_DECIMALS), candidate.depth, name, candidate)
                for name, candidate in best.items()
                if candidate.confidence >= floor
            ),
            key=lambda item: (-item[0], item[1], item[2]),
        )
        tags = []
        for confidence, _, name, candidate in ranked[: self.max_tags]:
            entry: dict[str, Any] = {"confidence": confidence, "tag": {"en": name}}
            if candidate.parent is not None and candidate.parent != name:
                entry["parent"] = {"en": candidate.parent}
            tags.append(entry)
        result: dict[str, Any] = {"tags": tags}
        if faces and size is not None:
            result["faces"] = faces_json(faces, size)
        if objects and size is not None:
            result["objects"] = [object_json(found, size) for found in objects]
        if text:
            result["text"] = text_response(text)["result"]["text"]
        return {"result": result, "status": {"text": "", "type": "success"}}

    def _raise(self, best: dict[str, _Candidate], word: str, confidence: float) -> None:
        """Set ``word`` to at least ``confidence``, and its ancestors in the vocabulary too (a parent is never
        less confident than its child)."""
        index = self.vocabulary.index.get(word)
        while True:
            held = best.get(word)
            if held is None:
                parent = self.vocabulary.parents[index] if index is not None else -1
                depth = self.vocabulary.depths[index] if index is not None else 0
                best[word] = _Candidate(confidence, depth, None if parent < 0 else self.vocabulary.names[parent])
            elif held.confidence < confidence:
                best[word] = _Candidate(confidence, held.depth, held.parent)
            parent_name = best[word].parent
            if parent_name is None or parent_name == word:
                return
            word, index = parent_name, self.vocabulary.index.get(parent_name)

    def uncertainty(self, probabilities: np.ndarray) -> float:
        """How unsure the classifier is about one image: normalised entropy, 0 (one class) to 1 (uniform)."""
        return normalised_entropy(probabilities)

    def close(self) -> None:
        """Stop the face worker thread (the tagger cannot be used afterwards)."""
        if self._face_worker is not None:
            self._face_worker.shutdown(wait=True)


def to_rgb(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """A classifier input (one image, no batch axis) back to an (H, W, 3) RGB array in 0-255."""
    shape = (3, 1, 1) if spec.layout == "NCHW" else (1, 1, 3)
    raw = (pixels * np.asarray(spec.std, dtype=np.float32).reshape(shape)
           + np.asarray(spec.mean, dtype=np.float32).reshape(shape)) / np.float32(spec.scale)
    if spec.layout == "NCHW":
        raw = raw.transpose(1, 2, 0)
    return raw[:, :, ::-1] if spec.channel_order == "BGR" else raw


def companions(vocabulary: Vocabulary, word: str) -> dict[str, float]:
    """The words the vocabulary draws from exactly the classes of ``word``, each at one share of its weight on
    every one of them (the related words of ``scripts/build_vocabulary.py``: "letters" is 0.6 of "text"), by
    that share; empty when ``word`` is not in the vocabulary."""
    term = vocabulary.index.get(word)
    if term is None:
        return {}
    weights: dict[int, dict[int, float]] = {}
    for klass, other, weight in zip(vocabulary.pair_classes, vocabulary.pair_terms, vocabulary.pair_weights,
                                    strict=True):
        weights.setdefault(int(other), {})[int(klass)] = float(weight)
    mine = weights[term]
    found = {}
    for other, theirs in weights.items():
        if other == term or theirs.keys() != mine.keys():
            continue
        shares = {round(theirs[k] / mine[k], 6) for k in mine}
        if len(shares) == 1 and (share := shares.pop()) < 1.0:
            found[vocabulary.names[other]] = share
    return found


def object_confidence(score: float) -> float:
    """A detector score (0-1) as a tag confidence, 0-100: ``OBJECT_SURE_SCORE`` and above is 100."""
    return float(min(100.0, max(0.0, 100.0 * score / OBJECT_SURE_SCORE)))


def object_json(found: DetectedObject, size: tuple[int, int]) -> dict[str, Any]:
    """One detection in Imagga's detections shape, box in pixels of the (EXIF-oriented) image."""
    width, height = size
    x0, y0, x1, y1 = (round(v * side) for v, side in zip(found.box, (width, height, width, height), strict=True))
    return {
        "tag": {"en": found.tag},
        "confidence": round(100.0 * found.score, CONFIDENCE_DECIMALS),
        "coordinates": {"xmin": x0, "ymin": y0, "xmax": x1, "ymax": y1, "width": x1 - x0, "height": y1 - y0},
    }


def crops(image: Image.Image, views: int) -> list[Image.Image]:
    """The views of a photo: the whole (as the model crops it), its centre (70%), and the squares at either
    end of its long side (the whole again for a square photo); the first ``views`` of them."""
    width, height = image.size
    side, centre = min(width, height), 0.7 * min(width, height)
    found = [image]
    if views > 1:
        left, top = (width - centre) / 2, (height - centre) / 2
        found.append(image.crop((round(left), round(top), round(left + centre), round(top + centre))))
    if views > 2:
        found += [image.crop((0, 0, side, side)), image.crop((width - side, height - side, width, height))]
    return found[:views]


def _rgb(image: Image.Image) -> Image.Image:
    """The image as RGB, decoded now, so a broken file fails here (and not in the face worker) clearly."""
    try:
        image.load()
        return image if image.mode == "RGB" else image.convert("RGB")
    except (OSError, ValueError) as exc:
        raise BadImageError(f"The image could not be decoded: {exc}") from exc


def _result_or_run(future: Future[Any], fn: Any, *args: Any) -> Any:
    """The worker's result, or, if the worker has not even started the task, run it here instead.

    On a busy machine the worker thread may not get a core while this one runs the classifier; waiting for
    it then costs more than doing the work now.
    """
    if future.cancel():
        return fn(*args)
    return future.result()


def _wait_quietly(pending: Future[Any]) -> None:
    """Let a face detection that already started finish; its outcome no longer matters (the caller raises)."""
    if not pending.cancelled():
        pending.exception()
