import datetime as dt

import pytest

from tikting.accounts.models import Team
from tikting.cmdb.models import Service
from tikting.incidents.models import Incident

UTC = dt.UTC


def at(y, m, d, h=0, mi=0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=UTC)


_n = [0]


def incident(opened, hours=None, **kw) -> Incident:
    _n[0] += 1
    kw.setdefault("number", f"INC{_n[0]:06d}")
    if hours is not None:
        kw.setdefault("resolved_at", opened + dt.timedelta(hours=hours))
        kw.setdefault("status", "closed")
    return Incident.objects.create(opened_at=opened, **kw)


@pytest.fixture
def services(db):
    return (
        Service.objects.get_or_create(name="E-mail")[0],
        Service.objects.get_or_create(name="Network")[0],
    )


@pytest.fixture
def mttr_data(services):
    """Resolved times (hours): Jan 1, 2, 4, 10; Mar 3, 20 (reopened); plus unresolved, missing, cancelled."""
    email, network = services
    desk = Team.objects.create(name="Service desk")
    incident(
        at(2024, 1, 5, 9), 1, priority=2, service=email, assignment_group=desk, first_contact_resolution=True
    )
    incident(
        at(2024, 1, 6, 9), 2, priority=2, service=email, assignment_group=desk, first_contact_resolution=False
    )
    incident(at(2024, 1, 7, 9), 4, priority=3, service=network, category="hardware")
    incident(at(2024, 1, 8, 9), 10, priority=3, service=network, category="hardware")
    incident(at(2024, 3, 5, 9), 3, priority=2, service=email, source="bpic2014")
    incident(at(2024, 3, 6, 9), priority=2, service=email, status="in_progress")  # unresolved
    incident(at(2024, 3, 7, 9), priority=3, service=network, status="closed")  # no resolved_at: missing
    incident(at(2024, 3, 8, 9), 20, priority=3, service=network, reopen_count=1)  # final resolution
    incident(at(2024, 3, 9, 9), priority=2, service=email, status="cancelled")  # left out
    # reopened and open again: its earlier resolution does not count
    incident(at(2024, 3, 10, 9), 1, priority=3, service=network, status="in_progress", reopen_count=1)
    return email, network
