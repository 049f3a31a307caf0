"""A router's listRouters item and health-check results kept as JSON text, not jsonb.

Nothing queries inside them: they are read back whole (the detail page, the health-check
table). As jsonb, PostgreSQL parsed and re-encoded every item the sync wrote, a third of a
first sync's time at 10,000 routers; as text it stores the bytes (vrconsole.fields). The
change of type resets the columns' compression, so lz4 is set again (migration 0006).
"""

from django.db import migrations

import vrconsole.fields

LZ4 = """
DO $$
BEGIN
    ALTER TABLE vrconsole_router ALTER COLUMN api_data SET COMPRESSION lz4;
    ALTER TABLE vrconsole_router ALTER COLUMN health_checks SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END $$;
"""


def lz4(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(LZ4)


class Migration(migrations.Migration):

    dependencies = [
        ('vrconsole', '0006_router_summary_narrow_rows'),
    ]

    operations = [
        migrations.AlterField(
            model_name='router',
            name='api_data',
            field=vrconsole.fields.JSONTextField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name='router',
            name='health_checks',
            field=vrconsole.fields.JSONTextField(blank=True, default=list),
        ),
        # Reversed, the columns go back to jsonb and migration 0006's reversal resets them.
        migrations.RunPython(lz4, lz4),
    ]
