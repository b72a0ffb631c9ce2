import pytest
from django.core.cache import cache
from huey.contrib.djhuey import HUEY


@pytest.fixture(autouse=True)
def _empty_cache():
    # The configured cache is a real shared one (files or Redis): start every test from a cold cache.
    cache.clear()
    HUEY.storage.flush_all()
    yield
    cache.clear()
    HUEY.storage.flush_all()
