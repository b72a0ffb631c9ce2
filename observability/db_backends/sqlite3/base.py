"""django-prometheus's SQLite backend, its counting cursor class built once per connection.

The library's `create_cursor` builds a new cursor class (`ExportingCursorWrapper`, a class statement) for every
cursor, i.e. for every query Django runs; the class depends only on the connection's alias and vendor. The
PostgreSQL backend already builds it once per connection (as its cursor_factory).
"""

from __future__ import annotations

from typing import Any

from django_prometheus.db.backends.sqlite3 import base
from django_prometheus.db.common import ExportingCursorWrapper


class DatabaseWrapper(base.DatabaseWrapper):
    _cursor_class: Any = None

    def create_cursor(self, name: str | None = None) -> Any:
        if self._cursor_class is None:
            self._cursor_class = ExportingCursorWrapper(self.CURSOR_CLASS, self.alias, self.vendor)
        return self.connection.cursor(factory=self._cursor_class)
