"""What the detector modules share: statistics, ratings, record keys, labels and periods.

Not a detector (no NAME): the intake's registry lists the detector modules by name in settings.
Everything here is plain Python over numbers, except `labels`, which reads names in one query.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from tikting.knowledge.models import Article
from tikting.signals.proposals import Evidence, Window

# A p-value this small or smaller counts as "20 orders of magnitude": scores stay finite.
MAX_SURPRISE = 20.0


def merged(defaults: dict[str, float], thresholds: dict[str, float] | None) -> dict[str, float]:
    """The detector's documented defaults with the caller's overrides (unknown names are kept out)."""
    result = dict(defaults)
    for name, value in (thresholds or {}).items():
        if name in result:
            result[name] = float(value)
    return result


def period(window: Window) -> tuple[dt.date, dt.date]:
    """The window as dates in the site's time zone: its first day and its last (inclusive) day."""
    last = window.end - dt.timedelta(microseconds=1)
    return timezone.localtime(window.start).date(), timezone.localtime(max(last, window.start)).date()


def days_in(window: Window) -> float:
    return max((window.end - window.start).total_seconds() / 86400, 1e-9)


# --- Statistics -----------------------------------------------------------------------------------


def poisson_sf(k: int, lam: float) -> float:
    """P(X ≥ k) for X ~ Poisson(lam): the chance of k or more events when lam are expected."""
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    # 1 - P(X ≤ k-1) through the regularised gamma function: P(X ≤ k-1) = Q(k, lam).
    return _gamma_p(k, lam)


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p): the chance of k or more hits in n trials at rate p."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    return _beta_i(float(k), float(n - k + 1), p)


def normal_sf(z: float) -> float:
    """P(Z ≥ z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def against_rest(k: int, n: int, rest_k: int, rest_n: int) -> float:
    """P(X ≥ k | Binomial(n, p_rest)): how a group's k of n compares with the rest of the
    organisation's rest_k of rest_n, the rest's rate smoothed to (rest_k + 1) / (rest_n + 2) so that
    a rest with none still leaves room for chance."""
    return binom_sf(k, n, (rest_k + 1) / (rest_n + 2))


def surprise(p: float) -> float:
    """-log10(p), capped at MAX_SURPRISE: 2 means "1 in 100 by chance", 6 "1 in a million"."""
    if p <= 0:
        return MAX_SURPRISE
    return min(MAX_SURPRISE, max(0.0, -math.log10(p)))


_TINY = 1e-300


def _nonzero(x: float) -> float:
    """x, or a tiny number in its place (Lentz's continued fractions must not divide by zero)."""
    return _TINY if abs(x) < _TINY else x


def _gamma_p(a: float, x: float) -> float:
    """The regularised lower incomplete gamma function P(a, x) (Numerical Recipes gser/gcf)."""
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(10000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return min(1.0, total * math.exp(-x + a * math.log(x) - math.lgamma(a)))
    # Continued fraction for Q(a, x) = 1 - P(a, x) (Lentz).
    b = x + 1 - a
    c = 1 / _TINY
    d = 1 / b
    h = d
    for i in range(1, 10000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = _nonzero(d)
        c = b + an / c
        c = _nonzero(c)
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    q = math.exp(-x + a * math.log(x) - math.lgamma(a)) * h
    return max(0.0, 1.0 - q)


def _beta_i(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) (Numerical Recipes betai/betacf)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, 1 - x) / b


def _beta_cf(a: float, b: float, x: float) -> float:
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = _nonzero(d)
    d = 1 / d
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d
        d = _nonzero(d)
        c = 1 + aa / c
        c = _nonzero(c)
        d = 1 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d
        d = _nonzero(d)
        c = 1 + aa / c
        c = _nonzero(c)
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return h


# --- Ratings, keys, labels ------------------------------------------------------------------------


def rating(value: float, cuts: Sequence[float]) -> int:
    """1 plus the number of `cuts` (four ascending bounds) that `value` reaches: a 1-5 rating."""
    return 1 + sum(1 for cut in cuts if value >= cut)


def clamp_rating(value: int) -> int:
    return max(1, min(5, value))


def record_key(external_key: str | None, fallback: Any) -> str:
    """A record's key as it was imported (its external key), else its own reference."""
    return str(external_key) if external_key else str(fallback)


def evidence(kind: str, rows: Iterable[tuple[int, str]], role: str) -> list[Evidence]:
    return [Evidence(kind=kind, pk=pk, key=key, role=role) for pk, key in rows]


def keyed_evidence(kind: str, rows: Iterable[tuple[int, str | None, Any]], role: str) -> list[Evidence]:
    """Evidence from (pk, external key, own reference) rows, keyed as record_key() says."""
    return [Evidence(kind=kind, pk=pk, key=record_key(ext, own), role=role) for pk, ext, own in rows]


def indicator(baseline: float, unit: str, lower_is_better: bool, name: str) -> dict[str, Any]:
    """The figures from which accepting a candidate creates an indicator with this baseline."""
    return {"baseline": baseline, "unit": unit, "lower_is_better": lower_is_better, "indicator": name[:200]}


def labels(model: type[models.Model], pks: Iterable[int | None], field: str = "name") -> dict[int, str]:
    """{pk: name} of the given rows, in one query."""
    wanted = {pk for pk in pks if pk is not None}
    if not wanted:
        return {}
    return {
        pk: str(name) for pk, name in model._default_manager.filter(pk__in=wanted).values_list("pk", field)
    }


def percent(part: float, whole: float) -> float:
    """part / whole in %, full precision (0 when whole is 0)."""
    return 100.0 * part / whole if whole else 0.0


def fmt_p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


# --- Service-desk contacts by article ------------------------------------------------------------

# An article's (number, external key, title, service id).
ArticleInfo = tuple[str, str, str, int | None]
Group = tuple[dict[str, Any], dict[str, Any]]  # (key, aggregates)


def by_article_or_category(
    contacts: Any, aggregates: dict[str, Any], having: Q, service: str = "service", category: str = "category"
) -> list[Group]:
    """Contacts (an Interaction queryset, maybe annotated: hence Any) grouped by the knowledge article
    they used, and those without one by service and category: (key, aggregates) of the groups that
    pass `having`. Keys: {"knowledge_article": pk} or {"knowledge_article": None, "service",
    "category"}. Two aggregate queries."""
    groups: list[Group] = []
    for row in (
        contacts.filter(knowledge_article__isnull=False)
        .values("knowledge_article")
        .annotate(**aggregates)
        .filter(having)
        .order_by("knowledge_article")
    ):
        groups.append(({"knowledge_article": row["knowledge_article"]}, row))
    for row in (
        contacts.filter(knowledge_article__isnull=True)
        .values(service, category)
        .annotate(**aggregates)
        .filter(having)
        .order_by(service, category)
    ):
        groups.append(({"knowledge_article": None, "service": row[service], "category": row[category]}, row))
    return groups


def articles(keys: Iterable[dict[str, Any]]) -> dict[int, ArticleInfo]:
    """{pk: ArticleInfo} of the articles the group keys name, in one query."""
    wanted = [key["knowledge_article"] for key in keys if key.get("knowledge_article")]
    rows = Article.objects.filter(pk__in=wanted).values_list(
        "pk", "number", "external_key", "title", "service_id"
    )
    return {pk: (number, ext, title, service) for pk, number, ext, title, service in rows}
