"""Settings for the error-reporting test's gunicorn: the real settings plus one view that raises."""

from chowist.settings import *  # noqa: F403

ROOT_URLCONF = "observability.tests.error_urls"
