"""The JSON API the load tests drive: `{"error": "..."}` with the right status for anything bad."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError

from chowist.core.api import ApiError, api_view, csrf_checked_when_logged_in
from chowist.core.page_cache import PLACES, page_cached, place_generation
from chowist.places import selectors, services
from chowist.places.forms import PlaceFilterForm
from chowist.places.models import Place, Review
from chowist.places.photos import InvalidPhoto

PHOTO_FIELD = "photo"
# Multipart framing around the file; a body bigger than this plus the photo limit is refused unread.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def _place_summary(place: Place) -> dict[str, Any]:
    return {
        "id": place.pk,
        "name": place.name,
        "city": place.city,
        "address": place.address,
        "categories": [{"slug": c.slug, "name": c.name} for c in place.categories.all()],
        "average_rating": place.average_rating,
        "review_count": place.review_count,
        "min_party_size": place.min_party_size,
        "max_party_size": place.max_party_size,
        "url": place.get_absolute_url(),
    }


def _review(review: Review) -> dict[str, Any]:
    return {
        "id": review.pk,
        "author": review.author.get_username(),
        "rating": review.rating,
        "comment": review.comment,
        "created_at": review.created_at.isoformat(),
    }


@api_view("GET", "HEAD")
@page_cached(PLACES)
def place_list(request: HttpRequest) -> JsonResponse:
    form = PlaceFilterForm(request.GET)
    if not form.is_valid():
        raise ApiError(400, form.error_message())
    data = form.cleaned_data
    places = selectors.place_list(q=data["q"], categories=data["category"], party_size=data["party"])
    try:
        page = selectors.place_page(places=places, number=data["page"] or 1, per_page=settings.PLACES_PAGE_SIZE)
    except selectors.PageOutOfRange as exc:
        raise ApiError(404, str(exc)) from exc
    return JsonResponse(
        {
            "results": [_place_summary(place) for place in page.object_list],
            "page": page.number,
            "num_pages": page.paginator.num_pages,
            "count": page.paginator.count,
        }
    )


@api_view("GET", "HEAD")
@page_cached(place_generation)
def place_detail(request: HttpRequest, pk: int) -> JsonResponse:
    try:
        place = selectors.place_get(pk=pk)
    except Place.DoesNotExist as exc:
        raise ApiError(404, f"no place with id {pk}") from exc
    body = _place_summary(place)
    body.update(
        description=place.description,
        phone=place.phone,
        updated_at=place.updated_at.isoformat(),
        recent_reviews=[
            _review(r) for r in selectors.place_recent_reviews(place=place, limit=selectors.API_RECENT_REVIEWS)
        ],
    )
    return JsonResponse(body)


@api_view("POST")
@csrf_checked_when_logged_in
def place_photo_upload(request: HttpRequest, pk: int) -> JsonResponse:
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
        place = services.place_photo_set(place=place, uploaded=uploaded)
    except InvalidPhoto as exc:
        raise ApiError(exc.status, str(exc)) from exc
    return JsonResponse({"place_id": place.pk, "photo": place.photo.url, "thumbnail": "pending"}, status=202)
