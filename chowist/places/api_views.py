"""The JSON API the load tests drive: `{"error": "..."}` with the right status for anything bad."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from chowist.core.api import ApiError, api_view
from chowist.places import selectors
from chowist.places.forms import PlaceFilterForm
from chowist.places.models import Place, Review


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
