from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from chowist.core.decorators import allow_methods
from chowist.core.page_cache import page_cached


@allow_methods("GET", "HEAD")
@page_cached()
def home(request: HttpRequest) -> HttpResponse:
    # Static on purpose: the landing page must stay up and fast even when the database is struggling.
    return render(request, "marketing/home.html")
