"""Choice sets of the register, and the lifecycle (the ITIL 7-step model) as data."""

from decimal import Decimal

from django.db import models

from tikting.core.itsm import Practice  # noqa: F401  (the ITIL practices, shared with the metrics)


class JustificationType(models.TextChoices):
    BUSINESS = "business", "Business"
    OPERATIONAL = "operational", "Operational"


class SourceChannel(models.TextChoices):
    STAFF_FEEDBACK = "staff_feedback", "Staff feedback"
    AUDIT_FINDING = "audit_finding", "Audit finding"
    POST_INCIDENT_REVIEW = "post_incident_review", "Post-incident review"
    PROBLEM = "problem", "Problem record"
    CHANGE_REVIEW = "change_review", "Change review"
    SLA_BREACH = "sla_breach", "SLA breach"
    SURVEY = "survey", "Survey / CSAT"
    REQUEST_ANALYSIS = "request_analysis", "Request analysis"
    KNOWLEDGE = "knowledge", "Knowledge"
    ASSET_DATA = "asset_data", "Asset data"
    OTHER = "other", "Other"


class Quadrant(models.TextChoices):
    """Impact × effort: impact and effort of 3 or more count as high."""

    QUICK_WIN = "quick_win", "Quick win"
    MAJOR_PROJECT = "major_project", "Major project"
    FILL_IN = "fill_in", "Fill-in"
    THANKLESS = "thankless", "Thankless"


HIGH_RATING = 3  # a 1-5 rating of 3 or more is "high" on its axis


def quadrant_for(impact: int, effort: int) -> str:
    high_impact, high_effort = impact >= HIGH_RATING, effort >= HIGH_RATING
    if high_impact and not high_effort:
        return Quadrant.QUICK_WIN
    if high_impact and high_effort:
        return Quadrant.MAJOR_PROJECT
    if not high_impact and not high_effort:
        return Quadrant.FILL_IN
    return Quadrant.THANKLESS


def priority_score(impact: int, effort: int) -> int:
    """1..25, higher first: impact weighs up, effort down (5/1 scores 25, 1/5 scores 1)."""
    return impact * (6 - effort)


class Status(models.TextChoices):
    NEW = "new", "New: to assess"
    DEFERRED = "deferred", "Deferred"
    REJECTED = "rejected", "Rejected"
    VISION = "vision", "1. Vision"
    CURRENT_STATE = "current_state", "2. Where are we now?"
    TARGET_STATE = "target_state", "3. Where do we want to be?"
    PLAN = "plan", "4. How do we get there?"
    ACTION = "action", "5. Take action"
    EVALUATION = "evaluation", "6. Did we get there?"
    MOMENTUM = "momentum", "7. Keep the momentum"
    CLOSED = "closed", "Closed"


# The seven steps, in order.
STEPS: list[str] = [
    Status.VISION,
    Status.CURRENT_STATE,
    Status.TARGET_STATE,
    Status.PLAN,
    Status.ACTION,
    Status.EVALUATION,
    Status.MOMENTUM,
]
ACTIVE_STATUSES = frozenset(STEPS)
OPEN_STATUSES = frozenset({Status.NEW, *STEPS})  # "open": not closed, rejected or deferred
ENDED_STATUSES = frozenset({Status.CLOSED, Status.REJECTED})
# The complement of OPEN_STATUSES. `status NOT IN these` selects the open items as `status IN
# OPEN_STATUSES` does, and lets SQLite (which keeps no statistics unless ANALYZEd) read a query's
# other, narrower index (target date, blocked) instead of most of the register through the status
# index: the leadership view's and % on time's open-item queries (about 10x faster at 10,000 items).
NOT_OPEN_STATUSES = frozenset(Status.values) - OPEN_STATUSES

# Step transitions (assessment and closure have their own services). Forward one step, or back one.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.VISION: frozenset({Status.CURRENT_STATE}),
    Status.CURRENT_STATE: frozenset({Status.TARGET_STATE, Status.VISION}),
    Status.TARGET_STATE: frozenset({Status.PLAN, Status.CURRENT_STATE}),
    Status.PLAN: frozenset({Status.ACTION, Status.TARGET_STATE}),
    Status.ACTION: frozenset({Status.EVALUATION, Status.PLAN}),
    Status.EVALUATION: frozenset({Status.MOMENTUM, Status.ACTION}),
    Status.MOMENTUM: frozenset(),
}

# What an item needs before it may enter a step, or close (checked by Item.gaps_for(), which also
# says, for a gap about actions, which actions lack what). A step back needs only UNBLOCKED_ONLY.
PRECONDITIONS: dict[str, tuple[str, ...]] = {
    Status.CURRENT_STATE: ("unblocked", "vision"),
    Status.TARGET_STATE: ("unblocked", "vision", "baseline"),
    Status.PLAN: ("unblocked", "vision", "baseline", "target"),
    Status.ACTION: (
        "unblocked",
        "owner",
        "target_date",
        "baseline",
        "target",
        "planned_action",
        "actions_assigned",
    ),
    Status.EVALUATION: ("unblocked", "measurement", "actions_settled"),
    Status.MOMENTUM: ("unblocked", "evaluation", "actions_settled"),
    # Closing from step 7, and withdrawing from any open status.
    Status.CLOSED: ("unblocked", "actions_settled"),
}
UNBLOCKED_ONLY: tuple[str, ...] = ("unblocked",)
# "Ready to act on" (the product's rule): owner, target date, an indicator with baseline and target.
READINESS: tuple[str, ...] = ("owner", "target_date", "baseline", "target")

# Each gap says what the item needs (GAP_MESSAGES: the checklist on the item page) and what to do
# about it (GAP_HINTS); the refusal of a move lists them ("CI-00012 cannot enter 'Take action': it
# needs an owner — an improvement manager assigns one; …"), in the UI and the API alike.
GAP_MESSAGES = {
    "unblocked": "to be unblocked",
    "vision": "a vision (the business outcome this serves)",
    "owner": "an owner",
    "target_date": "a target date",
    "indicator": "an indicator",
    "baseline": "an indicator with a baseline",
    "target": "an indicator with a target",
    "planned_action": "at least one planned action",
    "actions_assigned": "an owner and a due date on every action",
    "actions_settled": "every action done, or cancelled with a reason",
    "measurement": "a measurement of a primary indicator taken since action started",
    "evaluation": "an evaluation result",
}
GAP_HINTS = {
    "unblocked": "record what resolved the blocker, then unblock it under Blockers",
    "vision": "edit the item",
    "owner": "an improvement manager assigns one",
    "target_date": "edit the item",
    "indicator": "add one under Indicators",
    "baseline": "add an indicator or give one a baseline",
    "target": "give the indicator a target",
    "planned_action": "add one under Plan",
    "actions_assigned": "set them under Plan",
    "actions_settled": "mark each done, or cancel it with a reason under Plan",
    "measurement": "record one under Indicators",
    "evaluation": "evaluate the item under Did we get there?",
}


class Decision(models.TextChoices):
    ACCEPT = "accept", "Accept"
    DEFER = "defer", "Defer"
    REJECT = "reject", "Reject"


class Direction(models.TextChoices):
    LOWER = "lower", "Lower is better"
    HIGHER = "higher", "Higher is better"


class IndicatorRole(models.TextChoices):
    PRIMARY = "primary", "Primary (measures success)"
    IMPACTED = "impacted", "Impacted (watched for side effects)"


class EvaluationResult(models.TextChoices):
    ACHIEVED = "achieved", "Achieved"
    PARTLY = "partly", "Partly achieved"
    NOT_ACHIEVED = "not_achieved", "Not achieved"


class Outcome(models.TextChoices):
    SUCCESSFUL = "successful", "Successful"
    PARTLY_SUCCESSFUL = "partly_successful", "Partly successful"
    UNSUCCESSFUL = "unsuccessful", "Unsuccessful"
    WITHDRAWN = "withdrawn", "Withdrawn"


# The closure outcome an evaluation result stands for: the close form and the API default to it,
# and an outcome better than the evaluation needs its reason in the lessons.
OUTCOME_FOR_RESULT: dict[str, str] = {
    EvaluationResult.ACHIEVED: Outcome.SUCCESSFUL,
    EvaluationResult.PARTLY: Outcome.PARTLY_SUCCESSFUL,
    EvaluationResult.NOT_ACHIEVED: Outcome.UNSUCCESSFUL,
}
OUTCOME_RANK: dict[str, int] = {Outcome.UNSUCCESSFUL: 0, Outcome.PARTLY_SUCCESSFUL: 1, Outcome.SUCCESSFUL: 2}


class BenefitCategory(models.TextChoices):
    TIME_SAVED = "time_saved", "Time saved"
    COST_REDUCED = "cost_reduced", "Cost reduced"
    CUSTOMER_SATISFACTION = "customer_satisfaction", "Customer satisfaction"
    QUALITY = "quality", "Quality"
    RISK_REDUCED = "risk_reduced", "Risk reduced"


class Sustainment(models.TextChoices):
    NONE = "", "Not under watch"
    HOLDING = "holding", "Holding"
    SLIPPED = "slipped", "Slipped back"
    SUSTAINED = "sustained", "Sustained"


# Sustainment (services.check_item_sustainment): during the control period an item slips back when
# an indicator that met its target no longer meets it, or when one that did not gives back more
# than this share of the improvement it had reached at closure (baseline 40, closed at 18, lower is
# better: 22 gained, slipped above 18 + 0.25 × 22 = 23.5).
SUSTAINMENT_TOLERANCE = Decimal("0.25")
