"""The JSON API's OpenAPI 3.1 description, served at /api/openapi.json.

Beside the URLconf (it describes every app's routes, so no app owns it). Written by hand; `chowist/tests/test_openapi.py` keeps it from drifting:
every JSON route in the URLconf is described with exactly the methods its view allows (and nothing else),
every error status a view can answer is described with the `{"error": ...}` shape, and schemathesis
(`chowist/tests/test_schemathesis.py`) checks live responses against it under gunicorn.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from chowist.core.api import api_view
from chowist.interactions.models import InteractionKind
from chowist.places.forms import CATEGORY_FILTER_MAX, PARTY_SIZE_MAX, SEARCH_MAX_LENGTH
from chowist.places.models import RATING_MAX, RATING_MIN

OPENAPI_VERSION = "3.1.0"

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_ERROR_TEXT = {
    400: "Bad input: a parameter or the body is invalid (the message names it).",
    401: "Not logged in.",
    403: "Logged in without the permission this needs.",
    404: "No such place (or page).",
    405: "Method not allowed (the Allow header lists the allowed ones).",
    413: "Body too large.",
    415: "Wrong Content-Type.",
    429: "Too many requests (Retry-After says when to come back).",
    503: "Not ready.",
}


def _errors(*statuses: int) -> dict[str, Any]:
    """Error responses: always 405 (api_view) and 400 (Django refuses malformed requests before any view)."""
    wanted = sorted({400, 405, *statuses})
    return {
        str(status): {"description": _ERROR_TEXT[status], "content": {"application/json": {"schema": _ERROR_REF}}}
        for status in wanted
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _links(pk_from: str, *operation_ids: str) -> dict[str, Any]:
    """OpenAPI links: where a response's place id leads (schemathesis' stateful phase follows them)."""
    return {op: {"operationId": op, "parameters": {"pk": pk_from}} for op in operation_ids}


_PLACE_OPERATIONS = ("placeDetail", "interactionRecord", "placePhotoUpload")

_PK = {
    "name": "pk",
    "in": "path",
    "required": True,
    "description": "Place id.",
    "schema": {"type": "integer", "minimum": 0},
}
_NULLABLE_RATING = {"type": ["number", "null"], "minimum": RATING_MIN, "maximum": RATING_MAX}


def openapi_document() -> dict[str, Any]:
    category = {
        "type": "object",
        "required": ["slug", "name"],
        "properties": {"slug": {"type": "string"}, "name": {"type": "string"}},
        "additionalProperties": False,
    }
    summary_properties = {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "city": {"type": "string"},
        "address": {"type": "string"},
        "categories": {"type": "array", "items": category},
        "average_rating": _NULLABLE_RATING,
        "review_count": {"type": "integer", "minimum": 0},
        "min_party_size": {"type": "integer"},
        "max_party_size": {"type": "integer"},
        "url": {"type": "string"},
    }
    review = {
        "type": "object",
        "required": ["id", "author", "rating", "comment", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "author": {"type": "string"},
            "rating": {"type": "integer", "minimum": RATING_MIN, "maximum": RATING_MAX},
            "comment": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
        },
        "additionalProperties": False,
    }
    detail_properties = {
        **summary_properties,
        "description": {"type": "string"},
        "phone": {"type": "string"},
        "updated_at": {"type": "string", "format": "date-time"},
        "recent_reviews": {"type": "array", "items": {"$ref": "#/components/schemas/Review"}},
    }
    popular_item = {
        "type": "object",
        "required": ["place_id", "name", "url", "views", "likes", "bookmarks", "reviews", "score"],
        "properties": {
            "place_id": {"type": "integer"},
            "name": {"type": "string"},
            "url": {"type": "string"},
            "views": {"type": "integer", "minimum": 0},
            "likes": {"type": "integer", "minimum": 0},
            "bookmarks": {"type": "integer", "minimum": 0},
            "reviews": {"type": "integer", "minimum": 0},
            "window_average_rating": _NULLABLE_RATING,
            "score": {"type": "number", "exclusiveMinimum": 0},
        },
        "additionalProperties": False,
    }
    health = {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "checks": {
                "type": "object",
                "description": '"ok" or "failed" per check (staff see the error text).',
                "additionalProperties": {"type": "string"},
            },
            "failed": {"type": "array", "items": {"type": "string"}},
        },
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Chowist JSON API",
            "version": settings.APP_VERSION,
            "description": 'Every error is `{"error": "<what is wrong>"}` with a 4xx status; a 5xx is a bug.',
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Liveness: the process serves (no I/O).",
                    "responses": {"200": _json("Alive.", health), **_errors()},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Readiness: database, cache and queue reachable (result reused for a moment).",
                    "responses": {
                        "200": _json("Ready.", health),
                        "503": _json(_ERROR_TEXT[503], health),
                        **_errors(),
                    },
                }
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": {"200": _json("OpenAPI 3.1 document.", {"type": "object"}), **_errors()},
                }
            },
            "/api/places/": {
                "get": {
                    "operationId": "placeList",
                    "summary": "Places, filtered and paginated.",
                    "parameters": [
                        {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": SEARCH_MAX_LENGTH}},
                        {
                            "name": "category",
                            "in": "query",
                            "style": "form",
                            "explode": True,
                            # The HTML list's form sends `category=` for "any": an empty value is ignored.
                            "description": "Category slugs (a place in any of them); an empty value is ignored.",
                            "schema": {
                                "type": "array",
                                "maxItems": CATEGORY_FILTER_MAX,
                                "items": {"type": "string", "pattern": "^[-a-zA-Z0-9_]*$", "maxLength": 100},
                            },
                        },
                        {
                            "name": "party",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": PARTY_SIZE_MAX},
                        },
                        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                    ],
                    "responses": {
                        "200": _json(
                            "One page of places.",
                            {
                                "type": "object",
                                "required": ["results", "page", "num_pages", "count"],
                                "properties": {
                                    "results": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/PlaceSummary"},
                                    },
                                    "page": {"type": "integer", "minimum": 1},
                                    "num_pages": {"type": "integer", "minimum": 1},
                                    "count": {"type": "integer", "minimum": 0},
                                },
                                "additionalProperties": False,
                            },
                        )
                        | {"links": _links("$response.body#/results/0/id", *_PLACE_OPERATIONS)},
                        **_errors(404),
                    },
                }
            },
            "/api/places/popular/": {
                "get": {
                    "operationId": "popularPlaces",
                    "summary": "The most popular places over a window of days.",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": settings.POPULAR_MAX_LIMIT},
                        },
                        {
                            "name": "window",
                            "in": "query",
                            "description": f"Days, like 7d: 1d to {settings.POPULAR_MAX_WINDOW_DAYS}d "
                            f"(default {settings.POPULAR_DEFAULT_WINDOW_DAYS}d); anything else is a 400.",
                            "schema": {
                                "type": "string",
                                "enum": [f"{days}d" for days in range(1, settings.POPULAR_MAX_WINDOW_DAYS + 1)],
                            },
                        },
                    ],
                    "responses": {
                        "200": _json(
                            "The ranking.",
                            {
                                "type": "object",
                                "required": ["limit", "window", "generated_at", "items", "cached"],
                                "properties": {
                                    "limit": {"type": "integer"},
                                    "window": {"type": "string"},
                                    "generated_at": {"type": "string", "format": "date-time"},
                                    "items": {"type": "array", "items": popular_item},
                                    "cached": {"type": "boolean"},
                                },
                                "additionalProperties": False,
                            },
                        ),
                        **_errors(),
                    },
                }
            },
            "/api/places/{pk}/": {
                "get": {
                    "operationId": "placeDetail",
                    "summary": "One place with its latest reviews.",
                    "parameters": [_PK],
                    "responses": {
                        "200": _json(
                            "The place.",
                            {
                                "type": "object",
                                "required": list(detail_properties),
                                "properties": detail_properties,
                                "additionalProperties": False,
                            },
                        )
                        | {"links": _links("$request.path.pk", "interactionRecord", "placePhotoUpload")},
                        **_errors(404),
                    },
                }
            },
            "/api/places/{pk}/interactions/": {
                "post": {
                    "operationId": "interactionRecord",
                    "summary": "Record a view, like or bookmark (counted in the background).",
                    "parameters": [_PK],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["kind"],
                                    "properties": {"kind": {"type": "string", "enum": list(InteractionKind.values)}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": _json(
                            "Accepted: kept, counted shortly.",
                            {
                                "type": "object",
                                "required": ["id", "place_id", "kind", "mode", "duplicate"],
                                "properties": {
                                    "id": {"type": "integer"},
                                    "place_id": {"type": "integer"},
                                    "kind": {"type": "string", "enum": list(InteractionKind.values)},
                                    "mode": {"type": "string", "enum": ["queued", "sync"]},
                                    "duplicate": {
                                        "type": "boolean",
                                        "description": "A logged-in user's second like/bookmark of the place today: "
                                        "the first one is returned and nothing new is counted.",
                                    },
                                },
                                "additionalProperties": False,
                            },
                        ),
                        **_errors(404, 413, 415, 429),
                    },
                }
            },
            "/api/places/{pk}/photo/": {
                "post": {
                    "operationId": "placePhotoUpload",
                    "summary": "Replace the place's photo (staff with change_place); the thumbnail follows.",
                    "parameters": [_PK],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["photo"],
                                    "properties": {
                                        "photo": {
                                            "type": "string",
                                            "format": "binary",
                                            "contentMediaType": "image/*",
                                            "description": "A file part (with a filename) holding a JPEG, PNG, "
                                            "WebP or GIF; a plain form field of that name is a 400.",
                                        }
                                    },
                                },
                                "encoding": {"photo": {"contentType": "image/jpeg, image/png, image/webp, image/gif"}},
                            }
                        },
                    },
                    "responses": {
                        "202": _json(
                            "Stored; thumbnail pending.",
                            {
                                "type": "object",
                                "required": ["place_id", "photo", "thumbnail"],
                                "properties": {
                                    "place_id": {"type": "integer"},
                                    "photo": {"type": "string"},
                                    "thumbnail": {"type": "string", "enum": ["pending"]},
                                },
                                "additionalProperties": False,
                            },
                        ),
                        **_errors(401, 403, 404, 413, 415),
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string", "minLength": 1}},
                    "additionalProperties": False,
                },
                "PlaceSummary": {
                    "type": "object",
                    "required": list(summary_properties),
                    "properties": summary_properties,
                    "additionalProperties": False,
                },
                "Review": review,
            }
        },
    }


@api_view("GET", "HEAD")
def openapi(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_document())
