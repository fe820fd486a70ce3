"""Property-based tests of the API against its own OpenAPI schema (schemathesis + hypothesis).

The schema is loaded from the Django WSGI app in-process; requests carry an improvement manager's
bearer token, so most writes reach the services. Every GET is exercised, and a bounded set of
POST/PATCH operations, with valid and invalid data. Every check of schemathesis runs: no 5xx,
documented status codes, content types and headers, bodies that match the documented response
schemas, invalid data refused (the bodies are strict: "4" is not 4, 0 is not a date), valid data
accepted. Hypothesis is derandomised with few examples so the run is repeatable and short.
"""

import datetime as dt
import re
from dataclasses import dataclass

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from tikting.accounts.models import ApiToken
from tikting.governance import services as GS
from tikting.improvement import services as S
from tikting.improvement.models import Action, Indicator, Item
from tikting.test import make_cast, ready_item

# Writes worth fuzzing: creation, edits, the lifecycle verbs, children. DELETE is left out so the
# seeded records stay addressable for the rest of the run.
WRITES = re.compile(
    r"^(POST|PATCH) /api/(items(/rank)?|items/\{item_id\}(/(assess|transition|block|escalate|evaluate|close"
    r"|reopen|comments|indicators|actions))?|indicators/\{indicator_id\}(/measurements)?"
    r"|actions/\{action_id\}|tokens|governance/reviews(/\{review_id\}/minutes)?)$"
)
# Valid data may still break a rule the schema cannot express ("defer needs a reason", "no
# measurement in the future"): the services answer 422 naming the field, documented on every
# operation (tikting.core.api.errors). Those 422s are accepted answers to valid data, as 409 (a
# stale expected_version) and 404 (an id that does not exist) are.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]
            }
        }
    }
)


@dataclass
class Seed:
    token: str
    ids: dict[str, list[int]]


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Requests go straight to the WSGI app, whose request signals close "obsolete" connections:
    inside the test's transaction that would close it. Django's test Client detaches the same
    receiver for the same reason."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def no_sign_in_throttle(settings):
    """The ignored-auth check sends bad tokens on purpose: counted as failed sign-ins they would lock
    the run's address out (429) within a few operations (tikting/accounts/throttle.py)."""
    settings.AXES_ENABLED = False


@pytest.fixture
def seed(db):
    """A small register: a new item, one ready to act on, one closed, with indicators and actions."""
    cast = make_cast()
    new = S.create_item(actor=cast.contributor, title="Fewer password resets", service=cast.email)
    ready = ready_item(cast)
    closed = ready_item(cast, title="Patch faster")
    for action in closed.actions.all():  # a withdrawal needs every action done or cancelled
        S.update_action(action, actor=cast.owner, done=True, expected_version=action.version)
    S.close_item(closed, actor=cast.manager, outcome="withdrawn", lessons="Superseded")
    S.add_comment(ready, actor=cast.contributor, body="Seen it twice this week")
    indicator = ready.indicators.get()
    S.record_measurement(
        indicator, actor=cast.owner, value="9", measured_at=timezone.now() - dt.timedelta(days=1)
    )
    review = GS.create_review(actor=cast.manager)
    _, raw = ApiToken.issue(cast.manager, "schemathesis")
    return Seed(
        token=raw,
        ids={
            "item_id": [new.pk, ready.pk, closed.pk],
            "indicator_id": [indicator.pk],
            "action_id": list(ready.actions.values_list("pk", flat=True)),
            "token_id": [],
            "review_id": [review.pk],
        },
    )


# Loaded in-process from the WSGI app (pytest-django has configured Django by collection time);
# serving the schema touches no database.
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application(), config=CONFIG).include(
    lambda ctx: (
        ctx.operation.method.upper() == "GET"
        or bool(WRITES.match(f"{ctx.operation.method.upper()} {ctx.operation.path}"))
    )
)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=8,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, seed):
    # Random ids mostly miss (404s are fine); point every other case at a seeded record instead,
    # so handlers and services run on real rows too. Only an id the schema allows (1 to 2**63 - 1)
    # is replaced: a negative case's invalid id must stay invalid, or the request it makes is valid
    # and its acceptance looks like a schema violation accepted.
    for name, ids in seed.ids.items():
        value = (case.path_parameters or {}).get(name)
        if ids and isinstance(value, int) and 1 <= value < 2**63 and value % 2 == 0:
            case.path_parameters[name] = ids[value % len(ids)]
    # Likewise send the current version with every other edit, so some PATCHes get past the 409.
    body = case.body if isinstance(case.body, dict) else {}
    version = body.get("expected_version")
    if isinstance(version, int) and version % 2 == 0 and case.path_parameters:
        model = {"item_id": Item, "indicator_id": Indicator, "action_id": Action}
        for name, pk in case.path_parameters.items():
            row = model[name].objects.filter(pk=pk).first() if name in model and isinstance(pk, int) else None
            if row is not None:
                body["expected_version"] = row.version
    case.call_and_validate(headers={"Authorization": f"Bearer {seed.token}"})
