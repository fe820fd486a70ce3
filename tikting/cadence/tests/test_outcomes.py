"""The outcomes report for a known data set: the page, the HTML file and the PDF (rendered to PNG
with poppler's pdftoppm and checked for ink)."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from tikting.accounts.models import Team
from tikting.cadence import outcomes as O
from tikting.cadence.models import Sprint, SprintItem, TimeLog
from tikting.improvement import choices as C
from tikting.improvement.models import Item
from tikting.test import ready_item

pytestmark = pytest.mark.django_db

UTC = dt.UTC


@pytest.fixture
def q3(cast):
    """Two items closed in 2026-Q3 (MTTR 10 h → 7 h, target 6: 75 % of the way; and one with its
    target passed), one withdrawn in Q3 and one closed in Q4: only the first two are in."""
    mttr = ready_item(cast, title="Cut e-mail MTTR")
    csat = ready_item(cast, title="Friendlier password reset")
    csat.indicators.update(
        name="CSAT", unit="%", direction="higher", baseline_value=Decimal("70"), target_value=Decimal("80")
    )
    withdrawn = ready_item(cast, title="Fax gateway")
    late = ready_item(cast, title="Closed in October")
    sprint = Sprint.objects.create(
        team=Team.objects.create(name="Desk"),
        name="S",
        goal="G",
        start=dt.date(2026, 8, 3),
        end=dt.date(2026, 8, 16),
    )
    card = SprintItem.objects.create(sprint=sprint, item=mttr)
    TimeLog.objects.create(card=card, user=cast.owner, day=dt.date(2026, 8, 4), hours=Decimal("6.5"))
    TimeLog.objects.create(card=card, user=cast.contributor, day=dt.date(2026, 8, 5), hours=Decimal("2"))
    for item, closed_at, outcome, delta, lessons in [
        (mttr, dt.datetime(2026, 8, 20, 10, tzinfo=UTC), "successful", "-3", "Runbooks beat heroics."),
        (csat, dt.datetime(2026, 9, 30, 10, tzinfo=UTC), "partly_successful", "12", "Ask users early."),
        (withdrawn, dt.datetime(2026, 7, 10, tzinfo=UTC), "withdrawn", None, ""),
        (late, dt.datetime(2026, 10, 2, tzinfo=UTC), "successful", "-1", ""),
    ]:
        item.indicators.get().measurements.create(
            value=Decimal("7"), measured_at=closed_at - dt.timedelta(days=1)
        )
        Item.objects.filter(pk=item.pk).update(
            status=C.Status.CLOSED,
            closed_at=closed_at,
            outcome=outcome,
            lessons=lessons,
            realised_delta=Decimal(delta) if delta else None,
            benefit_category="time_saved",
        )
    return mttr, csat


def _near(colour: object, target: tuple[int, int, int]) -> bool:
    return isinstance(colour, tuple) and all(abs(c - t) < 20 for c, t in zip(colour, target, strict=True))


def test_parse_period():
    assert O.parse_period("2026-Q3") == (dt.date(2026, 7, 1), dt.date(2026, 9, 30))
    for bad in ("2026-Q5", "Q3", "2026-3", ""):
        with pytest.raises(ValueError, match="write it as 2026-Q3"):
            O.parse_period(bad)


def test_the_report_holds_what_improved_by_how_much_against_which_baseline_and_its_cost(q3):
    mttr, csat = q3
    report = O.outcomes_report("2026-Q3")
    assert report["period"] == "2026-Q3"
    assert [row["item"] for row in report["rows"]] == [csat, mttr]  # newest closure first
    by_item = {row["item"].pk: row for row in report["rows"]}
    assert (by_item[mttr.pk]["baseline"], by_item[mttr.pk]["delta"]["text"], by_item[mttr.pk]["hours"]) == (
        Decimal("10"),
        "-3 h",
        Decimal("8.5"),
    )
    assert by_item[mttr.pk]["progress"] == Decimal("75")  # -3 of the -4 from 10 to 6
    assert by_item[csat.pk]["progress"] == Decimal("120")  # +12 of the +10 from 70 to 80
    assert report["hours"] == Decimal("8.5")
    assert dict(report["by_outcome"]) == {"Successful": 1, "Partly successful": 1, "Unsuccessful": 0}
    (chart,) = report["charts"]
    assert chart.count("<rect") == 4  # a track and a bar per item
    assert ">75 %<" in chart and ">120 %<" in chart


def test_the_page_is_for_everyone_signed_in_and_names_a_bad_period(q3, login, cast, client):
    assert client.get("/cadence/outcomes/").status_code == 302
    page = login(cast.viewer).get("/cadence/outcomes/?period=2026-Q3")
    text = page.content.decode()
    assert page.status_code == 200
    assert "2 improvements closed in 2026-Q3" in text and "Runbooks beat heroics." in text
    assert "<svg" in text
    bad = login(cast.viewer).get("/cadence/outcomes/?period=2026-13")
    assert bad.status_code == 400 and "write it as 2026-Q3" in bad.content.decode()


def test_the_command_writes_html(q3, tmp_path):
    out = tmp_path / "q3.html"
    call_command(
        "report",
        "outcomes",
        "--period",
        "2026-Q3",
        "--format",
        "html",
        "--output",
        str(out),
        stderr=io.StringIO(),
    )
    html = out.read_text()
    assert html.startswith("<!doctype html>")
    assert (
        "Improvement outcomes · 2026-Q3" in html
        and "Ask users early." in html
        and "Closed in October" not in html
    )
    assert "@page" in html  # the stylesheet travels inside the file
    with pytest.raises(CommandError, match="--period"):
        call_command("report", "outcomes", "--period", "next quarter")


@pytest.mark.skipif(
    not shutil.which("pdftoppm"), reason="poppler-utils (scripts/system-deps test) installs pdftoppm"
)
def test_the_pdf_renders_a_page_with_the_report_on_it(q3, tmp_path):
    pdf = tmp_path / "q3.pdf"
    call_command(
        "report",
        "outcomes",
        "--period",
        "2026-Q3",
        "--format",
        "pdf",
        "--output",
        str(pdf),
        stderr=io.StringIO(),
    )
    assert pdf.read_bytes().startswith(b"%PDF-")
    subprocess.run(
        ["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True
    )
    (png,) = Path(tmp_path).glob("page*.png")
    image = Image.open(png).convert("L")
    dark = sum(image.histogram()[:128])
    # Text, table rules and the chart's bars: a blank page has none.
    assert dark > 0.01 * image.width * image.height
    # The bars are drawn: green where the target was reached (the CSAT item, 120 %).
    rgb = Image.open(png).convert("RGB")
    green = [n for n, colour in rgb.getcolors(1_000_000) or [] if _near(colour, (0x19, 0x87, 0x54))]
    assert sum(green) > 50


def test_the_page_takes_the_same_queries_whatever_the_number_of_items(q3, login, cast):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(cast.viewer)
    client.get("/cadence/outcomes/?period=2026-Q3")
    with CaptureQueriesContext(connection) as before:
        client.get("/cadence/outcomes/?period=2026-Q3")
    for n in range(4):  # four more closed items, each with an indicator and a measurement
        extra = ready_item(cast, title=f"More {n}")
        extra.indicators.get().measurements.create(
            value=Decimal("8"), measured_at=dt.datetime(2026, 8, 1, tzinfo=UTC)
        )
        Item.objects.filter(pk=extra.pk).update(
            status=C.Status.CLOSED,
            closed_at=dt.datetime(2026, 8, 2, tzinfo=UTC),
            outcome="successful",
            realised_delta=Decimal("-2"),
        )
    with CaptureQueriesContext(connection) as after:
        text = client.get("/cadence/outcomes/?period=2026-Q3").content.decode()
    assert "6 improvements closed" in text
    assert len(after) == len(before)  # the latest measurement comes from the prefetch, not a query per item


def test_chart_labels_are_cut_at_a_word_with_an_ellipsis():
    assert O.shorten("CI-00051 Password reset self-service", 34) == "CI-00051 Password reset…"
    assert O.shorten("CI-00051 Short", 34) == "CI-00051 Short"
    assert O.shorten("CI-00051 Averyveryverylongsingleword", 20) == "CI-00051 Averyveryv…"
    assert all(len(O.shorten("word " * 20, n)) <= n for n in (10, 20, 34))


def test_the_page_links_its_items_and_the_file_stands_alone(q3, login, cast):
    mttr, _ = q3
    page = login(cast.viewer).get("/cadence/outcomes/?period=2026-Q3").content.decode()
    assert f'href="{mttr.get_absolute_url()}"' in page
    html = O.render_report(O.outcomes_report("2026-Q3"), "html").decode()
    assert mttr.get_absolute_url() not in html


def test_anyone_signed_in_downloads_the_report_as_a_file(q3, login, cast):
    from django.test import Client

    viewer = login(cast.viewer)
    pdf = viewer.get("/cadence/outcomes/report.pdf?period=2026-Q3")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == 'attachment; filename="outcomes-2026-Q3.pdf"'
    assert pdf.content.startswith(b"%PDF")
    html = viewer.get("/cadence/outcomes/report.html?period=2026-Q3")
    assert html.status_code == 200 and "Runbooks beat heroics." in html.content.decode()
    bad = viewer.get("/cadence/outcomes/report.pdf?period=2026-Q5")
    assert bad.status_code == 400 and "write it as 2026-Q3" in bad.content.decode()
    assert Client().get("/cadence/outcomes/report.pdf").status_code == 302  # signed out: to the login
    page = viewer.get("/cadence/outcomes/?period=2026-Q3").content.decode()
    assert 'href="/cadence/outcomes/report.pdf?period=2026-Q3"' in page


def test_a_long_quarter_is_drawn_in_charts_that_fit_a_page(q3):
    """200 rows: eight charts of 25 bars (one SVG cannot break across PDF pages; a single chart of a
    200-item quarter was taller than a page and the PDF lost it)."""
    rows = O.outcomes_report("2026-Q3")["rows"] * 100  # the two real rows, a hundred times
    charts = O.progress_charts(rows)
    assert len(charts) == 8
    assert all(chart.count("<rect") == 2 * O.CHART_ROWS for chart in charts)
    assert O.progress_charts([]) == []
