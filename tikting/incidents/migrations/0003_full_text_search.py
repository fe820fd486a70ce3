"""Full-text search of incidents (tikting/incidents/search.py): PostgreSQL a generated tsvector
column with a GIN index, SQLite an FTS5 external-content table kept by triggers."""

from django.db import migrations

from tikting.incidents import search


def forward(apps, schema_editor):
    statements = (
        search.POSTGRESQL_FORWARD
        if schema_editor.connection.vendor == "postgresql"
        else search.SQLITE_FORWARD
    )
    for statement in statements:
        schema_editor.execute(statement)


def backward(apps, schema_editor):
    statements = (
        search.POSTGRESQL_BACKWARD
        if schema_editor.connection.vendor == "postgresql"
        else search.SQLITE_BACKWARD
    )
    for statement in statements:
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0002_metric_covering_indexes")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
