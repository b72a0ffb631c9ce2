"""Place photos with Pillow: an upload is validated before anything is stored or queued, and the worker makes
its thumbnail."""

from __future__ import annotations

import io
import logging
import uuid

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, ImageOps, UnidentifiedImageError

from chowist.places.models import Place

logger = logging.getLogger(__name__)

# Pillow format name -> file extension; anything else is refused before it reaches the disk or the queue.
ALLOWED_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
THUMBNAIL_SIZE = (320, 320)
THUMBNAIL_QUALITY = 85


class InvalidPhoto(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def photo_validate(*, uploaded: UploadedFile) -> str:
    """The file's extension if it is a whole image in an allowed format within the limits; InvalidPhoto otherwise."""
    if uploaded.size is None or uploaded.size > settings.PHOTO_MAX_BYTES:
        raise InvalidPhoto(413, f"photo larger than {settings.PHOTO_MAX_BYTES} bytes")
    if uploaded.size == 0:
        raise InvalidPhoto(400, "the photo is empty")
    uploaded.seek(0)
    try:
        # Image.open reads only the header: the pixel count is checked before anything is decoded.
        with Image.open(uploaded) as image:
            image_format = image.format
            photo_pixels_check(size=image.size)
            image.verify()
    except InvalidPhoto:
        raise
    except UnidentifiedImageError as exc:
        raise InvalidPhoto(415, f"not an image; send one of {', '.join(ALLOWED_FORMATS)}") from exc
    except Image.DecompressionBombError as exc:
        raise InvalidPhoto(413, "image has too many pixels") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidPhoto(400, f"the image is damaged: {exc}") from exc
    finally:
        uploaded.seek(0)
    if image_format not in ALLOWED_FORMATS:
        raise InvalidPhoto(415, f"{image_format} images are not accepted; send one of {', '.join(ALLOWED_FORMATS)}")
    return ALLOWED_FORMATS[image_format]


# What a re-encoded image keeps of the original's metadata: only what drawing it needs. Everything else (EXIF with
# its GPS position and camera, XMP, comments, text chunks) is dropped with the original bytes.
KEPT_INFO = frozenset({"transparency", "duration", "loop", "background", "icc_profile"})
JPEG_QUALITY = 90


def photo_reencode(*, uploaded: UploadedFile) -> ContentFile:
    """The upload decoded and encoded again in its own format: nothing but the pixels survives.

    The original was stored and served byte for byte: its EXIF GPS position and camera, and whatever followed
    the image data (HTML appended after a GIF) went out to anyone under /media/. Call after photo_validate (the
    pixel count is checked there, before this decodes anything).
    """
    uploaded.seek(0)
    try:
        with Image.open(uploaded) as image:
            image_format = image.format or "PNG"
            animated = getattr(image, "n_frames", 1) > 1
            # The orientation lives in the EXIF about to be dropped: applied to the pixels first.
            clean = image if animated else ImageOps.exif_transpose(image)
            clean.load()
            clean.info = {key: value for key, value in image.info.items() if key in KEPT_INFO}
            options: dict[str, object] = {"save_all": True} if animated else {}
            if image_format == "JPEG":
                options["quality"] = JPEG_QUALITY
            buffer = io.BytesIO()
            clean.save(buffer, format=image_format, **options)
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidPhoto(400, f"the image is damaged: {exc}") from exc
    finally:
        uploaded.seek(0)
    return ContentFile(buffer.getvalue())


def photo_pixels_check(*, size: tuple[int, int]) -> None:
    """InvalidPhoto(413) past PHOTO_MAX_PIXELS: a 10 KB PNG can declare 9,000 x 9,000 pixels (324 MiB decoded).

    An explicit check, not Pillow's DecompressionBombWarning: turning a warning into an error goes through
    the process-wide `warnings` filters, which are not thread-safe under gunicorn's gthread workers.
    """
    width, height = size
    if width * height > settings.PHOTO_MAX_PIXELS:
        raise InvalidPhoto(413, f"image has {width}x{height} pixels; at most {settings.PHOTO_MAX_PIXELS} accepted")


def place_thumbnail_make(*, place_id: int) -> bool:
    """Make the thumbnail of the place's current photo; False when there is no photo (any more)."""
    place = Place.objects.filter(pk=place_id).first()
    if place is None or not place.photo:
        return False
    photo_name = place.photo.name
    with place.photo.open("rb") as source, Image.open(source) as image:
        try:
            # Again here: the stored file may predate the limit; refused before a single pixel is decoded.
            photo_pixels_check(size=image.size)
        except InvalidPhoto:
            logger.warning("thumbnail_refused_too_many_pixels place_id=%s size=%s", place_id, image.size)
            return False
        # JPEG decodes straight at a fraction of its size (1/2 to 1/8) when only a thumbnail is wanted.
        image.draft("RGB", THUMBNAIL_SIZE)
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
