"""Forms of the item page. They parse input only: the services validate the rules and their
ValidationError is mapped back onto these forms by the views (`apply_errors`)."""

from __future__ import annotations

from typing import Any, TypeVar

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tikting.accounts.models import Role, User
from tikting.lib import display

from . import choices as C
from . import services as S

FieldT = TypeVar("FieldT", bound=forms.Field)

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def _text(rows: int = 2, **attrs: Any) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows, **attrs})


class StyledForm(forms.Form):
    """Bootstrap classes on every visible widget (templates stay free of widget markup)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.HiddenInput | forms.RadioSelect | forms.CheckboxInput):
                continue
            css = (
                "form-select form-select-sm"
                if isinstance(widget, forms.Select)
                else "form-control form-control-sm"
            )
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()

    def field_of(self, name: str, kind: type[FieldT]) -> FieldT:
        """The named field as the kind it is, to set what only that kind has (choices, queryset)."""
        field = self.fields[name]
        assert isinstance(field, kind)
        return field

    def choices_of(self, name: str) -> list[tuple[Any, Any]]:
        """A choice field's choices, read back as the list of pairs (or groups) Django keeps."""
        # django-stubs types the getter like the setter, which also takes callables and Choices.
        return self.field_of(name, forms.ChoiceField).choices  # type: ignore[return-value]


class UserChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return f"{obj} ({obj.get_role_display()})"


def owner_candidates():
    """Users who may own an item: improvement owners and above."""
    return User.objects.filter(is_active=True, role__in=[Role.OWNER, Role.MANAGER, Role.ADMIN]).order_by(
        "first_name", "last_name", "username"
    )


def worker_candidates():
    """Users who may be given an action or an indicator to measure: contributors and above
    (permissions.can_own_work)."""
    return User.objects.filter(is_active=True).exclude(role=Role.VIEWER)


class VersionedForm(StyledForm):
    """A form on a record with optimistic concurrency: it carries the version it was read at."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)


class TransitionForm(VersionedForm):
    to = forms.ChoiceField(choices=C.Status.choices, widget=forms.HiddenInput)
    reason = forms.CharField(required=False, max_length=300)


class AssessForm(VersionedForm):
    decision = forms.ChoiceField(choices=C.Decision.choices, widget=forms.RadioSelect)
    owner = UserChoiceField(
        queryset=User.objects.none(), required=False, empty_label=_("— keep / none —"), label=_("Owner")
    )
    reason = forms.CharField(required=False, widget=_text(2), label=_("Reason"))
    revisit_date = forms.DateField(required=False, widget=DATE, label=_("Revisit on"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.field_of("owner", forms.ModelChoiceField).queryset = owner_candidates()


class ReopenForm(VersionedForm):
    reason = forms.CharField(required=False, widget=_text(2), label=_("Why reopen"))


class UndoAcceptanceForm(VersionedForm):
    reason = forms.CharField(required=False, widget=_text(2), label=_("Why undo the acceptance"))


class FollowUpRaiseForm(StyledForm):
    """A follow-up raised from the item page (also once the item is closed)."""

    title = forms.CharField(max_length=200, label=_("Follow-up title"))
    description = forms.CharField(required=False, widget=_text(2), label=_("Description"))


class BlockForm(VersionedForm):
    blocked = forms.BooleanField(required=False, widget=forms.HiddenInput)
    blocker = forms.CharField(required=False, widget=_text(2), label=_("What blocks the item"))


class EscalateForm(StyledForm):
    note = forms.CharField(required=False, widget=_text(2), label=_("What you need from the register owner"))


class EvaluateForm(VersionedForm):
    note = forms.CharField(required=False, widget=_text(2), label=_("Evaluation note"))


class CloseForm(VersionedForm):
    # No outcome is chosen for the user: the view starts from the evaluation's (services.default_outcome).
    outcome = forms.ChoiceField(
        choices=[("", _("— choose the outcome —")), *C.Outcome.choices], required=False, label=_("Outcome")
    )
    benefit_category = forms.ChoiceField(
        choices=[("", "—"), *C.BenefitCategory.choices], required=False, label=_("Benefit realised")
    )
    realised_delta = forms.DecimalField(
        required=False, max_digits=16, decimal_places=4, label=_("Realised delta")
    )
    lessons = forms.CharField(required=False, widget=_text(3), label=_("Lessons learned"))

    def __init__(self, *args: Any, withdraw_only: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if withdraw_only:
            self.field_of("outcome", forms.ChoiceField).choices = [
                (C.Outcome.WITHDRAWN, C.Outcome.WITHDRAWN.label)
            ]
            self.fields["outcome"].initial = C.Outcome.WITHDRAWN
            self.fields["lessons"].label = _("Why is it withdrawn? (lessons learned)")


class FollowUpForm(StyledForm):
    title = forms.CharField(required=False, max_length=200, label=_("Follow-up title"))
    description = forms.CharField(required=False, widget=_text(1), label=_("Description"))

    def has_content(self) -> bool:
        data = getattr(self, "cleaned_data", {}) or {}
        return bool((data.get("title") or "").strip() or (data.get("description") or "").strip())


FollowUpFormSet = forms.formset_factory(FollowUpForm, extra=3, max_num=10, absolute_max=10)
FOLLOW_UP_PREFIX = "follow_ups"


class CommentForm(StyledForm):
    # data-mentions: app.js offers the people whose name follows an `@` (the notifications app).
    body = forms.CharField(
        widget=_text(2, placeholder=_("Add a comment… (@name tells that person)"), **{"data-mentions": ""}),
        label=_("Comment"),
    )


class IndicatorForm(VersionedForm):
    name = forms.CharField(max_length=200, label=_("Indicator"))
    unit = forms.CharField(max_length=30, required=False, label=_("Unit"))
    direction = forms.ChoiceField(choices=C.Direction.choices, label=_("Direction"))
    role = forms.ChoiceField(choices=C.IndicatorRole.choices, label=_("Role"))
    baseline_value = forms.DecimalField(required=False, max_digits=16, decimal_places=4, label=_("Baseline"))
    baseline_date = forms.DateField(required=False, widget=DATE, label=_("Baseline date"))
    baseline_method = forms.CharField(max_length=300, required=False, label=_("Baseline method"))
    target_value = forms.DecimalField(required=False, max_digits=16, decimal_places=4, label=_("Target"))
    target_date = forms.DateField(required=False, widget=DATE, label=_("Target date"))
    min_value = forms.DecimalField(
        required=False,
        max_digits=16,
        decimal_places=4,
        label=_("Lowest possible"),
        help_text=_("Empty: from the unit (0 for counts and times, 0 to 100 for %, a to b for “a-b”)"),
    )
    max_value = forms.DecimalField(
        required=False, max_digits=16, decimal_places=4, label=_("Highest possible")
    )
    owner = UserChoiceField(
        queryset=User.objects.none(),
        required=False,
        label=_("Measured by"),
        help_text=_("Records its measurements, besides the item's owner"),
    )

    # The indicator fields a person edits (the metric binding is set by the metrics engine).
    SERVICE_FIELDS = tuple(sorted(S.INDICATOR_FIELDS - {"metric_key", "metric_scope"}))

    @classmethod
    def for_indicator(cls, indicator, **kwargs: Any) -> IndicatorForm:
        initial = {name: getattr(indicator, name) for name in cls.SERVICE_FIELDS}
        for name in ("baseline_value", "target_value", "min_value", "max_value"):
            if initial[name] is not None:
                initial[name] = display.number(initial[name])  # 40, not 4E+1
        initial["version"] = indicator.version
        return cls(initial=initial, **kwargs)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = worker_candidates()

    def service_data(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.SERVICE_FIELDS}


class MeasurementForm(StyledForm):
    value = forms.DecimalField(max_digits=16, decimal_places=4, label=_("Value"))
    measured_at = forms.DateTimeField(required=False, widget=DATETIME, label=_("Measured at"))
    note = forms.CharField(max_length=300, required=False, label=_("Note"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("measured_at", timezone.localtime().replace(second=0, microsecond=0))


class ActionForm(StyledForm):
    title = forms.CharField(max_length=200, label=_("Action"))
    owner = UserChoiceField(queryset=User.objects.none(), required=False, label=_("Owner"))
    due_date = forms.DateField(required=False, widget=DATE, label=_("Due"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = worker_candidates()


class ActionToggleForm(VersionedForm):
    done = forms.BooleanField(required=False)


class ActionCancelForm(VersionedForm):
    reason = forms.CharField(required=False, widget=_text(1), label=_("Why it will not be done"))


def apply_errors(form: forms.BaseForm, exc: ValidationError, field_map: dict[str, Any] | None = None) -> None:
    """Put a service's ValidationError onto a form: each message on the field it names, or on top.

    `field_map` sends a service key to another form (e.g. "follow_ups[2].title" to a formset row):
    {key: (form, field)}.
    """
    field_map = field_map or {}
    if not hasattr(exc, "error_dict"):
        for message in exc.messages:
            form.add_error(None, message)
        return
    for key, messages in exc.message_dict.items():
        target, field = field_map.get(key, (form, key))
        for message in messages:
            if field in target.fields:
                target.add_error(field, message)
            else:
                target.add_error(None, message)
