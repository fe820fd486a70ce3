"""The recurring-incident review page: every group the recurring-incident detector finds in a
window, with its trend per week and what it proposes (a problem record, an improvement, or nothing
because a linked problem has it in hand).

Whoever may read the ITSM records may read this page (records.registry.can_view_records: viewers
and up): it shows incidents, nothing of the register. The groups are computed by the detector
itself (find_groups, judge), so the page and the intake cannot disagree, and the answer is kept
under the metrics data stamp (tikting/metrics/cache.py): reused until the records change, and, for
a window that ends now, for TIKTING_METRICS_CACHE_SECONDS at most.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from tikting.metrics.cache import cached, question_key
from tikting.records.registry import can_view_records

from . import registry
from .detectors import recurring_incidents as R
from .proposals import Window

PATH = "tikting.signals.detectors.recurring_incidents"
KEPT = 1000  # groups kept in an answer, the highest scored first (the page says how many in all)
PER_PAGE = 25
SPARK_WEEKS = 52  # weeks drawn in a trend (the latest)
LATEST = 5  # incidents linked from a row, the latest first
RULES = [("text", "Alike texts"), ("ci", "One CI, no text"), ("burst", "Burst of a classification")]
VERDICTS = [
    ("problem", "Problem record proposed"),
    ("improvement", "Improvement proposed: persists after its problem"),
    ("in_hand", "A linked problem has it in hand"),
]


class RecurringFilterForm(forms.Form):
    days = forms.IntegerField(
        min_value=1, max_value=3660, required=False, help_text="Days the window covers, up to its last day."
    )
    until = forms.DateField(required=False, help_text="The window's last day (today when empty).")
    rule = forms.ChoiceField(choices=[("", "Any rule"), *RULES], required=False)
    verdict = forms.ChoiceField(choices=[("", "Any verdict"), *VERDICTS], required=False)


def _thresholds() -> dict[str, float]:
    """The detector's effective thresholds: its defaults with TIKTING_SIGNALS["recurring_incidents"],
    except the window, which the page's *Days* sets."""
    return {**registry.load(PATH).thresholds, "window_days": 0}


def _window(days: int, until: dt.date | None) -> Window:
    zone = timezone.get_current_timezone()
    if until is None:
        end = timezone.now()
    else:
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return Window(end - dt.timedelta(days=days), end)


def groups_in(window: Window, thresholds: dict[str, float]) -> dict[str, Any]:
    """The page's answer: every group of the window as JSON-safe rows, the highest scored first."""
    started = time.perf_counter()
    found = R.find_groups(window, thresholds=thresholds)
    problems = R.problems_of(found.groups)
    labels = R.Labels.of(found.groups)
    mondays = R.Mondays()
    rows: list[dict[str, Any]] = []
    for group in found.groups:
        verdict = R.judge(group, problems, thresholds)
        weeks = R.weekly(group, found.window, mondays)
        latest = list(zip(group.members[-LATEST:], group.keys[-LATEST:], strict=True))[::-1]
        rows.append(
            {
                "fingerprint": R.fingerprint(group),
                "rule": group.rule,
                "where": labels.where(group),
                "classification": R.classification(group),
                "text": group.text,
                "wordings": group.variants,
                "shared_words": group.shared_words,
                "surprise": group.surprise,
                "size": group.size,
                "first": group.first.isoformat(),
                "last": group.last.isoformat(),
                "weeks": [[week.isoformat(), count] for week, count in weeks],
                "trend": R.trend(weeks),
                "score": R.score(group, found.window),
                "verdict": verdict.proposes or "in_hand",
                "problem": [verdict.problem.pk, verdict.problem.key] if verdict.problem else None,
                "linked": verdict.linked,
                "after": verdict.after,
                "latest": [[pk, key] for pk, key in latest],
            }
        )
    rows.sort(key=lambda r: (-r["score"], -r["size"], r["fingerprint"]))
    return {
        "incidents": found.incidents,
        "groups": len(rows),
        "grouped": sum(r["size"] for r in rows),
        "rows": rows[:KEPT],
        "computed_at": timezone.now().isoformat(),
        "seconds": time.perf_counter() - started,
    }


def _spark(weeks: list[list[Any]]) -> dict[str, Any]:
    """An SVG bar per week (the latest SPARK_WEEKS), heights relative to the busiest week."""
    shown = weeks[-SPARK_WEEKS:]
    top = max((count for _week, count in shown), default=0) or 1
    bars = []
    for x, (week, count) in enumerate(shown):
        height = round(22 * count / top) if count else 0
        bars.append({"x": x * 4, "y": 23 - max(height, 1), "h": max(height, 1), "count": count, "week": week})
    return {"width": max(len(shown) * 4, 4), "bars": bars, "counts": ", ".join(str(c) for _w, c in shown)}


@login_required
@require_safe
def recurring_review(request: HttpRequest) -> HttpResponse:
    if not can_view_records(request.user):
        raise PermissionDenied("You may not read ITSM records.")
    form = RecurringFilterForm(request.GET or None)
    data: dict[str, Any] = form.cleaned_data if form.is_bound and form.is_valid() else {}
    status = 400 if form.is_bound and form.errors else 200
    days = data.get("days") or settings.TIKTING_SIGNALS_WINDOW_DAYS
    until = data.get("until")
    window = _window(days, until)
    thresholds = _thresholds()
    key = question_key(
        "signals.recurring_incidents",
        None,
        {"start": window.start.isoformat(), "end": window.end.isoformat()} if until else {"days": days},
        thresholds=sorted(thresholds.items()),
    )
    answer = cached(
        lambda: groups_in(window, thresholds),
        key,
        to_payload=lambda payload: payload,
        from_payload=lambda payload: payload,
        time_dependent=until is None,
    )
    rows = [
        r
        for r in answer["rows"]
        if (not data.get("rule") or r["rule"] == data["rule"])
        and (not data.get("verdict") or r["verdict"] == data["verdict"])
    ]
    paginator = Paginator(rows, PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    for row in page.object_list:
        row["spark"] = _spark(row["weeks"])
        row["rule_label"] = dict(RULES).get(row["rule"], row["rule"])
        row["first_at"] = dt.datetime.fromisoformat(row["first"])
        row["last_at"] = dt.datetime.fromisoformat(row["last"])
        row["links"] = [(key, reverse("records:detail", args=["incident", pk])) for pk, key in row["latest"]]
        if row["problem"]:
            row["problem_url"] = reverse("records:detail", args=["problem", row["problem"][0]])
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "form": form,
        "data": data,
        "days": days,
        "window": window,
        "window_last_day": timezone.localtime(window.end - dt.timedelta(microseconds=1)).date(),
        "answer": answer,
        "computed_at": dt.datetime.fromisoformat(answer["computed_at"]),
        "shown": len(rows),
        "page": page,
        "page_range": list(paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1)),
        "ellipsis": Paginator.ELLIPSIS,
        "page_query": params.urlencode(),
        "thresholds": thresholds,
        "rule_choices": RULES,
        "verdict_choices": VERDICTS,
        "kept": KEPT,
    }
    return render(request, "signals/recurring.html", context, status=status)
