"""SLA due times and met flags kept current: record service, imports, definition changes, nightly."""

import datetime as dt
import io
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.utils import timezone

from tikting.core.models import AuditEntry
from tikting.imports.records import import_records
from tikting.incidents.models import Incident
from tikting.records.registry import create_record, delete_record, update_record
from tikting.slas.models import SLADefinition
from tikting.slas.verdicts import SLA_FIELDS, apply_slas, evaluate, select_definition

pytestmark = pytest.mark.django_db
UTC = dt.UTC
T0 = dt.datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday
IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


def flags(number):
    inc = Incident.objects.get(number=number)
    return inc.response_due_at, inc.resolution_due_at, inc.response_met, inc.resolution_met


@pytest.fixture
def p2(db):
    return SLADefinition.objects.create(name="P2", priority=2, response_minutes=30, resolution_minutes=240)


# --- the record service ---------------------------------------------------------------------


def test_create_and_update_through_the_record_service(cast, p2):
    opened = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)  # due in 3 hours: pending
    inc = create_record(
        "incident",
        actor=cast.contributor,
        number="INC1",
        opened_at=opened,
        priority=2,
        responded_at=opened + dt.timedelta(minutes=10),
        status="in_progress",
    )
    assert flags("INC1") == (opened + dt.timedelta(minutes=30), opened + dt.timedelta(hours=4), True, None)
    created = AuditEntry.objects.get(object_id=str(inc.pk), action="create")
    assert created.changes["resolution_due_at"][1] is not None  # the one audit row shows them

    update_record(inc, actor=cast.contributor, status="resolved", resolved_at=opened + dt.timedelta(hours=5))
    assert flags("INC1")[2:] == (True, False)
    updated = AuditEntry.objects.get(object_id=str(inc.pk), action="update")
    assert updated.changes["resolution_met"] == [None, False]
    assert AuditEntry.objects.filter(object_id=str(inc.pk)).count() == 2

    update_record(Incident.objects.get(pk=inc.pk), actor=cast.contributor, priority=3)  # no SLA for P3
    assert flags("INC1") == (None, None, None, None)


def test_service_definition_wins_for_one_incident(cast, p2):
    SLADefinition.objects.create(name="P2 net", service=cast.network, priority=2, resolution_minutes=60)
    create_record("incident", actor=None, number="INC2", opened_at=T0, priority=2, service=cast.network)
    create_record("incident", actor=None, number="INC3", opened_at=T0, priority=2, service=cast.email)
    assert flags("INC2")[:2] == (None, T0 + dt.timedelta(hours=1))
    assert flags("INC3")[:2] == (T0 + dt.timedelta(minutes=30), T0 + dt.timedelta(hours=4))


# --- imports --------------------------------------------------------------------------------

CSV = (
    "number,opened_at,priority,status,responded_at,resolved_at\n"
    "INC10,2025-03-03T09:00:00Z,2,closed,2025-03-03T09:20:00Z,2025-03-03T12:00:00Z\n"
    "INC11,2025-03-03T09:00:00Z,2,closed,2025-03-03T10:00:00Z,2025-03-03T14:00:00Z\n"
)


def test_generic_import_sets_flags(p2):
    report = import_records("incident", io.StringIO(CSV))
    assert report.ok, report.errors
    assert flags("INC10")[2:] == (True, True)
    assert flags("INC11")[2:] == (False, False)
    assert flags("INC10")[1] == T0 + dt.timedelta(hours=4)
    again = import_records("incident", io.StringIO(CSV))
    assert again.counts["incident"].unchanged == 2


def test_generic_import_dry_run_sets_nothing(p2):
    with mock.patch("tikting.slas.verdicts.apply_slas") as apply:
        report = import_records("incident", io.StringIO(CSV), dry_run=True)
    assert report.ok and not apply.called
    assert not Incident.objects.exists()


# --- SLA definitions re-apply themselves ------------------------------------------------------


def test_definition_change_reapplies_through_the_task(cast, settings, django_capture_on_commit_callbacks):
    settings.TASKS = IMMEDIATE
    Incident.objects.create(number="INC20", opened_at=T0, priority=2, status="closed", resolved_at=T0)
    Incident.objects.create(
        number="INC21", opened_at=T0, priority=1, status="closed", resolved_at=T0 + dt.timedelta(hours=2)
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        sla = create_record(
            "sla", actor=cast.admin, name="P2", priority=2, resolution_minutes=60, calendar="24x7"
        )
    assert len(callbacks) == 1
    assert flags("INC20")[1:] == (T0 + dt.timedelta(hours=1), None, True)
    assert flags("INC21") == (None, None, None, None)  # another priority: not covered

    with django_capture_on_commit_callbacks(execute=True):
        update_record(sla, actor=cast.admin, priority=1)  # moves: both priorities re-applied
    assert flags("INC20") == (None, None, None, None)
    assert flags("INC21")[1:] == (T0 + dt.timedelta(hours=1), None, False)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        update_record(SLADefinition.objects.get(pk=sla.pk), actor=cast.admin, name="P1 renamed")
    assert callbacks == []  # a new name affects no incident

    with django_capture_on_commit_callbacks(execute=True):
        delete_record(SLADefinition.objects.get(pk=sla.pk), actor=cast.admin)
    assert flags("INC21") == (None, None, None, None)


def test_definition_save_enqueues_on_the_database_backend(db, django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    before = set(DBTaskResult.objects.values_list("pk", flat=True))  # other tests' committed rows
    with django_capture_on_commit_callbacks(execute=True):
        SLADefinition.objects.create(name="P4", priority=4, resolution_minutes=600)
    task = DBTaskResult.objects.exclude(pk__in=before).get()
    assert task.task_path == "tikting.slas.tasks.reapply_slas"
    assert task.args_kwargs["args"] == [[{"service": None, "priority": 4}]]


def test_a_deleted_service_takes_its_definitions_out_of_use(settings, django_capture_on_commit_callbacks):
    from tikting.cmdb.models import Service

    settings.TASKS = IMMEDIATE
    mail = Service.objects.create(name="Mail")
    general = SLADefinition.objects.create(name="P2", priority=2, resolution_minutes=240)
    strict = SLADefinition.objects.create(name="P2 mail", priority=2, service=mail, resolution_minutes=60)
    Incident.objects.create(number="INC50", opened_at=T0, priority=2, status="new", service=mail)
    apply_slas()
    assert flags("INC50")[1] == T0 + dt.timedelta(hours=1)  # the service's own definition
    with django_capture_on_commit_callbacks(execute=True):
        mail.delete()
    strict.refresh_from_db()
    assert (strict.service, strict.active) == (None, False)  # not a second general P2
    assert flags("INC50")[1] == T0 + dt.timedelta(hours=4)  # now the general one
    assert SLADefinition.objects.get(active=True) == general


def test_sla_import_applies_the_definitions_before_it_returns():
    """Not through a background task: the default set-up runs no worker (the database task
    backend), so the incidents would keep their old verdicts until someone ran one."""
    Incident.objects.create(number="INC30", opened_at=T0, priority=5, status="new")
    report = import_records("sla", io.StringIO("name,priority,resolution_minutes\nP5,5,60\n"))
    assert report.ok, report.errors
    assert flags("INC30")[1] == T0 + dt.timedelta(hours=1)
    assert report.notes == ["SLA definitions applied to 1 incident(s)."]
    # a dry run writes nothing, so it applies nothing
    dry = import_records("sla", io.StringIO("name,priority,resolution_minutes\nP5,5,30\n"), dry_run=True)
    assert dry.notes == [] and flags("INC30")[1] == T0 + dt.timedelta(hours=1)


# --- nightly ----------------------------------------------------------------------------------


def test_command_open_only_flips_an_overdue_open_incident(p2):
    now = timezone.now()
    opened = now - dt.timedelta(hours=3)
    open_one = Incident.objects.create(number="INC40", opened_at=opened, priority=2, status="in_progress")
    closed = Incident.objects.create(
        number="INC41", opened_at=opened, priority=2, status="closed", resolved_at=opened
    )
    apply_slas()
    assert flags("INC40")[3] is None  # due in an hour: pending
    assert flags("INC41")[3] is True
    # five hours later, nothing saved in between: the nightly run flips it to breached
    Incident.objects.filter(pk=open_one.pk).update(opened_at=now - dt.timedelta(hours=5))
    Incident.objects.filter(pk=closed.pk).update(resolution_met=None)  # closed ones are left alone
    out = io.StringIO()
    call_command("slas", "apply", "--open-only", stdout=out)
    assert "SLAs applied to 1 open incident(s)" in out.getvalue()
    assert flags("INC40")[3] is False
    assert flags("INC41")[3] is None
    call_command("slas", "apply", "--source", "elsewhere", stdout=out)
    assert flags("INC41")[3] is None
    call_command("slas", "apply", stdout=out)
    assert flags("INC41")[3] is True


# --- SQL (24×7) and Python (business hours) give what evaluate() says ---------------------------


def test_bulk_paths_agree_with_evaluate(cast):
    now = T0 + dt.timedelta(days=3)
    h = dt.timedelta(hours=1)
    definitions = [
        SLADefinition.objects.create(name="P1", priority=1, response_minutes=15, resolution_minutes=120),
        SLADefinition.objects.create(name="P2", priority=2, resolution_minutes=600, calendar="business"),
        SLADefinition.objects.create(
            name="P1 net", service=cast.network, priority=1, response_minutes=5, resolution_minutes=30
        ),
    ]
    cases: list[dict[str, Any]] = [
        {"status": "closed", "responded_at": T0 + h / 8, "resolved_at": T0 + h},
        {"status": "closed", "responded_at": T0 + h, "resolved_at": T0 + 3 * h},
        {"status": "closed", "responded_at": T0 + h / 4, "resolved_at": T0 + 2 * h},  # exactly on time
        {"status": "in_progress"},  # open past due: breached
        {"status": "in_progress", "resolved_at": T0 + h, "reopen_count": 1},  # reopened
        {"status": "resolved", "resolved_at": T0 + h, "reopen_count": 1},
        {"status": "on_hold", "responded_at": T0 + h / 2},
        {"status": "cancelled"},
        {"status": "closed"},  # closed without a resolution time: not judged
    ]
    n = 0
    for priority in (1, 2, 3, None):
        for service in (None, cast.email, cast.network):
            for case in cases:
                n += 1
                Incident.objects.create(
                    number=f"INC{n:03d}", opened_at=T0, priority=priority, service=service, **case
                )
    Incident.objects.update(response_met=True, resolution_met=True, resolution_due_at=T0)  # stale values
    assert apply_slas(now=now) == n
    by_key = {(d.service_id, d.priority): d for d in definitions}
    for inc in Incident.objects.all():
        expected = evaluate(inc, select_definition(by_key, inc.service_id, inc.priority), now=now)
        assert tuple(getattr(inc, f) for f in SLA_FIELDS) == expected, inc.number
    assert Incident.objects.filter(resolution_met=False).exists()
    assert Incident.objects.filter(resolution_met=True).exists()


def test_no_definitions_clears_everything(db):
    Incident.objects.create(number="INC50", opened_at=T0, priority=1, response_met=True, resolution_met=False)
    assert apply_slas() == 1
    assert flags("INC50") == (None, None, None, None)


def test_nightly_task_flips_only_open_incidents_of_the_source(p2):
    from tikting.slas.tasks import apply_slas as nightly

    opened = timezone.now() - dt.timedelta(hours=5)
    Incident.objects.create(number="INC60", opened_at=opened, priority=2, status="new", source="a")
    Incident.objects.create(number="INC61", opened_at=opened, priority=2, status="new", source="b")
    assert nightly.call(source="a") == {"incidents": 1}
    assert flags("INC60")[3] is False
    assert flags("INC61")[3] is None
