"""Forms of the review pages: they parse input; the services validate the rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet

from tikting.accounts.models import Role, User
from tikting.cmdb.models import Service
from tikting.improvement import choices as IC

from .agenda import SECTION_KEYS
from .models import DECISION_KINDS, ReviewMeeting


def users_with_role(*roles: str) -> QuerySet[User]:
    return User.objects.filter(is_active=True, role__in=roles).order_by("first_name", "username")


class ReviewMeetingForm(forms.ModelForm):
    class Meta:
        model = ReviewMeeting
        fields = ["title", "scheduled_for", "start_time", "duration_minutes", "chair", "notes"]
        labels = {"start_time": "Starts at", "duration_minutes": "Minutes"}
        widgets = {
            "scheduled_for": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "start_time": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "notes": forms.Textarea(attrs={"rows": 6}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["title"].required = False  # the service names it after the month
        self.fields["title"].help_text = "Empty: “Register review, <month>”."
        self.fields["scheduled_for"].required = False  # the service takes today
        self.fields["start_time"].help_text = "Empty: the day only (the calendar shows a whole day)."
        self.fields["duration_minutes"].required = False  # the service takes 60
        chair = self.fields["chair"]
        assert isinstance(chair, forms.ModelChoiceField)  # the form field of a foreign key
        chair.queryset = users_with_role(Role.MANAGER, Role.ADMIN)
        for name, field in self.fields.items():
            field.widget.attrs.setdefault("class", "form-select" if name == "chair" else "form-control")
        self.fields["version"] = forms.IntegerField(widget=forms.HiddenInput, required=False)
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version


def _item_from_ref(value: str) -> int | None:
    """ "CI-00012", "ci-12" or "12" → 12; "" → None; anything else is an error naming the field."""
    text = (value or "").strip().upper()
    if not text:
        return None
    digits = text.removeprefix("CI-")
    if not digits.isdigit() or not 0 < int(digits) < 2**63:
        raise forms.ValidationError(
            f"“{value.strip()}” is not an item reference: write it as CI-00012 or 12."
        )
    return int(digits)


class AttendanceForm(forms.Form):
    """Who attends and who sent apologies; `version` as read (a stale one is a conflict)."""

    attendees = forms.ModelMultipleChoiceField(queryset=User.objects.none(), required=False)
    apologies = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(), required=False, label="Apologies"
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        people = (
            User.objects.filter(is_active=True)
            .exclude(role="")
            .order_by("first_name", "last_name", "username")
        )
        for name in ("attendees", "apologies"):
            field = self.fields[name]
            assert isinstance(field, forms.ModelMultipleChoiceField)
            field.queryset = people
            field.widget.attrs.update({"class": "form-select form-select-sm", "size": "6"})


class MeetingActionForm(forms.Form):
    """An action item: on an existing register item (its reference) or, left empty, a new item."""

    title = forms.CharField(label="Action", max_length=200)
    owner = forms.ModelChoiceField(queryset=User.objects.none(), required=False)
    due_date = forms.DateField(
        label="Due", required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    item = forms.CharField(
        label="On item",
        required=False,
        max_length=24,
        help_text="A register item's reference (CI-00012); empty: a new register item is raised.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = users_with_role(Role.CONTRIBUTOR, Role.OWNER, Role.MANAGER, Role.ADMIN)
        for name, field in self.fields.items():
            css = "form-select form-select-sm" if name == "owner" else "form-control form-control-sm"
            field.widget.attrs.setdefault("class", css)

    def clean_item(self) -> int | None:
        return _item_from_ref(self.cleaned_data.get("item", ""))


class MinuteTextForm(forms.Form):
    """A minute's words corrected (open review) or an amendment (closed review)."""

    text = forms.CharField(
        label="Minute", required=False, widget=forms.Textarea(attrs={"rows": 2, "data-mentions": ""})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["text"].widget.attrs.setdefault("class", "form-control form-control-sm")


class UndoAcceptanceForm(forms.Form):
    reason = forms.CharField(label="Why undo the acceptance", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].widget.attrs.setdefault("class", "form-control form-control-sm")


class MinuteForm(forms.Form):
    item = forms.IntegerField(widget=forms.HiddenInput)
    section = forms.ChoiceField(
        choices=[("", "")] + [(k, k) for k in SECTION_KEYS], required=False, widget=forms.HiddenInput
    )
    kind = forms.ChoiceField(label="Decision", choices=[(k.value, k.label) for k in DECISION_KINDS])
    text = forms.CharField(
        label="Minute", required=False, widget=forms.Textarea(attrs={"rows": 2, "data-mentions": ""})
    )
    revisit_date = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Defer: when to revisit.",
    )
    owner = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, help_text="Accept or assign: the item's owner."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = users_with_role(Role.OWNER, Role.MANAGER, Role.ADMIN)
        for name, field in self.fields.items():
            css = (
                "form-select form-select-sm" if name in {"kind", "owner"} else "form-control form-control-sm"
            )
            field.widget.attrs.setdefault("class", css)


class DashboardFilterForm(forms.Form):
    practice = forms.ChoiceField(choices=[("", "All practices"), *IC.Practice.choices], required=False)
    service = forms.ModelChoiceField(
        queryset=Service.objects.all(), required=False, empty_label="All services"
    )
    start = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        label="From",
        help_text="Identified (stock counts) or closed (closure metrics) from",
    )
    end = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"), label="to"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            css = (
                "form-select form-select-sm"
                if name in {"practice", "service"}
                else "form-control form-control-sm"
            )
            field.widget.attrs.setdefault("class", css)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            self.add_error("end", "The end of the window comes before its start.")
        return data
