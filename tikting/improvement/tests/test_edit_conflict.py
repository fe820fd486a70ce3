"""The item's edit conflict, field by field: what you changed as well as what they changed, people
by their full name, dates in the UI's format, one button to save the merged form."""

import datetime as dt

import pytest
from django.urls import reverse

from tikting.improvement import services as S
from tikting.improvement.tests.test_register_views import accept, edit_data, make_items

pytestmark = pytest.mark.django_db


def test_rows_for_both_sides_with_names_and_dates(cast, login):
    item = accept(make_items(cast, 1)[0], cast, owner=cast.owner)
    opened = edit_data(item)  # the manager opens the form ...
    S.update_item(item, actor=cast.admin, owner=cast.other_owner, target_date=dt.date(2027, 3, 5))
    opened.update(title="My title")
    response = login(cast.manager).post(reverse("improvement:edit", args=[item.pk]), opened)

    assert response.status_code == 409
    conflict = response.context["conflict"]
    assert conflict["by"] == "Ada Admin"
    rows = {row["label"]: row for row in conflict["rows"]}
    assert (rows["Owner"]["opened"], rows["Owner"]["theirs"]) == ("Olga Owner", "Otto Other")
    assert rows["Target date"]["theirs"] == "5 Mar 2027"  # not 2027-03-05
    assert rows["Title"]["you_changed"] and not rows["Title"]["they_changed"]  # mine is shown too
    assert rows["Title"]["yours"] == "My title"
    page = response.content.decode()
    assert "Save my changes on top of theirs" in page and 'form="item-form"' in page
