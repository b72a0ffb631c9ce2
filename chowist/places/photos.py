"""Place photos: the upload endpoint (validated with Pillow before anything is stored or queued) and the
thumbnail the worker makes from it."""

from __future__ import annotations

import io
import logging
import uuid
import warnings

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from PIL import Image, ImageOps, UnidentifiedImageError

from chowist.core.api import ApiError, api_view
from chowist.places.models import Place

logger = logging.getLogger(__name__)

PHOTO_FIELD = "photo"
# Pillow format name -> file extension; anything else is refused before it reaches the disk or the queue.
ALLOWED_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
THUMBNAIL_SIZE = (320, 320)
THUMBNAIL_QUALITY = 85
# Multipart framing around the file; a body bigger than this plus the photo limit is refused unread.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class InvalidPhoto(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@api_view("POST")
def upload(request: HttpRequest, pk: int) -> JsonResponse:
    """POST /api/places/<id>/photo/ (multipart, field "photo"): 202, the thumbnail follows from the worker."""
    if not request.user.is_authenticated:
        raise ApiError(401, "log in to upload photos")
    if not request.user.has_perm("places.change_place"):
        raise ApiError(403, "you may not change places")
    place = Place.objects.filter(pk=pk).first()
    if place is None:
        raise ApiError(404, f"place {pk} does not exist")
    if request.content_type != "multipart/form-data":
        raise ApiError(415, f"Content-Type must be multipart/form-data, got {request.content_type or 'none'!r}")
    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    if declared > settings.PHOTO_MAX_BYTES + MULTIPART_OVERHEAD_BYTES:
        raise ApiError(413, f"photo larger than {settings.PHOTO_MAX_BYTES} bytes")
    try:
        uploaded = request.FILES.get(PHOTO_FIELD)
    except MultiPartParserError as exc:
        raise ApiError(400, f"malformed multipart body: {exc}") from exc
    if uploaded is None:
        raise ApiError(400, f'send the image in the multipart field "{PHOTO_FIELD}"')
    try:
        place = place_photo_set(place=place, uploaded=uploaded)
    except InvalidPhoto as exc:
        raise ApiError(exc.status, str(exc)) from exc
    return JsonResponse({"place_id": place.pk, "photo": place.photo.url, "thumbnail": "pending"}, status=202)


def photo_validate(*, uploaded: UploadedFile) -> str:
    """The file's extension if it is a whole image in an allowed format within the limits; InvalidPhoto otherwise."""
    if uploaded.size is None or uploaded.size > settings.PHOTO_MAX_BYTES:
        raise InvalidPhoto(413, f"photo larger than {settings.PHOTO_MAX_BYTES} bytes")
    if uploaded.size == 0:
        raise InvalidPhoto(400, "the photo is empty")
    uploaded.seek(0)
    try:
        with warnings.catch_warnings():
            # A decompression bomb (huge pixel count in a small file) is refused, not just warned about.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(uploaded) as image:
                image_format = image.format
                image.verify()
    except UnidentifiedImageError as exc:
        raise InvalidPhoto(415, f"not an image; send one of {', '.join(ALLOWED_FORMATS)}") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidPhoto(413, "image has too many pixels") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidPhoto(400, f"the image is damaged: {exc}") from exc
    finally:
        uploaded.seek(0)
    if image_format not in ALLOWED_FORMATS:
        raise InvalidPhoto(415, f"{image_format} images are not accepted; send one of {', '.join(ALLOWED_FORMATS)}")
    return ALLOWED_FORMATS[image_format]


def place_photo_set(*, place: Place, uploaded: UploadedFile) -> Place:
    """Validate, store as the place's photo, and queue its thumbnail once the change commits."""
    extension = photo_validate(uploaded=uploaded)
    with transaction.atomic():
        place.photo.save(f"{place.pk}-{uuid.uuid4().hex}.{extension}", uploaded, save=False)
        place.thumbnail = ""
        place.save(update_fields=["photo", "thumbnail", "updated_at"])
        place_id = place.pk
        transaction.on_commit(lambda: _queue_thumbnail(place_id=place_id))
    return place


def _queue_thumbnail(*, place_id: int) -> None:
    from workers.tasks import make_place_thumbnail

    make_place_thumbnail(place_id)


def place_thumbnail_make(*, place_id: int) -> bool:
    """Make the thumbnail of the place's current photo; False when there is no photo (any more)."""
    place = Place.objects.filter(pk=place_id).first()
    if place is None or not place.photo:
        return False
    photo_name = place.photo.name
    with place.photo.open("rb") as source, Image.open(source) as image:
        thumb = ImageOps.exif_transpose(image).convert("RGB")
        thumb.thumbnail(THUMBNAIL_SIZE)
        buffer = io.BytesIO()
        thumb.save(buffer, format="JPEG", quality=THUMBNAIL_QUALITY)
    place.thumbnail.save(f"{place_id}-{uuid.uuid4().hex}.jpg", ContentFile(buffer.getvalue()), save=False)
    # Only if the photo is still the one we read: a newer upload has its own thumbnail task queued.
    updated = Place.objects.filter(pk=place_id, photo=photo_name).update(thumbnail=place.thumbnail.name)
    if not updated:
        place.thumbnail.storage.delete(place.thumbnail.name)
    return bool(updated)
