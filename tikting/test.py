"""The cast of personas every test can use (healthchecks' BaseTestCase, as pytest fixtures)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from tikting.accounts.models import Role, User
from tikting.cmdb.models import Service
from tikting.improvement import services as S

PASSWORD = "pass-Word-123"  # noqa: S105 - test persona password


@dataclass
class Cast:
    viewer: User
    contributor: User
    owner: User
    other_owner: User
    manager: User
    admin: User
    email: Service
    network: Service


def make_user(username: str, role: str, **extra) -> User:
    user = User.objects.create_user(
        username=username, password=PASSWORD, role=role, email=f"{username}@example.org", **extra
    )
    return user


def make_cast() -> Cast:
    return Cast(
        viewer=make_user("vera", Role.VIEWER, first_name="Vera", last_name="Viewer"),
        contributor=make_user("carl", Role.CONTRIBUTOR, first_name="Carl", last_name="Contributor"),
        owner=make_user("olga", Role.OWNER, first_name="Olga", last_name="Owner"),
        other_owner=make_user("otto", Role.OWNER, first_name="Otto", last_name="Other"),
        manager=make_user("mia", Role.MANAGER, first_name="Mia", last_name="Manager"),
        # As `tikting createuser --role admin` and the demo make them: the Django admin site too.
        admin=make_user(
            "ada", Role.ADMIN, first_name="Ada", last_name="Admin", is_staff=True, is_superuser=True
        ),
        email=Service.objects.create(name="E-mail", criticality=Service.Criticality.HIGH),
        network=Service.objects.create(name="Network", criticality=Service.Criticality.CRITICAL),
    )


def ready_item(cast: Cast, **overrides):
    """An accepted item with owner, target date, an indicator with baseline and target and a plan,
    moved to step 4 (Plan): ready to act on."""
    data = {
        "title": "Cut e-mail MTTR",
        "practice": "incident",
        "service": cast.email,
        "impact": 4,
        "effort": 2,
        "vision": "Staff can rely on e-mail",
    }
    data.update(overrides)
    item = S.create_item(actor=cast.contributor, **data)
    item = S.assess_item(item, actor=cast.manager, decision="accept", owner=cast.owner)
    item = S.update_item(item, actor=cast.manager, target_date=timezone.localdate() + dt.timedelta(days=60))
    S.add_indicator(
        item,
        actor=cast.owner,
        name="MTTR",
        unit="h",
        direction="lower",
        baseline_value="10",
        target_value="6",
    )
    for step in ("current_state", "target_state", "plan"):
        item = S.transition_item(item, actor=cast.owner, to=step)
    S.add_action(
        item,
        actor=cast.owner,
        title="Write runbook",
        owner=cast.owner,
        due_date=timezone.localdate() + dt.timedelta(days=10),
    )
    return item


def resolved_incident(number: str, service, opened: dt.datetime, hours: float, priority: int = 2, **extra):
    """An incident resolved `hours` after `opened` (what metric tests compute MTTR from)."""
    from tikting.incidents.models import Incident

    return Incident.objects.create(
        number=number,
        service=service,
        priority=priority,
        status="resolved",
        opened_at=opened,
        resolved_at=opened + dt.timedelta(hours=hours),
        **extra,
    )


def form_data(form) -> dict[str, Any]:
    """What a browser posts back from `form` as rendered: each widget's value (and the hidden
    initial value of the fields that carry one), unchecked boxes left out."""
    from django import forms

    def put(widget: forms.Widget, name: str, value: Any) -> None:
        inner = getattr(widget, "widget", None)  # the admin's RelatedFieldWidgetWrapper
        if isinstance(inner, forms.Widget):
            widget = inner
        if isinstance(widget, forms.CheckboxInput):
            if value:
                data[name] = "on"
        elif isinstance(widget, forms.SelectMultiple):
            data[name] = [str(getattr(v, "pk", v)) for v in value or []]
        elif isinstance(widget, forms.MultiWidget):
            parts = value if isinstance(value, list | tuple) else widget.decompress(value) or []
            suffixes = getattr(widget, "widgets_names", [f"_{i}" for i in range(len(widget.widgets))])
            for sub, suffix, part in zip(widget.widgets, suffixes, parts, strict=False):
                put(sub, name + suffix, part)
        else:
            formatted = widget.format_value(value)
            if isinstance(formatted, list):
                formatted = formatted[0] if formatted else ""
            if formatted is not None:
                data[name] = str(formatted)

    data: dict[str, Any] = {}
    for name in form.fields:
        bound = form[name]
        if bound.field.show_hidden_initial:
            hidden = bound.field.hidden_widget().format_value(bound.initial)
            data[bound.html_initial_name] = "" if hidden is None else str(hidden)
        put(bound.field.widget, bound.html_name, bound.value())
    return data


def noon(day: dt.date) -> dt.datetime:
    """Local noon of `day`: far from midnight, so windows and months never depend on the zone."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time(12, 0)))
