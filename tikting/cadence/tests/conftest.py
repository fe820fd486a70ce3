"""Fixtures of the cadence tests: a team with the contributor in it, and its sprint under way."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tikting.accounts.models import Team
from tikting.cadence import services as CS
from tikting.cadence.models import Sprint

# The sprint under test runs from SPRINT_START to SPRINT_END, today inside.
SPRINT_START = timezone.localdate() - dt.timedelta(days=5)
SPRINT_END = SPRINT_START + dt.timedelta(days=13)


@pytest.fixture
def team(cast) -> Team:
    team = Team.objects.create(name="Service desk")
    cast.contributor.team = team
    cast.contributor.save()
    return team


@pytest.fixture
def sprint(cast, team) -> Sprint:
    return CS.create_sprint(
        actor=cast.manager,
        team=team,
        name="Sprint 1",
        goal="Faster fixes",
        start=SPRINT_START,
        end=SPRINT_END,
    )
