"""The asset data accuracy metrics read discovery's daily snapshots: writes to them move the data
stamp too (cache.py). The triggers are (re)created for every table of cache.DATA_TABLES."""

from django.db import migrations

from tikting.metrics.cache import DATA_TABLES, trigger_sql


def create(apps, schema_editor):
    connection = schema_editor.connection
    existing = set(connection.introspection.table_names())
    for statement in trigger_sql(connection.vendor, tables=[t for t in DATA_TABLES if t in existing]):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0003_cache_expiry"),
        ("discovery", "0001_initial"),
    ]

    operations = [migrations.RunPython(create, migrations.RunPython.noop, elidable=False)]
