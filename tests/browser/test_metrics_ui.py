"""The ITSM metrics page and binding an indicator to a metric, driven in Chromium.

A viewer reads MTTR by month on /metrics/ (Chart.js draws it, the table holds the figures worked
out by hand below), switches to the median by service and downloads the CSV of that series. An
owner binds an item's indicator to MTTR of one service over a window (the form comes in place with
htmx) and is refused, with nothing changed, over a window without incidents. A viewer is offered
no binding at all.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from tikting.cmdb.models import Service
from tikting.core.models import AuditEntry
from tikting.improvement import services as S
from tikting.improvement.models import Indicator
from tikting.incidents.models import Incident
from tikting.metrics.engine import compute
from tikting.test import ready_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

_numbers = iter(range(1, 10_000))


def at(y: int, m: int, d: int, hour: int = 12) -> dt.datetime:
    """A local time (the site's zone decides which month an incident belongs to)."""
    return dt.datetime(y, m, d, hour, tzinfo=timezone.get_default_timezone())


def incident(service: Service, opened: dt.datetime, hours: float | None) -> Incident:
    """A resolved incident `hours` after it opened, or (hours None) one still in progress."""
    data = {"status": "in_progress"}
    if hours is not None:
        data = {"status": "resolved", "resolved_at": opened + dt.timedelta(hours=hours)}
    return Incident.objects.create(
        number=f"INC9{next(_numbers):05d}", service=service, priority=2, opened_at=opened, **data
    )


def seed_incidents(cast) -> Service:
    """Resolution times (hours), all in 2024:

    | month | E-mail   | Network | Telephony | mean | median | p90 |
    | Jan   | 2        | 4       | 6         | 4.0  | 4.0    | 5.6 |
    | Feb   | 1.5, 3.5 | 10      |           | 5.0  | 3.5    | 8.7 |
    | Mar   |          |         |           | —    | —      | —   |
    | Apr   |          | (open)  | 5         | 5.0  | 5.0    | 5.0 |

    By service: E-mail 1.5, 2, 3.5 (mean 2.33, median 2.0, p90 3.2); Network 4, 10 (mean 7.0,
    median 7.0, p90 9.4, 1 unresolved); Telephony 5, 6 (mean 5.5, median 5.5, p90 5.9).
    All: 7 resolved, 32 h, MTTR 4.57. p90 interpolates linearly at rank 0.9 × (n − 1).
    """
    telephony = Service.objects.create(name="Telephony")
    incident(cast.email, at(2024, 1, 10), 2)
    incident(cast.network, at(2024, 1, 11), 4)
    incident(telephony, at(2024, 1, 12), 6)
    incident(cast.email, at(2024, 2, 5), 1.5)
    incident(cast.email, at(2024, 2, 6), 3.5)
    incident(cast.network, at(2024, 2, 7), 10)
    incident(cast.network, at(2024, 4, 8), None)
    incident(telephony, at(2024, 4, 9), 5)
    return telephony


CHART_DRAWN = """() => {
  const canvas = document.getElementById("metrics-chart");
  const chart = canvas && window.Chart && Chart.getChart(canvas);
  if (!chart || !canvas.width || !canvas.height) return false;
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) return true;
  return false;
}"""


def expect_chart(page: Page, labels: list[str]) -> None:
    """Chart.js made a chart of `labels` on the canvas, which has a size and painted pixels."""
    canvas = page.locator("#metrics-chart")
    expect(canvas).to_be_visible()
    page.wait_for_function(CHART_DRAWN)
    box = canvas.bounding_box()
    assert box and box["width"] > 0 and box["height"] > 0
    assert (
        page.evaluate("() => Chart.getChart(document.getElementById('metrics-chart')).data.labels") == labels
    )


def duration_header(slicer: str, *figures: str) -> list[str]:
    """The table header of an MTTR series: every time figure names its unit."""
    times = [f"{name} (hours)" for name in figures]
    return [slicer, "value (hours)", "count", *times, "unresolved", "missing_timestamps", "incomplete"]


def expect_table(page: Page, header: list[str], rows: list[list[str]]) -> None:
    table = page.locator("#metrics-form ~ .row table")
    expect(table.locator("thead th")).to_have_text(header)
    expect(table.locator("tbody tr")).to_have_count(len(rows))
    for n, row in enumerate(rows):
        expect(table.locator("tbody tr").nth(n).locator("td")).to_have_text(row)


def test_metrics_page_chart_table_and_csv(page: Page, live_server, sign_in, cast, password):
    telephony = seed_incidents(cast)
    sign_in(cast.viewer, password)
    page.goto(f"{live_server.url}/metrics/")
    expect(page.get_by_role("heading", name="ITSM metrics")).to_be_visible()

    # The default: MTTR by month, March empty but listed.
    expect(page.locator("#m-metric")).to_have_value("mttr")
    expect(page.locator("#m-by")).to_have_value("month")
    expect(page.locator("#metrics-total")).to_have_text(re.compile(r"^4\.57\s+hours$"))
    expect_chart(page, ["2024-01", "2024-02", "2024-03", "2024-04"])
    expect_table(
        page,
        duration_header("month", "median", "p90"),
        [
            ["2024-01", "4.00", "3", "4.00", "5.60", "0", "0", ""],
            ["2024-02", "5.00", "3", "3.50", "8.70", "0", "0", ""],
            ["2024-03", "—", "0", "—", "—", "0", "0", ""],
            ["2024-04", "5.00", "1", "5.00", "5.00", "1", "0", "1 record still open"],
        ],
    )

    # Another metric, by service.
    page.locator("#m-metric").select_option("mttr_median")
    page.locator("#m-by").select_option("service")
    page.locator("#metrics-form").get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/metrics/\?.*metric=mttr_median.*&by=service"))
    expect(page.locator("#m-metric")).to_have_value("mttr_median")
    expect(page.locator("#metrics-total")).to_have_text(
        re.compile(r"^4\.00\s+hours$")
    )  # 1.5 2 3.5 [4] 5 6 10
    expect_table(
        page,
        duration_header("service", "mean", "p90"),
        [
            ["E-mail", "2.00", "3", "2.33", "3.20", "0", "0", ""],
            ["Network", "7.00", "2", "7.00", "9.40", "1", "0", "1 record still open"],
            ["Telephony", "5.50", "2", "5.50", "5.90", "0", "0", ""],
        ],
    )
    expect_chart(page, ["E-mail", "Network", "Telephony"])

    # The table sorts in the page: by value up, down, then back to the server's order.
    value_header = page.locator("#metrics-table thead th").nth(1)
    first_cells = page.locator("#metrics-table tbody tr td:first-child")
    value_header.get_by_role("button", name="value (hours)").click()
    expect(value_header).to_have_attribute("aria-sort", "ascending")
    expect(first_cells).to_have_text(["E-mail", "Telephony", "Network"])
    value_header.get_by_role("button", name="value (hours)").click()
    expect(value_header).to_have_attribute("aria-sort", "descending")
    expect(first_cells).to_have_text(["Network", "Telephony", "E-mail"])
    value_header.get_by_role("button", name="value (hours)").click()
    expect(first_cells).to_have_text(["E-mail", "Network", "Telephony"])

    # The CSV of the same series.
    with page.expect_download() as info:
        page.locator("#metrics-form").get_by_role("link", name="CSV").click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename == "mttr_median-service.csv"
    with open(download.path(), newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, *body = rows
    assert header == [
        "key",
        "label",
        "value_hours",
        "count",
        "mean_hours",
        "p90_hours",
        "unresolved",
        "missing_timestamps",
        "incomplete",
    ]
    # unrounded: rounding is the page's, for display
    assert [[r[0], r[1], float(r[2]), r[3], float(r[4]), float(r[5]), *r[6:]] for r in body] == [
        [str(cast.email.pk), "E-mail", 2.0, "3", pytest.approx(7 / 3), pytest.approx(3.2), "0", "0", "false"],
        [str(cast.network.pk), "Network", 7.0, "2", 7.0, pytest.approx(9.4), "1", "0", "true"],
        [str(telephony.pk), "Telephony", 5.5, "2", 5.5, pytest.approx(5.9), "0", "0", "false"],
    ]


def indicator_state(indicator: Indicator) -> dict:
    return Indicator.objects.filter(pk=indicator.pk).values().get()


def htmx_settled(page: Page) -> None:
    """htmx wires up swapped-in content when it settles (20 ms later): until then a click on it
    would be a plain one. Call once the new content is seen."""
    expect(page.locator(".htmx-added, .htmx-settling, .htmx-request")).to_have_count(0)


def test_owner_binds_an_indicator_to_a_metric(page: Page, live_server, sign_in, cast, password):
    seed_incidents(cast)
    item = ready_item(cast)  # service E-mail; indicator "MTTR", typed baseline 10 h
    indicator = item.indicators.get()
    # What the engine gives for E-mail over the window: (2 + 1.5 + 3.5) / 3 h. Computed here, before
    # the browser runs (the live server shares the in-memory SQLite connection with this thread),
    # and uncached so the server works its own answer out.
    expected = compute(
        "mttr",
        filters={"service": "E-mail", "opened_from": "2024-01-01", "opened_to": "2024-04-30"},
        cache=False,
    ).total
    assert (expected.value, expected.count) == (pytest.approx(7 / 3), 3)
    assert expected.value is not None
    baseline_text = str(Decimal(str(round(expected.value, 4))).normalize())  # 2.3333: kept to 4 places
    sign_in(cast.owner, password)
    page.goto(f"{live_server.url}{item.get_absolute_url()}")
    card = page.locator(f"#indicator-{indicator.pk}")
    expect(card).to_contain_text("MTTR")
    expect(card.locator("[data-binding]")).to_have_count(0)

    # The form comes in place: no page load (a mark set on the window survives).
    page.evaluate("() => { window.__sameDocument = true; }")
    card.get_by_role("link", name="Bind to a metric").click()
    panel = page.locator(f"#indicator-bind-{indicator.pk}")
    form = panel.locator("form")
    expect(form).to_be_visible()
    htmx_settled(page)
    assert page.evaluate("() => window.__sameDocument === true")
    expect(page).to_have_url(f"{live_server.url}{item.get_absolute_url()}")
    expect(card.locator("[data-bind-panel]")).to_have_count(1)  # inside the indicator's card

    form.get_by_label("Metric", exact=True).select_option("mttr")
    form.get_by_label("Service", exact=True).select_option(label="E-mail")
    form.get_by_label("Window start").fill("2024-01-01")
    form.get_by_label("Window end").fill("2024-04-30")
    form.get_by_role("button", name="Bind and compute baseline").click()

    expect(page.locator("#item-flash")).to_contain_text(
        f"“MTTR” bound to MTTR (mean time to resolve): baseline {baseline_text} h."
    )
    binding = card.locator("[data-binding=mttr]")
    expect(binding).to_contain_text("Metric MTTR (mean time to resolve) (hours)")
    expect(binding).to_contain_text("Scope service E-mail")
    expect(binding).to_contain_text(
        "computed: MTTR (mean time to resolve), service E-mail, 1 Jan 2024 to 30 Apr 2024 by resolved date, "
        "3 records"
    )
    baseline = card.locator(".tk-numbers > div").filter(has_text="Baseline")
    expect(baseline.locator("strong")).to_have_text(baseline_text)
    expect(baseline).to_contain_text("30 Apr 2024")
    rebind = card.get_by_role("link", name="Re-bind")
    expect(rebind).to_be_visible()
    htmx_settled(page)
    expect(panel.locator("form")).to_have_count(0)  # the form closed after binding
    indicator.refresh_from_db()
    assert indicator.metric_key == "mttr" and indicator.metric_scope == {"service": "E-mail"}
    assert indicator.baseline_value == Decimal(baseline_text) and indicator.unit == "h"
    assert indicator.baseline_date == dt.date(2024, 4, 30)

    # Again over a window without incidents: refused next to the window start, nothing saved.
    before, audits = indicator_state(indicator), AuditEntry.objects.count()
    rebind.click()
    form = panel.locator("form")
    expect(form).to_be_visible()
    htmx_settled(page)
    expect(form.get_by_label("Metric", exact=True)).to_have_value("mttr")
    expect(form.get_by_label("Service", exact=True)).to_have_value("E-mail")
    form.get_by_label("Window start").fill("2023-06-01")
    form.get_by_label("Window end").fill("2023-06-30")
    form.get_by_role("button", name="Re-bind and recompute baseline").click()
    start_field = panel.locator(".tk-field", has=page.get_by_label("Window start"))
    expect(start_field.locator(".invalid-feedback[data-field=window_start]")).to_have_text(
        "No records in scope between 1 Jun 2023 and 30 Jun 2023: no baseline."
    )
    expect(start_field).to_have_class(re.compile(r"\btk-invalid\b"))
    expect(panel.get_by_label("Window start")).to_have_value("2023-06-01")  # the input is kept
    expect(baseline.locator("strong")).to_have_text(baseline_text)
    assert indicator_state(indicator) == before
    assert AuditEntry.objects.count() == audits


def test_viewer_is_offered_no_binding(page: Page, live_server, sign_in, cast, password):
    seed_incidents(cast)
    item = ready_item(cast)
    indicator = item.indicators.get()
    sign_in(cast.viewer, password)
    page.goto(f"{live_server.url}{item.get_absolute_url()}")
    card = page.locator(f"#indicator-{indicator.pk}")
    expect(card).to_contain_text("MTTR")
    expect(card.get_by_role("button", name="Measurement")).to_have_count(0)
    expect(page.get_by_role("link", name="Bind to a metric")).to_have_count(0)
    expect(page.locator("[data-bind-link], [data-bind-panel]")).to_have_count(0)

    # Bound by the owner meanwhile: the viewer reads the binding but is offered no re-bind.
    S.bind_indicator(
        indicator,
        actor=cast.owner,
        metric_key="mttr",
        scope={"service": "E-mail"},
        window_start=dt.date(2024, 1, 1),
        window_end=dt.date(2024, 4, 30),
    )
    page.reload()
    expect(card.locator("[data-binding=mttr]")).to_contain_text("Metric MTTR (mean time to resolve)")
    expect(page.get_by_role("link", name=re.compile("Re-bind|Bind to a metric"))).to_have_count(0)

    # Nor can the form be fetched by its address.
    response = page.goto(
        f"{live_server.url}{reverse('improvement:indicator_bind', args=[item.pk, indicator.pk])}"
    )
    assert response is not None and response.status == 403


def test_incomplete_periods_are_marked_in_the_note_the_table_and_the_chart(
    page: Page, live_server, sign_in, cast, password
):
    """A month with an incident still open, and the month not ended yet, are marked incomplete:
    listed in a note above the chart, hatched in the table with the reason, drawn hollow on a
    dashed line; by resolution date the past month is complete. Readable at 1440 and 375 px."""
    this_month = timezone.localdate().replace(day=1)
    last_month = (this_month - dt.timedelta(days=1)).replace(day=1)
    two_ago = (last_month - dt.timedelta(days=1)).replace(day=1)
    incident(cast.email, at(two_ago.year, two_ago.month, 3), 2)
    incident(cast.email, at(last_month.year, last_month.month, 3), 4)
    incident(cast.email, at(last_month.year, last_month.month, 4), None)  # still open
    labels = [f"{m:%Y-%m}" for m in (two_ago, last_month, this_month)]
    sign_in(cast.viewer, password)
    url = f"{live_server.url}/metrics/?metric=mttr&by=month&date_to={timezone.localdate().isoformat()}"
    page.goto(url)

    note = page.locator("#metrics-incomplete-note")
    expect(note).to_contain_text(f"{labels[1]} (1 record still open), {labels[2]} (period not ended)")
    expect(note).to_contain_text("Choose Date: resolved")
    rows = page.locator("#metrics-table tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#metrics-table tbody tr[data-incomplete]")).to_have_count(2)
    expect(rows.nth(0).locator("td").last).to_have_text("")
    expect(rows.nth(1).locator(".tk-badge-incomplete")).to_have_text("1 record still open")
    expect(rows.nth(2).locator(".tk-badge-incomplete")).to_have_text("period not ended")
    expect(page.locator("#metrics-total-incomplete")).to_have_text(
        "incomplete: 1 record still open, period not ended"
    )
    expect_chart(page, labels)
    drawn = page.evaluate(
        """() => {
          const chart = Chart.getChart(document.getElementById("metrics-chart"));
          const line = chart.data.datasets[0];
          return {
            points: line.pointBackgroundColor,
            dashed: [0, 1, 2].map((i) => line.segment.borderDash({ p1DataIndex: i }) || null),
            legend: chart.legend.legendItems.map((item) => item.text),
          };
        }"""
    )
    assert drawn["points"] == ["#1f3a5f", "#fff", "#fff"]  # hollow where incomplete
    assert drawn["dashed"] == [None, [6, 4], [6, 4]]  # the line into an incomplete point is dashed
    assert "incomplete (will change)" in drawn["legend"]

    # On a phone: the note reads first, nothing overflows the width.
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(url)
    expect(page.locator("#metrics-incomplete-note")).to_be_visible()
    expect_chart(page, labels)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375

    # By resolution date the past months are final: only the month not ended is incomplete.
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(url + "&date_field=resolved")
    expect(page.locator("#m-date-field")).to_have_value("resolved")
    expect(page.locator("#metrics-incomplete-note")).to_contain_text(
        f"Incomplete: {labels[2]} (period not ended)."
    )
    expect(page.locator("#metrics-table tbody tr[data-incomplete]")).to_have_count(1)
