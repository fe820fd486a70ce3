"""A section's own address (/governance/, /cadence/) leads to its first page, as the menu does,
instead of a 404; the page it leads to keeps its own permission checks."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("address", "first_page"), [("/governance/", "/governance/agenda/"), ("/cadence/", "/cadence/sprints/")]
)
def test_a_section_address_leads_to_its_first_page(client, django_user_model, address, first_page):
    answer = client.get(address)
    assert answer.status_code == 302 and answer["Location"] == first_page
    assert client.get(first_page).status_code == 302  # anonymous: to the login page
    assert client.post(address).status_code == 405  # nothing to post there
    user = django_user_model.objects.create_user("v", password="pw-long-enough-1")
    client.force_login(user)
    assert client.get(address, follow=True).status_code == 200
