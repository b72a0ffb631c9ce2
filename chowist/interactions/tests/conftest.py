import pytest
from django.core.cache import cache
from huey.contrib.djhuey import HUEY


@pytest.fixture(autouse=True)
def _clean_cache_and_queue():
    # Real shared cache and real huey storage (this VAR_DIR's SQLite file): start each test from empty.
    cache.clear()
    HUEY.storage.flush_all()
    yield
    cache.clear()
    HUEY.storage.flush_all()
