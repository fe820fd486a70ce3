"""The outcomes report: what improved in a period, by how much, against which baseline, what it
cost in sprint hours and what was learned. One source for the page (/cadence/outcomes/), the
command (`tikting report outcomes --period 2026-Q3 --format html|pdf`) and its PDF (WeasyPrint;
the chart is SVG drawn here, so the PDF needs no browser)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape

from tikting.improvement import choices as IC

from .leadership import closed_in, hours_on, outcome_rows, quarter_label, quarter_of

PERIOD = re.compile(r"^(\d{4})-Q([1-4])$")


def parse_period(text: str) -> tuple[dt.date, dt.date]:
    """'2026-Q3' → (2026-07-01, 2026-09-30). ValueError naming the expected form otherwise."""
    match = PERIOD.match((text or "").strip())
    if not match:
        raise ValueError(f"'{text}' is not a quarter: write it as 2026-Q3.")
    year, quarter = int(match.group(1)), int(match.group(2))
    return quarter_of(dt.date(year, quarter * 3 - 2, 1))


def progress(row: dict[str, Any]) -> Decimal | None:
    """How far the realised delta went from the baseline toward the target, in percent
    (100 = target reached; negative = moved away). None without a delta or a target."""
    indicator, delta = row["indicator"], row["delta"]
    if not delta or indicator is None or indicator.target_value is None or indicator.baseline_value is None:
        return None
    span = indicator.target_value - indicator.baseline_value
    if not span:
        return None
    return delta["value"] / span * 100


LABEL_CHARS = 34  # what fits the chart's label column at 11 px


def shorten(text: str, most: int) -> str:
    """`text` cut to at most `most` characters at a word, with an ellipsis when cut."""
    if len(text) <= most:
        return text
    cut = text[: most - 1]
    if " " in cut[most // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "…"


CHART_ROWS = 25  # bars an SVG: about a third of an A4 page, so the PDF breaks pages between them


def progress_charts(rows: list[dict[str, Any]], per_chart: int = CHART_ROWS) -> list[str]:
    """The progress chart of `rows` as SVGs of at most `per_chart` bars each: one SVG cannot break
    across pages, and a 200-item quarter's single chart was taller than a page (the PDF lost it).
    Items without a target or a delta are left out and counted under the charts."""
    bars: list[tuple[dict[str, Any], Decimal]] = []
    for row in rows:
        value = progress(row)
        if value is not None:
            bars.append((row, value))
    return [progress_chart(bars[n : n + per_chart]) for n in range(0, len(bars), per_chart)]


def progress_chart(bars: list[tuple[dict[str, Any], Decimal]], width: int = 640) -> str:
    """A horizontal bar chart (SVG) of each item's progress toward its target (row, percent), 0 to
    150 %, a line at 100 %."""
    label_w, bar_h, gap, top = 220, 18, 8, 24
    plot_w = width - label_w - 60
    height = top + len(bars) * (bar_h + gap) + 24

    def x(value: Decimal) -> float:
        return label_w + float(max(Decimal(0), min(value, Decimal(150)))) / 150 * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Progress toward target per item" '
        'font-family="DejaVu Sans, sans-serif" font-size="11">',
        f'<text x="{label_w}" y="14" fill="#555">0 %</text>',
        f'<text x="{x(Decimal(100)) - 14:.1f}" y="14" fill="#555">100 %</text>',
        f'<text x="{label_w + plot_w - 28}" y="14" fill="#555">150 %</text>',
    ]
    for n, (row, value) in enumerate(bars):
        y = top + n * (bar_h + gap)
        colour = "#198754" if value >= 100 else ("#0d6efd" if value > 0 else "#dc3545")
        title = f"{row['item'].ref} {row['item'].title}"
        parts.append(f'<text x="0" y="{y + 13}" fill="#222">{escape(shorten(title, LABEL_CHARS))}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{plot_w}" height="{bar_h}" fill="#eef1f4"/>')
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{x(value) - label_w:.1f}" height="{bar_h}" fill="{colour}">'
            f"<title>{escape(title)}: {value:.0f} %</title></rect>"
        )
        parts.append(f'<text x="{x(value) + 4:.1f}" y="{y + 13}" fill="#222">{value:.0f} %</text>')
    line = x(Decimal(100))
    parts.append(
        f'<line x1="{line:.1f}" y1="18" x2="{line:.1f}" y2="{height - 20}" '
        'stroke="#333" stroke-dasharray="3,3"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def outcomes_report(period: str | None = None) -> dict[str, Any]:
    """The report for a quarter (default: the current one): every item closed in it (withdrawn
    left out), with its delta, baseline, target, hours and lessons; totals by outcome; the chart."""
    if period:
        start, end = parse_period(period)
    else:
        start, end = quarter_of(timezone.localdate())
    closed = closed_in(start, end)
    rows = outcome_rows(closed, None)
    for row in rows:
        row["progress"] = progress(row)
    by_outcome = Counter(row["item"].outcome for row in rows)
    return {
        "period": quarter_label(start),
        "start": start,
        "end": end,
        "rows": rows,
        "count": len(rows),
        "by_outcome": [
            (label, by_outcome.get(value, 0))
            for value, label in IC.Outcome.choices
            if value != IC.Outcome.WITHDRAWN
        ],
        "hours": hours_on(closed),
        "charts": progress_charts(rows),
        "without_chart": sum(1 for row in rows if row["progress"] is None),
        "generated": timezone.now(),
    }


def render_report(context: dict[str, Any], fmt: str) -> bytes:
    """The report as a standalone HTML document (its stylesheet inside) or a PDF (WeasyPrint)."""
    css = (Path(settings.BASE_DIR) / "static" / "css" / "outcomes-report.css").read_text()
    html = render_to_string("cadence/outcomes_report.html", {**context, "css": css})
    if fmt == "html":
        return html.encode()
    if fmt == "pdf":
        logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)  # its steps are noise here
        from weasyprint import HTML  # imported here: only the PDF needs it (and its system libraries)

        pdf: bytes = HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()
        return pdf
    raise ValueError(f"'{fmt}' is not a report format (html, pdf).")
