"""Integers out of the database's range never reach it.

Django (5.0+) already answers `exact`, `gt`, `gte`, `lt` and `lte` on an integer column with an out-of-range value
without sending it (an empty or a full result), but not `in`: a ModelMultipleChoiceField given
`categories=99999999999999999999` ran `pk IN (99999999999999999999)`, which SQLite's driver refuses with
OverflowError (a 500) and PostgreSQL with "value out of range". Registered on IntegerField and on relations (a
foreign key's `in` is Django's RelatedIn), these `in` lookups cover every integer column, ids and foreign keys
included, for every caller: an out-of-range value matches nothing, as it does for `exact`, so a form reports an
invalid choice (a 400) and a query finds nothing.
"""

from __future__ import annotations

from typing import Any

from django.db.models import ForeignObject, IntegerField
from django.db.models.fields.related_lookups import RelatedIn
from django.db.models.lookups import In


class _InRange:
    """Drops the integers the column's type cannot hold from a literal `IN (...)` list."""

    rhs: Any
    lhs: Any

    def process_rhs(self, compiler: Any, connection: Any) -> tuple[str, Any]:
        field = self.lhs.output_field
        while getattr(field, "target_field", None) is not None:  # a foreign key: the column it points at
            field = field.target_field
        if self.rhs_is_direct_value() and isinstance(field, IntegerField):  # type: ignore[attr-defined]
            low, high = connection.ops.integer_field_range(field.get_internal_type())
            self.rhs = [
                value
                for value in self.rhs
                if not isinstance(value, int) or ((low is None or value >= low) and (high is None or value <= high))
            ]
        return super().process_rhs(compiler, connection)  # type: ignore[misc]


class IntegerFieldIn(_InRange, In):
    pass


class RelatedIntegerIn(_InRange, RelatedIn):
    pass


def integer_lookups_register() -> None:
    IntegerField.register_lookup(IntegerFieldIn)
    ForeignObject.register_lookup(RelatedIntegerIn)
