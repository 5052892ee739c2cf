"""The library of tagged images: search, pagination, tag counts, the tag tree and exports.

* An image "carries" a tag when the analyst accepted it. Library entries come from
  ``Store.library_entries`` (one per image, backend and language).
* Tags are compared after trimming and case-folding, so a typed "Cat " finds "cat". A
  searched tag that is not in the library matches nothing: with "all of" the result is
  empty, with "any of" it adds nothing.
* The tag tree: the embedded tagger stores each tag's WordNet parent, so parent links from
  every saved verdict (accepted or not) give paths like ``animal/mammal/feline/cat``. A tag
  seen with different parents (WordNet terms that share a name) takes the parent seen most
  often (ties: alphabetical); a link that would close a cycle is dropped. Tags without a
  known parent - all of Imagga's - are roots.
  A node counts the images carrying its tag (``images``) and those carrying it or any tag
  below it (``images_in_subtree``). Searching with children included lets a parent tag
  match images that carry only its descendants.
* CDN tags: one comma-separated string per image, as ImageKit's ``tags`` accept it: at most
  500 characters, no ``%``. Commas inside a tag become spaces (a comma separates tags),
  ``%`` is removed, whitespace is collapsed and duplicates dropped; a tag that no longer
  fits is left out whole (a later, shorter one may still fit), never cut in half.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Literal

import pandas as pd

from tagging.analysis import Summary
from tagging.store._queries import TagSearch
from tagging.store._rows import LibraryEntry

CDN_MAX_LENGTH = 500
ALL_OF: Literal["all"] = "all"
ANY_OF: Literal["any"] = "any"
Mode = Literal["all", "any"]
PATH_SEPARATOR = "/"
CSV_TAG_SEPARATOR = "; "


def normalise(tag: str) -> str:
    """The form tags are compared in: trimmed, inner whitespace collapsed, case-folded."""
    return " ".join(tag.split()).casefold()


# --- tag tree --------------------------------------------------------------------------
@dataclass(frozen=True)
class TagNode:
    """One tag in the tree."""

    tag: str
    parent: str | None
    path: str
    depth: int  # 0 for a root
    images: int  # images carrying this tag
    images_in_subtree: int | None  # images carrying this tag or a tag below it (None: not counted)


class TagTree:
    """Tags arranged by their parents (see the module docstring)."""

    def __init__(self, parent_links: Iterable[tuple[str, str, int]], entries: Sequence[LibraryEntry]) -> None:
        """``parent_links`` are (tag, parent, times seen) as ``Store.tag_parents`` returns them."""
        carried: dict[str, set[str]] = {}
        for entry in entries:
            for tag in entry.tags:
                carried.setdefault(tag, set()).add(entry.image_key)
        self._arrange(parent_links, carried)
        self.nodes: dict[str, TagNode] = {}
        for root in self._children.get(None, []):
            self._build(root, None, "", 0, carried)

    @classmethod
    def from_counts(cls, parent_links: Iterable[tuple[str, str, int]], images: Mapping[str, int],
                    in_subtree: Mapping[str, int] | None = None) -> TagTree:
        """The tree of tags carried by ``images[tag]`` images (``Store.library_tags``), without reading entries.

        ``in_subtree`` (``Store.subtree_images`` of ``subtrees()``) gives the images below each
        tag that has children; without it their ``images_in_subtree`` is None (not counted).
        """
        tree = cls.__new__(cls)
        carried = {tag: n for tag, n in images.items() if n > 0}
        tree._arrange(parent_links, carried)
        tree.nodes = {}

        def add(tag: str, parent: str | None, prefix: str, depth: int) -> None:
            path = f"{prefix}{PATH_SEPARATOR}{tag}" if prefix else tag
            children = tree._children.get(tag, [])
            below = carried.get(tag, 0) if not children else (None if in_subtree is None else in_subtree.get(tag, 0))
            tree.nodes[tag] = TagNode(tag, parent, path, depth, carried.get(tag, 0), below)
            for child in children:
                add(child, tag, path, depth + 1)

        for root in tree._children.get(None, []):
            add(root, None, "", 0)
        return tree

    def subtrees(self) -> dict[str, list[str]]:
        """Every tag that has children, with the tags of its subtree (itself included): what
        ``Store.subtree_images`` counts."""
        return {tag: [tag, *sorted(self.descendants(tag))] for tag in self.nodes if self._children.get(tag)}

    def _arrange(self, parent_links: Iterable[tuple[str, str, int]], carried: Mapping[str, object]) -> None:
        """Each tag's parent (the votes, cycles left out) and the children of every node."""
        votes: dict[str, Counter[str]] = {}
        for tag, parent, times in parent_links:
            if parent and parent != tag:
                votes.setdefault(tag, Counter())[parent] += times
        parents = {tag: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for tag, c in votes.items()}
        self._parent: dict[str, str] = {}
        for tag in sorted(parents):  # a link that would close a cycle is left out: that tag is a root
            if not self._reaches(self._parent, parents[tag], tag):
                self._parent[tag] = parents[tag]
        # The nodes: every carried tag and all its ancestors.
        names: set[str] = set()
        for tag in carried:
            node: str | None = tag
            while node is not None and node not in names:
                names.add(node)
                node = self._parent.get(node)
        self._children: dict[str | None, list[str]] = {}
        for name in sorted(names):
            self._children.setdefault(self.parent(name), []).append(name)

    @staticmethod
    def _reaches(parents: dict[str, str], start: str, target: str) -> bool:
        seen: set[str] = set()
        node: str | None = start
        while node is not None and node not in seen:
            if node == target:
                return True
            seen.add(node)
            node = parents.get(node)
        return False

    def _build(self, tag: str, parent: str | None, prefix: str, depth: int, carried: dict[str, set[str]]) -> set[str]:
        path = f"{prefix}{PATH_SEPARATOR}{tag}" if prefix else tag
        subtree = set(carried.get(tag, set()))
        for child in self._children.get(tag, []):
            subtree |= self._build(child, tag, path, depth + 1, carried)
        self.nodes[tag] = TagNode(tag, parent, path, depth, len(carried.get(tag, ())), len(subtree))
        return subtree

    def parent(self, tag: str) -> str | None:
        """A tag's parent, or None for a root or an unknown tag."""
        return self._parent.get(tag)

    def path(self, tag: str) -> str:
        """``animal/mammal/feline/cat``; an unknown tag is its own path."""
        node = self.nodes.get(tag)
        return node.path if node else tag

    def descendants(self, tag: str) -> set[str]:
        """Every tag below ``tag`` in the tree (not ``tag`` itself)."""
        found: set[str] = set()
        stack = list(self._children.get(tag, []))
        while stack:
            child = stack.pop()
            if child not in found:
                found.add(child)
                stack.extend(self._children.get(child, []))
        return found

    def frame(self) -> pd.DataFrame:
        """The nodes as a table sorted by path: path, tag, parent, depth, images, images_in_subtree."""
        rows = [
            [n.path, n.tag, n.parent, n.depth, n.images, n.images_in_subtree]
            for n in sorted(self.nodes.values(), key=lambda n: n.path)
        ]
        return pd.DataFrame(rows, columns=["path", "tag", "parent", "depth", "images", "images_in_subtree"])


# --- search and pagination ----------------------------------------------------------------
def search(
    entries: Sequence[LibraryEntry],
    query: Iterable[str],
    mode: Mode = ALL_OF,
    tree: TagTree | None = None,
) -> list[LibraryEntry]:
    """Entries whose accepted tags match all (``"all"``) or any (``"any"``) of the query tags.

    With a ``tree``, a query tag also matches its descendants. An empty query returns every
    entry. Order is kept.
    """
    if mode not in (ALL_OF, ANY_OF):
        raise ValueError(f"mode must be {ALL_OF!r} or {ANY_OF!r}, not {mode!r}")
    wanted = list(dict.fromkeys(normalise(q) for q in query if q.strip()))
    if not wanted:
        return list(entries)
    expansions: list[set[str]] = []
    for q in wanted:
        accepted = {q}
        if tree is not None:
            for name in tree.nodes:
                if normalise(name) == q:
                    accepted |= {normalise(d) for d in tree.descendants(name)}
        expansions.append(accepted)
    combine = all if mode == ALL_OF else any
    result = []
    for entry in entries:
        carried = {normalise(t) for t in entry.tags}
        if combine(bool(carried & accepted) for accepted in expansions):
            result.append(entry)
    return result


@dataclass(frozen=True)
class Page:
    """One page of results; ``number`` is 1-based and already clamped to 1..pages."""

    items: list[LibraryEntry]
    number: int
    pages: int
    total: int
    size: int

    @property
    def first(self) -> int:
        """1-based position of the first item shown (0 when there is none)."""
        return (self.number - 1) * self.size + 1 if self.items else 0

    @property
    def last(self) -> int:
        """1-based position of the last item shown (0 when there is none)."""
        return (self.number - 1) * self.size + len(self.items)


def paginate(items: Sequence[LibraryEntry], number: int, size: int) -> Page:
    """The ``number``-th page (1-based) of ``size`` items; out-of-range numbers are clamped."""
    if size < 1:
        raise ValueError("page size must be at least 1")
    pages = max(1, math.ceil(len(items) / size))
    number = min(max(1, number), pages)
    start = (number - 1) * size
    return Page(list(items[start:start + size]), number, pages, len(items), size)


# --- counts -------------------------------------------------------------------------------
def tag_counts(entries: Sequence[LibraryEntry]) -> pd.DataFrame:
    """How many distinct images carry each tag: columns ``tag`` and ``imageCount``, most first."""
    images: dict[str, set[str]] = {}
    for entry in entries:
        for tag in entry.tags:
            images.setdefault(tag, set()).add(entry.image_key)
    frame = pd.DataFrame(
        [[tag, len(keys)] for tag, keys in images.items()], columns=["tag", "imageCount"]
    )
    frame["imageCount"] = frame["imageCount"].astype("int64")
    return frame.sort_values(["imageCount", "tag"], ascending=[False, True], ignore_index=True)


# --- CDN tags and exports ---------------------------------------------------------------------
def clean_cdn_tag(tag: str) -> str:
    """A tag as a CDN accepts it: no ``%``, no comma (it becomes a space), whitespace collapsed."""
    return " ".join(tag.replace("%", "").replace(",", " ").split())


def cdn_tag_string(tags: Iterable[str], max_length: int = CDN_MAX_LENGTH) -> str:
    """Tags joined by commas for an image CDN (ImageKit): at most ``max_length`` chars, no ``%``."""
    kept: list[str] = []
    seen: set[str] = set()
    length = 0
    for tag in tags:
        clean = clean_cdn_tag(tag)
        if not clean or clean.casefold() in seen:
            continue
        extra = len(clean) + (1 if kept else 0)
        if length + extra > max_length:
            continue
        kept.append(clean)
        seen.add(clean.casefold())
        length += extra
    return ",".join(kept)


def _analysis(entry: LibraryEntry, analysis: Mapping[tuple[str, str], Summary] | None) -> dict[str, object]:
    """The analysis columns of an export row (empty when the image was not analysed)."""
    found = (analysis or {}).get((entry.image_key, entry.backend)) or Summary()
    return {"face_count": found.face_count, "dominant_color": found.dominant_color,
            "dominant_color_parent": found.dominant_parent, "text_found": found.text_found}


def _record(entry: LibraryEntry, analysis: Mapping[tuple[str, str], Summary] | None = None) -> dict[str, object]:
    return {
        "image_key": entry.image_key,
        "filename": entry.filename,
        "backend": entry.backend,
        "language": entry.language,
        "saved_at": entry.saved_at,
        "tags": list(entry.tags),
        "cdn_tags": cdn_tag_string(entry.tags),
        "missing_tags": list(entry.missing_tags),
        "review_mode": entry.review_mode or "",
        **_analysis(entry, analysis),
    }


Analysis = Mapping[tuple[str, str], Summary]
"""(image key, backend) -> the stored analysis summary (``Store.analysis_summaries``)."""


def export_json(entries: Sequence[LibraryEntry], analysis: Analysis | None = None) -> str:
    """Image-to-tags as a JSON array of objects (``tags`` is a list, ``cdn_tags`` the CDN string, ``missing_tags``
    the reviewer's note of tags the tagger missed, ``review_mode`` ``prefilled``, ``blind`` or empty), with the
    analysis columns (``face_count``, ``dominant_color``, ``dominant_color_parent``, ``text_found``; null when
    not analysed) from ``analysis``."""
    return json.dumps([_record(e, analysis) for e in entries], indent=2, ensure_ascii=False)


def export_csv(entries: Sequence[LibraryEntry], analysis: Analysis | None = None) -> str:
    """Image-to-tags as CSV; ``tags`` and ``missing_tags`` are joined by ``"; "``, ``cdn_tags`` is the CDN string;
    the analysis columns as in ``export_json`` (empty when not analysed)."""
    buffer = io.StringIO()
    columns = ["image_key", "filename", "backend", "language", "saved_at", "tags", "cdn_tags", "missing_tags",
               "review_mode", "face_count", "dominant_color", "dominant_color_parent", "text_found"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for entry in entries:
        record = _record(entry, analysis)
        record["tags"] = CSV_TAG_SEPARATOR.join(entry.tags)
        record["missing_tags"] = CSV_TAG_SEPARATOR.join(entry.missing_tags)
        writer.writerow(record)
    return buffer.getvalue()


# --- the same over the database: search resolved to tag names, streamed exports -----------------
def search_of(query: Iterable[str], mode: Mode, tags: Iterable[str], tree: TagTree | None = None,
              provenance: str | None = None) -> TagSearch:
    """The ``Store`` query of ``search``: each typed tag becomes the library's tag names it matches.

    ``tags`` are the library's tag names (``Store.library_tags``). Matching is ``search``'s: trimmed
    and case-folded, a typed tag also matching the tags below it with a ``tree``; a tag not in the
    library matches nothing. An empty query searches nothing (every entry).
    """
    if mode not in (ALL_OF, ANY_OF):
        raise ValueError(f"mode must be {ALL_OF!r} or {ANY_OF!r}, not {mode!r}")
    wanted = list(dict.fromkeys(normalise(q) for q in query if q.strip()))
    if not wanted:
        return TagSearch(provenance, None, mode)
    by_form: dict[str, list[str]] = {}
    for name in tags:
        by_form.setdefault(normalise(name), []).append(name)
    groups = []
    for q in wanted:
        forms = {q}
        if tree is not None:
            for name in tree.nodes:
                if normalise(name) == q:
                    forms |= {normalise(d) for d in tree.descendants(name)}
        groups.append(tuple(sorted(n for form in forms for n in by_form.get(form, ()))))
    return TagSearch(provenance, tuple(groups), mode)


def counts_frame(tags: Iterable[tuple[str, int]]) -> pd.DataFrame:
    """``tag_counts``' table from (tag, images) pairs (``Store.library_tags``)."""
    frame = pd.DataFrame([[t, n] for t, n in tags if n > 0], columns=["tag", "imageCount"])
    frame["imageCount"] = frame["imageCount"].astype("int64")
    return frame.sort_values(["imageCount", "tag"], ascending=[False, True], ignore_index=True)


AnalysisOf = Callable[[Sequence[LibraryEntry]], Analysis]
"""Reads the stored analysis of one chunk of entries (so a streamed export never holds all of it)."""


def stream_csv(chunks: Iterable[Sequence[LibraryEntry]], analysis_of: AnalysisOf | None = None) -> Iterator[str]:
    """``export_csv`` of the concatenated chunks, one piece of text per chunk (the header first)."""
    yield export_csv([])
    for chunk in chunks:
        yield export_csv(chunk, analysis_of(chunk) if analysis_of else None).split("\n", 1)[1]


def stream_json(chunks: Iterable[Sequence[LibraryEntry]], analysis_of: AnalysisOf | None = None) -> Iterator[str]:
    """``export_json`` of the concatenated chunks, one piece of text per chunk."""
    first = True
    for chunk in chunks:
        if not chunk:
            continue
        analysis = analysis_of(chunk) if analysis_of else None
        body = ",\n".join(
            "\n".join("  " + line
                      for line in json.dumps(_record(e, analysis), indent=2, ensure_ascii=False).split("\n"))
            for e in chunk
        )
        yield ("[\n" if first else ",\n") + body
        first = False
    yield "[]" if first else "\n]"


def write_export(pieces: Iterable[str], target: IO[bytes]) -> int:
    """Write streamed export text as UTF-8; return the bytes written."""
    written = 0
    for piece in pieces:
        written += target.write(piece.encode("utf-8"))
    return written
