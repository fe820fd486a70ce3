"""Forms of the register pages: the quick submit form and the full create / edit form.

Forms only parse input. The services validate the rules (and raise ValidationError naming the
fields, which the views put back on these forms) and write the item.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from tikting.accounts.models import Role, User
from tikting.cmdb.models import Service

from . import choices as C
from .models import Item

IMPACT_HINTS = {1: "Very low", 2: "Low", 3: "Medium", 4: "High", 5: "Very high"}
EFFORT_HINTS = {1: "Hours", 2: "Days", 3: "Weeks", 4: "Months", 5: "Quarters+"}
OWNER_ROLES = (Role.OWNER, Role.MANAGER, Role.ADMIN)


def parse_ref(text: Any) -> int | None:
    """An item id from "CI-00012", "ci-12" or "12"; None when empty; ValueError when not a ref."""
    text = str(text or "").strip()
    if not text:
        return None
    digits = text.upper().removeprefix("CI-").lstrip("0") or "0"
    if not digits.isdigit():
        raise ValueError(text)
    return int(digits)


class RatingInput(forms.NumberInput):
    """A 1-5 slider."""

    input_type = "range"

    def __init__(self, attrs: dict[str, Any] | None = None):
        super().__init__({"min": 1, "max": 5, "step": 1, **(attrs or {})})


class StyledForm(forms.Form):
    """Puts Bootstrap classes on the widgets, so templates render fields with one include."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, RatingInput):
                css = "form-range"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            elif isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()


def _choices(choice_set, blank: str | None = None) -> list[tuple[str, str]]:
    return ([("", blank)] if blank is not None else []) + list(choice_set.choices)


class ItemSubmitForm(StyledForm):
    """Submit an opportunity in seconds: any contributor or above."""

    title = forms.CharField(
        max_length=200,
        widget=forms.TextInput(
            attrs={"placeholder": "What could be better? e.g. Password resets take 2 days"}
        ),
    )
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "What happens today, and what it costs"}),
    )
    practice = forms.ChoiceField(choices=_choices(C.Practice, "— not sure —"), required=False)
    service = forms.ModelChoiceField(
        queryset=Service.objects.filter(active=True), required=False, empty_label="— none —"
    )
    source_channel = forms.ChoiceField(
        choices=_choices(C.SourceChannel), initial=C.SourceChannel.STAFF_FEEDBACK, label="Where it came from"
    )
    source_reference = forms.CharField(
        max_length=300,
        required=False,
        label="Reference",
        widget=forms.TextInput(attrs={"placeholder": "Ticket number, URL, audit finding id…"}),
    )
    impact = forms.IntegerField(min_value=1, max_value=5, initial=3, widget=RatingInput())
    effort = forms.IntegerField(min_value=1, max_value=5, initial=3, widget=RatingInput())
    justification_type = forms.ChoiceField(
        choices=_choices(C.JustificationType), initial=C.JustificationType.OPERATIONAL, label="Justification"
    )
    justification = forms.CharField(
        required=False,
        label="Why it matters",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Who benefits, and how much"}),
    )

    def item_data(self) -> dict[str, Any]:
        """Keyword arguments for services.create_item."""
        return dict(self.cleaned_data)

    def rating_fields(self) -> list[forms.BoundField]:
        return [self["impact"], self["effort"]]


class OwnerField(forms.ModelChoiceField):
    """The owner picker: each user shown with their username."""

    def label_from_instance(self, obj: Any) -> str:
        return f"{obj} ({obj.username})"


class ItemForm(ItemSubmitForm):
    """Every field an improvement manager sets (create), or an editor may change (edit).

    For edits, fields carry their value as the user read it (show_hidden_initial), so the view
    knows which fields this user changed and can merge with a concurrent save field by field.
    """

    vision = forms.CharField(
        required=False,
        label="Vision",
        help_text="Step 1: the business outcome this serves",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    expected_outcome = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    owner = OwnerField(queryset=User.objects.none(), required=False, empty_label="— unassigned —")
    target_date = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    review_milestone = forms.CharField(
        max_length=120,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Q3 service review"}),
    )
    rank = forms.IntegerField(
        min_value=1, required=False, help_text="Manual backlog order, 1 first; empty: by impact × effort"
    )
    parent = forms.CharField(
        required=False,
        label="Parent item",
        help_text="CI-00012 or 12",
        widget=forms.TextInput(attrs={"placeholder": "CI-00012"}),
    )
    expected_version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    # Fields only an improvement manager may set (services.MANAGER_FIELDS).
    manager_fields = ("owner", "rank")

    def __init__(self, *args: Any, can_manage: bool, track_changes: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        owner_field = self.fields["owner"]
        assert isinstance(owner_field, forms.ModelChoiceField)
        owner_field.queryset = User.objects.filter(is_active=True, role__in=OWNER_ROLES)
        service_field = self.fields["service"]
        assert isinstance(service_field, forms.ModelChoiceField)
        service_field.queryset = Service.objects.all()  # an item may point at a retired service
        if not can_manage:
            for name in self.manager_fields:
                self.fields[name].disabled = True
                self.fields[name].help_text = "Set by an improvement manager"
        if track_changes:
            for name in self.item_fields():
                self.fields[name].show_hidden_initial = True

    def item_fields(self) -> list[str]:
        return [name for name in self.fields if name != "expected_version"]

    def clean_parent(self) -> Item | None:
        try:
            pk = parse_ref(self.cleaned_data.get("parent"))
        except ValueError as exc:
            raise ValidationError("Give an item reference such as CI-00012.") from exc
        if pk is None:
            return None
        parent = Item.objects.filter(pk=pk).only("id", "title").first()
        if parent is None:
            raise ValidationError(f"There is no item CI-{pk:05d}.")
        return parent

    def item_data(self) -> dict[str, Any]:
        data = {name: self.cleaned_data.get(name) for name in self.item_fields()}
        for name in self.manager_fields:
            if self.fields[name].disabled:
                data.pop(name)
        return data

    def changed_item_data(self) -> dict[str, Any]:
        """Only the fields this user changed since they opened the form (disabled ones never)."""
        return {name: self.cleaned_data.get(name) for name in self.changed_data if name in self.item_fields()}

    def opened_value(self, name: str) -> Any:
        """The value of a field when the user opened the form (its hidden initial), parsed."""
        bound = self[name]
        raw = bound.field.hidden_widget().value_from_datadict(self.data, self.files, bound.html_initial_name)
        if name == "parent":
            try:
                return parse_ref(raw)
            except ValueError:
                return None
        try:
            return bound.field.to_python(raw)
        except ValidationError:
            return raw


def initial_for(item: Item) -> dict[str, Any]:
    """The form's initial values for an existing item."""
    data: dict[str, Any] = {name: getattr(item, name) for name in EDIT_FIELDS}
    data["service"] = item.service_id
    data["owner"] = item.owner_id
    data["parent"] = f"CI-{item.parent_id:05d}" if item.parent_id else ""
    data["expected_version"] = item.version
    return data


EDIT_FIELDS = (
    "title",
    "description",
    "practice",
    "service",
    "source_channel",
    "source_reference",
    "impact",
    "effort",
    "justification_type",
    "justification",
    "vision",
    "expected_outcome",
    "owner",
    "target_date",
    "review_milestone",
    "rank",
    "parent",
)


def comparable(name: str, value: Any) -> Any:
    """A plain value to compare a field across versions: ids for records, None for empty."""
    if hasattr(value, "pk"):
        return value.pk
    if name == "parent" and isinstance(value, str):
        try:
            return parse_ref(value)
        except ValueError:
            return value
    if value in ("", None):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if name in {"impact", "effort", "rank", "service", "owner"}:
        try:
            return int(value)
        except (TypeError, ValueError):
            return value
    if isinstance(value, str):
        return value.replace("\r\n", "\n").strip()
    return value


def widget_value(name: str, value: Any) -> str:
    """The form-data spelling of a value (to put a saved value back into a bound form)."""
    if value is None:
        return ""
    if name == "parent":
        pk = getattr(value, "pk", value)
        if isinstance(pk, str):
            try:
                pk = parse_ref(pk)
            except ValueError:
                return pk
        return f"CI-{int(pk):05d}" if pk is not None else ""
    if hasattr(value, "pk"):
        return str(value.pk)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
