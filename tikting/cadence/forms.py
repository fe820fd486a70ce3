"""Forms of the sprint pages: they parse input; the services hold the rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone

from tikting.accounts.models import Team, User
from tikting.improvement import choices as IC
from tikting.improvement.models import Item

from .models import Column, Decision, Disposition, Sprint, SprintStatus

DATE = forms.DateInput(attrs={"type": "date", "class": "form-control form-control-sm"})
TEXT = {"class": "form-control form-control-sm"}


class SprintForm(forms.Form):
    team = forms.ModelChoiceField(
        Team.objects.all(), widget=forms.Select(attrs={"class": "form-select form-select-sm"})
    )
    name = forms.CharField(max_length=120, widget=forms.TextInput(attrs=TEXT))
    goal = forms.CharField(widget=forms.Textarea(attrs={**TEXT, "rows": 2}))
    start = forms.DateField(widget=DATE)
    end = forms.DateField(widget=DATE, help_text="The last day: two to four weeks after the start.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        today = timezone.localdate()
        monday = today + dt.timedelta(days=(7 - today.weekday()) % 7)
        self.fields["start"].initial = monday
        self.fields["end"].initial = monday + dt.timedelta(days=13)


class ItemChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.ref} {obj.title}"


class AddItemForm(forms.Form):
    item = ItemChoiceField(
        Item.objects.none(), widget=forms.Select(attrs={"class": "form-select form-select-sm"})
    )
    planned_hours = forms.DecimalField(
        min_value=0,
        max_digits=7,
        decimal_places=2,
        initial=0,
        widget=forms.NumberInput(attrs={**TEXT, "step": "0.5"}),
    )
    over_scope_reason = forms.CharField(
        required=False,
        label="Reason to go past the scope size",
        widget=forms.Textarea(attrs={**TEXT, "rows": 2}),
    )

    def __init__(self, *args: Any, sprint: Sprint, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Open items in no open sprint, highest priority first.
        item_field = self.fields["item"]
        assert isinstance(item_field, forms.ModelChoiceField)
        item_field.queryset = (
            Item.objects.filter(status__in=IC.OPEN_STATUSES)
            .exclude(sprint_cards__sprint__status__in=[SprintStatus.PLANNED, SprintStatus.ACTIVE])
            .order_by("-priority_score", "id")
        )


class MoveForm(forms.Form):
    column = forms.ChoiceField(choices=Column.choices)
    position = forms.IntegerField(required=False, min_value=1)
    expected_version = forms.IntegerField(required=False, min_value=1)


class TimeLogForm(forms.Form):
    hours = forms.DecimalField(
        min_value=0, max_digits=5, decimal_places=2, widget=forms.NumberInput(attrs={**TEXT, "step": "0.25"})
    )
    day = forms.DateField(widget=DATE)
    note = forms.CharField(required=False, max_length=300, widget=forms.TextInput(attrs=TEXT))
    user = forms.ModelChoiceField(
        User.objects.filter(is_active=True),
        required=False,
        label="For",
        help_text="Managers only: hours someone else spent.",
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )

    def __init__(self, *args: Any, can_log_for_others: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["day"].initial = timezone.localdate()
        if not can_log_for_others:
            del self.fields["user"]


class ReviewForm(forms.Form):
    """what_changed and next_sprint, plus decision_<card>, disposition_<card>, note_<card> per card."""

    what_changed = forms.CharField(widget=forms.Textarea(attrs={**TEXT, "rows": 3}))
    next_sprint = forms.ModelChoiceField(
        Sprint.objects.none(),
        required=False,
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )
    expected_version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, sprint: Sprint, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cards = list(
            sprint.cards.select_related("item").prefetch_related("item__indicators__measurements")
        )
        next_field = self.fields["next_sprint"]
        assert isinstance(next_field, forms.ModelChoiceField)
        next_field.queryset = Sprint.objects.open().filter(team=sprint.team).exclude(pk=sprint.pk)
        self.fields["expected_version"].initial = sprint.version
        for card in self.cards:
            self.fields[f"decision_{card.pk}"] = forms.ChoiceField(
                choices=[("", "—"), *Decision.choices],
                required=False,
                label="Decision",
                widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
            )
            self.fields[f"disposition_{card.pk}"] = forms.ChoiceField(
                choices=[
                    ("", "—"),
                    (Disposition.REGISTER, Disposition.REGISTER.label),
                    (Disposition.NEXT_SPRINT, Disposition.NEXT_SPRINT.label),
                ],
                required=False,
                label="Goes",
                widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
            )
            self.fields[f"note_{card.pk}"] = forms.CharField(
                required=False, label="Note", widget=forms.TextInput(attrs=TEXT)
            )

    def decisions(self) -> dict[int, dict[str, str]]:
        data = self.cleaned_data
        return {
            card.pk: {
                "decision": data.get(f"decision_{card.pk}", ""),
                "disposition": data.get(f"disposition_{card.pk}", ""),
                "note": data.get(f"note_{card.pk}", ""),
            }
            for card in self.cards
        }

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "card": card,
                "decision": self[f"decision_{card.pk}"],
                "disposition": self[f"disposition_{card.pk}"],
                "note": self[f"note_{card.pk}"],
            }
            for card in self.cards
        ]
