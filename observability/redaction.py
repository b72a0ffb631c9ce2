"""Secrets in URLs kept out of the request log and the spans (both end up in Loki/Tempo, readable by operators).

Django's password-reset link carries a working token in its path (/accounts/password/reset/<uidb64>/<token>/):
the values of the route's secret parameters are replaced by REDACTED wherever the path is recorded. The route
is known once the URL resolved, which is before either the log line or the span's last attributes are written.
"""

from __future__ import annotations

from django.http import HttpRequest

REDACTED = "[redacted]"
# URL parameters whose values are credentials (Django's auth views name them so).
SECRET_URL_KWARGS = frozenset({"token", "uidb64"})


def path_redacted(request: HttpRequest) -> str:
    """request.path with the values of the matched route's secret parameters replaced by REDACTED."""
    path = request.path
    match = getattr(request, "resolver_match", None)
    if match is None:
        return path
    for name, value in match.kwargs.items():
        if name in SECRET_URL_KWARGS and isinstance(value, str) and value:
            path = path.replace(f"/{value}/", f"/{REDACTED}/")
    return path
