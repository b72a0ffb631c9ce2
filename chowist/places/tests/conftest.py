import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _empty_cache():
    # The configured cache is a real shared one (files or Redis): start every test from a cold cache.
    cache.clear()
    yield
    cache.clear()
