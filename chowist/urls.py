from django.contrib import admin
from django.urls import include, path

from chowist.openapi import openapi

urlpatterns = [
    path("", include("chowist.marketing.urls")),
    path("", include("chowist.core.urls")),
    path("places/", include("chowist.places.urls")),
    path("accounts/", include("chowist.accounts.urls")),
    # Interactions come first: /api/places/popular/ must win over /api/places/<id>/.
    path("api/places/", include("chowist.interactions.urls")),
    path("api/places/", include("chowist.places.api_urls")),
    path("api/openapi.json", openapi, name="openapi"),
    path("admin/", admin.site.urls),
]

handler400 = "chowist.core.views.bad_request"
handler403 = "chowist.core.views.permission_denied"
handler404 = "chowist.core.views.page_not_found"
handler500 = "chowist.core.views.server_error"
