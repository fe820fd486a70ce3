"""`tikting signals run|export` and the run_detectors task: runs recorded, a failing detector
recorded as failed while the others run, the export carrying evidence keys."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tikting.signals.models import Candidate, DetectorRun
from tikting.signals.tasks import run_detectors
from tikting.signals.tests import fixtures
from tikting.signals.tests.fixtures import incident, proposal

pytestmark = pytest.mark.django_db

SCRIPTED = "tikting.signals.tests.fixtures"
BROKEN = "tikting.signals.tests.broken_detector"


@pytest.fixture(autouse=True)
def detectors(settings):
    settings.TIKTING_SIGNALS_DETECTORS = [BROKEN, SCRIPTED]
    fixtures.SCRIPTED.clear()
    fixtures.SEEN.clear()
    yield
    fixtures.SCRIPTED.clear()


def signals(*args: str) -> str:
    out = io.StringIO()
    call_command("signals", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_run_records_each_detector_and_a_failure_does_not_stop_the_others():
    fixtures.SCRIPTED.append(proposal(incidents=[incident("INC1")]))
    with pytest.raises(SystemExit) as exc:
        signals("run")
    assert exc.value.code == 1
    broken = DetectorRun.objects.get(detector="broken")
    assert broken.status == "failed"
    assert "ZeroDivisionError: a detector bug: division by zero" in broken.error
    scripted = DetectorRun.objects.get(detector="scripted")
    assert (scripted.status, scripted.raised, scripted.merged, scripted.suppressed) == ("succeeded", 1, 0, 0)
    assert scripted.duration_seconds is not None and scripted.trigger == "cli"
    assert Candidate.objects.get().run == scripted


def test_run_one_detector_over_a_window_prints_the_counts():
    fixtures.SCRIPTED.append(proposal())
    output = signals("run", "--detector", "scripted", "--from", "2026-01-01", "--to", "2026-03-31")
    assert "scripted: 1 raised, 0 merged, 0 suppressed (1 proposals)" in output
    window = fixtures.SEEN["window"]
    assert timezone.localtime(window.start).date() == dt.date(2026, 1, 1)
    assert timezone.localtime(window.end).date() == dt.date(2026, 4, 1)  # the last day included
    again = json.loads(signals("run", "--detector", "scripted", "--format", "json"))
    assert again["runs"][0]["merged"] == 1
    assert not DetectorRun.objects.filter(detector="broken").exists()


def test_thresholds_come_from_the_settings(settings):
    settings.TIKTING_SIGNALS = {"scripted": {"limit": 3}}
    signals("run", "--detector", "scripted")
    assert fixtures.SEEN["thresholds"] == {"limit": 3}
    assert DetectorRun.objects.get().thresholds == {"limit": 3}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "--detector", "nope"), "Unknown detector 'nope'"),
        (("run", "--from", "yesterday"), "--from: 'yesterday' is not a date"),
        (("run", "--from", "2026-05-01", "--to", "2026-04-01"), "start must come before its end"),
    ],
)
def test_bad_arguments_are_named(args, message):
    with pytest.raises(CommandError, match=message):
        signals(*args)


def test_a_bad_threshold_setting_is_named(settings):
    settings.TIKTING_SIGNALS = {"scripted": {"limt": 3}}
    with pytest.raises(CommandError, match="TIKTING_SIGNALS\\['scripted'\\]: unknown threshold\\(s\\) limt"):
        signals("run", "--detector", "scripted")


def test_export_writes_every_candidate_with_its_evidence_keys(tmp_path):
    fixtures.SCRIPTED.extend(
        [
            proposal("scripted:a", incidents=[incident("INC1"), incident("INC2")]),
            proposal("scripted:b", magnitude=7),
        ]
    )
    signals("run", "--detector", "scripted")
    rows = json.loads(signals("export", "--format", "json"))
    assert [(r["detector"], r["fingerprint"], r["source_keys"]) for r in rows] == [
        ("scripted", "scripted:a", ["INC1", "INC2"]),
        ("scripted", "scripted:b", []),
    ]
    assert rows[1]["score"] == 10.5 and rows[1]["explanation"] == "7 breaches in the window."
    path = tmp_path / "out.jsonl"
    signals("export", "--detector", "scripted", "--format", "jsonl", "--output", str(path))
    refs = [c.ref for c in Candidate.objects.order_by("pk")]
    assert [json.loads(line)["ref"] for line in path.read_text().splitlines()] == refs
    assert json.loads(signals("export", "--detector", "broken")) == []


def test_the_task_runs_every_detector_and_fails_visibly_when_one_fails():
    fixtures.SCRIPTED.append(proposal())
    with pytest.raises(RuntimeError, match="Detector\\(s\\) failed: broken"):
        run_detectors.call()
    assert DetectorRun.objects.get(detector="scripted").raised == 1
    assert run_detectors.call(["scripted"]) == {"scripted": {"raised": 0, "merged": 1, "suppressed": 0}}
