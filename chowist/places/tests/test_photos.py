"""Photo upload: checked with Pillow before anything is stored or queued; the worker's thumbnail follows."""

from __future__ import annotations

import io
import resource
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from huey.contrib.djhuey import HUEY
from PIL import Image

from chowist.places.models import Place
from chowist.places.photos import THUMBNAIL_SIZE, place_thumbnail_make
from chowist.places.tests.factories import make_place, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media_and_queue(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    HUEY.storage.flush_all()
    yield
    HUEY.storage.flush_all()


def _image(fmt: str = "PNG", size: tuple[int, int] = (800, 600)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buffer, format=fmt)
    return buffer.getvalue()


def _upload(client, place_id, content: bytes | None, name: str = "photo.png"):
    url = reverse("api:place-photo", kwargs={"pk": place_id})
    data = {} if content is None else {"photo": SimpleUploadedFile(name, content)}
    return client.post(url, data=data)


@pytest.fixture
def editor(client):
    client.force_login(make_user(can_edit=True))
    return client


def test_valid_upload_is_stored_and_its_thumbnail_queued(editor, django_capture_on_commit_callbacks):
    place = make_place()
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(editor, place.pk, _image("JPEG"), "x.jpg")
    assert response.status_code == 202, response.content
    place.refresh_from_db()
    assert place.photo.name.endswith(".jpg")
    assert [task.name for task in HUEY.pending()] == ["make_place_thumbnail"]
    assert HUEY.pending()[0].args == (place.pk,)


def test_thumbnail_is_made_from_the_current_photo(editor, django_capture_on_commit_callbacks):
    place = make_place()
    with django_capture_on_commit_callbacks(execute=True):
        _upload(editor, place.pk, _image("PNG", (1200, 900)))
    assert place_thumbnail_make(place_id=place.pk) is True
    place = Place.objects.get(pk=place.pk)
    with place.thumbnail.open("rb") as fh, Image.open(fh) as thumb:
        assert thumb.format == "JPEG"
        assert max(thumb.size) == max(THUMBNAIL_SIZE)


def _bmp() -> bytes:
    return _image("BMP", (10, 10))


def _truncated_png() -> bytes:
    return _image("PNG")[:200]


@pytest.mark.parametrize(
    ("make_content", "status"),
    [
        (lambda: b"this is not an image at all", 415),
        (_bmp, 415),
        (_truncated_png, 400),
        (lambda: b"", 400),
        (lambda: None, 400),
    ],
    ids=["text", "bmp", "truncated", "empty", "missing"],
)
def test_bad_uploads_are_refused_and_never_queued(editor, django_capture_on_commit_callbacks, make_content, status):
    place = make_place()
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(editor, place.pk, make_content())
    assert response.status_code == status, response.content
    assert "error" in response.json()
    assert HUEY.pending_count() == 0
    place.refresh_from_db()
    assert not place.photo


def test_too_big_upload_is_413(editor, settings, django_capture_on_commit_callbacks):
    settings.PHOTO_MAX_BYTES = 1000
    place = make_place()
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(editor, place.pk, _image("PNG", (600, 600)))
    assert response.status_code == 413
    assert HUEY.pending_count() == 0


def test_who_and_what_may_upload(client):
    place = make_place()
    assert _upload(client, place.pk, _image()).status_code == 401
    client.force_login(make_user(can_edit=False))
    assert _upload(client, place.pk, _image()).status_code == 403
    client.force_login(make_user(can_edit=True))
    assert _upload(client, 987654, _image()).status_code == 404
    url = reverse("api:place-photo", kwargs={"pk": place.pk})
    assert client.post(url, data=b"raw", content_type="image/png").status_code == 415
    assert client.get(url).status_code == 405
    assert HUEY.pending_count() == 0


@pytest.fixture(scope="module")
def pixel_bomb() -> bytes:
    """A ~10 KB PNG declaring 9,000 x 9,000 pixels (81 MP: under Pillow's own bomb limit, 324 MiB decoded)."""
    buffer = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_upload_declaring_too_many_pixels_is_413_before_decoding(
    editor, pixel_bomb, django_capture_on_commit_callbacks
):
    assert len(pixel_bomb) < 50_000
    place = make_place()
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(editor, place.pk, pixel_bomb)
    assert response.status_code == 413
    assert "9000x9000 pixels" in response.json()["error"]
    assert HUEY.pending_count() == 0


def test_thumbnail_of_a_stored_pixel_bomb_is_skipped_without_decoding(pixel_bomb):
    place = make_place()
    # Stored before the limit existed (or by another path): the job checks again, from the header.
    place.photo.save("bomb.png", SimpleUploadedFile("bomb.png", pixel_bomb), save=True)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert place_thumbnail_make(place_id=place.pk) is False
    peak_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert peak_growth_mib < 50, f"peak RSS grew by {peak_growth_mib:.0f} MiB"
    assert not Place.objects.get(pk=place.pk).thumbnail


def test_pixel_limit_is_checked_without_the_warnings_machinery(editor, settings, monkeypatch):
    # The check must not depend on process-wide warning filters (not thread-safe under gthread).
    settings.PHOTO_MAX_PIXELS = 100 * 100
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    place = make_place()
    assert _upload(editor, place.pk, _image("PNG", (101, 100))).status_code == 413
    assert _upload(editor, place.pk, _image("PNG", (100, 100))).status_code == 202


def _stored_bytes(place_id: int) -> bytes:
    place = Place.objects.get(pk=place_id)
    with place.photo.open("rb") as stored:
        return stored.read()


def test_an_uploaded_photos_exif_gps_and_camera_are_not_stored(editor, django_capture_on_commit_callbacks):
    # Before: the original was stored and served byte for byte, EXIF GPS position and camera included.
    exif = Image.Exif()
    exif[0x010F] = "SecretCam Inc."  # Make
    exif[0x0110] = "Model X-Private"  # Model
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})  # GPS
    buffer = io.BytesIO()
    Image.new("RGB", (80, 40), (10, 200, 30)).save(buffer, format="JPEG", exif=exif.tobytes())
    place = make_place()
    with django_capture_on_commit_callbacks(execute=True):
        assert _upload(editor, place.pk, buffer.getvalue(), "gps.jpg").status_code == 202
    stored = _stored_bytes(place.pk)
    assert b"SecretCam" not in stored and b"Model X-Private" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG"
        assert not image.getexif() and not image.getexif().get_ifd(0x8825)
        assert image.size == (40, 80)  # the orientation was applied to the pixels before the EXIF went


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "JPEG", "WEBP"])
def test_bytes_appended_after_the_image_are_not_stored(editor, django_capture_on_commit_callbacks, fmt):
    # Before: HTML appended after a GIF was kept and served from /media/ (a polyglot file).
    payload = b"<html><script>alert(document.cookie)</script></html>"
    place = make_place()
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(editor, place.pk, _image(fmt, (64, 64)) + payload, f"x.{fmt.lower()}")
    assert response.status_code == 202, response.content
    stored = _stored_bytes(place.pk)
    assert payload not in stored and b"<script" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == fmt and image.size == (64, 64)


def test_an_anonymous_upload_is_401_even_without_a_csrf_token(editor):
    # Before: CSRF ran first and answered an anonymous upload 403, where the schema says 401 (not logged in).
    from django.test import Client

    place = make_place()
    strict = Client(enforce_csrf_checks=True)
    response = _upload(strict, place.pk, _image())
    assert response.status_code == 401
    assert response.json() == {"error": "log in to upload photos"}
    # A logged-in client is still checked: without the token, CSRF's JSON 403.
    strict.force_login(make_user(can_edit=True))
    forged = _upload(strict, place.pk, _image())
    assert forged.status_code == 403 and "CSRF" in forged.json()["error"]
    assert Place.objects.get(pk=place.pk).photo == ""


def test_a_photo_sent_as_a_plain_field_is_a_documented_400(editor):
    from chowist.openapi import openapi_document

    place = make_place()
    response = editor.post(reverse("api:place-photo", kwargs={"pk": place.pk}), data={"photo": "not a file"})
    assert response.status_code == 400
    operation = openapi_document()["paths"]["/api/places/{pk}/photo/"]["post"]
    photo = operation["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["photo"]
    assert photo["format"] == "binary" and "plain form field" in photo["description"]
    assert "400" in operation["responses"]


def test_photos_stored_before_the_fix_are_reencoded_by_the_command(settings):
    # Photos uploaded before re-encoding existed are still on disk, served as they were sent.
    from django.core.files.base import ContentFile
    from django.core.management import call_command

    exif = Image.Exif()
    exif[0x010F] = "OldCam"
    buffer = io.BytesIO()
    Image.new("RGB", (30, 20), (1, 2, 3)).save(buffer, format="JPEG", exif=exif.tobytes())
    place = make_place()
    place.photo.save("old.jpg", ContentFile(buffer.getvalue() + b"<html>trailer</html>"), save=True)
    old_path = place.photo.path
    out = io.StringIO()
    call_command("reencode_photos", stdout=out)
    assert "re-encoded 1 photo(s)" in out.getvalue()
    stored = _stored_bytes(place.pk)
    assert b"OldCam" not in stored and b"<html>" not in stored
    assert Image.open(io.BytesIO(stored)).size == (30, 20)
    assert not Path(old_path).exists()
