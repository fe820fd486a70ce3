"""The schedule's declaration: parsing, next run times, overrides, the system check."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from tikting import settings as project_settings
from tikting.jobs import schedule
from tikting.jobs.checks import check_schedule


def at(text: str) -> dt.datetime:
    return timezone.make_aware(dt.datetime.fromisoformat(text))


def test_it_parses_seconds_and_daily_times():
    every = schedule.parse_entry("metrics", {"task": "a.b.c", "every": 1800, "kwargs": {"x": 1}})
    daily = schedule.parse_entry("detectors", {"task": "a.b.c", "every": "03:00", "args": [1]})
    assert (every.every_seconds, every.daily_at, every.kwargs) == (1800, None, {"x": 1})
    assert (daily.every_seconds, daily.daily_at, daily.args) == (None, dt.time(3, 0), [1])
    assert every.every == "every 30 min"
    assert daily.every == "daily at 03:00"
    assert schedule.parse_entry("x", {"task": "a.b", "every": "90"}).every_seconds == 90


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ({"task": "a.b", "every": 0}, "['every']"),
        ({"task": "a.b", "every": "25:00"}, "['every']"),
        ({"task": "a.b", "every": "nightly"}, "['every']"),
        ({"task": "a.b", "every": True}, "['every']"),
        ({"task": "a.b"}, "['every']"),
        ({"task": "nodots", "every": 5}, "['task']"),
        ({"task": "a.b", "every": 5, "args": {"a": 1}}, "['args']"),
        ({"task": "a.b", "every": 5, "kwargs": [1]}, "['kwargs']"),
        ({"task": "a.b", "every": 5, "cron": "* * *"}, "unknown key(s) cron"),
        ("a.b.c", "expected an object"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_entry_and_key(spec, names):
    with pytest.raises(ImproperlyConfigured) as exc:
        schedule.parse_entry("nightly", spec)
    assert "TIKTING_SCHEDULE['nightly']" in str(exc.value)
    assert names in str(exc.value)


def test_next_run_of_an_interval_is_after_the_run():
    entry = schedule.parse_entry("m", {"task": "a.b", "every": 600})
    assert entry.next_run(at("2026-12-05 10:00")) == at("2026-12-05 10:10")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-12-05 02:59", "2026-12-05 03:00"),
        ("2026-12-05 03:00", "2026-12-06 03:00"),  # strictly after: not the same minute again
        ("2026-12-05 17:00", "2026-12-06 03:00"),
    ],
)
def test_next_run_of_a_daily_entry_is_the_next_such_time(now, expected):
    entry = schedule.parse_entry("d", {"task": "a.b", "every": "03:00"})
    assert entry.next_run(at(now)) == at(expected)


def test_daily_times_are_read_in_the_site_time_zone(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    entry = schedule.parse_entry("d", {"task": "a.b", "every": "03:00"})
    with timezone.override("Europe/Berlin"):
        due = entry.next_run(dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC))
    assert due == dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC)  # 03:00 in Berlin (UTC+1)


def test_overrides_change_add_and_remove_entries_by_name():
    defaults: dict[str, dict[str, object]] = {
        "a": {"task": "x.y", "every": 60},
        "b": {"task": "x.z", "every": "03:00"},
    }
    merged = project_settings.override_entries(
        defaults, [{"a": {"every": "04:30"}, "b": None, "c": {"task": "q.r", "every": 5}}]
    )
    assert merged == {"a": {"task": "x.y", "every": "04:30"}, "c": {"task": "q.r", "every": 5}}
    assert defaults["a"]["every"] == 60  # the defaults themselves untouched


def test_overrides_come_from_a_file_then_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps({"metrics": {"every": 60}, "slas": None}))
    monkeypatch.setenv("TIKTING_SCHEDULE_FILE", str(path))
    monkeypatch.setenv("TIKTING_SCHEDULE", json.dumps({"metrics": {"every": 120}}))
    values = project_settings.env_json("TIKTING_SCHEDULE", {})
    merged = project_settings.override_entries({"metrics": {"task": "a.b", "every": 1}, "slas": {}}, values)
    assert merged == {"metrics": {"task": "a.b", "every": 120}}


def test_bad_json_in_the_environment_fails_loudly(monkeypatch):
    monkeypatch.setenv("TIKTING_SCHEDULE", "{nope")
    with pytest.raises(ImproperlyConfigured, match="TIKTING_SCHEDULE: not valid JSON"):
        project_settings.env_json("TIKTING_SCHEDULE", {})


def test_the_default_schedule_passes_the_system_check():
    assert check_schedule() == []
    names = {entry.name for entry in schedule.entries()}
    assert {"housekeeping", "intake", "slas", "metrics", "detectors"} <= names


def test_the_system_check_names_a_task_that_does_not_import(settings):
    settings.TIKTING_SCHEDULE = {
        "ghost": {"task": "tikting.jobs.tests.tasks.nope", "every": 60},
        "plain": {"task": "tikting.jobs.tests.tasks.not_a_task", "every": 60},
    }
    messages = [m.msg for m in check_schedule()]
    assert any("TIKTING_SCHEDULE['ghost']['task']" in m and "cannot import" in m for m in messages)
    assert any("TIKTING_SCHEDULE['plain']['task']" in m and "not a django-tasks task" in m for m in messages)
