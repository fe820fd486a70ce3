"""The BPI Challenge 2014 import reads its three large files in a second process (tikting.imports
.piped): the same rows, reports and errors as reading them in the importing process."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tikting.accounts.models import Team
from tikting.imports import piped
from tikting.imports.bpic2014 import import_bpic2014
from tikting.incidents.models import Incident, IncidentActivity, Interaction

from .test_bpic2014 import FIXTURES, ZIPS

pytestmark = pytest.mark.django_db

SKIPPED = {"id", "created_at", "updated_at", "search_vector"}


def _tables() -> dict[str, list[str]]:
    """Every imported row of the tables the read files fill: its columns, a relation as the
    related record's key (ids differ between runs: the sequences go on)."""
    result = {}
    for model in (Incident, Interaction, IncidentActivity, Team):
        names = []
        for f in model._meta.concrete_fields:
            if f.attname in SKIPPED:
                continue
            if f.is_relation:
                assert f.related_model is not None and not isinstance(f.related_model, str)
                fields = {x.name for x in f.related_model._meta.fields}
                key = next(k for k in ("number", "name", "username", "pk") if k == "pk" or k in fields)
                names.append(f"{f.name}__{key}")
            else:
                names.append(f.attname)
        result[model.__name__] = sorted(map(repr, model._default_manager.values_list(*names)))
    return result


def _clear() -> None:
    from tikting.changes.models import Change
    from tikting.cmdb.models import ConfigurationItem, Service
    from tikting.knowledge.models import Article

    for model in (IncidentActivity, Interaction, Incident, Change, ConfigurationItem, Service, Article, Team):
        model._default_manager.all().delete()


def _report(report) -> dict:
    data = dict(report.as_dict())
    for name in ("started_at", "finished_at", "seconds"):
        data.pop(name, None)
    return data


def test_reading_in_a_second_process_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Fixtures with bad rows (errors), raw-only warnings and a BOM in ids, imported and imported
    again, reading in a second process and in this one: the same reports (counts, errors and
    warnings in order) and the same rows."""
    for member in ZIPS.values():
        shutil.copy(FIXTURES / member, tmp_path / member)
    runs = {}
    for enabled in (True, False):
        monkeypatch.setattr(piped, "ENABLED", enabled)
        _clear()
        first = _report(import_bpic2014(tmp_path))
        tables = _tables()
        second = _report(import_bpic2014(tmp_path))
        runs[enabled] = (first, tables, second, _tables())
    assert runs[True][0]["errors"] and runs[True][0]["counts"]["activity"]["created"] > 0
    assert runs[True] == runs[False]


def test_a_reading_process_may_not_use_the_database():
    def produce():
        with connection.cursor() as cursor:  # refused in the reading process
            cursor.execute("SELECT 1")
        yield [1]

    calls: list = []
    with pytest.raises(RuntimeError, match="may not use the database"):
        list(piped.piped(produce, swap=lambda recorder: None, replay=calls.extend))


def test_reports_come_back_in_order_and_errors_are_raised_here():
    from tikting.lib.tabular import FileFormatError

    class Target:
        report: Any = None

    target = Target()

    def swap(recorder: piped.Recorder) -> None:
        target.report = recorder

    def produce():
        target.report.error("f.csv", 3, "x", "bad")
        yield ["a"]
        target.report.count("incident", "failed")
        yield ["b"]
        raise FileFormatError(9, "unreadable CSV")

    replayed: list = []
    got = []
    with pytest.raises(FileFormatError) as caught:
        for batch in piped.piped(produce, swap=swap, replay=replayed.extend):
            got.append((batch, list(replayed)))
    assert caught.value.line == 9 and caught.value.message == "unreadable CSV"
    assert got == [
        (["a"], [("error", ("f.csv", 3, "x", "bad"), {})]),
        (["b"], [("error", ("f.csv", 3, "x", "bad"), {}), ("count", ("incident", "failed"), {})]),
    ]


def test_the_value_returned_comes_back_and_the_child_is_reaped():
    import os

    def produce():
        yield 1
        yield 2
        return {"marks": os.getpid()}

    gen = piped.piped(produce, swap=lambda r: None, replay=lambda calls: None)
    seen = []
    while True:
        try:
            seen.append(next(gen))
        except StopIteration as stop:
            result = stop.value
            break
    assert seen == [1, 2]
    assert result["marks"] != os.getpid()  # produced in another process
    assert piped.child_peak_rss_kib() > 0
