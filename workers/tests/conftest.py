import pytest
from django.core.cache import cache
from huey.contrib.djhuey import HUEY


@pytest.fixture
def clean_queue():
    """The real huey storage of this test run (SQLite under VAR_DIR), emptied before and after."""
    HUEY.storage.flush_all()
    cache.clear()
    yield HUEY
    HUEY.storage.flush_all()
    cache.clear()
