"""Users and roles are managed by administrators on the admin site (/admin/)."""

from __future__ import annotations

import pytest
from django.test import Client

from tikting.accounts.models import Role, User
from tikting.test import form_data

pytestmark = pytest.mark.django_db


def _change_role(client: Client, user: User, role: str):
    url = f"/admin/accounts/user/{user.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    data = {k: v for k, v in form_data(page.context["adminform"].form).items() if v is not None}
    data["role"] = role
    return client.post(url, data)


def test_a_role_given_on_the_admin_site_brings_its_rights_there(cast):
    admin = Client()
    admin.force_login(cast.admin)
    assert _change_role(admin, cast.manager, Role.ADMIN).status_code == 302
    cast.manager.refresh_from_db()
    assert cast.manager.is_staff and cast.manager.is_superuser
    promoted = Client()
    promoted.force_login(cast.manager)
    assert promoted.get("/admin/accounts/user/").status_code == 200

    assert _change_role(admin, cast.manager, Role.MANAGER).status_code == 302
    cast.manager.refresh_from_db()
    assert not cast.manager.is_staff and not cast.manager.is_superuser
    assert promoted.get("/admin/accounts/user/").status_code == 302  # to the admin's sign-in


def test_only_administrators_reach_the_user_pages(cast):
    for user in (cast.viewer, cast.contributor, cast.owner, cast.manager):
        client = Client()
        client.force_login(user)
        response = client.get("/admin/accounts/user/add/")
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), user
