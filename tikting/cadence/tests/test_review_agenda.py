"""The capacity flags in the register review's agenda: cadence registers them with governance's
agenda (governance.notices), so the live agenda, the frozen one and the review's API show the teams
whose improvement time was eaten by operations, with the share kept month by month."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tikting.accounts.models import Team
from tikting.cadence.models import Sprint, SprintItem, TimeLog
from tikting.cadence.review_agenda import capacity_notice
from tikting.governance import services as GS
from tikting.governance.notices import agenda_notices
from tikting.improvement import services as S

pytestmark = pytest.mark.django_db

NOW = timezone.make_aware(dt.datetime(2026, 12, 9, 10, 0))  # a Wednesday


@pytest.fixture
def teams(cast):
    desk = Team.objects.create(
        name="Desk", working_hours_per_week=Decimal("40"), improvement_share=Decimal("10")
    )
    network = Team.objects.create(name="Network", working_hours_per_week=Decimal("40"))
    cast.contributor.team = desk
    cast.contributor.save()
    cast.owner.team = network
    cast.owner.save()
    sprint = Sprint.objects.create(
        team=desk, name="S", goal="G", start=dt.date(2026, 9, 1), end=dt.date(2026, 9, 14)
    )
    card = SprintItem.objects.create(sprint=sprint, item=S.create_item(actor=cast.contributor, title="Idea"))

    def log(user, day: dt.date, hours: str) -> None:
        TimeLog.objects.create(card=card, user=user, logged_by=user, day=day, hours=Decimal(hours))

    # Desk (one member, 8 h a day, 10 %): September kept, October and November eaten.
    log(cast.contributor, dt.date(2026, 9, 10), "20")
    log(cast.contributor, dt.date(2026, 10, 6), "3")
    log(cast.contributor, dt.date(2026, 11, 4), "2")
    # Network keeps its time in November.
    log(cast.owner, dt.date(2026, 11, 4), "20")
    return desk, network


def test_flagged_teams_are_listed_with_their_trend(teams):
    notice = capacity_notice(NOW)
    assert notice.key == "capacity"
    (row,) = notice.rows  # Network kept its time: not flagged
    assert row.name == "Desk"
    assert row.url == "/cadence/capacity/"
    # November: 21 working days × 8 h × 10 % = 16.8 h planned, 2 logged
    assert row.summary == (
        "kept 12 % in November 2026: 2 of 16.8 planned improvement hours logged; "
        "under the threshold 2 months running"
    )
    trend = {p.label: p for p in row.trend}
    assert list(trend) == ["Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    assert (trend["Sep"].value, trend["Sep"].flagged) == ("114 %", False)
    assert (trend["Oct"].value, trend["Oct"].flagged) == ("17 %", True)
    assert (trend["Dec"].value, trend["Dec"].flagged, trend["Dec"].partial) == ("0 %", False, "to 9 Dec")
    assert "1 of 2 teams flagged" in notice.covers


def test_the_notice_is_registered_with_the_agenda_and_frozen_with_a_review(teams, cast):
    assert [n.key for n in agenda_notices(NOW)] == ["capacity"]
    meeting = GS.create_review(actor=cast.manager)
    GS.set_attendance(meeting, actor=cast.manager, attendees=[cast.owner], apologies=[])
    meeting = GS.circulate_agenda(meeting, actor=cast.manager)
    assert meeting.agenda is not None
    (frozen,) = meeting.agenda["notices"]
    assert frozen["key"] == "capacity"
    assert [r["name"] for r in frozen["rows"]] == [r.name for r in capacity_notice(timezone.now()).rows]


def test_the_agenda_page_and_the_api_show_the_flag(teams, cast, login):
    today = timezone.localdate()
    last_full = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    card = SprintItem.objects.get()
    TimeLog.objects.create(
        card=card,
        user=cast.contributor,
        logged_by=cast.contributor,
        day=last_full + dt.timedelta(days=1),
        hours=1,
    )
    client = login(cast.viewer)
    page = client.get("/governance/agenda/").content.decode()
    assert 'data-notice="capacity"' in page and "Improvement time eaten by operations" in page
    assert "Desk</a>" in page
    meeting = GS.create_review(actor=cast.manager)
    GS.hold_review(meeting, actor=cast.manager)
    body = client.get(f"/api/governance/reviews/{meeting.pk}").json()
    (notice,) = body["agenda"]["notices"]
    assert notice["key"] == "capacity" and "Desk" in [r["name"] for r in notice["rows"]]
