import pytest
from django.core.cache import cache

from chowist.core.readiness import readiness_cache_clear


@pytest.fixture(autouse=True)
def _empty_cache():
    # The configured cache is a real shared one (files or Redis): start every test from a cold cache.
    cache.clear()
    readiness_cache_clear()
    yield
    cache.clear()
    readiness_cache_clear()
