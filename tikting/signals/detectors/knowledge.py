"""Knowledge: articles never used, articles past their review date still in use, incident groups
no article serves (gaps), and repeat contacts an article could prevent.

Four kinds of proposal, each from aggregate queries:

- **unused**: published articles at least ``unused_min_age_days`` old (by their record's creation)
  that nothing ever used — ``uses`` is 0 and no incident or interaction names them. One proposal
  per service with at least ``min_unused`` of them: retire, merge or make them findable. Baseline:
  the share of the service's published articles never used (lower is better).
- **overdue**: published articles whose ``review_due`` is before the window's end and that at
  least ``min_overdue_uses`` incidents and interactions of the window used: people rely on an
  answer nobody has checked. One proposal per article. Score: uses × years overdue; the votes and
  the first-contact share of the contacts that used it are in the figures.
- **gap**: a service and category with at least ``min_gap_incidents`` incidents opened in the
  window, no more than ``max_gap_article_share`` of them with an article used (on the incident
  or on one of its interactions). Baseline: the share with an article (higher is better). Score:
  the incidents without one.
- **repeat**: contacts (interactions) of the window that come back to an incident that already had
  a contact — the user chasing, or the first answer not holding — grouped by the article the
  contact used, else by the incident's service and category. Proposed when a group has at least
  ``min_repeats`` repeats and a repeat share the rest of the contacts explains with
  ``P ≤ repeat_alpha`` (binomial, Laplace-smoothed rest): with an article, the article does not
  prevent them; without, one (a status page, a workaround) could. Baseline: the repeat share
  (lower is better). Score: ``-log10`` of that P (0–20). Contacts carry no caller, so many
  contacts on one incident may be many people reporting one outage rather than one person coming
  back: incidents with more than ``max_contacts_per_incident`` contacts are left out.

Gaps and repeat groups are capped at ``max_per_kind`` proposals each (the highest scores).
Evidence: the articles, incidents and contacts behind each figure, at most ``max_evidence``.
Thresholds and figures on real data: docs/signals.md, "Knowledge".
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q

from tikting.cmdb.models import Service
from tikting.core.itsm import Practice
from tikting.incidents.models import Incident, Interaction
from tikting.knowledge.models import Article
from tikting.lib.display import when
from tikting.signals.proposals import Evidence, Progress, Proposal, Window, no_progress

from . import _common as C

NAME = "knowledge"
TITLE = "Knowledge"
CHANNEL = "knowledge"
THRESHOLDS: dict[str, float] = {
    "unused_min_age_days": 90.0,  # an article this old that nothing ever used is "never used"
    "min_unused": 3.0,  # never-used articles a service needs to raise a proposal
    "min_overdue_uses": 5.0,  # uses in the window of an article past its review date
    "min_gap_incidents": 20.0,  # incidents a service and category need to be a gap ...
    "max_gap_article_share": 0.05,  # ... with at most this share of them using an article
    "min_repeats": 10.0,  # repeat contacts a group needs ...
    "repeat_alpha": 0.01,  # ... and a repeat share the rest of the contacts explains with P ≤ this
    "max_contacts_per_incident": 5.0,  # an incident with more contacts is an outage many reported: left out
    "max_per_kind": 10.0,  # gap and repeat proposals per run (the highest scores)
    "max_evidence": 200.0,  # records listed per proposal (figures count all)
}


def detect(
    window: Window, *, thresholds: dict[str, float], progress: Progress = no_progress
) -> list[Proposal]:
    t = C.merged(THRESHOLDS, thresholds)
    proposals: list[Proposal] = []
    for step, kind in enumerate((_unused, _overdue, _gaps, _repeats)):
        progress(step, 4)
        proposals += kind(window, t)
    progress(4, 4)
    return sorted(proposals, key=lambda p: (-p.score, p.fingerprint))


def _services(pks: Any) -> dict[int, str]:
    return C.labels(Service, pks)


def _used() -> Q:
    """Articles something used: a use counted, or an incident or interaction naming them."""
    return (
        Q(uses__gt=0)
        | Exists(Incident.objects.filter(knowledge_article=OuterRef("pk")))
        | Exists(Interaction.objects.filter(knowledge_article=OuterRef("pk")))
    )


# --- Never used -----------------------------------------------------------------------------------


def _unused(window: Window, t: dict[str, float]) -> list[Proposal]:
    published = Article.objects.filter(status=Article.Status.PUBLISHED)
    old_enough = window.end - dt.timedelta(days=t["unused_min_age_days"])
    unused = published.filter(created_at__lt=old_enough).exclude(_used())
    counts = {
        row["service"]: row["n"]
        for row in unused.values("service").annotate(n=Count("pk")).order_by("service")
        if row["n"] >= t["min_unused"]
    }
    if not counts:
        return []
    totals: dict[int | None, int] = {
        row["service"]: row["n"]
        for row in published.filter(service__in=[s for s in counts if s])
        .values("service")
        .annotate(n=Count("pk"))
        .order_by("service")
    }
    if None in counts:
        totals[None] = published.filter(service__isnull=True).count()
    names = _services(counts)
    first, last = C.period(window)
    limit = int(t["max_evidence"])
    proposals = []
    for service_id, n in sorted(counts.items(), key=lambda item: (item[0] is None, item[0] or 0)):
        service = names.get(service_id, "no service") if service_id else "no service"
        total = totals.get(service_id, n)
        rows = (
            unused.filter(service=service_id).order_by("number").values_list("pk", "external_key", "number")
        )
        share = C.percent(n, total)
        proposals.append(
            Proposal(
                detector=NAME,
                fingerprint=f"{NAME}:unused:service={service_id or '-'}",
                title=f"{n} knowledge articles on {service} were never used",
                explanation=(
                    f"{n} of the {total} published articles on {service} ({share:.0f} %) were never used "
                    f"by {when(last)}: no use counted and no incident or interaction names them, though "
                    "they are "
                    f"at least {t['unused_min_age_days']:g} days old. Rule: at least {t['min_unused']:g} "
                    "such articles on a service. Retire, merge or make them findable."
                ),
                score=float(n),
                magnitude=float(n),
                period_start=first,
                period_end=last,
                evidence=C.keyed_evidence("article", rows[:limit], "unused"),
                figures={
                    "kind": "unused",
                    "service_id": service_id,
                    "service": service,
                    "unused": n,
                    "published": total,
                    "share_pct": share,
                    **C.indicator(share, "%", True, f"Published articles on {service} never used"),
                },
                practice=Practice.KNOWLEDGE,
                service_id=service_id,
                impact=C.rating(n, (3, 10, 25, 60)) if n >= 10 else 1,
                effort=2,
                rating_reason=(
                    f"Impact {C.rating(n, (3, 10, 25, 60)) if n >= 10 else 1}: unused articles cost little "
                    "until they bury the useful ones (1 below 10 articles, then 3/10/25/60); effort 2: a "
                    "review session per service."
                ),
            )
        )
    return proposals


# --- Past review date, still in use ---------------------------------------------------------------


def _overdue(window: Window, t: dict[str, float]) -> list[Proposal]:
    as_of = C.period(window)[1]
    in_window = {"opened_at__gte": window.start, "opened_at__lt": window.end}
    articles = (
        Article.objects.filter(status=Article.Status.PUBLISHED, review_due__lt=as_of)
        .annotate(
            by_incidents=Count(
                "incidents", filter=Q(**{f"incidents__{k}": v for k, v in in_window.items()}), distinct=True
            ),
            by_contacts=Count(
                "interactions",
                filter=Q(**{f"interactions__{k}": v for k, v in in_window.items()}),
                distinct=True,
            ),
            unresolved=Count(
                "interactions",
                filter=Q(**{f"interactions__{k}": v for k, v in in_window.items()})
                & Q(interactions__first_contact_resolution=False),
                distinct=True,
            ),
        )
        .annotate(in_use=F("by_incidents") + F("by_contacts"))
        .filter(in_use__gte=t["min_overdue_uses"])
        .order_by("number")
        .values(
            "pk",
            "number",
            "external_key",
            "title",
            "service",
            "review_due",
            "helpful_yes",
            "helpful_no",
            "by_incidents",
            "by_contacts",
            "unresolved",
            "in_use",
        )
    )
    first, last = C.period(window)
    limit = int(t["max_evidence"])
    proposals = []
    for a in articles:
        due = a["review_due"]
        if due is None:  # filtered out by the query; said for the type checker
            continue
        overdue_days = (as_of - due).days
        key = C.record_key(a["external_key"], a["number"])
        evidence = [Evidence("article", a["pk"], key, "overdue")]
        room = max(0, limit - 1)
        for model, kind in ((Incident, "incident"), (Interaction, "interaction")):
            rows = (
                model._default_manager.filter(knowledge_article=a["pk"], **in_window)
                .order_by("opened_at", "pk")
                .values_list("pk", "external_key", "number")[:room]
            )
            found = C.keyed_evidence(kind, rows, "used")
            evidence += found
            room -= len(found)
        votes = a["helpful_yes"] + a["helpful_no"]
        unresolved_share = C.percent(a["unresolved"], a["by_contacts"])
        title = a["title"] or key
        explanation = (
            f"“{title}” ({key}) was due for review on {when(due)} ({overdue_days} days before {when(as_of)}) "
            f"and was used {a['in_use']} times "
            f"from {when(first)} to {when(last)} ({a['by_incidents']} incidents, "
            f"{a['by_contacts']} service-desk contacts"
            + (
                f", {unresolved_share:.0f} % of them not resolved at the first contact"
                if a["by_contacts"]
                else ""
            )
            + ")"
            + (f"; readers found it helpful {a['helpful_yes']} times of {votes}" if votes else "")
            + f". Rule: past its review date and at least {t['min_overdue_uses']:g} uses in the window."
        )
        impact = C.rating(a["in_use"], (5, 20, 50, 150))
        proposals.append(
            Proposal(
                detector=NAME,
                fingerprint=f"{NAME}:overdue:article={a['pk']}",
                title=f"Review “{title}”: {overdue_days} days overdue, used {a['in_use']} times"[:200],
                explanation=explanation,
                score=a["in_use"] * overdue_days / 365,
                magnitude=float(a["in_use"]),
                period_start=first,
                period_end=last,
                evidence=evidence,
                figures={
                    "kind": "overdue",
                    "article": key,
                    "review_due": due.isoformat(),
                    "days_overdue": overdue_days,
                    "uses": a["in_use"],
                    "used_by_incidents": a["by_incidents"],
                    "used_by_contacts": a["by_contacts"],
                    "contacts_unresolved_at_first": a["unresolved"],
                    "helpful_yes": a["helpful_yes"],
                    "helpful_no": a["helpful_no"],
                    "evidence_shown": len(evidence),
                },
                practice=Practice.KNOWLEDGE,
                service_id=a["service"],
                impact=impact,
                effort=1,
                rating_reason=(
                    f"Impact {impact}: {a['in_use']} uses in the window (1-5 at 5/20/50/150); effort 1: one "
                    "article to review."
                ),
            )
        )
    return proposals


# --- Gaps -----------------------------------------------------------------------------------------


def _gaps(window: Window, t: dict[str, float]) -> list[Proposal]:
    incidents = Incident.objects.filter(opened_at__gte=window.start, opened_at__lt=window.end).exclude(
        status=Incident.Status.CANCELLED
    )
    with_article = Q(knowledge_article__isnull=False) | Exists(
        Interaction.objects.filter(incident=OuterRef("pk"), knowledge_article__isnull=False)
    )
    rows = (
        incidents.annotate(article_used=with_article)
        .values("service", "category")
        .annotate(n=Count("pk"), with_article=Count("pk", filter=Q(article_used=True)))
        .filter(n__gte=int(math.ceil(t["min_gap_incidents"])))
        .order_by("service", "category")
    )
    gaps = [r for r in rows if r["with_article"] <= t["max_gap_article_share"] * r["n"]]
    gaps.sort(key=lambda r: (-(r["n"] - r["with_article"]), r["service"] or 0, r["category"]))
    gaps = gaps[: int(t["max_per_kind"])]
    names = _services(r["service"] for r in gaps)
    first, last = C.period(window)
    limit = int(t["max_evidence"])
    proposals = []
    for r in gaps:
        service = names.get(r["service"], "no service") if r["service"] else "no service"
        category = r["category"] or "no category"
        without = r["n"] - r["with_article"]
        share = C.percent(r["with_article"], r["n"])
        keys = (
            incidents.filter(service=r["service"], category=r["category"])
            .annotate(article_used=with_article)
            .filter(article_used=False)
            .order_by("opened_at", "pk")
            .values_list("pk", "external_key", "number")[:limit]
        )
        impact = C.rating(without, (20, 50, 150, 400))
        proposals.append(
            Proposal(
                detector=NAME,
                fingerprint=f"{NAME}:gap:service={r['service'] or '-'}:category={r['category']}",
                title=f"No knowledge article for “{category}” on {service}: {without} incidents without one"[
                    :200
                ],
                explanation=(
                    f"{r['n']} incidents in “{category}” on {service} were opened "
                    f"from {when(first)} to {when(last)}; "
                    f"{r['with_article']} of them ({share:.1f} %) used a knowledge article (on the "
                    "incident or "
                    f"one of its contacts). Rule: at least {t['min_gap_incidents']:g} incidents and at most "
                    f"{100 * t['max_gap_article_share']:g} % with an article: a gap an article could fill."
                ),
                score=float(without),
                magnitude=float(without),
                period_start=first,
                period_end=last,
                evidence=C.keyed_evidence("incident", keys, "no_article"),
                figures={
                    "kind": "gap",
                    "service_id": r["service"],
                    "service": service,
                    "category": r["category"],
                    "incidents": r["n"],
                    "with_article": r["with_article"],
                    "share_pct": share,
                    **C.indicator(
                        share, "%", False, f"Incidents in “{category}” on {service} with a knowledge article"
                    ),
                    "evidence_shown": min(without, limit),
                },
                practice=Practice.KNOWLEDGE,
                service_id=r["service"],
                impact=impact,
                effort=2,
                rating_reason=(
                    f"Impact {impact}: {without} incidents without an article (1-5 at "
                    "20/50/150/400); effort 2: "
                    "write the article from the resolutions of these incidents."
                ),
            )
        )
    return proposals


# --- Repeat contacts ------------------------------------------------------------------------------


def repeat_contacts(window: Window, max_per_incident: float) -> Any:
    """The window's contacts on an incident with at most `max_per_incident` contacts in the window
    (the few incidents with more are listed and left out), each marked `repeat` when its incident
    had an earlier contact. An annotated Interaction QuerySet (typed Any: django-stubs cannot follow
    the annotation's name)."""
    earlier = Interaction.objects.filter(incident=OuterRef("incident")).filter(
        Q(opened_at__lt=OuterRef("opened_at")) | Q(opened_at=OuterRef("opened_at"), pk__lt=OuterRef("pk"))
    )
    in_window = Interaction.objects.filter(
        opened_at__gte=window.start, opened_at__lt=window.end, incident__isnull=False
    )
    busy = list(
        in_window.values("incident")
        .annotate(contacts=Count("pk"))
        .filter(contacts__gt=int(max_per_incident))
        .values_list("incident", flat=True)
    )
    return in_window.exclude(incident__in=busy).annotate(repeat=Exists(earlier))


def _repeats(window: Window, t: dict[str, float]) -> list[Proposal]:
    contacts = repeat_contacts(window, t["max_contacts_per_incident"])
    counted = {"n": Count("pk"), "repeats": Count("pk", filter=Q(repeat=True))}
    total = contacts.aggregate(**counted)
    if not total["repeats"]:
        return []
    groups = C.by_article_or_category(
        contacts, counted, Q(repeats__gte=t["min_repeats"]), "incident__service", "incident__category"
    )
    raised = []
    for key, row in groups:
        n, k = row["n"], row["repeats"]
        rest_n, rest_k = total["n"] - n, total["repeats"] - k
        if rest_n <= 0:
            continue
        p = C.against_rest(k, n, rest_k, rest_n)
        if p <= t["repeat_alpha"]:
            raised.append((C.surprise(p), key, n, k, rest_n, rest_k, p))
    raised.sort(key=lambda item: (-item[0], -item[3], str(item[1])))
    raised = raised[: int(t["max_per_kind"])]
    articles = C.articles(key for _, key, *_ in raised)
    names = _services(key.get("service") for _, key, *_ in raised)
    return [_repeat_proposal(*item[1:], articles, names, contacts, t, window) for item in raised]


def _repeat_proposal(
    key: dict[str, Any],
    n: int,
    k: int,
    rest_n: int,
    rest_k: int,
    p: float,
    articles: dict[int, C.ArticleInfo],
    names: dict[int, str],
    contacts: Any,  # repeat_contacts(): annotated, which django-stubs cannot follow
    t: dict[str, float],
    window: Window,
) -> Proposal:
    first, last = C.period(window)
    limit = int(t["max_evidence"])
    evidence: list[Evidence] = []
    if key["knowledge_article"]:
        number, ext, title, service_id = articles[key["knowledge_article"]]
        article_key = C.record_key(ext, number)
        what = f"contacts answered with “{title or article_key}” ({article_key})"
        advice = "the article does not stop people coming back: review what it leaves open"
        evidence.append(Evidence("article", key["knowledge_article"], article_key, "article"))
        fingerprint = f"{NAME}:repeat:article={key['knowledge_article']}"
        mine = contacts.filter(knowledge_article=key["knowledge_article"])
    else:
        service_id = key["service"]
        service = names.get(service_id, "no service") if service_id else "no service"
        what = f"contacts about “{key['category'] or 'no category'}” incidents on {service} (no article used)"
        advice = (
            "an article (the status, a workaround, what happens next) could answer the follow-up contacts"
        )
        fingerprint = f"{NAME}:repeat:service={service_id or '-'}:category={key['category']}"
        mine = contacts.filter(
            knowledge_article__isnull=True, incident__service=service_id, incident__category=key["category"]
        )
    rows = mine.filter(repeat=True).order_by("opened_at", "pk").values_list("pk", "external_key", "number")
    evidence += C.keyed_evidence("interaction", rows[: max(0, limit - len(evidence))], "repeat")
    share, rest_share = C.percent(k, n), C.percent(rest_k, rest_n)
    impact = C.rating(k, (10, 30, 100, 300))
    return Proposal(
        detector=NAME,
        fingerprint=fingerprint,
        title=f"Repeat contacts: {k} of {n} {what.split(' (')[0]}"[:200],
        explanation=(
            f"{k} of {n} {what} from {when(first)} to {when(last)} ({share:.1f} %) came back to an incident "
            "that already had "
            f"a contact, against {rest_share:.1f} % of the other contacts ({rest_k} of {rest_n}); {advice}. "
            f"Rule: at least {t['min_repeats']:g} repeats and a share the rest explains with P ≤ "
            f"{t['repeat_alpha']:g} (binomial; P = {C.fmt_p(p)})."
        ),
        score=C.surprise(p),
        magnitude=float(k),
        period_start=first,
        period_end=last,
        evidence=evidence,
        figures={
            "kind": "repeat",
            "article": evidence[0].key if key["knowledge_article"] else None,
            "service_id": service_id,
            "category": None if key["knowledge_article"] else key["category"],
            "contacts": n,
            "repeats": k,
            "share_pct": share,
            "rest_contacts": rest_n,
            "rest_repeats": rest_k,
            "rest_share_pct": rest_share,
            "p_value": p,
            **C.indicator(share, "%", True, f"Repeat share of {what}"),
            "evidence_shown": len(evidence),
        },
        practice=Practice.KNOWLEDGE,
        service_id=service_id,
        impact=impact,
        effort=2,
        rating_reason=(
            f"Impact {impact}: {k} repeat contacts (1-5 at 10/30/100/300); effort 2: one article to write or "
            "rework."
        ),
    )
