import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chowist.settings")

# What django.core.wsgi.get_wsgi_application() does, with a request class that parses lazily.
django.setup(set_prefix=False)

from chowist.core.wsgi_request import LazyWSGIHandler  # noqa: E402

application = LazyWSGIHandler()
