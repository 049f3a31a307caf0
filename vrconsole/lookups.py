"""The `any` lookup: `field__any=[...]` matches a list of values with ONE query parameter.

Django's `__in` sends one parameter per value, and PostgreSQL refuses a statement with more
than 65,535 of them: a region of 60,000 routers would break the sync. On PostgreSQL
`field__any=values` is `field = ANY(%s::type[])` with the whole list as one array
parameter; other databases (the SQLite of the local run, a few hundred routers) get `IN`.
Registered on every field when the app loads (vrconsole.apps).
"""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, ForeignObject, Lookup
from django.db.models.sql.compiler import SQLCompiler


class AnyOf(Lookup):
    """`lhs = ANY(array)` with the values as one parameter."""

    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self) -> Any:
        values = list(self.rhs)
        field = self.lhs.output_field
        return [field.get_prep_value(value) for value in values]

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if connection.vendor == "postgresql":
            array_type = self.lhs.output_field.cast_db_type(connection)
            return f"{lhs} = ANY(%s::{array_type}[])", [*lhs_params, values]
        if not values:
            return "1 = 0", list(lhs_params)
        placeholders = ", ".join(["%s"] * len(values))
        return f"{lhs} IN ({placeholders})", [*lhs_params, *values]


Field.register_lookup(AnyOf)
# Relations keep lookups of their own (router_id__any goes through the foreign key).
ForeignObject.register_lookup(AnyOf)
