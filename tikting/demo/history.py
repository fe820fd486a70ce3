"""A generated ITSM history for `tikting demo`: a year of incidents, requests, changes … with patterns.

`build_history(rng, users, services)` writes, for the demo services, configuration items,
assignment groups, SLA definitions, knowledge articles, catalogue items, and `months` of
incidents, interactions, problems, changes, service requests, CSAT responses and audit findings.
Every record has `source="demo"` and is bulk-created (no audit rows: this is history, not edits).

The data has the shape later detectors and metrics must find:

- recurring faults on three CIs (same CI, same category, near-identical short descriptions),
  linked to problems (known errors with workarounds);
- one service ("VPN") with poor SLA compliance: resolution often beyond its targets;
- one catalogue item ("VPN access") with high volume and many manual steps;
- failing changes concentrated on one team ("Network Operations");
- an outdated knowledge article (review long overdue, poor votes) behind many repeat contacts.

Deterministic for a given `rng` and `now`. SLA due times and met flags follow the SLA
definitions (24×7, or business hours stepped through working days).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import models, transaction
from django.db.models import Count, F
from django.db.models.functions import Coalesce
from django.utils import timezone

from tikting.accounts.models import Team
from tikting.audits.models import AuditFinding
from tikting.changes.models import Change
from tikting.cmdb.models import ConfigurationItem, Service
from tikting.incidents.models import Incident, IncidentActivity, Interaction
from tikting.knowledge.models import Article
from tikting.problems.models import Problem
from tikting.service_requests.models import CatalogItem, ServiceRequest
from tikting.slas.models import SLADefinition
from tikting.surveys.models import SurveyResponse

M = TypeVar("M", bound=models.Model)

__all__ = [
    "SOURCE",
    "POOR_SLA_SERVICE",
    "FAILING_TEAM",
    "AUTOMATION_ITEM",
    "OUTDATED_ARTICLE",
    "RECURRING_CIS",
    "build_history",
    "wipe_history",
    "has_history",
]

SOURCE = "demo"
BATCH = 500

POOR_SLA_SERVICE = "VPN"
FAILING_TEAM = "Network Operations"
AUTOMATION_ITEM = "VPN access"
OUTDATED_ARTICLE = "Connect to the VPN from home"

# Assignment groups: name → description.
GROUPS = {
    "Service Desk": "First line: phone, portal and walk-in support.",
    "Network Operations": "LAN, Wi-Fi, WAN, firewalls and the VPN gateways.",
    "Messaging": "Exchange Online, mail relays and collaboration.",
    "ERP Support": "ERP application, batch jobs and interfaces.",
    "HR Applications": "HR system and the payroll interface.",
    "Workplace": "Laptops, imaging, software packaging and deployment.",
    "Identity & Access": "Accounts, roles and access requests.",
    "Change Management": "Change coordination and the change advisory board.",
}

# Service → (resolver group, incident weight, [(category, subcategory, [short descriptions])]).
SERVICE_PROFILE: dict[str, tuple[str, float, list[tuple[str, str, list[str]]]]] = {
    "E-mail": (
        "Messaging",
        13,
        [
            ("software", "e-mail", ["Outlook does not start", "Cannot send mail to external recipients"]),
            ("software", "calendar", ["Calendar invitations not received", "Shared calendar not syncing"]),
            ("access", "mailbox", ["No access to shared mailbox", "Mailbox full warning"]),
        ],
    ),
    "Service Desk portal": (
        "Service Desk",
        6,
        [
            ("application", "portal", ["Portal login fails", "Request form does not submit"]),
            ("application", "notifications", ["No ticket update e-mails from the portal"]),
        ],
    ),
    "Network": (
        "Network Operations",
        12,
        [
            ("network", "wifi", ["Wi-Fi drops in meeting room", "Cannot connect to staff Wi-Fi"]),
            ("network", "connectivity", ["No network on desk port", "Slow network in the building"]),
            ("network", "firewall", ["Website blocked by firewall", "Firewall rule needed for supplier"]),
        ],
    ),
    "ERP": (
        "ERP Support",
        11,
        [
            ("application", "erp", ["ERP report times out", "Cannot post invoice in ERP"]),
            ("access", "erp", ["ERP login fails", "Missing ERP role for purchasing"]),
        ],
    ),
    "HR system": (
        "HR Applications",
        5,
        [
            ("application", "hr", ["Leave request stuck in approval", "HR system page loads slowly"]),
            ("application", "payroll", ["Payslip not visible", "Payroll export missing employees"]),
        ],
    ),
    "VPN": (
        "Network Operations",
        15,
        [
            ("network", "vpn", ["VPN does not connect from home", "VPN disconnects every few minutes"]),
            ("network", "vpn", ["VPN client certificate expired", "VPN connected but no intranet"]),
            ("access", "vpn", ["VPN login rejected", "MFA prompt not received for VPN"]),
        ],
    ),
    "Laptops & workstations": (
        "Workplace",
        22,
        [
            ("hardware", "laptop", ["Laptop does not boot", "Laptop battery drains fast", "Broken screen"]),
            ("hardware", "peripheral", ["Docking station not detected", "Second monitor not working"]),
            ("software", "install", ["Application crashes on start", "Software update failed"]),
        ],
    ),
    "CMDB": (
        "Identity & Access",
        2,
        [("data", "cmdb", ["Wrong owner on CI record", "Discovery missed a server"])],
    ),
}

# Configuration items per service: (name, class, type).
CIS: dict[str, list[tuple[str, str, str]]] = {
    "Network": [
        ("SW-CORE-01", "network", "Core switch"),
        ("SW-CORE-02", "network", "Core switch"),
        *[(f"SW-ACC-0{n}", "network", "Access switch") for n in range(1, 7)],
        ("FW-EDGE-01", "network", "Firewall"),
        ("FW-EDGE-02", "network", "Firewall"),
        ("WLC-01", "network", "Wireless controller"),
        ("RTR-WAN-01", "network", "WAN router"),
    ],
    "VPN": [
        ("VPN-GW-01", "network", "VPN gateway"),
        ("VPN-GW-02", "network", "VPN gateway"),
        ("SRV-RADIUS-01", "server", "RADIUS server"),
        ("VPN client", "application", "Remote access client"),
        ("MFA service", "application", "Multi-factor authentication"),
    ],
    "E-mail": [
        ("Exchange Online", "application", "SaaS tenant"),
        ("Outlook desktop", "application", "Mail client"),
        ("Outlook mobile", "application", "Mail client"),
        ("Teams calendar", "application", "Collaboration"),
        ("SRV-SMTP-RELAY-01", "server", "Mail relay"),
        ("SRV-SMTP-RELAY-02", "server", "Mail relay"),
    ],
    "ERP": [
        ("SRV-ERP-APP-01", "server", "Application server"),
        ("SRV-ERP-APP-02", "server", "Application server"),
        ("DB-ERP-01", "database", "PostgreSQL cluster"),
        ("ERP batch scheduler", "application", "Batch scheduler"),
        ("ERP", "application", "ERP suite"),
    ],
    "HR system": [
        ("SRV-HR-01", "server", "Application server"),
        ("HR system", "application", "HR suite"),
        ("Payroll interface", "application", "Interface"),
    ],
    "Service Desk portal": [
        ("SRV-PORTAL-01", "vm", "Web server"),
        ("Service portal", "application", "Web application"),
    ],
    "Laptops & workstations": [
        ("SRV-WDS-01", "server", "Imaging server"),
        *[(f"LT-{n:04d}", "workstation", "Laptop") for n in range(1, 41)],
    ],
    "CMDB": [
        ("SRV-CMDB-01", "vm", "Application server"),
        ("Discovery", "application", "Discovery tool"),
    ],
}

# The recurring faults: CI → (service, category, subcategory, short descriptions, per-day rate, problem).
RECURRING: dict[str, dict[str, Any]] = {
    "SW-ACC-03": {
        "service": "Network",
        "category": "network",
        "subcategory": "connectivity",
        "texts": [
            "Floor 3 users lose network (SW-ACC-03)",
            "Network down on floor 3, switch SW-ACC-03",
            "Floor 3 desk ports flapping (SW-ACC-03)",
        ],
        "rate": 1.05,
        "problem": (
            "Access switch SW-ACC-03 ports flap under load",
            "Firmware bug in the access switch's port-security module; vendor fix in the next release.",
            "Bounce the affected ports from the controller; move critical desks to floor 2 ports.",
        ),
    },
    "ERP batch scheduler": {
        "service": "ERP",
        "category": "application",
        "subcategory": "batch",
        "texts": [
            "ERP nightly batch job failed",
            "ERP overnight batch did not complete",
            "ERP nightly batch job failed (stock update)",
        ],
        "rate": 1.0,
        "problem": (
            "ERP nightly batch fails when the stock update overruns",
            "The stock update job holds a table lock past the invoice run's start.",
            "Re-run the invoice batch manually after the stock update finishes.",
        ),
    },
    "SRV-SMTP-RELAY-02": {
        "service": "E-mail",
        "category": "software",
        "subcategory": "e-mail",
        "texts": [
            "Outbound mail delayed, relay queue stuck",
            "Mail relay SRV-SMTP-RELAY-02 queue stuck",
            "External mail delayed by hours",
        ],
        "rate": 1.0,
        "problem": ("Mail relay SRV-SMTP-RELAY-02 queue stalls", "", ""),
    },
}
RECURRING_CIS = tuple(RECURRING)

# SLA per priority: (label, response minutes, resolution minutes, calendar).
# Business hours: 08:00-18:00 Monday-Friday (10 working hours a day).
SLA_TARGETS = {
    1: ("critical", 60, 4 * 60, SLADefinition.Calendar.ALWAYS),
    2: ("high", 4 * 60, 8 * 60, SLADefinition.Calendar.ALWAYS),
    3: ("moderate", 8 * 60, 3 * 10 * 60, SLADefinition.Calendar.BUSINESS),
    4: ("low", 2 * 10 * 60, 5 * 10 * 60, SLADefinition.Calendar.BUSINESS),
}

# Catalogue: name → (service, group, manual minutes, automated, per-day volume, manual steps,
# automated steps, fulfilment median in hours).
CATALOGUE: dict[str, tuple[str, str, int | None, bool, float, int, int, float]] = {
    "VPN access": ("VPN", "Network Operations", 35, False, 3.8, 7, 0, 30),
    "New user account": ("HR system", "Identity & Access", 25, False, 1.0, 4, 2, 20),
    "Password reset": ("Service Desk portal", "Service Desk", None, True, 2.2, 0, 3, 0.1),
    "Laptop request": ("Laptops & workstations", "Workplace", 90, False, 0.55, 5, 1, 100),
    "Software install": ("Laptops & workstations", "Workplace", 15, False, 1.4, 2, 2, 8),
    "Shared mailbox": ("E-mail", "Messaging", 15, False, 0.45, 3, 1, 16),
    "Distribution list change": ("E-mail", "Messaging", 5, False, 0.3, 1, 1, 6),
    "ERP role access": ("ERP", "ERP Support", 30, False, 0.5, 4, 0, 40),
    "Guest Wi-Fi access": ("Network", "Network Operations", None, True, 0.7, 0, 1, 0.2),
    "Mobile phone": ("Laptops & workstations", "Workplace", 45, False, 0.2, 3, 0, 72),
}

# Articles: (title, service, outdated?)
ARTICLES: list[tuple[str, str, bool]] = [
    (OUTDATED_ARTICLE, "VPN", True),
    ("Reset your VPN MFA token", "VPN", False),
    ("Set up Outlook on a new laptop", "E-mail", False),
    ("Share your calendar", "E-mail", False),
    ("Request access to a shared mailbox", "E-mail", False),
    ("Connect to staff Wi-Fi", "Network", False),
    ("Guest Wi-Fi for visitors", "Network", False),
    ("Post an invoice in the ERP", "ERP", False),
    ("ERP report times out: what to try", "ERP", False),
    ("Request an ERP role", "ERP", False),
    ("Submit a leave request", "HR system", False),
    ("Where is my payslip?", "HR system", False),
    ("Reset your password on the portal", "Service Desk portal", False),
    ("Track your ticket on the portal", "Service Desk portal", False),
    ("Docking station troubleshooting", "Laptops & workstations", False),
    ("Install software from the company portal", "Laptops & workstations", False),
    ("Laptop battery care", "Laptops & workstations", True),  # mildly overdue, little use
    ("Report a wrong CI owner", "CMDB", False),
]

CHANNEL_WEIGHTS = {"phone": 34, "email": 18, "portal": 26, "chat": 12, "walk_in": 3, "monitoring": 7}
PRIORITY_WEIGHTS = {1: 1.5, 2: 10, 3: 56, 4: 32.5}
IMPACT_URGENCY = {1: [(1, 1)], 2: [(1, 2), (2, 1)], 3: [(1, 3), (2, 2), (3, 1)], 4: [(2, 3), (3, 2)]}
# Hour-of-day weights 0..23 for human contacts.
HOURS = [0.2, 0.1, 0.1, 0.1, 0.1, 0.3, 0.8, 3, 8, 10, 9, 8, 5, 7, 8, 7, 6, 4, 2, 1, 0.8, 0.6, 0.4, 0.3]
CLOSURE_CODES = ["Solved (permanently)", "Solved (work around)", "Not reproducible", "Resolved by caller"]

COMMENTS = {
    1: [
        "Took days and nobody told me what was happening.",
        "Still not working properly.",
        "Third time I call about this.",
    ],
    2: ["Slow to resolve.", "Had to chase twice.", "The knowledge article did not help."],
    3: ["Fixed in the end.", "OK, but it took a while.", ""],
    4: ["Quick and friendly.", "Thanks, works again.", ""],
    5: ["Excellent, solved on the first call!", "Very helpful technician.", ""],
}


def has_history() -> bool:
    return Incident.objects.filter(source=SOURCE).exists()


def _sla_name(service: str, priority: int) -> str:
    return f"{service} P{priority} ({SLA_TARGETS[priority][0]})"


def wipe_history() -> int:
    """Delete every demo-sourced ITSM record (and the demo SLA definitions). Returns rows deleted."""
    deleted = 0
    with transaction.atomic():
        for model in (
            SurveyResponse,
            Interaction,
            IncidentActivity,
            Incident,
            ServiceRequest,
            Change,
            Problem,
            CatalogItem,
            Article,
            AuditFinding,
        ):
            deleted += model.objects.filter(source=SOURCE).delete()[0]
        names = [_sla_name(s, p) for s in SERVICE_PROFILE for p in SLA_TARGETS]
        deleted += SLADefinition.objects.filter(name__in=names).delete()[0]
        deleted += ConfigurationItem.objects.filter(source=SOURCE).delete()[0]
    return deleted


# --- Calendars ------------------------------------------------------------------------------------


class Calendar:
    """Adds SLA minutes to a start time: every minute (24×7) or only working hours."""

    def __init__(self, sla: SLADefinition):
        self.always = sla.calendar == SLADefinition.Calendar.ALWAYS
        self.start = int(sla.day_start)
        self.end = int(sla.day_end)
        self.days = {int(d) for d in str(sla.weekdays).split(",") if d.strip()}
        self.tz = timezone.get_current_timezone()

    def add(self, at: dt.datetime, minutes: float) -> dt.datetime:
        if self.always or not self.days or self.end <= self.start:
            return at + dt.timedelta(minutes=minutes)
        local = timezone.localtime(at, self.tz).replace(tzinfo=None)
        left = dt.timedelta(minutes=minutes)
        for _ in range(3660):  # at most ten years of days
            day_start = local.replace(hour=self.start, minute=0, second=0, microsecond=0)
            day_end = local.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(hours=self.end)
            if local.weekday() not in self.days or local >= day_end:
                local = (local + dt.timedelta(days=1)).replace(
                    hour=self.start, minute=0, second=0, microsecond=0
                )
                continue
            local = max(local, day_start)
            if local + left <= day_end:
                return timezone.make_aware(local + left, self.tz)
            left -= day_end - local
            local = (local + dt.timedelta(days=1)).replace(hour=self.start, minute=0, second=0, microsecond=0)
        return timezone.make_aware(local, self.tz)


# --- The builder ----------------------------------------------------------------------------------


class History:
    def __init__(
        self, rng: random.Random, users: dict[str, Any], services: dict[str, Service], months: int, now
    ):
        self.rng = rng
        self.users = users
        self.services = {name: services[name] for name in SERVICE_PROFILE if name in services}
        self.now = now
        self.today = timezone.localdate(now)
        self.start = now - dt.timedelta(days=round(months * 30.44))
        self.counts: Counter[str] = Counter()

    # -- helpers --

    def lognormal(self, median: float, sigma: float) -> float:
        return median * math.exp(self.rng.gauss(0, sigma))

    def weighted(self, weights: dict) -> Any:
        keys = list(weights)
        return self.rng.choices(keys, weights=[weights[k] for k in keys])[0]

    def poisson(self, lam: float) -> int:
        if lam <= 0:
            return 0
        if lam > 30:
            return max(0, round(self.rng.gauss(lam, math.sqrt(lam))))
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def days(self):
        """Each day of the history: (midnight, weekday factor)."""
        day = timezone.localtime(self.start).replace(hour=0, minute=0, second=0, microsecond=0)
        while day < self.now:
            factor = 1.0 if day.weekday() < 5 else (0.25 if day.weekday() == 5 else 0.15)
            if (day.month, day.day) in {(1, 1), (12, 25), (12, 26)}:
                factor = 0.1
            yield day, factor
            day += dt.timedelta(days=1)

    def at_hour(self, day: dt.datetime, hours=HOURS) -> dt.datetime:
        hour = self.rng.choices(range(24), weights=hours)[0]
        return day + dt.timedelta(
            hours=hour, minutes=self.rng.randint(0, 59), seconds=self.rng.randint(0, 59)
        )

    def in_range(self, at: dt.datetime) -> bool:
        return self.start <= at < self.now

    @staticmethod
    def bulk(model: type[M], objs: list[M]) -> list[M]:
        return model._default_manager.bulk_create(objs, batch_size=BATCH)

    # -- reference data --

    def reference(self) -> None:
        self.groups = {}
        for name, description in GROUPS.items():
            team, _ = Team.objects.get_or_create(
                name=name, defaults={"description": description, "source": SOURCE}
            )
            self.groups[name] = team
        owners = list(self.users.values())
        cis = []
        for service, rows in CIS.items():
            if service not in self.services:
                continue
            for name, ci_class, ci_type in rows:
                status = ConfigurationItem.Status.ACTIVE
                if ci_class == "workstation" and self.rng.random() < 0.05:
                    status = ConfigurationItem.Status.RETIRED
                cis.append(
                    ConfigurationItem(
                        name=name,
                        ci_class=ci_class,
                        ci_type=ci_type,
                        service=self.services[service],
                        status=status,
                        owner=self.rng.choice(owners) if owners and ci_class != "workstation" else None,
                        source=SOURCE,
                        external_key=name,
                    )
                )
        self.bulk(ConfigurationItem, cis)
        self.cis: dict[str, list[ConfigurationItem]] = {}
        self.ci_by_name = {}
        for ci in cis:
            self.ci_by_name[ci.name] = ci
            if ci.name not in RECURRING and ci.status == ConfigurationItem.Status.ACTIVE:
                assert ci.service is not None  # every demo CI belongs to a service
                self.cis.setdefault(ci.service.name, []).append(ci)
        self.counts["configuration items"] = len(cis)

        # SLA definitions: keep the user's own for a service and priority, add the missing ones.
        existing = {
            (s.service_id, s.priority): s
            for s in SLADefinition.objects.filter(service__in=self.services.values())
        }
        new = []
        for name, svc in self.services.items():
            for priority, (_label, response, resolution, calendar) in SLA_TARGETS.items():
                if (svc.pk, priority) not in existing:
                    sla = SLADefinition(
                        name=_sla_name(name, priority),
                        service=svc,
                        priority=priority,
                        response_minutes=response,
                        resolution_minutes=resolution,
                        calendar=calendar,
                    )
                    new.append(sla)
                    existing[(svc.pk, priority)] = sla
        SLADefinition.objects.bulk_create(new)
        self.slas = {key: (sla, Calendar(sla)) for key, sla in existing.items()}
        self.counts["SLA definitions"] = len(new)

        # Knowledge articles.
        authors = list(self.users.values())
        articles = []
        for n, (title, service, outdated) in enumerate(ARTICLES, start=1):
            if service not in self.services:
                continue
            if title == OUTDATED_ARTICLE:
                reviewed = self.today - dt.timedelta(days=640)
                due = self.today - dt.timedelta(days=275)
            elif outdated:
                reviewed = self.today - dt.timedelta(days=400)
                due = self.today - dt.timedelta(days=35)
            else:
                reviewed = self.today - dt.timedelta(days=self.rng.randint(10, 300))
                due = reviewed + dt.timedelta(days=365)
            articles.append(
                Article(
                    number=f"KB{1000000 + n}",
                    title=title,
                    body=self.article_body(title, outdated),
                    status=Article.Status.PUBLISHED,
                    service=self.services[service],
                    author=self.rng.choice(authors) if authors else None,
                    last_reviewed_at=reviewed,
                    review_due=due,
                    source=SOURCE,
                    external_key=f"KB{1000000 + n}",
                )
            )
        self.bulk(Article, articles)
        self.articles = {a.title: a for a in articles}
        self.articles_by_service: dict[int | None, list[Article]] = {}
        for a in articles:
            if a.title != OUTDATED_ARTICLE:
                self.articles_by_service.setdefault(a.service_id, []).append(a)
        self.counts["knowledge articles"] = len(articles)

        # Catalogue.
        existing_items = {c.name: c for c in CatalogItem.objects.filter(name__in=list(CATALOGUE))}
        items = []
        for name, (service, _g, minutes, automated, *_rest) in CATALOGUE.items():
            if name in existing_items or service not in self.services:
                continue
            items.append(
                CatalogItem(
                    name=name,
                    service=self.services[service],
                    automated=automated,
                    manual_minutes=minutes,
                    source=SOURCE,
                    external_key=name,
                )
            )
        self.bulk(CatalogItem, items)
        existing_items.update({c.name: c for c in items})
        self.catalogue = existing_items
        self.counts["catalogue items"] = len(items)

    @staticmethod
    def article_body(title: str, outdated: bool) -> str:
        if title == OUTDATED_ARTICLE:
            return (
                "1. Install the AnyConnect client from the software portal.\n"
                "2. Connect to vpn-old.example.com with your network password.\n"
                "3. If asked, accept the certificate warning.\n"
                "(Written for the gateway replaced last year; the client and address have changed.)"
            )
        return f"{title}: step-by-step instructions, screenshots and what to do when it fails."

    # -- incidents --

    def incident_specs(self) -> list[dict[str, Any]]:
        """Plain dicts first: the recurring faults need their dates before problems exist."""
        specs: list[dict[str, Any]] = []
        service_weights = {name: SERVICE_PROFILE[name][1] for name in self.services}
        per_weekday = 15.5
        for day, factor in self.days():
            for _ in range(self.poisson(per_weekday * factor)):
                service = self.weighted(service_weights)
                _group, _w, cats = SERVICE_PROFILE[service]
                category, subcategory, texts = self.rng.choice(cats)
                channel = self.weighted(CHANNEL_WEIGHTS)
                hours = [1] * 24 if channel == "monitoring" else HOURS
                cis = self.cis.get(service, [])
                ci = self.rng.choice(cis) if cis and self.rng.random() < 0.7 else None
                specs.append(
                    {
                        "service": service,
                        "category": category,
                        "subcategory": subcategory,
                        "text": self.rng.choice(texts),
                        "channel": channel,
                        "opened_at": self.at_hour(day, hours),
                        "ci": ci,
                    }
                )
            # Recurring faults: any day of the week (batch jobs and switches do not rest).
            for ci_name, fault in RECURRING.items():
                if fault["service"] not in self.services:
                    continue
                for _ in range(self.poisson(fault["rate"] * (0.8 + 0.2 * factor))):
                    channel = (
                        "monitoring"
                        if self.rng.random() < 0.4
                        else self.weighted({"phone": 3, "email": 1, "portal": 1})
                    )
                    specs.append(
                        {
                            "service": fault["service"],
                            "category": fault["category"],
                            "subcategory": fault["subcategory"],
                            "text": self.rng.choice(fault["texts"]),
                            "channel": channel,
                            "opened_at": self.at_hour(day, [1] * 24 if channel == "monitoring" else HOURS),
                            "ci": self.ci_by_name[ci_name],
                            "recurring": ci_name,
                        }
                    )
        return [s for s in specs if self.in_range(s["opened_at"])]

    def problems(self, specs: list[dict[str, Any]]) -> dict[str, Problem]:
        """A problem per recurring fault (opened after its fifth occurrence), and a few others."""
        problems: list[Problem] = []
        by_fault: dict[str, Problem] = {}
        owners = list(self.users.values())
        n = 0
        for ci_name, fault in RECURRING.items():
            dates = sorted(s["opened_at"] for s in specs if s.get("recurring") == ci_name)
            if len(dates) < 3:
                continue
            n += 1
            opened = dates[min(4, len(dates) - 1)] + dt.timedelta(hours=self.rng.uniform(2, 30))
            opened = min(opened, self.now - dt.timedelta(hours=1))
            title, root_cause, workaround = fault["problem"]
            known = bool(workaround)
            problem = Problem(
                number=f"PRB{1000000 + n}",
                title=title,
                description=f"Recurring incidents on {ci_name}: {fault['texts'][0].lower()}.",
                status=Problem.Status.KNOWN_ERROR if known else Problem.Status.INVESTIGATING,
                priority=2,
                opened_at=opened,
                root_cause=root_cause,
                known_error=known,
                workaround=workaround,
                service=self.services[fault["service"]],
                ci=self.ci_by_name[ci_name],
                assignment_group=self.groups[SERVICE_PROFILE[fault["service"]][0]],
                owner=self.rng.choice(owners) if owners else None,
                source=SOURCE,
                external_key=f"PRB{1000000 + n}",
            )
            problems.append(problem)
            by_fault[ci_name] = problem
        others = [
            (
                "Outlook crashes with the new add-in",
                "E-mail",
                "Add-in incompatible with the current Outlook build.",
            ),
            ("ERP reports time out at month end", "ERP", "Missing index on the ledger table."),
            (
                "Docking stations lose displays after sleep",
                "Laptops & workstations",
                "Dock firmware 1.2 bug.",
            ),
            (
                "Payroll export drops leavers",
                "HR system",
                "Filter on the interface excludes end-dated staff.",
            ),
            ("Portal notifications delayed", "Service Desk portal", "Mail queue throttled by the relay."),
            ("VPN MFA prompts time out", "VPN", ""),
        ]
        span = (self.now - self.start).total_seconds()
        for title, service, cause in others:
            if service not in self.services:
                continue
            n += 1
            opened = self.start + dt.timedelta(seconds=self.rng.uniform(0.05, 0.85) * span)
            status = Problem.Status.INVESTIGATING
            resolved = closed = None
            if cause:
                resolved = opened + dt.timedelta(days=self.rng.uniform(10, 60))
                if resolved < self.now:
                    status = Problem.Status.RESOLVED
                    closed = resolved + dt.timedelta(days=self.rng.uniform(3, 20))
                    if closed < self.now:
                        status = Problem.Status.CLOSED
                    else:
                        closed = None
                else:
                    resolved = None
                    status = Problem.Status.KNOWN_ERROR
            problems.append(
                Problem(
                    number=f"PRB{1000000 + n}",
                    title=title,
                    status=status,
                    priority=self.rng.choice([2, 3, 3]),
                    opened_at=opened,
                    resolved_at=resolved,
                    closed_at=closed,
                    root_cause=cause,
                    known_error=bool(cause) and status == Problem.Status.KNOWN_ERROR,
                    workaround="Restart the client and retry."
                    if status == Problem.Status.KNOWN_ERROR
                    else "",
                    service=self.services[service],
                    assignment_group=self.groups[SERVICE_PROFILE[service][0]],
                    owner=self.rng.choice(owners) if owners else None,
                    source=SOURCE,
                    external_key=f"PRB{1000000 + n}",
                )
            )
        self.bulk(Problem, problems)
        self.other_problems = [p for p in problems if p not in by_fault.values()]
        self.counts["problems"] = len(problems)
        return by_fault

    def sla_times(self, service: Service, priority: int, opened: dt.datetime, poor: bool):
        """Responded and resolved times drawn against the SLA targets, with the due times."""
        sla, cal = self.slas[(service.pk, priority)]
        response_minutes = sla.response_minutes or 60
        # Median at ~30% of the target (≈ 5-8% breaches); the poor service at ~100% (≈ 50%).
        share = self.lognormal(1.05 if poor else 0.3, 0.75)
        response = cal.add(
            opened, max(1.0, self.lognormal(0.25, 0.9) * response_minutes * (2.2 if poor else 1))
        )
        resolved = cal.add(opened, min(share, 12) * sla.resolution_minutes)
        response_due = cal.add(opened, response_minutes)
        resolution_due = cal.add(opened, sla.resolution_minutes)
        response = min(max(response, opened + dt.timedelta(minutes=1)), resolved)  # never after the fix
        return response, resolved, response_due, resolution_due

    def incidents(
        self, specs: list[dict[str, Any]], by_fault: dict[str, Problem], changes: list[Change]
    ) -> list[Incident]:
        # Incidents caused by changes, shortly after the change's window.
        for change in changes:
            if change.outcome == Change.Outcome.CAUSED_INCIDENT and change.actual_end:
                opened = change.actual_end + dt.timedelta(minutes=self.rng.uniform(10, 240))
                if opened < self.now:
                    service = change.service.name
                    _g, _w, cats = SERVICE_PROFILE[service]
                    category, subcategory, _texts = cats[0]
                    specs.append(
                        {
                            "service": service,
                            "category": category,
                            "subcategory": subcategory,
                            "text": f"Outage after change {change.number}",
                            "channel": "monitoring",
                            "opened_at": opened,
                            "ci": change.ci,
                            "caused_by_change": change,
                            "priority": self.rng.choice([1, 2, 2]),
                        }
                    )
        specs.sort(key=lambda s: s["opened_at"])
        outdated = self.articles.get(OUTDATED_ARTICLE)
        service_desk = self.groups["Service Desk"]
        incidents = []
        for n, spec in enumerate(specs, start=1):
            rng = self.rng
            service = self.services[spec["service"]]
            opened = spec["opened_at"]
            priority = spec.get("priority") or self.weighted(PRIORITY_WEIGHTS)
            if spec.get("recurring"):
                priority = rng.choice([2, 3, 3])
            if spec["channel"] == "monitoring" and priority > 3:
                priority = 3
            impact, urgency = rng.choice(IMPACT_URGENCY[priority])
            poor = spec["service"] == POOR_SLA_SERVICE
            human = spec["channel"] in {"phone", "chat", "walk_in"}
            fcr = (
                human
                and priority >= 3
                and not spec.get("recurring")
                and rng.random() < (0.3 if poor else 0.7)
            )
            responded, resolved, response_due, resolution_due = self.sla_times(
                service, priority, opened, poor
            )
            if fcr:
                responded = opened + dt.timedelta(minutes=rng.uniform(0.5, 3))
                resolved = responded + dt.timedelta(minutes=self.lognormal(12, 0.5))
                reassignments = 0
                group = service_desk
            else:
                reassignments = (
                    min(6, int(self.lognormal(0.8, 0.9)))
                    if spec["service"] != "ERP"
                    else min(8, int(self.lognormal(1.6, 0.8)))
                )
                group = self.groups[SERVICE_PROFILE[spec["service"]][0]]
            reopen = 0
            roll = rng.random()
            if not fcr and roll < (0.12 if poor else 0.04):
                reopen = 1 if roll > 0.006 else 2
                resolved += dt.timedelta(hours=self.lognormal(20, 0.6))  # the second fix
            elif not fcr and priority >= 3 and rng.random() < 0.06:
                resolved += dt.timedelta(days=self.lognormal(12, 0.8))  # waits for a vendor, a part …
            cancelled = rng.random() < 0.012
            status: str
            closed = None
            resolved_at = resolved if resolved <= self.now else None
            responded_at = responded if responded <= self.now else None
            if cancelled:
                status = Incident.Status.CANCELLED
                resolved_at = None
                closed = opened + dt.timedelta(minutes=rng.uniform(10, 600))
                if closed > self.now:
                    closed = self.now
            elif resolved_at is not None:
                closed = resolved_at + dt.timedelta(days=3)
                if closed > self.now:
                    status, closed = Incident.Status.RESOLVED, None
                else:
                    status = Incident.Status.CLOSED
            elif responded_at is None:
                status = Incident.Status.NEW
            else:
                waiting = (self.now - opened) > dt.timedelta(days=5)
                status = (
                    Incident.Status.ON_HOLD
                    if rng.random() < (0.5 if waiting else 0.1)
                    else Incident.Status.IN_PROGRESS
                )
            if cancelled or responded_at is None:
                reassignments = reopen = 0  # nobody has worked on it
            response_met = None if responded_at is None else responded_at <= response_due
            if responded_at is None and self.now > response_due and not cancelled:
                response_met = False
            resolution_met = None
            if resolved_at is not None:
                resolution_met = resolved_at <= resolution_due
            elif not cancelled and self.now > resolution_due:
                resolution_met = False
            problem = by_fault.get(spec.get("recurring", ""))
            if problem is None and self.other_problems and rng.random() < 0.01:
                candidates = [p for p in self.other_problems if p.service_id == service.pk]
                problem = rng.choice(candidates) if candidates else None
            article = None
            if (
                spec["service"] == POOR_SLA_SERVICE
                and spec["category"] == "network"
                and outdated is not None
                and rng.random() < 0.45
            ):
                article = outdated
            elif rng.random() < 0.12:
                articles = self.articles_by_service.get(service.pk)
                article = rng.choice(articles) if articles else None
            major = priority == 1 and rng.random() < 0.6
            number = f"INC{1000000 + n}"
            incidents.append(
                Incident(
                    number=number,
                    short_description=spec["text"],
                    description=f"{spec['text']}. Reported via {spec['channel'].replace('_', '-')}.",
                    status=status,
                    opened_at=opened,
                    responded_at=None if cancelled else responded_at,
                    resolved_at=resolved_at,
                    closed_at=closed,
                    priority=priority,
                    impact=impact,
                    urgency=urgency,
                    category=spec["category"],
                    subcategory=spec["subcategory"],
                    service=service,
                    ci=spec.get("ci"),
                    caused_by_ci=spec.get("ci") if spec.get("recurring") else None,
                    assignment_group=group,
                    reassignment_count=reassignments,
                    reopen_count=reopen,
                    contact_channel=spec["channel"],
                    first_contact_resolution=fcr if spec["channel"] != "monitoring" else None,
                    major=major,
                    post_incident_review=(
                        "Timeline reviewed; monitoring alert added; runbook updated."
                        if major and status == Incident.Status.CLOSED
                        else ""
                    ),
                    closure_code=(rng.choice(CLOSURE_CODES) if resolved_at else ""),
                    problem=problem,
                    caused_by_change=spec.get("caused_by_change"),
                    knowledge_article=article,
                    response_due_at=None if cancelled else response_due,
                    resolution_due_at=None if cancelled else resolution_due,
                    response_met=None if cancelled else response_met,
                    resolution_met=None if cancelled else resolution_met,
                    source=SOURCE,
                    external_key=number,
                )
            )
        self.bulk(Incident, incidents)
        self.counts["incidents"] = len(incidents)
        return incidents

    def activities(self, incidents: list[Incident]) -> None:
        """Each incident's event log: open, assignment, reassignments, reopens, resolution, closure."""
        rng = self.rng
        desk = self.groups["Service Desk"]
        groups = list(self.groups.values())
        rows = []

        def add(inc: Incident, at: dt.datetime, kind: str, group=None, note: str = "") -> None:
            rows.append(
                IncidentActivity(
                    incident=inc, at=at, activity_type=kind, assignment_group=group, note=note, source=SOURCE
                )
            )

        for inc in incidents:
            add(inc, inc.opened_at, "Open", desk)
            if inc.status == Incident.Status.CANCELLED:
                assert inc.closed_at is not None  # a cancelled incident is closed
                add(inc, inc.closed_at, "Cancelled", desk)
                continue
            if inc.responded_at is None:
                continue
            start, end = inc.responded_at, inc.resolved_at or self.now
            hops = inc.reassignment_count or 0
            first = inc.assignment_group
            if hops:
                first = desk if inc.assignment_group != desk else rng.choice(groups)
            add(inc, start, "Assignment", first)
            for j in range(hops):
                group = inc.assignment_group if j == hops - 1 else rng.choice(groups)
                add(inc, start + (end - start) * (j + 1) / (hops + 2), "Reassignment", group)
            for r in range(inc.reopen_count):
                fixed = start + (end - start) * (0.6 + 0.15 * r)
                add(inc, fixed, "Resolved", inc.assignment_group, "Fix applied")
                add(
                    inc,
                    fixed + (end - fixed) * 0.1,
                    "Reopen",
                    inc.assignment_group,
                    "Caller reports it again",
                )
            if inc.resolved_at is not None:
                add(inc, inc.resolved_at, "Resolved", inc.assignment_group, inc.closure_code)
            if inc.closed_at is not None:
                add(inc, inc.closed_at, "Closed", inc.assignment_group)
        self.bulk(IncidentActivity, rows)
        self.counts["incident activities"] = len(rows)

    # -- changes --

    def changes(self) -> list[Change]:
        """~35 a month; Network Operations' fail, back out or cause incidents far more often."""
        team_weights = {
            "Network Operations": 26,
            "ERP Support": 18,
            "Messaging": 12,
            "Workplace": 16,
            "Identity & Access": 8,
            "HR Applications": 8,
            "Change Management": 12,
        }
        team_services = {
            "Network Operations": ["Network", "Network", "VPN"],
            "ERP Support": ["ERP"],
            "Messaging": ["E-mail"],
            "Workplace": ["Laptops & workstations"],
            "Identity & Access": ["Service Desk portal", "CMDB"],
            "HR Applications": ["HR system"],
            "Change Management": list(self.services),
        }
        titles = {
            "Network": [
                "Upgrade switch firmware",
                "Add firewall rule",
                "Replace WAN router",
                "Re-cable floor switch",
            ],
            "VPN": [
                "Update VPN gateway firmware",
                "Rotate VPN certificates",
                "Change VPN split-tunnel policy",
            ],
            "ERP": ["Apply ERP patch", "Change batch schedule", "Add ERP report"],
            "E-mail": ["Update mail relay", "Change transport rule", "Renew mail certificate"],
            "Laptops & workstations": [
                "Deploy monthly patches",
                "Update laptop image",
                "Package new software",
            ],
            "Service Desk portal": ["Release portal update", "Add request form"],
            "CMDB": ["Add discovery range", "Update CI classes"],
            "HR system": ["Apply HR system patch", "Change payroll interface mapping"],
        }
        changes = []
        rng = self.rng
        n = 0
        for day, factor in self.days():
            for _ in range(self.poisson(1.6 * factor)):
                team = self.weighted(team_weights)
                service_name = rng.choice(
                    [s for s in team_services[team] if s in self.services] or list(self.services)
                )
                service = self.services[service_name]
                failing = team == FAILING_TEAM
                change_type = self.weighted(
                    {"standard": 35, "normal": 45, "emergency": 20}
                    if failing
                    else {"standard": 50, "normal": 44, "emergency": 6}
                )
                opened = self.at_hour(day)
                lead = {"standard": (0.5, 3), "normal": (3, 14), "emergency": (0.05, 0.5)}[change_type]
                planned_start = opened + dt.timedelta(days=rng.uniform(*lead))
                planned_start = planned_start.replace(minute=0, second=0, microsecond=0)
                if change_type != "emergency" and service_name in {"Network", "VPN", "ERP"}:
                    planned_start = planned_start.replace(hour=rng.choice([19, 20, 21]))
                    if planned_start <= opened:
                        planned_start += dt.timedelta(days=1)
                planned_end = planned_start + dt.timedelta(hours=rng.choice([1, 2, 2, 3, 4]))
                outcome_weights = (
                    {"successful": 50, "failed": 17, "backed_out": 16, "caused_incident": 17}
                    if failing
                    else {"successful": 94, "failed": 2, "backed_out": 2.5, "caused_incident": 1.5}
                )
                outcome = self.weighted(outcome_weights)
                if (
                    change_type == "standard"
                    and not failing
                    and outcome != "successful"
                    and rng.random() < 0.5
                ):
                    outcome = "successful"
                actual_start: dt.datetime | None
                actual_end: dt.datetime | None
                actual_start = planned_start + dt.timedelta(minutes=rng.uniform(-5, 30))
                overrun = rng.uniform(1.2, 2.5) if outcome != "successful" else rng.uniform(0.6, 1.1)
                actual_end = actual_start + (planned_end - planned_start) * overrun
                cancelled = rng.random() < 0.03
                ci_choices: Sequence[ConfigurationItem | None] = self.cis.get(service_name) or [None]
                ci = rng.choice(ci_choices)
                status: str
                closed: dt.datetime | None = None
                if cancelled:
                    status = Change.Status.CANCELLED
                    actual_start = actual_end = None
                    outcome = ""
                    closed = min(self.now, opened + dt.timedelta(days=rng.uniform(0.5, 5)))
                elif actual_end > self.now:
                    outcome = ""
                    if actual_start <= self.now:
                        status, actual_end = Change.Status.IMPLEMENTING, None
                    else:
                        actual_start = actual_end = None
                        age = (self.now - opened).days
                        status = (
                            Change.Status.SCHEDULED
                            if age > 3
                            else (Change.Status.AUTHORIZED if age > 1 else Change.Status.ASSESSMENT)
                        )
                else:
                    closed = actual_end + dt.timedelta(days=rng.uniform(1, 7))
                    if closed > self.now:
                        status, closed = Change.Status.REVIEW, None
                    else:
                        status = Change.Status.CLOSED
                pir = status == Change.Status.CLOSED and change_type != "standard" and rng.random() < 0.8
                n += 1
                number = f"CHG{1000000 + n}"
                changes.append(
                    Change(
                        number=number,
                        title=f"{rng.choice(titles[service_name])} ({service_name})",
                        description=f"{change_type.title()} change raised by {team}.",
                        change_type=change_type,
                        status=status,
                        risk=self.weighted({"low": 5, "moderate": 3, "high": 1 + (2 if failing else 0)}),
                        opened_at=opened,
                        closed_at=closed,
                        planned_start=planned_start,
                        planned_end=planned_end,
                        actual_start=actual_start,
                        actual_end=actual_end,
                        outcome=outcome,
                        unplanned=change_type == "emergency" and rng.random() < 0.7,
                        unauthorized=rng.random() < (0.06 if failing else 0.005),
                        pir_done=pir,
                        pir_delivered_outcome=(outcome == "successful" and rng.random() < 0.9)
                        if pir
                        else None,
                        pir_notes=(
                            "Delivered as planned."
                            if outcome == "successful"
                            else "Rolled back; test plan missed the failure mode."
                        )
                        if pir
                        else "",
                        service=service,
                        ci=ci,
                        assignment_group=self.groups[team],
                        owner=self.users.get("owner"),
                        source=SOURCE,
                        external_key=number,
                    )
                )
        changes = [c for c in changes if self.in_range(c.opened_at)]
        self.bulk(Change, changes)
        through = Change.affected_cis.through
        links = [through(change_id=c.pk, configurationitem_id=c.ci_id) for c in changes if c.ci_id]
        through.objects.bulk_create(links, batch_size=BATCH)
        self.counts["changes"] = len(changes)
        return changes

    # -- requests --

    def requests(self) -> list[ServiceRequest]:
        rng = self.rng
        requesters = list(self.users.values())
        specs = []
        for day, factor in self.days():
            for name, (service, group, _minutes, automated, rate, manual, auto, median) in CATALOGUE.items():
                if name not in self.catalogue or service not in self.services:
                    continue
                for _ in range(self.poisson(rate * factor)):
                    specs.append((self.at_hour(day), name, service, group, automated, manual, auto, median))
        specs.sort(key=lambda s: s[0])
        requests = []
        for n, (opened, name, service, group, automated, manual, auto, median) in enumerate(specs, start=1):
            if not self.in_range(opened):
                continue
            fulfilled: dt.datetime | None
            fulfilled = opened + dt.timedelta(hours=self.lognormal(median, 0.6 if automated else 0.8))
            status = ServiceRequest.Status.CLOSED
            closed: dt.datetime | None = None
            if rng.random() < 0.02:
                status, fulfilled = ServiceRequest.Status.CANCELLED, None
                closed = min(self.now, opened + dt.timedelta(hours=rng.uniform(1, 48)))
            elif fulfilled > self.now:
                fulfilled = None
                status = (
                    ServiceRequest.Status.IN_PROGRESS if rng.random() < 0.7 else ServiceRequest.Status.OPEN
                )
            else:
                closed = fulfilled + dt.timedelta(days=rng.uniform(0.5, 3))
                if closed > self.now:
                    status, closed = ServiceRequest.Status.FULFILLED, None
            number = f"REQ{1000000 + n}"
            requests.append(
                ServiceRequest(
                    number=number,
                    catalog_item=self.catalogue[name],
                    short_description=name,
                    status=status,
                    opened_at=opened,
                    fulfilled_at=fulfilled,
                    closed_at=closed,
                    channel="portal"
                    if automated or rng.random() < 0.6
                    else self.weighted({"phone": 3, "email": 2, "chat": 1}),
                    manual_steps=manual,
                    automated_steps=auto,
                    service=self.services[service],
                    assignment_group=self.groups[group],
                    requested_by=rng.choice(requesters) if requesters else None,
                    source=SOURCE,
                    external_key=number,
                )
            )
        self.bulk(ServiceRequest, requests)
        self.counts["service requests"] = len(requests)
        return requests

    # -- interactions --

    def interactions(self, incidents: list[Incident], requests: list[ServiceRequest]) -> list[Interaction]:
        rng = self.rng
        outdated = self.articles.get(OUTDATED_ARTICLE)
        human = {"phone", "chat", "walk_in", "email"}
        rows = []

        def add(
            opened,
            channel,
            *,
            incident=None,
            request=None,
            fcr=None,
            article=None,
            service=None,
            category="",
            priority=None,
            ci=None,
        ):
            median = {"phone": 420, "chat": 600, "walk_in": 480, "email": 300}.get(channel, 240)
            handle = max(30, int(self.lognormal(median, 0.5)))
            rows.append(
                Interaction(
                    channel=channel,
                    opened_at=opened,
                    closed_at=opened + dt.timedelta(seconds=handle),
                    handle_time_seconds=handle,
                    first_contact_resolution=fcr,
                    category=category,
                    priority=priority,
                    service=service,
                    ci=ci,
                    incident=incident,
                    service_request=request,
                    knowledge_article=article,
                    source=SOURCE,
                )
            )

        for inc in incidents:
            if inc.contact_channel not in human:
                continue
            opened = inc.opened_at - dt.timedelta(seconds=rng.randint(60, 900))
            add(
                opened,
                inc.contact_channel,
                incident=inc,
                fcr=bool(inc.first_contact_resolution),
                article=inc.knowledge_article,
                service=inc.service,
                category=inc.category,
                priority=inc.priority,
                ci=inc.ci,
            )
            # Repeat contacts: users chase open or reopened tickets; the outdated article does not help.
            chases = 0
            if inc.knowledge_article_id and outdated is not None and inc.knowledge_article_id == outdated.pk:
                chases = 1 + self.poisson(1.2)
            elif not inc.first_contact_resolution and rng.random() < 0.12:
                chases = 1
            chases += inc.reopen_count
            end = inc.resolved_at or self.now
            for _ in range(chases):
                at = inc.opened_at + (end - inc.opened_at) * rng.uniform(0.1, 0.95)
                add(
                    at,
                    self.weighted({"phone": 5, "email": 2, "chat": 2}),
                    incident=inc,
                    fcr=False,
                    article=inc.knowledge_article,
                    service=inc.service,
                    category=inc.category,
                    priority=inc.priority,
                    ci=inc.ci,
                )
        for req in requests:
            if req.channel in human:
                add(
                    req.opened_at - dt.timedelta(seconds=rng.randint(60, 600)),
                    req.channel,
                    request=req,
                    fcr=False,
                    service=req.service,
                    category="request",
                )
        # How-to questions answered at the desk, some pointing to an article.
        vpn = self.services.get(POOR_SLA_SERVICE)
        for day, factor in self.days():
            for _ in range(self.poisson(9 * factor)):
                service = self.rng.choice(list(self.services.values()))
                articles: Sequence[Article | None] = self.articles_by_service.get(service.pk) or [None]
                add(
                    self.at_hour(day),
                    self.weighted({"phone": 5, "chat": 3, "walk_in": 1}),
                    fcr=rng.random() < 0.85,
                    article=rng.choice(articles) if rng.random() < 0.3 else None,
                    service=service,
                    category="how-to",
                )
            if vpn is not None and outdated is not None:
                # The outdated article sends people back to the desk: repeat how-to contacts.
                for _ in range(self.poisson(0.9 * factor)):
                    first = self.at_hour(day)
                    add(first, "phone", fcr=False, article=outdated, service=vpn, category="how-to")
                    add(
                        first + dt.timedelta(hours=rng.uniform(0.5, 30)),
                        "phone",
                        fcr=rng.random() < 0.5,
                        article=outdated,
                        service=vpn,
                        category="how-to",
                    )
        rows = [r for r in rows if r.opened_at < self.now]
        rows.sort(key=lambda r: r.opened_at)
        for n, row in enumerate(rows, start=1):
            row.number = row.external_key = f"IMS{1000000 + n}"
            if row.closed_at > self.now:
                row.closed_at, row.handle_time_seconds = None, None
        self.bulk(Interaction, rows)
        self.counts["interactions"] = len(rows)
        return rows

    # -- surveys, article usage, audit findings --

    def surveys(self, incidents: list[Incident], requests: list[ServiceRequest]) -> None:
        rng = self.rng
        rows = []

        def score(base: float) -> int:
            return max(1, min(5, round(rng.gauss(base, 0.9))))

        for inc in incidents:
            if inc.resolved_at is None or rng.random() > 0.2:
                continue
            at = inc.resolved_at + dt.timedelta(hours=rng.uniform(0.5, 72))
            if at > self.now:
                continue
            base = 4.3
            if inc.service.name == POOR_SLA_SERVICE:
                base -= 1.0
            if inc.resolution_met is False:
                base -= 1.2
            if inc.reopen_count:
                base -= 0.8
            if inc.first_contact_resolution:
                base += 0.4
            s = score(base)
            rows.append(
                SurveyResponse(
                    score=s,
                    comment=rng.choice(COMMENTS[s]),
                    responded_at=at,
                    incident=inc,
                    service=inc.service,
                    source=SOURCE,
                )
            )
        for req in requests:
            if req.fulfilled_at is None or rng.random() > 0.15:
                continue
            at = req.fulfilled_at + dt.timedelta(hours=rng.uniform(0.5, 72))
            if at > self.now:
                continue
            hours = (req.fulfilled_at - req.opened_at).total_seconds() / 3600
            s = score(4.5 - min(1.8, hours / 60))
            rows.append(
                SurveyResponse(
                    score=s,
                    comment=rng.choice(COMMENTS[s]),
                    responded_at=at,
                    service_request=req,
                    service=req.service,
                    source=SOURCE,
                )
            )
        rows.sort(key=lambda r: r.responded_at)
        for n, row in enumerate(rows, start=1):
            row.external_key = f"CSAT{1000000 + n}"
        self.bulk(SurveyResponse, rows)
        self.counts["survey responses"] = len(rows)

    def article_usage(self) -> None:
        """uses = the tickets that cite the article; views and votes follow, the outdated one votes no."""
        uses: Counter[int] = Counter()
        for model in (Interaction, Incident):
            rows = (
                model.objects.filter(source=SOURCE, knowledge_article__isnull=False)
                .values("knowledge_article")
                .annotate(n=Count("id"))
            )
            for row in rows:
                uses[row["knowledge_article"]] += row["n"]
        articles = list(self.articles.values())
        for a in articles:
            a.uses = uses.get(a.pk, 0)
            a.views = a.uses * self.rng.randint(3, 8) + self.rng.randint(20, 400)
            votes = max(1, a.views // self.rng.randint(15, 30))
            if a.title == OUTDATED_ARTICLE:
                a.helpful_yes = votes // 7
            elif a.review_due and a.review_due < self.today:
                a.helpful_yes = votes // 2
            else:
                a.helpful_yes = round(votes * self.rng.uniform(0.75, 0.95))
            a.helpful_no = votes - a.helpful_yes
        Article.objects.bulk_update(
            articles, ["uses", "views", "helpful_yes", "helpful_no"], batch_size=BATCH
        )

    def audit_findings(self) -> None:
        rows = [
            (
                "VPN access granted without a recorded manager approval",
                "VPN",
                "request",
                AuditFinding.Severity.HIGH,
                AuditFinding.Status.OPEN,
                "Internal audit: access management",
                "In a sample of 50 VPN access requests, 7 had no approval on record; the steps are manual.",
            ),
            (
                "Emergency network changes without retrospective CAB approval",
                "Network",
                "change",
                AuditFinding.Severity.HIGH,
                AuditFinding.Status.OPEN,
                "Change enablement review",
                "Several emergency changes by Network Operations were never reviewed after the fact.",
            ),
            (
                "Laptops in the CMDB not found at the asset count",
                "Laptops & workstations",
                "asset",
                AuditFinding.Severity.MEDIUM,
                AuditFinding.Status.ADDRESSED,
                "Annual asset audit",
                "Three laptops recorded as in service were not found; two retired devices were in use.",
            ),
            (
                "Knowledge articles past their review date",
                "VPN",
                "knowledge",
                AuditFinding.Severity.LOW,
                AuditFinding.Status.OPEN,
                "Service desk quality review",
                f"'{OUTDATED_ARTICLE}' is months past its review and still cited on many contacts.",
            ),
        ]
        auditor = self.users.get("manager")
        span = max(1, (self.today - timezone.localdate(self.start)).days)
        findings = []
        for n, (title, service, practice, severity, status, audit, text) in enumerate(rows, start=1):
            if service not in self.services:
                continue
            found = self.today - dt.timedelta(days=self.rng.randint(min(10, span), max(10, span // 2)))
            findings.append(
                AuditFinding(
                    number=f"AUD{1000000 + n}",
                    title=title,
                    description=text,
                    audit=audit,
                    practice=practice,
                    severity=severity,
                    status=status,
                    found_at=found,
                    due_date=found + dt.timedelta(days=90),
                    service=self.services[service],
                    auditor=auditor,
                    source=SOURCE,
                    external_key=f"AUD{1000000 + n}",
                )
            )
        self.bulk(AuditFinding, findings)
        self.counts["audit findings"] = len(findings)

    def timestamps(self) -> None:
        """created_at/updated_at follow the history, not the moment the demo was loaded."""
        for model, opened, last in (
            (Incident, "opened_at", Coalesce(F("closed_at"), F("resolved_at"), F("opened_at"))),
            (Interaction, "opened_at", Coalesce(F("closed_at"), F("opened_at"))),
            (Problem, "opened_at", Coalesce(F("closed_at"), F("resolved_at"), F("opened_at"))),
            (Change, "opened_at", Coalesce(F("closed_at"), F("actual_end"), F("opened_at"))),
            (ServiceRequest, "opened_at", Coalesce(F("closed_at"), F("fulfilled_at"), F("opened_at"))),
            (SurveyResponse, "responded_at", F("responded_at")),
        ):
            model.objects.filter(source=SOURCE).update(created_at=F(opened), updated_at=last)
        # Reference data was there before the history began (not recorded the moment the demo was
        # loaded, after the incidents on it); an audit finding was recorded the day it was found.
        for reference in (ConfigurationItem, CatalogItem, Article):
            reference.objects.filter(source=SOURCE).update(created_at=self.start, updated_at=self.start)
        findings = list(AuditFinding.objects.filter(source=SOURCE))
        for finding in findings:
            finding.created_at = finding.updated_at = timezone.make_aware(
                dt.datetime.combine(finding.found_at, dt.time(10, 0))
            )
        AuditFinding.objects.bulk_update(findings, ["created_at", "updated_at"])

    def build(self) -> Counter[str]:
        self.reference()
        specs = self.incident_specs()
        by_fault = self.problems(specs)
        changes = self.changes()
        incidents = self.incidents(specs, by_fault, changes)
        self.activities(incidents)
        requests = self.requests()
        self.interactions(incidents, requests)
        self.surveys(incidents, requests)
        self.article_usage()
        self.audit_findings()
        self.timestamps()
        return self.counts


def _clock() -> dt.datetime:
    """The history ends now (tests replace this to pin it)."""
    return timezone.now()


def build_history(
    rng: random.Random,
    users: dict[str, Any],
    services: dict[str, Service],
    *,
    months: int = 12,
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """Generate `months` of demo ITSM history for `services`; replaces any earlier demo history.

    Returns the number of records created per kind. Run it inside the caller's transaction.
    """
    now = (now or _clock()).replace(minute=0, second=0, microsecond=0)
    own = random.Random(rng.getrandbits(64))
    with transaction.atomic():
        wipe_history()
        counts = History(own, users, services, months, now).build()
    return dict(counts)
