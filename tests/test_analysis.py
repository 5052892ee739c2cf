"""Offline analysis (tagging.analysis): colours, crops, faces, text, overlays, in Imagga's shapes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tagging.analysis import (
    COLORS,
    COMMON_RESOLUTIONS,
    CROPPINGS,
    FACES,
    PARENTS,
    TEXT,
    OfflineAnalyzer,
    ShapeError,
    best_crop,
    check,
    colors_response,
    crop_jpeg,
    croppings_response,
    css_palette,
    draw_overlay,
    kmeans,
    parse_resolution,
    rescale,
    srgb_to_lab,
    summarise,
)
from tagging.analysis._overlay import FACE_COLOUR, TEXT_COLOUR
from tagging.images import load_image
from tests.test_embedded_ocr import sign

ASTRONAUT = "samples/astronaut.jpg"


@pytest.fixture(scope="module")
def analyzer() -> OfflineAnalyzer:
    return OfflineAnalyzer()


def solid(rgb: tuple[int, int, int], size: tuple[int, int] = (120, 90)) -> Image.Image:
    return Image.new("RGB", size, rgb)


# --- colours ----------------------------------------------------------------------------
def test_lab_of_known_colours() -> None:
    np.testing.assert_allclose(srgb_to_lab(np.array([255, 255, 255])), [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(srgb_to_lab(np.array([255, 0, 0])), [53.24, 80.09, 67.20], atol=0.02)
    np.testing.assert_allclose(srgb_to_lab(np.array([0, 0, 0])), [0, 0, 0], atol=0.01)


@pytest.mark.parametrize(("rgb", "name", "parent"), [
    ((255, 0, 0), "red", "red"),
    ((0, 0, 255), "blue", "blue"),
    ((0, 128, 0), "green", "green"),
    ((255, 255, 255), "white", "white"),
    ((0, 0, 0), "black", "black"),
    ((255, 165, 0), "orange", "orange"),
    ((128, 128, 128), "gray", "gray"),
    ((0, 0, 120), "navy", "blue"),
    ((139, 69, 19), "saddlebrown", "brown"),
    ((250, 128, 114), "salmon", "red"),
    ((255, 192, 203), "pink", "pink"),
    ((128, 0, 128), "purple", "purple"),
])
def test_solid_colour_is_named_with_its_parent(rgb, name, parent) -> None:
    body = colors_response(solid(rgb))
    check(COLORS, body)
    colors = body["result"]["colors"]
    assert [(c["closest_palette_color"], c["closest_palette_color_parent"]) for c in colors["image_colors"]] == [
        (name, parent)]
    only = colors["image_colors"][0]
    assert (only["r"], only["g"], only["b"]) == rgb and only["percent"] == 100.0
    assert only["html_code"] == "#{:02x}{:02x}{:02x}".format(*rgb)
    # One colour everywhere: no subject, all background.
    assert colors["object_percentage"] == 0 and colors["foreground_colors"] == []


def test_shares_follow_the_areas() -> None:
    image = solid((200, 0, 0), (200, 100))
    ImageDraw.Draw(image).rectangle((140, 0, 199, 99), fill=(0, 0, 200))  # the right 30%
    shares = {c["closest_palette_color_parent"]: c["percent"] for c in colors_response(image)["result"]["colors"][
        "image_colors"]}
    assert set(shares) == {"red", "blue"}
    assert shares["red"] == pytest.approx(70, abs=2) and shares["blue"] == pytest.approx(30, abs=2)


def test_subject_in_the_middle_is_the_foreground() -> None:
    image = solid((30, 140, 40), (300, 200))
    ImageDraw.Draw(image).ellipse((110, 60, 190, 140), fill=(230, 20, 20))
    colors = colors_response(image)["result"]["colors"]
    assert colors["foreground_colors"][0]["closest_palette_color_parent"] == "red"
    assert colors["background_colors"][0]["closest_palette_color_parent"] == "green"
    assert 5 < colors["object_percentage"] < 30


def test_kmeans_is_deterministic_and_separates() -> None:
    points = np.concatenate([np.zeros((50, 3)), np.full((30, 3), 50.0)])
    labels = kmeans(points, 2)
    assert np.array_equal(labels, kmeans(points, 2))
    assert len(set(labels[:50])) == 1 and len(set(labels[50:])) == 1 and labels[0] != labels[-1]


def test_palette_names_every_colour_under_a_parent() -> None:
    palette = css_palette()
    assert len(palette.names) == len(set(palette.names)) > 130
    assert set(palette.parents) == set(PARENTS)
    assert "grey" not in palette.names and "gray" in palette.names


# --- crops ------------------------------------------------------------------------------
def test_resolution_parsing() -> None:
    assert parse_resolution(" 1920x1080 ") == (1920, 1080)
    for bad in ("1920", "0x10", "axb", "-5x3"):
        with pytest.raises(ValueError):
            parse_resolution(bad)


@pytest.mark.parametrize("target", list(COMMON_RESOLUTIONS.values()))
def test_crop_is_largest_of_its_ratio_and_inside(target) -> None:
    x1, y1, x2, y2 = best_crop((800, 600), target, np.ones((48, 64)))
    w, h = x2 - x1 + 1, y2 - y1 + 1
    assert 0 <= x1 <= x2 < 800 and 0 <= y1 <= y2 < 600
    assert w / h == pytest.approx(target[0] / target[1], rel=0.01)
    assert w == 800 or h == 600


def test_crop_follows_the_subject() -> None:
    image = solid((200, 200, 200), (800, 400))
    ImageDraw.Draw(image).rectangle((620, 150, 720, 250), fill=(20, 20, 200))  # subject far right
    crop = croppings_response(image, [(100, 100)])["result"]["croppings"][0]
    assert crop["x1"] <= 620 and crop["x2"] >= 720 and (crop["y1"], crop["y2"]) == (0, 399)


def test_crop_keeps_the_face_over_a_louder_background() -> None:
    image = solid((200, 200, 200), (900, 300))
    ImageDraw.Draw(image).rectangle((600, 50, 800, 250), fill=(255, 0, 0))  # salient, on the right
    face = {"confidence": 90.0, "coordinates": {"xmin": 40, "ymin": 100, "xmax": 100, "ymax": 170,
                                                "width": 60, "height": 70}}
    crop = croppings_response(image, [(1, 1)], faces=[face])["result"]["croppings"][0]
    assert crop["x1"] <= 40 and crop["x2"] >= 100


# --- faces and text -----------------------------------------------------------------------
def test_offline_faces_have_imagga_shape(analyzer) -> None:
    image = load_image(open(ASTRONAUT, "rb").read(), "astronaut.jpg").image
    body = analyzer.faces(image)
    check(FACES, body)
    (face,) = body["result"]["faces"]
    c = face["coordinates"]
    assert 100 < c["xmin"] < c["xmax"] < 300 and 20 < c["ymin"] < c["ymax"] < 250
    assert face["face_id"] and 50 < face["confidence"] <= 100


def _exif_rotated(original: Image.Image) -> bytes:
    """JPEG bytes storing ``original`` as a camera held sideways would, with EXIF orientation 6."""
    stored = original.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = io.BytesIO()
    stored.save(out, format="JPEG", quality=95, exif=exif)
    return out.getvalue()


def test_text_box_and_overlay_on_an_exif_rotated_sign(analyzer) -> None:
    original = sign("EXIT 24", (300, 250))  # 640x400; the plate is white, the wall grey
    plate = np.argwhere(np.asarray(original).min(axis=2) > 240)
    (py0, px0), (py1, px1) = plate.min(axis=0), plate.max(axis=0)
    loaded = load_image(_exif_rotated(original), "sign.jpg").image
    assert loaded.size == (640, 400)  # the orientation is applied
    body = analyzer.text(loaded)
    check(TEXT, body)
    (line,) = body["result"]["text"]
    box = line["coordinates"]
    assert line["data"].replace(" ", "") == "EXIT24"
    assert px0 <= box["xmin"] < box["xmax"] <= px1 + 1 and py0 <= box["ymin"] < box["ymax"] <= py1 + 1
    # Drawn on a 320 px copy: the outline sits at half the coordinates.
    shown = np.asarray(draw_overlay(loaded, text=body["result"]["text"], max_side=320))
    assert shown.shape[:2] == (200, 320)
    assert tuple(shown[box["ymin"] // 2 + 1, (box["xmin"] + box["xmax"]) // 4]) == TEXT_COLOUR
    assert tuple(shown[5, 5]) != TEXT_COLOUR


def test_overlay_boxes_land_on_a_known_rectangle_after_exif_rotation() -> None:
    original = solid((200, 200, 200), (400, 300))
    ImageDraw.Draw(original).rectangle((80, 60, 179, 139), fill=(0, 0, 255))
    loaded = load_image(_exif_rotated(original), "rect.jpg").image
    blue = np.argwhere((np.asarray(loaded)[:, :, 2] > 180) & (np.asarray(loaded)[:, :, 0] < 80))
    (y0, x0), (y1, x1) = blue.min(axis=0), blue.max(axis=0)
    assert abs(x0 - 80) <= 2 and abs(y0 - 60) <= 2 and abs(x1 - 179) <= 2 and abs(y1 - 139) <= 2
    face = {"confidence": 99.0, "coordinates": {"xmin": int(x0), "ymin": int(y0), "xmax": int(x1),
                                                "ymax": int(y1), "width": int(x1 - x0), "height": int(y1 - y0)}}
    shown = np.asarray(draw_overlay(loaded, faces=[face], max_side=200))  # scale 0.5
    assert tuple(shown[round(y0 / 2), round((x0 + x1) / 4)]) == FACE_COLOUR
    assert tuple(shown[round((y0 + y1) / 4), round(x0 / 2)]) == FACE_COLOUR
    assert tuple(shown[round((y0 + y1) / 4), round((x0 + x1) / 4)]) != FACE_COLOUR  # inside is not painted


def test_crop_file_is_the_crop() -> None:
    image = solid((10, 20, 30), (300, 200))
    data = crop_jpeg(image, {"x1": 50, "y1": 0, "x2": 249, "y2": 199})
    assert Image.open(io.BytesIO(data)).size == (200, 200)


# --- shapes -------------------------------------------------------------------------------
def test_offline_croppings_have_imagga_shape(analyzer) -> None:
    image = load_image(open(ASTRONAUT, "rb").read(), "astronaut.jpg").image
    body = analyzer.croppings(image, list(COMMON_RESOLUTIONS.values()))
    check(CROPPINGS, body)
    assert [(c["target_width"], c["target_height"]) for c in body["result"]["croppings"]] == list(
        COMMON_RESOLUTIONS.values())
    face = analyzer.faces(image)["result"]["faces"][0]["coordinates"]
    for crop in body["result"]["croppings"]:  # every crop keeps Eileen Collins' face
        assert crop["x1"] <= face["xmin"] and crop["x2"] >= face["xmax"]
        assert crop["y1"] <= face["ymin"] and crop["y2"] >= face["ymax"]


@pytest.mark.parametrize(("endpoint", "body"), [
    (FACES, {"result": {"faces": [{"confidence": 1, "coordinates": {"xmin": 0}}]}}),
    (FACES, {"result": {}}),
    (COLORS, {"result": {"colors": {"image_colors": [{"r": 1}]}}}),
    (TEXT, {"result": {"text": [{"coordinates": {}}]}}),
    (CROPPINGS, {"result": {"croppings": [{"x1": "0"}]}}),
])
def test_check_rejects_malformed_answers(endpoint, body) -> None:
    with pytest.raises(ShapeError):
        check(endpoint, body)


def test_rescale_maps_a_downscaled_answer_onto_the_original() -> None:
    faces = {"result": {"faces": [{"confidence": 90, "face_id": "a", "coordinates": {
        "xmin": 10, "ymin": 20, "xmax": 30, "ymax": 60, "width": 20, "height": 40}}]}}
    scaled = rescale(FACES, faces, (100, 80), (400, 320))
    assert scaled["result"]["faces"][0]["coordinates"] == {
        "xmin": 40, "ymin": 80, "xmax": 120, "ymax": 240, "width": 80, "height": 160}
    assert faces["result"]["faces"][0]["coordinates"]["xmin"] == 10  # the input is left alone
    crops = {"result": {"croppings": [{"target_width": 1, "target_height": 1, "x1": 0, "y1": 0, "x2": 79, "y2": 79}]}}
    assert rescale(CROPPINGS, crops, (100, 80), (400, 320))["result"]["croppings"][0]["x2"] == 316


def test_summary_of_answers() -> None:
    summary = summarise({
        FACES: {"result": {"faces": [{}, {}]}},
        COLORS: colors_response(solid((0, 0, 255))),
        TEXT: {"result": {"text": [{"data": "  "}]}},
    })
    assert (summary.face_count, summary.dominant_color, summary.dominant_parent, summary.text_found) == (
        2, "blue", "blue", False)
    assert summarise({}).face_count is None
