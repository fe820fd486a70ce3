import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tikting.improvement import services as S
from tikting.improvement.filtersets import filter_items, sort_items
from tikting.improvement.models import Item

pytestmark = pytest.mark.django_db


def titles(qs):
    return set(qs.values_list("title", flat=True))


def test_to_assess_includes_deferred_items_whose_revisit_date_came(cast):
    S.create_item(actor=cast.contributor, title="new")
    later = S.create_item(actor=cast.contributor, title="deferred, later")
    due = S.create_item(actor=cast.contributor, title="deferred, due")
    for item in (later, due):
        S.assess_item(
            item,
            actor=cast.manager,
            decision="defer",
            reason="r",
            revisit_date=timezone.localdate() + dt.timedelta(days=5),
        )
    Item.objects.filter(pk=due.pk).update(revisit_date=timezone.localdate())
    assert titles(filter_items(Item.objects.all(), {"flag": "to_assess"})) == {"new", "deferred, due"}
    assert titles(filter_items(Item.objects.all(), {"flag": "deferred_due"})) == {"deferred, due"}


def test_impact_and_effort_filters_select_one_cell(cast):
    S.create_item(actor=cast.contributor, title="5/1", impact=5, effort=1)
    S.create_item(actor=cast.contributor, title="5/2", impact=5, effort=2)
    S.create_item(actor=cast.contributor, title="4/1", impact=4, effort=1)
    assert titles(filter_items(Item.objects.all(), {"impact": "5", "effort": "1"})) == {"5/1"}
    assert titles(filter_items(Item.objects.all(), {"impact": "5,4", "effort": "1"})) == {"5/1", "4/1"}
    with pytest.raises(ValidationError) as err:
        filter_items(Item.objects.all(), {"impact": "9"})
    assert "impact" in err.value.message_dict


def test_sorting_by_target_date_keeps_empty_dates_last_both_ways(cast):
    today = timezone.localdate()
    S.create_item(actor=cast.contributor, title="none")
    S.create_item(actor=cast.manager, title="soon", target_date=today + dt.timedelta(days=1))
    S.create_item(actor=cast.manager, title="late", target_date=today + dt.timedelta(days=9))
    up = list(sort_items(Item.objects.all(), "target_date").values_list("title", flat=True))
    down = list(sort_items(Item.objects.all(), "-target_date").values_list("title", flat=True))
    assert up == ["soon", "late", "none"]
    assert down == ["late", "soon", "none"]
