"""Pick lists clients need to build forms: services, users, every choice set and lifecycle rule."""

from django.db import models
from django.http import HttpRequest

from tikting.accounts.models import Role, User
from tikting.cmdb.models import Service
from tikting.core.api import errors

from .. import choices as C
from .. import filtersets
from ..models import Comment, Measurement
from .common import lookups
from .schemas import ChoicesOut, ServiceOut, UserOut

# --- Pick lists ---------------------------------------------------------------------------------


@lookups.get("/services", response={200: list[ServiceOut], **errors()}, tags=["register"])
def list_services(request: HttpRequest):
    """Business services (CMDB), for the service field and filter."""
    return Service.objects.all()


@lookups.get("/users", response={200: list[UserOut], **errors()}, tags=["register"])
def list_users(request: HttpRequest):
    """Active users, for owner pickers."""
    return User.objects.filter(is_active=True).order_by("username")


def _choices(choices: type[models.TextChoices]) -> list[dict[str, str]]:
    return [{"value": value, "label": str(label)} for value, label in choices.choices if value]


@lookups.get("/choices", response={200: ChoicesOut, **errors()}, tags=["register"])
def list_choices(request: HttpRequest):
    """Every choice set and the lifecycle rules, so clients can build forms without hard-coding."""
    return {
        "statuses": _choices(C.Status),
        "steps": [str(s) for s in C.STEPS],
        "transitions": {
            str(k): sorted((str(v) for v in vs), key=C.STEPS.index) for k, vs in C.TRANSITIONS.items()
        },
        "preconditions": {str(k): list(v) for k, v in C.PRECONDITIONS.items()},
        "back_preconditions": list(C.UNBLOCKED_ONLY),
        "gap_messages": dict(C.GAP_MESSAGES),
        "gap_hints": dict(C.GAP_HINTS),
        "status_groups": {
            "open": sorted(C.OPEN_STATUSES),
            "active": [str(s) for s in C.STEPS],
            "ended": sorted(C.ENDED_STATUSES),
        },
        "practices": _choices(C.Practice),
        "quadrants": _choices(C.Quadrant),
        "source_channels": _choices(C.SourceChannel),
        "justification_types": _choices(C.JustificationType),
        "decisions": _choices(C.Decision),
        "directions": _choices(C.Direction),
        "indicator_roles": _choices(C.IndicatorRole),
        "evaluation_results": _choices(C.EvaluationResult),
        "outcomes": _choices(C.Outcome),
        "benefit_categories": _choices(C.BenefitCategory),
        "sustainment": _choices(C.Sustainment),
        "measurement_sources": _choices(Measurement.Source),
        "comment_kinds": _choices(Comment.Kind),
        "roles": _choices(Role),
        "flags": list(filtersets.FLAGS),
        "sorts": list(filtersets.SORTS),
    }
