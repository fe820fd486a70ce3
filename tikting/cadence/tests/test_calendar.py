"""iCalendar feeds: the events a person and a team get, whole days whatever the time zone, stable
UIDs, a secret token that can be revoked; parsed back with `icalendar` to check they are valid."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from icalendar import Calendar

from tikting.accounts.models import Team
from tikting.cadence import calendar as cal
from tikting.cadence import services as CS
from tikting.cadence.models import CalendarFeed
from tikting.improvement import services as S
from tikting.test import ready_item

pytestmark = pytest.mark.django_db

START = dt.date(2026, 11, 30)


@pytest.fixture
def world(cast):
    team = Team.objects.create(name="Desk")
    cast.contributor.team = team
    cast.contributor.save()
    item = ready_item(cast)  # owned by cast.owner; its action and indicator go to the contributor
    action = item.actions.get()
    S.update_action(action, actor=cast.owner, owner=cast.contributor, due_date=dt.date(2026, 12, 18))
    indicator = item.indicators.get()
    S.update_indicator(indicator, actor=cast.owner, target_date=dt.date(2027, 1, 31), owner=cast.contributor)
    sprint = CS.create_sprint(
        actor=cast.manager, team=team, name="Desk 1", goal="G", start=START, end=START + dt.timedelta(days=13)
    )
    CS.add_sprint_item(sprint, actor=cast.manager, item=item)
    other = Team.objects.create(name="Network")
    CS.create_sprint(
        actor=cast.manager, team=other, name="Net 1", goal="G", start=START, end=START + dt.timedelta(days=13)
    )
    return {
        "team": team,
        "item": item,
        "action": action,
        "indicator": indicator,
        "sprint": sprint,
        "other": other,
    }


def events(body: bytes) -> dict[str, dict]:
    calendar = Calendar.from_ical(body)  # raises on invalid iCalendar
    assert str(calendar["version"]) == "2.0"
    return {
        str(e["uid"]): {
            "start": e.decoded("dtstart"),
            "end": e.decoded("dtend"),
            "summary": str(e["summary"]),
            "url": str(e["url"]),
        }
        for e in calendar.walk("VEVENT")
    }


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "America/Los_Angeles"])
def test_a_person_gets_their_sprint_reviews_action_dues_and_measurement_dates_as_whole_days(
    cast, world, zone
):
    with override_settings(TIME_ZONE=zone):
        body = cal.user_feed(cast.contributor, "https://tik.example")
    got = events(body)
    sprint, action, indicator = world["sprint"], world["action"], world["indicator"]
    assert set(got) == {
        f"sprint-{sprint.pk}-start@tikting",
        f"sprint-{sprint.pk}-review@tikting",
        f"action-{action.pk}@tikting",
        f"indicator-{indicator.pk}-target@tikting",
    }  # not the other team's sprint
    review = got[f"sprint-{sprint.pk}-review@tikting"]
    # A date, not a time: the same day in every time zone.
    assert (review["start"], review["end"]) == (dt.date(2026, 12, 13), dt.date(2026, 12, 14))
    assert type(review["start"]) is dt.date
    assert review["summary"] == "Sprint review: Desk 1"
    assert review["url"] == f"https://tik.example/cadence/sprints/{sprint.pk}/"
    assert got[f"action-{action.pk}@tikting"]["start"] == dt.date(2026, 12, 18)
    assert got[f"indicator-{indicator.pk}-target@tikting"]["start"] == dt.date(2027, 1, 31)


def test_the_item_owner_sees_the_sprint_of_their_item_without_being_in_the_team(cast, world):
    got = events(cal.user_feed(cast.owner, "https://tik.example"))
    assert f"sprint-{world['sprint'].pk}-review@tikting" in got
    assert f"action-{world['action'].pk}@tikting" not in got  # the action is the contributor's


def test_a_team_feed_holds_its_sprints(cast, world):
    got = events(cal.team_feed(world["other"], "https://tik.example"))
    assert [v["summary"] for v in got.values()] == ["Sprint starts: Net 1", "Sprint review: Net 1"]


def test_the_feed_address_is_secret_shown_once_and_revocable(cast, world, client, login):
    assert client.get("/cadence/calendar/").status_code == 302  # the page needs signing in
    page = login(cast.contributor).post("/cadence/calendar/", {"action": "issue"})
    text = page.content.decode()
    (feed,) = CalendarFeed.objects.filter(user=cast.contributor)
    raw = text.split("/cadence/calendar/")[1].split(".ics")[0]
    assert CalendarFeed.hash(raw) == feed.key_hash and raw not in feed.key_hash
    client.logout()
    response = client.get(f"/cadence/calendar/{raw}.ics")  # no session: the token is the key
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    assert f"sprint-{world['sprint'].pk}-review@tikting" in events(response.content)
    assert client.get(f"/cadence/calendar/{raw}/team/{world['other'].pk}.ics").status_code == 200
    login(cast.contributor).post("/cadence/calendar/", {"action": "revoke"})
    client.logout()
    assert client.get(f"/cadence/calendar/{raw}.ics").status_code == 404
    assert client.get(f"/cadence/calendar/{raw}/team/{world['other'].pk}.ics").status_code == 404
    assert client.get("/cadence/calendar/cal_guessed.ics").status_code == 404


def test_a_new_address_ends_the_old_one(cast):
    _, first = cal.issue_feed(cast.viewer)
    _, second = cal.issue_feed(cast.viewer)
    assert cal.feed_user(first) is None and cal.feed_user(second) == cast.viewer


# --- Register review meetings -------------------------------------------------------------------------


@pytest.fixture
def reviews(cast, world):
    """A timed review the contributor attends (the owner sent apologies) and an all-day one the
    manager chairs alone."""
    from tikting.governance import services as GS

    timed = GS.create_review(
        actor=cast.manager,
        title="December review",
        scheduled_for=dt.date(2026, 12, 10),
        start_time=dt.time(10, 0),
        duration_minutes=90,
    )
    GS.set_attendance(timed, actor=cast.manager, attendees=[cast.contributor], apologies=[cast.owner])
    day = GS.create_review(actor=cast.manager, title="January review", scheduled_for=dt.date(2027, 1, 14))
    return timed, day


@pytest.mark.parametrize(
    ("zone", "utc_hour"), [("Europe/Paris", 9), ("America/Los_Angeles", 18), ("Pacific/Kiritimati", 20)]
)
def test_a_timed_review_is_at_its_hour_in_the_configured_zone(cast, reviews, zone, utc_hour):
    timed, _day = reviews
    with override_settings(TIME_ZONE=zone):
        body = cal.user_feed(cast.contributor, "https://tik.example")
    calendar = Calendar.from_ical(body)
    assert [str(tz["tzid"]) for tz in calendar.walk("VTIMEZONE")] == [zone]  # the zone it names, defined
    event = next(e for e in calendar.walk("VEVENT") if str(e["uid"]) == f"review-{timed.pk}@tikting")
    start, end = event.decoded("dtstart"), event.decoded("dtend")
    assert event["dtstart"].params["TZID"] == zone
    assert (start.hour, start.minute) == (10, 0)  # 10:00 where the meeting is
    utc = start.astimezone(dt.UTC)
    # UTC+14 (Kiritimati): 10:00 on the 10th is 20:00 on the 9th in UTC
    assert (utc.day, utc.hour) == (9 if zone == "Pacific/Kiritimati" else 10, utc_hour)
    assert end - start == dt.timedelta(minutes=90)
    assert str(event["summary"]) == "Register review: December review"
    assert str(event["url"]) == f"https://tik.example/governance/reviews/{timed.pk}/"
    assert "agenda not circulated yet" in str(event["description"])


def test_reviews_reach_the_chair_and_attendees_not_those_who_sent_apologies(cast, reviews):
    timed, day = reviews
    contributor = events(cal.user_feed(cast.contributor, "https://tik.example"))
    assert f"review-{timed.pk}@tikting" in contributor and f"review-{day.pk}@tikting" not in contributor
    manager = events(cal.user_feed(cast.manager, "https://tik.example"))
    assert {f"review-{timed.pk}@tikting", f"review-{day.pk}@tikting"} <= set(manager)
    # without a start time: a whole day
    assert manager[f"review-{day.pk}@tikting"]["start"] == dt.date(2027, 1, 14)
    assert type(manager[f"review-{day.pk}@tikting"]["start"]) is dt.date
    owner = events(cal.user_feed(cast.owner, "https://tik.example"))
    assert f"review-{timed.pk}@tikting" not in owner  # apologies: not coming


def test_a_team_feed_holds_the_reviews_its_members_attend(cast, world, reviews):
    timed, day = reviews
    desk = events(cal.team_feed(world["team"], "https://tik.example"))
    assert f"review-{timed.pk}@tikting" in desk and f"review-{day.pk}@tikting" not in desk
    network = events(cal.team_feed(world["other"], "https://tik.example"))
    assert not any(uid.startswith("review-") for uid in network)


def test_a_changed_review_carries_a_higher_sequence(cast, reviews):
    from tikting.governance import services as GS

    timed, _ = reviews

    def sequence() -> int:
        calendar = Calendar.from_ical(cal.user_feed(cast.contributor, "https://tik.example"))
        event = next(e for e in calendar.walk("VEVENT") if str(e["uid"]) == f"review-{timed.pk}@tikting")
        return int(event.decoded("sequence"))

    before = sequence()
    GS.update_review(timed, actor=cast.manager, start_time=dt.time(14, 0))
    assert sequence() > before
