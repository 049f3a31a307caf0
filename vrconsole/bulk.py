"""Bulk inserts and upserts of many rows, fast on PostgreSQL.

The sync writes up to tens of thousands of wide rows (router rows carry the API item as
JSON). Django's bulk_create builds every value through the ORM and the driver quotes it in
Python, which took over a minute for a 10,000-router first sync. On PostgreSQL this module
sends each batch as ONE JSON parameter and lets the server unpack it with
`jsonb_to_recordset`, typed by the model's own column types, inserting or upserting in one
statement. PostgreSQL refuses NUL characters in text and JSON; the rare batch that has one
is cleaned here, once, for every column. JSON is written by orjson (ten times json.dumps on
the API items a first sync stores), falling back to json for what orjson refuses (integers
beyond 64 bits, lone surrogates). Other databases (the SQLite of the local run) use
bulk_create.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Model

from vrconsole.fields import JSONTextField, dumps, without_nuls

__all__ = ["insert", "upsert", "without_nuls"]

BATCH = 2000


def _batches(rows: Sequence[dict[str, Any]], size: int) -> Iterable[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _columns(model: type[Model], names: Sequence[str]) -> list[tuple[str, str, str]]:
    """(attname, column, SQL type) of the named fields (attnames), in order."""
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    columns = []
    for name in names:
        field = by_attname[name]
        sql_type = field.db_type(connection)
        if sql_type is None:  # a field with no column of its own cannot be written here
            raise ValueError(f"{model.__name__}.{name} has no database column type")
        columns.append((name, field.column, sql_type))
    return columns


def _json_text_columns(model: type[Model], names: Sequence[str]) -> list[str]:
    """The named fields kept as JSON text (JSONTextField): their values are written as that text."""
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    return [name for name in names if isinstance(by_attname[name], JSONTextField)]


def _unique_columns(model: type[Model], unique: Sequence[str]) -> list[str]:
    """The database columns of the unique attnames, in order."""
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    return [by_attname[name].column for name in unique]


def insert(model: type[Model], rows: Sequence[dict[str, Any]], returning_ids: bool = False) -> list[int]:
    """Insert new rows given as {attname: value} (every row has the same keys) with COPY.

    COPY is PostgreSQL's fastest way in, and the server inserts while this process prepares
    the following rows. With `returning_ids` the primary keys are drawn from the table's
    sequence first and written with the rows; they come back in the rows' order.
    """
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objs = model._default_manager.bulk_create([model(**row) for row in rows], batch_size=500)
        return [obj.pk for obj in objs] if returning_ids else []
    names = list(rows[0])
    columns = _columns(model, names)
    qn = connection.ops.quote_name
    table = model._meta.db_table
    targets = [qn(column) for _, column, _ in columns]
    ids: list[int] = []
    # jsonb and JSON-text columns alike take the value's JSON text.
    text_json = set(_json_text_columns(model, names))
    json_values = [i for i, (name, _, sql_type) in enumerate(columns) if sql_type == "jsonb" or name in text_json]
    with connection.cursor() as cursor:
        if returning_ids:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, model._meta.pk.column, len(rows)],
            )
            ids = [pk for (pk,) in cursor.fetchall()]
            targets.insert(0, qn(model._meta.pk.column))
        with cursor.copy(f"COPY {qn(table)} ({', '.join(targets)}) FROM STDIN") as copy:
            for n, row in enumerate(rows):
                values = [row[name] for name in names]
                for i, value in enumerate(values):
                    if type(value) is str and "\x00" in value:
                        values[i] = value.replace("\x00", "")
                for i in json_values:
                    values[i] = None if values[i] is None else dumps(values[i])
                if returning_ids:
                    values.insert(0, ids[n])
                copy.write_row(values)
    return ids


def upsert(
    model: type[Model], rows: Sequence[dict[str, Any]], unique: Sequence[str], keep: Iterable[str] = ()
) -> dict[tuple[Any, ...], int]:
    """Insert rows, or update the existing row with the same `unique` attnames.

    Columns named in `keep` are written on insert but left alone on update (first_seen).
    Returns {unique values: primary key} for every row given.
    """
    if not rows:
        return {}
    names = list(rows[0])
    keep = set(keep) | set(unique)
    if connection.vendor != "postgresql":
        objs = [model(**row) for row in rows]
        model._default_manager.bulk_create(
            objs,
            batch_size=500,
            update_conflicts=True,
            unique_fields=[model._meta.get_field(n).name for n in unique],
            update_fields=[n for n in names if n not in keep],
        )
        return {tuple(getattr(obj, n) for n in unique): obj.pk for obj in objs}
    columns = _columns(model, names)
    # A JSON-text value travels in the batch as a JSON string, so the column gets its exact text.
    text_json = _json_text_columns(model, names)
    if text_json:
        rows = [row | {name: None if row[name] is None else dumps(row[name]) for name in text_json} for row in rows]
    unique_columns = [column for attname, column, _ in columns if attname in unique]
    qn = connection.ops.quote_name
    target = ", ".join(qn(column) for _, column, _ in columns)
    record = ", ".join(f"{qn(attname)} {sql_type}" for attname, _, sql_type in columns)
    picked = ", ".join(qn(attname) for attname, _, _ in columns)
    updates = ", ".join(
        f"{qn(column)} = EXCLUDED.{qn(column)}" for attname, column, _ in columns if attname not in keep
    )
    returning = ", ".join(qn(by_column) for by_column in _unique_columns(model, unique))
    sql = (
        f"INSERT INTO {qn(model._meta.db_table)} ({target}) "
        f"SELECT {picked} FROM jsonb_to_recordset(%s::jsonb) AS x({record}) "
        f"ON CONFLICT ({', '.join(qn(c) for c in unique_columns)}) DO UPDATE SET {updates} "
        f"RETURNING {qn(model._meta.pk.column)}, {returning}"
    )
    ids: dict[tuple[Any, ...], int] = {}
    with connection.cursor() as cursor:
        for batch in _batches(rows, BATCH):
            cursor.execute(sql, [dumps(list(batch))])
            for pk, *key in cursor.fetchall():
                ids[tuple(key)] = pk
    return ids
