"""Service requests: catalogue items and service-desk questions ranked as automation or
self-service candidates, with the hours a year it would save.

**Catalogue items** (not marked automated) with requests opened in the window (cancelled ones left
out), one aggregate query:

- *volume*: requests in the window, and a year's worth (× 365 / the window's days);
- *handling time*: the item's ``manual_minutes``; where it has none, ``minutes_per_step`` × the
  mean manual steps of its requests (an estimate, said so in the figures);
- *manual share*: manual steps ÷ all steps of its requests (1 when no steps are recorded);
- *repetitiveness*: the share of the window's weeks in which the item was requested (steady
  demand is routine work; a burst once a year is not);
- **hours a year automation would save** = yearly volume × handling minutes × manual share ÷ 60.

An item is proposed when it has at least ``min_requests`` requests, ``min_hours_year`` hours a year
to save and a repetitiveness of at least ``min_repetitiveness``. It suggests *automation* when
steps are manual, and *self-service* too when at least ``min_assisted_share`` of its requests came
in by phone, e-mail, chat or walk-in rather than the portal. Score (the ranking): hours a year ×
repetitiveness; magnitude: hours a year. Baseline: manual hours a month (lower is better).

**Service-desk contacts** (interactions) opened in the window, grouped by the knowledge article
the agent used, or — without one — by service and category:

- *volume* and a year's worth, as above; *handling time*: mean ``handle_time_seconds``;
- *first-contact resolution*: the share resolved at the first contact (the same answer works
  every time: a self-service answer could give it);
- *repetitiveness*: the share of the window's weeks with such contacts;
- **hours a year self-service would save** = yearly volume × first-contact share × mean handling
  hours × ``self_service_deflection`` (the share of those contacts users would serve themselves
  with a published answer, a portal form or a bot: an assumption, 0.5 by default).

Proposed when it has at least ``min_contacts`` contacts and ``min_hours_year`` hours a year; the
``max_contact_proposals`` with the highest score (hours a year × repetitiveness) only. Baseline:
contacts a month (lower is better). Evidence: the article (or nothing to point at for a category)
and the contacts. At most ``max_evidence`` records per proposal. Thresholds and figures on BPIC
2014: docs/signals.md, "Service requests".
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet, Sum
from django.db.models.functions import TruncWeek

from tikting.cmdb.models import Service
from tikting.core.itsm import Practice
from tikting.incidents.models import Interaction
from tikting.lib.display import when
from tikting.service_requests.models import CatalogItem, ServiceRequest
from tikting.signals.proposals import Evidence, Progress, Proposal, Window, no_progress

from . import _common as C

NAME = "service_requests"
TITLE = "Service requests"
CHANNEL = "request_analysis"
THRESHOLDS: dict[str, float] = {
    "min_requests": 10.0,  # requests a catalogue item needs in the window
    "min_hours_year": 20.0,  # hours a year to save, at least
    "min_repetitiveness": 0.25,  # share of the window's weeks with requests (or contacts)
    "minutes_per_step": 10.0,  # handling minutes per manual step, where the item has no manual_minutes
    "min_assisted_share": 0.5,  # requests by phone, e-mail, chat or walk-in: a self-service candidate too
    "min_contacts": 30.0,  # service-desk contacts an article or category needs in the window
    "self_service_deflection": 0.5,  # share of first-contact-resolved contacts self-service would take
    "max_contact_proposals": 10.0,  # contact groups proposed per run (the highest scores)
    "max_evidence": 200.0,  # records listed per proposal (figures count all)
}
ASSISTED = ("phone", "email", "chat", "walk_in")


def detect(
    window: Window, *, thresholds: dict[str, float], progress: Progress = no_progress
) -> list[Proposal]:
    t = C.merged(THRESHOLDS, thresholds)
    progress(0, 2)
    proposals = _catalogue(window, t)
    progress(1, 2)
    proposals += _contacts(window, t)
    progress(2, 2)
    return sorted(proposals, key=lambda p: (-p.score, p.fingerprint))


def _weeks(window: Window) -> int:
    """The calendar weeks (Monday to Sunday, site time zone) the window touches: what TruncWeek counts."""
    first, last = C.period(window)
    return (
        last - dt.timedelta(days=last.weekday()) - (first - dt.timedelta(days=first.weekday()))
    ).days // 7 + 1


# --- Catalogue items ------------------------------------------------------------------------------


def _catalogue(window: Window, t: dict[str, float]) -> list[Proposal]:
    requests = ServiceRequest.objects.filter(
        opened_at__gte=window.start, opened_at__lt=window.end, catalog_item__automated=False
    ).exclude(status=ServiceRequest.Status.CANCELLED)
    rows = (
        requests.values("catalog_item")
        .annotate(
            n=Count("pk"),
            manual=Sum("manual_steps"),
            automated=Sum("automated_steps"),
            assisted=Count("pk", filter=Q(channel__in=ASSISTED)),
            weeks=Count(TruncWeek("opened_at"), distinct=True),
        )
        .order_by("catalog_item")
    )
    items = {
        pk: (name, ext, minutes, service)
        for pk, name, ext, minutes, service in CatalogItem.objects.filter(
            pk__in=[r["catalog_item"] for r in rows]
        ).values_list("pk", "name", "external_key", "manual_minutes", "service_id")
    }
    year = 365 / C.days_in(window)
    proposals = []
    for row in rows:
        n, item = row["n"], items.get(row["catalog_item"])
        if item is None or n < t["min_requests"]:
            continue
        name, ext, minutes, service_id = item
        manual, automated = row["manual"] or 0, row["automated"] or 0
        manual_share = manual / (manual + automated) if manual + automated else 1.0
        estimated = minutes is None
        handling = float(minutes) if minutes is not None else t["minutes_per_step"] * manual / n
        repetitiveness = min(1.0, row["weeks"] / _weeks(window))
        hours_year = n * year * handling * manual_share / 60
        assisted_share = row["assisted"] / n
        if hours_year < t["min_hours_year"] or repetitiveness < t["min_repetitiveness"] or manual_share <= 0:
            continue
        figures = {
            "kind": "catalogue_item",
            "catalog_item": name,
            "requests": n,
            "requests_a_year": n * year,
            "handling_minutes": handling,
            "handling_estimated": estimated,
            "manual_steps_mean": manual / n,
            "manual_share": manual_share,
            "weeks_with_requests": row["weeks"],
            "repetitiveness": repetitiveness,
            "assisted_share": assisted_share,
            "hours_a_year": hours_year,
            "suggests": ["automation"]
            + (["self-service"] if assisted_share >= t["min_assisted_share"] else []),
        }
        proposals.append(
            _catalogue_proposal(row["catalog_item"], ext, service_id, figures, requests, t, window)
        )
    return proposals


def _catalogue_proposal(
    item_pk: int,
    ext: str,
    service_id: int | None,
    f: dict[str, Any],
    requests: QuerySet[ServiceRequest],
    t: dict[str, float],
    window: Window,
) -> Proposal:
    first, last = C.period(window)
    limit = int(t["max_evidence"])
    evidence = [Evidence("catalog-item", item_pk, C.record_key(ext, f["catalog_item"]), "catalogue_item")]
    keys = (
        requests.filter(catalog_item=item_pk)
        .order_by("opened_at", "pk")
        .values_list("pk", "external_key", "number")[: max(0, limit - 1)]
    )
    evidence += C.keyed_evidence("request", keys, "request")
    handling = f"{f['handling_minutes']:.0f} minutes" + (
        f" (estimated: {t['minutes_per_step']:g} minutes × {f['manual_steps_mean']:.1f} manual steps)"
        if f["handling_estimated"]
        else ""
    )
    self_service = "self-service" in f["suggests"]
    explanation = (
        f"“{f['catalog_item']}” was requested {f['requests']} times from {when(first)} to {when(last)} "
        f"({f['requests_a_year']:.0f} a year), in {f['weeks_with_requests']} of the window's weeks "
        f"(repetitiveness {f['repetitiveness']:.2f}), each handled in {handling}, "
        f"{100 * f['manual_share']:.0f} % "
        f"of the steps by hand: automating it would save about {f['hours_a_year']:.0f} hours a year "
        f"(volume × handling time × manual share). Rule: at least {t['min_requests']:g} requests, "
        f"{t['min_hours_year']:g} hours a year and a repetitiveness of {t['min_repetitiveness']:g}."
    )
    if self_service:
        explanation += (
            f" {100 * f['assisted_share']:.0f} % came in by phone, e-mail, chat or walk-in: a portal form "
            "would let users serve themselves."
        )
    steps = f["manual_steps_mean"]
    effort = 2 if steps <= 2 else 3 if steps <= 5 else 4
    impact = C.rating(f["hours_a_year"], (20, 50, 150, 400))
    monthly = f["requests_a_year"] / 12 * f["handling_minutes"] * f["manual_share"] / 60
    return Proposal(
        detector=NAME,
        fingerprint=f"{NAME}:catalog_item={item_pk}",
        title=f"Automate “{f['catalog_item']}”: about {f['hours_a_year']:.0f} hours a year by hand"[:200],
        explanation=explanation,
        score=f["hours_a_year"] * f["repetitiveness"],
        magnitude=f["hours_a_year"],
        period_start=first,
        period_end=last,
        evidence=evidence,
        figures={
            **f,
            **C.indicator(
                monthly, "h/month", True, f"Manual handling hours a month for “{f['catalog_item']}”"
            ),
            "evidence_shown": len(evidence),
        },
        practice=Practice.REQUEST,
        service_id=service_id,
        impact=impact,
        effort=effort,
        rating_reason=(
            f"Impact {impact}: {f['hours_a_year']:.0f} hours a year (1-5 at 20/50/150/400); effort {effort}: "
            f"{steps:.1f} manual steps a request to automate (2 or fewer: 2, up to 5: 3, more: 4)."
        ),
    )


# --- Service-desk contacts ------------------------------------------------------------------------


def _contacts(window: Window, t: dict[str, float]) -> list[Proposal]:
    contacts = Interaction.objects.filter(opened_at__gte=window.start, opened_at__lt=window.end)
    aggregates = {
        "n": Count("pk"),
        "fcr": Count("pk", filter=Q(first_contact_resolution=True)),
        "handle": Avg("handle_time_seconds"),
        "weeks": Count(TruncWeek("opened_at"), distinct=True),
    }
    groups = C.by_article_or_category(contacts, aggregates, Q(n__gte=t["min_contacts"]))
    year = 365 / C.days_in(window)
    ranked = []
    for key, row in groups:
        n = row["n"]
        fcr_share = row["fcr"] / n
        handle_hours = (row["handle"] or 0) / 3600
        hours_year = n * year * fcr_share * handle_hours * t["self_service_deflection"]
        repetitiveness = min(1.0, row["weeks"] / _weeks(window))
        if hours_year < t["min_hours_year"] or repetitiveness < t["min_repetitiveness"]:
            continue
        ranked.append(
            (hours_year * repetitiveness, key, row, fcr_share, handle_hours, hours_year, repetitiveness)
        )
    ranked.sort(key=lambda item: (-item[0], str(item[1])))
    ranked = ranked[: int(t["max_contact_proposals"])]
    articles = C.articles(k for _, k, *_ in ranked)
    services = C.labels(Service, (k.get("service") for _, k, *_ in ranked))
    return [
        _contact_proposal(key, row, fcr, handle, hours, rep, articles, services, contacts, t, window)
        for _, key, row, fcr, handle, hours, rep in ranked
    ]


def _contact_proposal(
    key: dict[str, Any],
    row: dict[str, Any],
    fcr_share: float,
    handle_hours: float,
    hours_year: float,
    repetitiveness: float,
    articles: dict[int, C.ArticleInfo],
    services: dict[int, str],
    contacts: QuerySet[Interaction],
    t: dict[str, float],
    window: Window,
) -> Proposal:
    first, last = C.period(window)
    n = row["n"]
    limit = int(t["max_evidence"])
    evidence: list[Evidence] = []
    article_pk = key["knowledge_article"]
    if article_pk:
        number, ext, title, service_id = articles[article_pk]
        what = f"article {number}" + (f" “{title}”" if title else "")
        evidence.append(Evidence("article", article_pk, C.record_key(ext, number), "article"))
        fingerprint = f"{NAME}:contacts:article={article_pk}"
        mine = contacts.filter(knowledge_article=article_pk)
    else:
        service_id = key["service"]
        service = services.get(service_id, "no service") if service_id else "no service"
        what = f"“{key['category'] or 'no category'}” questions on {service} (no article used)"
        fingerprint = f"{NAME}:contacts:service={service_id or '-'}:category={key['category']}"
        mine = contacts.filter(knowledge_article__isnull=True, service=service_id, category=key["category"])
    keys = mine.order_by("opened_at", "pk").values_list("pk", "external_key", "number")[
        : max(0, limit - len(evidence))
    ]
    categories = {
        (c["category"] or ""): c["n"]
        for c in mine.values("category").annotate(n=Count("pk")).order_by("-n", "category")[:3]
    }
    top_cis = {
        c["ci__name"]: c["n"]
        for c in mine.filter(ci__isnull=False)
        .values("ci__name")
        .annotate(n=Count("pk"))
        .order_by("-n", "ci__name")[:3]
    }
    evidence += C.keyed_evidence("interaction", keys, "contact")
    year = 365 / C.days_in(window)
    impact = C.rating(hours_year, (20, 50, 150, 400))
    figures = {
        "kind": "contacts",
        "article": evidence[0].key if article_pk else None,
        "service_id": service_id,
        "category": None if article_pk else key["category"],
        "contacts": n,
        "contacts_a_year": n * year,
        "first_contact_resolved": row["fcr"],
        "fcr_share": fcr_share,
        "handle_seconds_mean": handle_hours * 3600,
        "weeks_with_contacts": row["weeks"],
        "repetitiveness": repetitiveness,
        "self_service_deflection": t["self_service_deflection"],
        "hours_a_year": hours_year,
        "suggests": ["self-service"],
        "top_categories": categories,
        "top_cis": top_cis,
        **C.indicator(n * year / 12, "contacts/month", True, f"Service-desk contacts a month: {what}"),
        "evidence_shown": len(evidence),
    }
    return Proposal(
        detector=NAME,
        fingerprint=fingerprint,
        title=f"Self-service for {what}: about {hours_year:.0f} desk hours a year"[:200],
        explanation=(
            f"The service desk handled {n} contacts with {what} from {when(first)} to {when(last)} "
            f"({n * year:.0f} a year), "
            f"in {row['weeks']} of the window's weeks (repetitiveness {repetitiveness:.2f}); "
            f"{100 * fcr_share:.0f} % were resolved at the first contact, in "
            f"{60 * handle_hours:.1f} minutes on "
            f"average. If users served themselves for {100 * t['self_service_deflection']:.0f} % of those "
            f"(an assumption: self_service_deflection), the desk would save about {hours_year:.0f} "
            "hours a year "
            "(volume × first-contact share × handling time × deflection). Rule: at least "
            f"{t['min_contacts']:g} "
            f"contacts and {t['min_hours_year']:g} hours a year; the {t['max_contact_proposals']:g} highest "
            "scores (hours × repetitiveness) only."
        ),
        score=hours_year * repetitiveness,
        magnitude=hours_year,
        period_start=first,
        period_end=last,
        evidence=evidence,
        figures=figures,
        practice=Practice.SERVICE_DESK,
        service_id=service_id,
        impact=impact,
        effort=2,
        rating_reason=(
            f"Impact {impact}: {hours_year:.0f} desk hours a year (1-5 at 20/50/150/400); effort 2: "
            "the answer "
            "exists (it resolves at the first contact); publishing it for users is a small step."
        ),
    )
