"""A router row's short text columns kept in the row itself, never moved out of line.

Migration 0006 set toast_tuple_target = 128 on the router table so that the two big values
(the API item and the health checks) go to TOAST and a row is a few hundred bytes. But the
toaster does not stop at those: while a row is still over 128 bytes it also moves the next
largest text values out of line, uncompressed, one TOAST lookup each to read back. The uuid
(36 bytes) and the API digest were among them: every uuid a search matched and every digest a
sync compared cost a TOAST lookup (10,000 routers: 20 ms for a uuid filter instead of 2). The
short columns (varchar, at most a kilobyte) are now PLAIN: always in the row. Existing values
are rewritten into their rows.
"""

from django.db import migrations

TABLE = "vrconsole_router"


def _varchar_columns(cursor) -> list[str]:
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
        "AND atttypid = 'character varying'::regtype ORDER BY attnum",
        [TABLE],
    )
    return [name for (name,) in cursor.fetchall()]


def _set_storage(schema_editor, storage: str, rewrite: bool) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    qn = schema_editor.quote_name
    with schema_editor.connection.cursor() as cursor:
        columns = _varchar_columns(cursor)
        if not columns:
            return
        cursor.execute(f"ALTER TABLE {qn(TABLE)} " + ", ".join(f"ALTER COLUMN {qn(c)} SET STORAGE {storage}" for c in columns))
        if rewrite:
            # A value already out of line stays there until it is written anew: rewrite them all.
            cursor.execute(f"UPDATE {qn(TABLE)} SET " + ", ".join(f"{qn(c)} = {qn(c)} || ''" for c in columns))


def inline(apps, schema_editor) -> None:
    _set_storage(schema_editor, "PLAIN", rewrite=True)


def extended(apps, schema_editor) -> None:
    _set_storage(schema_editor, "EXTENDED", rewrite=False)


class Migration(migrations.Migration):

    dependencies = [
        ("vrconsole", "0007_router_json_as_text"),
    ]

    operations = [
        migrations.RunPython(inline, extended),
    ]
