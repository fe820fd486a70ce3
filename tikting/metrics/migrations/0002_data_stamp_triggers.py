"""Triggers moving the metrics data stamp on every write to a table metrics read (cache.py)."""

from django.db import migrations

from tikting.metrics.cache import DATA_TABLES, drop_trigger_sql, trigger_sql


def create(apps, schema_editor):
    # Only the tables there are yet: a table added to cache.DATA_TABLES later gets its trigger from
    # its own migration (0004: discovery's snapshots).
    connection = schema_editor.connection
    existing = set(connection.introspection.table_names())
    for statement in trigger_sql(connection.vendor, tables=[t for t in DATA_TABLES if t in existing]):
        schema_editor.execute(statement)


def drop(apps, schema_editor):
    for statement in drop_trigger_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0001_result_cache"),
        ("incidents", "0002_metric_covering_indexes"),
        ("changes", "0001_initial"),
        ("surveys", "0001_initial"),
        ("cmdb", "0002_service_source_configurationitem"),
        ("accounts", "0002_team_source"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
