"""Forms of the intake pages: the queue's filters, the triage decisions, bulk triage, and the manual
channels. Forms only parse input; the services validate the rules and the views put their errors
back on the fields."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from tikting.cmdb.models import Service
from tikting.core.itsm import Practice
from tikting.improvement.choices import SourceChannel
from tikting.improvement.forms import RatingInput, StyledForm, parse_ref
from tikting.improvement.models import Item

from .models import CandidateStatus

STATUS_FILTERS = (
    [("new", "New: to triage"), ("open", "New or deferred")]
    + [(value, label) for value, label in CandidateStatus.choices if value != "new"]
    + [("all", "Any status")]
)
SORTS = [
    ("score", "Score, highest first"),
    ("newest", "Newest first"),
    ("magnitude", "Magnitude, largest first"),
]


def item_from_ref(text: str) -> Item | None:
    """The register item a reference names ("CI-00012", "12"); None for an empty one."""
    if not (text or "").strip():
        return None
    try:
        pk = parse_ref(text)
    except ValueError as exc:
        raise ValidationError("Give an item reference such as CI-00012, or its id.") from exc
    item = Item.objects.filter(pk=pk).first() if pk else None
    if item is None:
        raise ValidationError(f"No register item {text}.")
    return item


def _services() -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=Service.objects.order_by("name"), required=False, empty_label="No service"
    )


class QueueFilterForm(forms.Form):
    status = forms.ChoiceField(choices=STATUS_FILTERS, required=False)
    channel = forms.ChoiceField(choices=[("", "Any channel"), *SourceChannel.choices], required=False)
    detector = forms.CharField(required=False, max_length=60)
    service = forms.ModelChoiceField(queryset=Service.objects.order_by("name"), required=False)
    sort = forms.ChoiceField(choices=SORTS, required=False)
    q = forms.CharField(required=False, max_length=200)


class VersionedForm(StyledForm):
    expected_version = forms.IntegerField(widget=forms.HiddenInput, required=False)


class AcceptForm(VersionedForm):
    """Accept into the register: the item as it will be created, pre-filled from the candidate."""

    title = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}))
    practice = forms.ChoiceField(choices=Practice.choices)
    service = _services()
    impact = forms.IntegerField(min_value=1, max_value=5, widget=RatingInput)
    effort = forms.IntegerField(min_value=1, max_value=5, widget=RatingInput)


class MergeForm(VersionedForm):
    item = forms.CharField(
        label="Register item",
        max_length=20,
        widget=forms.TextInput(attrs={"list": "recent-items", "placeholder": "CI-00012"}),
        help_text=(
            "Its reference (CI-00012) or id: the evidence becomes its links, a comment says what was merged."
        ),
    )
    reason = forms.CharField(label="Note", required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def clean_item(self) -> Item | None:
        return item_from_ref(self.cleaned_data["item"])


class DeferForm(VersionedForm):
    until = forms.DateField(label="Back in the queue on", widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class DismissForm(VersionedForm):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required. The pattern stays dismissed unless its evidence grows past the threshold shown.",
    )


class BulkForm(forms.Form):
    """The same decision for the candidates ticked on the queue (their ids: the view reads `ids`)."""

    action = forms.ChoiceField(
        choices=[
            ("", "Choose…"),
            ("accept", "Accept into the register"),
            ("merge", "Merge into an item"),
            ("defer", "Defer"),
            ("dismiss", "Dismiss"),
        ]
    )
    reason = forms.CharField(required=False, max_length=2000)
    until = forms.DateField(required=False)
    item = forms.CharField(required=False, max_length=20)

    def clean_item(self) -> Item | None:
        return item_from_ref(self.cleaned_data.get("item", ""))


class SubmitForm(StyledForm):
    """A finding or feedback for the intake queue."""

    title = forms.CharField(
        max_length=200, widget=forms.TextInput(attrs={"placeholder": "What should be better, in one line"})
    )
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 5, "placeholder": "What happened, what it cost, what you would change"}
        ),
    )
    service = _services()
    anonymous = forms.BooleanField(
        required=False,
        label="Anonymous to peers",
        help_text="Your name is shown to improvement managers and administrators only.",
    )

    def __init__(self, *args: Any, anonymous_allowed: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not anonymous_allowed:
            del self.fields["anonymous"]
