"""/api/openapi.json cannot drift from the URLconf: same routes, same methods, every error status described."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

from chowist.openapi import OPENAPI_VERSION, openapi_document

# Helpers a view calls that answer errors of their own (chowist/core/api.py, chowist/places/photos.py).
HELPER_STATUSES = {"parse_json_object(": {400, 413, 415}, "InvalidPhoto": {400, 413, 415}, "rate_limit_check(": {429}}


def _json_routes(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(OpenAPI path, view) of every route whose view is an api_view (it answers JSON)."""
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            yield from _json_routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and hasattr(entry.callback, "allowed_methods"):
            route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", prefix + str(entry.pattern))
            yield "/" + route, entry.callback


def _statuses_raised(view: Any) -> set[int]:
    source = inspect.getsource(inspect.unwrap(view))
    statuses = {int(code) for code in re.findall(r"ApiError\(\s*(\d{3})", source)}
    for marker, codes in HELPER_STATUSES.items():
        if marker in source:
            statuses |= codes
    return statuses


def test_every_json_route_is_described_with_exactly_its_methods():
    document = openapi_document()
    routes = dict(_json_routes())
    assert set(routes) == set(document["paths"]), "add or remove the route in chowist/openapi.py"
    for path, view in routes.items():
        allowed = {method.lower() for method in view.allowed_methods} - {"head"}
        assert set(document["paths"][path]) == allowed, path


def test_every_error_a_view_answers_is_described_with_the_error_shape():
    document = openapi_document()
    for path, view in _json_routes():
        for method, operation in document["paths"][path].items():
            described = {int(code) for code in operation["responses"] if code.startswith(("4", "5"))}
            missing = _statuses_raised(view) - described
            assert not missing, f"{method.upper()} {path} answers {sorted(missing)} without describing it"
            for code in described:
                schema = operation["responses"][str(code)]["content"]["application/json"]["schema"]
                if code != 503:
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, code)


def test_served_document_is_openapi_3_1(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    body = response.json()
    assert body["openapi"] == OPENAPI_VERSION
    assert body["components"]["schemas"]["Error"]["required"] == ["error"]


def test_document_is_a_valid_openapi_schema():
    import schemathesis

    schema = schemathesis.openapi.from_dict(openapi_document())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(methods) for methods in openapi_document()["paths"].values())
