from __future__ import annotations

import io

from PIL import Image

from tagging.backends import TagRequest, plan_upload
from tagging.config import load_settings
from tagging.images import load_image


def test_no_key_means_embedded_defaults():
    settings = load_settings({})
    assert settings.imagga is None and not settings.imagga_configured
    assert settings.imagga_url == "https://api.imagga.com/v2"
    assert str(settings.db_path) == "data/tagging.db"
    assert settings.max_upload_bytes == 25 * 1024 * 1024
    assert settings.problems == ()


def test_environment_wins_over_secrets_and_repr_masks():
    settings = load_settings(
        {"IMAGGA_API_KEY": "env-key-123", "IMAGGA_API_SECRET": "env-secret-456", "IMAGGA_API_URL": "http://h/v2/"},
        {"IMAGGA_API_KEY": "file-key", "IMAGGA_API_SECRET": "file-secret", "TAGGING_DB": "/tmp/x.db"},
    )
    assert settings.imagga.api_key == "env-key-123"
    assert settings.imagga_url == "http://h/v2"
    assert str(settings.db_path) == "/tmp/x.db"
    assert "env-secret-456" not in repr(settings) and "env-key-123" not in repr(settings)


def test_half_configured_and_bad_numbers_are_reported():
    settings = load_settings({"IMAGGA_API_SECRET": "s", "TAGGING_MAX_UPLOAD_MB": "lots"})
    assert settings.imagga is None
    assert any("IMAGGA_API_KEY is not set" in p for p in settings.problems)
    assert any("TAGGING_MAX_UPLOAD_MB" in p for p in settings.problems)
    assert load_settings({"TAGGING_MAX_UPLOAD_MB": "2"}).max_upload_bytes == 2 * 1024 * 1024


def _photo(size) -> bytes:
    image = Image.effect_noise(size, 60).convert("RGB")
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def test_plan_upload_downscales_only_when_it_helps():
    big = load_image(_photo((2400, 1600)), "big.png")
    plan = plan_upload(big, 800)
    assert plan.filename == "big.jpg" and plan.saved_bytes > 0
    assert Image.open(io.BytesIO(plan.data)).size == (800, 533)
    same = plan_upload(big, None)
    assert same.data == big.data and same.saved_bytes == 0
    small = load_image(_photo((300, 200)), "small.jpg")
    assert plan_upload(small, 800).data == small.data  # already small enough


def test_request_cache_key_distinguishes_parameters():
    assert TagRequest().cache_key() != TagRequest(language="de").cache_key()
    assert TagRequest(downscale_to=800).cache_key() != TagRequest().cache_key()
    assert TagRequest().cache_key() == TagRequest().cache_key()
