"""core.writes writes what save() writes, keeps its SQL per connection, and leaves to save() the
models it cannot do alone (receivers, a save() of their own, several tables, expressions)."""

import datetime as dt

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.db.models import F
from django.db.models.signals import pre_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tikting.core import writes
from tikting.core.models import AuditEntry
from tikting.incidents.models import Incident

pytestmark = pytest.mark.django_db

OPENED = timezone.now().replace(microsecond=654321) - dt.timedelta(days=2)


def row(model, pk):
    """A row as the database has it, every column."""
    stored = model.objects.get(pk=pk)
    return {f.attname: getattr(stored, f.attname) for f in model._meta.concrete_fields}


def audit_entry(**extra):
    ct = ContentType.objects.get_for_model(Incident)
    return AuditEntry(
        action="update",
        content_type=ct,
        object_id="7",
        object_repr="INC7 ünïcödé",
        root_content_type=ct,
        root_object_id="7",
        changes={"status": ["new", "resolved"], "nested": [1, {"a": None}]},
        **extra,
    )


def test_insert_writes_the_row_save_writes(admin_user):
    by_save = audit_entry(actor=admin_user, request_id="r1")
    by_save.save()
    by_insert = writes.insert(audit_entry(actor=admin_user, request_id="r1"))
    assert by_insert.pk is not None and by_insert.pk != by_save.pk
    assert not by_insert._state.adding and by_insert._state.db == "default"
    saved, inserted = row(AuditEntry, by_save.pk), row(AuditEntry, by_insert.pk)
    assert inserted["at"] >= saved["at"]  # auto_now_add set by the insert, as by save()
    assert by_insert.at == inserted["at"]
    for key in ("id", "at"):
        saved.pop(key), inserted.pop(key)
    assert inserted == saved


def test_insert_of_an_incident_with_its_choices_and_json(cast):
    incident = writes.insert(
        Incident(
            number="INC-W1",
            short_description="Mail down",
            opened_at=OPENED,
            priority=2,
            service=cast.email,
            raw={"a": [1, "b"]},
        )
    )
    stored = Incident.objects.get(pk=incident.pk)
    assert (stored.number, stored.opened_at, stored.priority, stored.service_id, stored.raw) == (
        "INC-W1",
        OPENED,
        2,
        cast.email.pk,
        {"a": [1, "b"]},
    )
    assert stored.created_at == incident.created_at and stored.updated_at == incident.updated_at


def test_save_fields_updates_those_columns_and_the_update_time(cast):
    incident = Incident.objects.create(number="INC-W2", short_description="Before", opened_at=OPENED)
    before = row(Incident, incident.pk)
    incident.status = Incident.Status.IN_PROGRESS
    incident.priority = 3
    incident.short_description = "Not written: not named"
    writes.save_fields(incident, {"status", "priority", "updated_at"})
    after = row(Incident, incident.pk)
    assert (after["status"], after["priority"]) == ("in_progress", 3)
    assert after["short_description"] == "Before"
    assert after["updated_at"] > before["updated_at"] and after["updated_at"] == incident.updated_at
    for key in ("status", "priority", "updated_at"):
        before.pop(key), after.pop(key)
    assert after == before


def test_the_sql_is_built_once_per_connection_and_columns():
    incident = Incident.objects.create(number="INC-W3", short_description="x", opened_at=OPENED)
    writes.save_fields(incident, ["priority"])
    cache = connections["default"].__dict__["_tikting_writes"]
    assert ("update", Incident, frozenset({"priority"})) in cache
    built = cache[("update", Incident, frozenset({"priority"}))]
    incident.priority = 4
    with CaptureQueriesContext(connection) as queries:
        writes.save_fields(incident, {"priority"})
    assert len(queries) == 1 and queries[0]["sql"].startswith("UPDATE")
    assert cache[("update", Incident, frozenset({"priority"}))] is built
    assert Incident.objects.get(pk=incident.pk).priority == 4


def test_save_fields_of_a_row_that_is_gone_raises_as_save_does():
    incident = Incident.objects.create(number="INC-W4", short_description="x", opened_at=OPENED)
    Incident.objects.filter(pk=incident.pk).delete()
    incident.priority = 1
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        writes.save_fields(incident, {"priority"})


def test_an_unknown_name_is_refused_as_save_refuses_it():
    incident = Incident.objects.create(number="INC-W5", short_description="x", opened_at=OPENED)
    with pytest.raises(ValueError, match="no_such_field"):
        writes.save_fields(incident, {"no_such_field"})


def test_an_expression_is_left_to_save():
    incident = Incident.objects.create(number="INC-W6", short_description="x", opened_at=OPENED, priority=2)
    incident.priority = F("priority") + 1
    writes.save_fields(incident, {"priority"})
    assert Incident.objects.get(pk=incident.pk).priority == 3


def test_receivers_are_called_through_save():
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append((sender, kwargs.get("update_fields")))

    pre_save.connect(receiver, sender=Incident, dispatch_uid="test_writes")
    try:
        incident = writes.insert(Incident(number="INC-W7", short_description="x", opened_at=OPENED))
        incident.priority = 2
        writes.save_fields(incident, {"priority"})
    finally:
        pre_save.disconnect(sender=Incident, dispatch_uid="test_writes")
    assert seen == [(Incident, None), (Incident, frozenset({"priority"}))]
    assert Incident.objects.get(pk=incident.pk).priority == 2


def test_models_with_more_to_a_save_are_left_to_save():
    from tikting.improvement.models import Item
    from tikting.slas.models import SLADefinition

    assert not writes._plain(SLADefinition)  # receivers re-apply it to its incidents
    assert not writes._plain(Item)  # Item.save() derives its quadrant: it must run
    assert writes._plain(Incident) and writes._plain(AuditEntry)


def test_a_failed_insert_marks_the_transaction_for_rollback():
    incident = Incident.objects.create(number="INC-W8", short_description="x", opened_at=OPENED)
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            writes.insert(Incident(number=incident.number, short_description="twice", opened_at=OPENED))
        assert transaction.get_rollback()  # as save() leaves it: the block rolls back
    assert Incident.objects.filter(number="INC-W8").count() == 1
