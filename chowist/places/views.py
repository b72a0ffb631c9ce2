"""HTML views for places and reviews: thin, they validate input and call selectors/services."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from chowist.core.decorators import allow_methods
from chowist.core.page_cache import PLACES, page_cached, place_generation
from chowist.core.views import error_response
from chowist.places import selectors, services
from chowist.places.forms import PlaceFilterForm, PlaceForm, ReviewForm
from chowist.places.models import Place

NOT_FOUND = "There is no place with that id."


@allow_methods("GET", "HEAD")
@page_cached(PLACES)
def place_list(request: HttpRequest) -> HttpResponse:
    form = PlaceFilterForm(request.GET)
    if not form.is_valid():
        return error_response(request, 400, form.error_message())
    data = form.cleaned_data
    places = selectors.place_list(q=data["q"], categories=data["category"], party_size=data["party"])
    try:
        page = selectors.place_page(places=places, number=data["page"] or 1, per_page=settings.PLACES_PAGE_SIZE)
    except selectors.PageOutOfRange as exc:
        return error_response(request, 404, str(exc))
    context = {
        "form": form,
        "page": page,
        "places": page.object_list,
        "categories": selectors.category_list(),
        "selected_categories": set(data["category"]),
    }
    return render(request, "places/place_list.html", context)


def _detail_context(request: HttpRequest, place: Place, review_form: ReviewForm | None = None) -> dict[str, Any]:
    own_review = None
    if request.user.is_authenticated:
        own_review = selectors.review_for_author(place=place, author_id=request.user.pk)
        if review_form is None:
            initial = {"rating": own_review.rating, "comment": own_review.comment} if own_review else None
            review_form = ReviewForm(initial=initial)
    return {
        "place": place,
        # Lazy querysets: on a fragment-cache hit the template never evaluates them.
        "categories": place.categories.order_by("name"),
        "reviews": selectors.place_recent_reviews(place=place, limit=selectors.DETAIL_RECENT_REVIEWS),
        "own_review": own_review,
        "review_form": review_form,
        "fragment_ttl": settings.PLACE_FRAGMENT_CACHE_TTL,
        # Any edit or review moves updated_at, so the cached fragment of the old version is never served.
        "fragment_version": place.updated_at.isoformat(),
        "can_edit": request.user.has_perm("places.change_place"),
    }


@allow_methods("GET", "HEAD")
@page_cached(place_generation)
def place_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        place = selectors.place_get_plain(pk=pk)
    except Place.DoesNotExist:
        return error_response(request, 404, NOT_FOUND)
    return _render_detail(request, _detail_context(request, place))


def _render_detail(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return render(request, "places/place_detail.html", context, status=status)


@allow_methods("GET", "HEAD")
def place_random(request: HttpRequest) -> HttpResponse:
    place_id = selectors.place_random_id()
    if place_id is None:
        return error_response(request, 404, "There are no places yet, so there is nothing to pick from.")
    return redirect("places:detail", pk=place_id)


@allow_methods("GET", "HEAD", "POST")
def place_edit(request: HttpRequest, pk: int) -> HttpResponse:
    if not request.user.has_perm("places.change_place"):
        return error_response(request, 403, "Editing places needs the 'change place' permission.")
    try:
        place = selectors.place_get(pk=pk)
    except Place.DoesNotExist:
        return error_response(request, 404, NOT_FOUND)
    if request.method == "POST":
        form = PlaceForm(request.POST, instance=place)
        if form.is_valid():
            services.place_update(place=place, data=form.cleaned_data)
            messages.success(request, "Place updated.")
            return redirect(place)
        status = 400
    else:
        form = PlaceForm(instance=place)
        status = 200
    return render(request, "places/place_form.html", {"place": place, "form": form}, status=status)


@allow_methods("POST")
@login_required
def review_submit(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        place = selectors.place_get_plain(pk=pk)
    except Place.DoesNotExist:
        return error_response(request, 404, NOT_FOUND)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, _detail_context(request, place, review_form=form), status=400)
    result = services.review_submit(
        place=place, author=request.user, rating=form.cleaned_data["rating"], comment=form.cleaned_data["comment"]
    )
    messages.success(request, "Thanks for your review!" if result.created else "Your review was updated.")
    return redirect(place)
