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


def test_database_password_is_kept_apart_from_the_target():
    url = "postgresql://tagging:in-url-pw-123@db.example.invalid:5433/lib"
    settings = load_settings({"TAGGING_DB": url, "TAGGING_ANALYST": "  Ada   L. "})
    assert settings.db_target == "postgresql://tagging@db.example.invalid:5433/lib"
    assert settings.db_password == "in-url-pw-123" and settings.analyst == "Ada L."
    assert settings.db_display == "postgresql://tagging:***@db.example.invalid:5433/lib"
    assert "in-url-pw-123" not in repr(settings) and str(settings.db_path) == settings.db_target
    separate = load_settings({"TAGGING_DB": url}, {"TAGGING_DB_PASSWORD": "from-secrets-456"})
    assert separate.db_password == "from-secrets-456"  # the setting wins over the URL's own
    assert "from-secrets-456" not in repr(separate) and "***" in separate.db_display
    plain = load_settings({"TAGGING_DB": "data/x.db", "TAGGING_DB_PASSWORD": "unused"})
    assert plain.db_display == "data/x.db" and plain.analyst is None


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
