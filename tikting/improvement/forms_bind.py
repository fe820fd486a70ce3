"""The item page's "bind to a metric" form: a metric, a scope and a baseline window.

It parses input only; `services.bind_indicator` validates the binding (and the metrics engine the
scope) and raises ValidationError naming `metric_key`, a scope field or `window_start`, which the
view puts back on the field of the same name. The choices come from the metric definitions and
from the records themselves, so a new metric, service, team or import source appears here alone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.apps import apps
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tikting.accounts.models import Team
from tikting.cmdb.models import Service
from tikting.metrics.definitions import DEFINITIONS
from tikting.metrics.views import distinct_sources

from . import choices as C
from .item_forms import DATE, VersionedForm

# The scope a binding may carry, in the order of the form: the engine's filters but the window
# (the form's own dates) and status (each metric's definition already says which statuses count).
SCOPE_FIELDS = ("service", "priority", "group", "category", "ci", "source")
DEFAULT_WINDOW_DAYS = 90
ANY = ("", "— any —")


def metric_choices() -> list[tuple[Any, Any]]:
    """The metrics grouped by the practice they belong to, each as "label — unit"."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for definition in DEFINITIONS.values():
        groups.setdefault(definition.practice, []).append(
            (definition.key, f"{definition.label} — {definition.unit}")
        )
    practices = dict(C.Practice.choices)
    return [("", "— choose a metric —")] + [
        (practices.get(practice, practice), options) for practice, options in groups.items()
    ]


def scope_value(obj: Service | Team) -> str:
    """What the engine is sent for a service or team: its name (readable in the baseline method),
    or its id when the name would be read otherwise: as an id, as a list (the engine splits on
    commas) or as "no service" (none, (none))."""
    name = obj.name
    ambiguous = name.isdigit() or "," in name or name.strip().lower() in ("none", "(none)")
    return str(obj.pk) if ambiguous else name


def priority_choices() -> list[tuple[str, str]]:
    field = apps.get_model("incidents.Incident")._meta.get_field("priority")
    return [ANY] + [(str(value), str(label)) for value, label in field.choices or ()]


def source_choices() -> list[tuple[str, str]]:
    """The sources the records came from (imports, "demo", "manual"): the list the metrics page
    offers, read with its index probe rather than a SELECT DISTINCT over every record."""
    return [ANY] + [(s, s) for s in distinct_sources() if s]


def default_window(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The 90 days before today."""
    today = today or timezone.localdate()
    return today - dt.timedelta(days=DEFAULT_WINDOW_DAYS), today - dt.timedelta(days=1)


class BindIndicatorForm(VersionedForm):
    metric_key = forms.ChoiceField(label=_("Metric"))
    service = forms.ChoiceField(required=False, label=_("Service"))
    priority = forms.ChoiceField(required=False, label=_("Priority"))
    group = forms.ChoiceField(required=False, label=_("Assignment group"))
    category = forms.CharField(required=False, max_length=100, label=_("Category"))
    ci = forms.CharField(required=False, max_length=200, label=_("Configuration item"))
    source = forms.ChoiceField(required=False, label=_("Source"))
    window_start = forms.DateField(widget=DATE, label=_("Window start"))
    window_end = forms.DateField(widget=DATE, label=_("Window end"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Binding without the version read would overwrite a concurrent change unseen.
        self.fields["version"].required = True
        self.field_of("metric_key", forms.ChoiceField).choices = metric_choices()
        self.field_of("service", forms.ChoiceField).choices = [ANY] + [
            (scope_value(s), s.name) for s in Service.objects.order_by("name")
        ]
        self.field_of("group", forms.ChoiceField).choices = [ANY] + [
            (scope_value(t), t.name) for t in Team.objects.order_by("name")
        ]
        self.field_of("priority", forms.ChoiceField).choices = priority_choices()
        self.field_of("source", forms.ChoiceField).choices = source_choices()
        self.fields["metric_key"].widget.attrs["autofocus"] = True
        self.fields["category"].widget.attrs["placeholder"] = _("any")
        self.fields["ci"].widget.attrs["placeholder"] = _("any (name or id)")
        self._keep_unlisted_values()

    def _keep_unlisted_values(self) -> None:
        """A scope saved through the API may name a service by id, or list several ("E-mail,Network"):
        an id is shown as its option; a value no option matches becomes an option of its own, so
        a re-bind (or a refused post) shows it instead of silently dropping it. The engine judges it."""
        for name in ("service", "group", "priority", "source"):
            value = self.data.get(self.add_prefix(name)) if self.is_bound else self.initial.get(name)
            if value in (None, ""):
                continue
            value = str(value)
            options = self.choices_of(name)
            if any(key == value for key, _label in options):
                continue
            named_by_id: dict[str, type[Service] | type[Team]] = {"service": Service, "group": Team}
            model = named_by_id.get(name)
            found = model.objects.filter(pk=int(value)).first() if model and value.isdigit() else None
            if found is not None and not self.is_bound:
                self.initial[name] = scope_value(found)
            else:
                self.field_of(name, forms.ChoiceField).choices = [*options, (value, value)]

    @classmethod
    def for_indicator(cls, indicator, **kwargs: Any) -> BindIndicatorForm:
        """Pre-filled from the indicator's binding, or (unbound) from its item's service."""
        start, end = default_window()
        initial: dict[str, Any] = {"version": indicator.version, "window_start": start, "window_end": end}
        if indicator.metric_key:
            initial["metric_key"] = indicator.metric_key
            initial.update({k: v for k, v in (indicator.metric_scope or {}).items() if k in SCOPE_FIELDS})
        elif indicator.item.service_id:
            initial["service"] = scope_value(indicator.item.service)
        return cls(initial=initial, **kwargs)

    def service_data(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "metric_key": data["metric_key"],
            "scope": {name: data[name].strip() for name in SCOPE_FIELDS if data[name].strip()},
            "window_start": data["window_start"],
            "window_end": data["window_end"],
        }
