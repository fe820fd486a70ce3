"""`tikting createuser` and `tikting token`."""

import io

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from tikting.accounts.models import ApiToken, Role, User

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_createuser_creates_a_user_with_role_and_password():
    out, _ = run(
        "createuser",
        "mia",
        "--role",
        "manager",
        "--email",
        "mia@example.org",
        "--first-name",
        "Mia",
        "--last-name",
        "Manager",
        "--password",
        "correct-Horse-42",
    )
    user = User.objects.get(username="mia")
    assert (user.role, user.email, user.get_full_name()) == (Role.MANAGER, "mia@example.org", "Mia Manager")
    assert user.has_role("owner") and not user.has_role("admin")
    assert authenticate(username="mia", password="correct-Horse-42") == user
    assert "Created mia (Improvement manager)" in out


def test_createuser_admin_may_use_the_admin_site():
    run("createuser", "ada", "--role", "admin", "--password", "correct-Horse-42")
    user = User.objects.get(username="ada")
    assert user.is_staff and user.is_superuser


def test_createuser_reads_the_password_from_stdin(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("correct-Horse-42\n"))
    run("createuser", "bot", "--role", "contributor", "--password-stdin")
    assert authenticate(username="bot", password="correct-Horse-42") is not None


def test_createuser_refuses_a_weak_password_unless_told():
    with pytest.raises(CommandError, match="Password rejected"):
        run("createuser", "weak", "--role", "viewer", "--password", "demo")
    assert not User.objects.filter(username="weak").exists()
    run("createuser", "weak", "--role", "viewer", "--password", "demo", "--skip-password-validation")
    assert User.objects.get(username="weak").check_password("demo")


def test_createuser_refuses_a_duplicate_and_an_unknown_role():
    run("createuser", "vera", "--role", "viewer", "--no-password")
    assert not User.objects.get(username="vera").has_usable_password()
    with pytest.raises(CommandError, match="already exists"):
        run("createuser", "vera", "--role", "viewer", "--no-password")
    with pytest.raises(CommandError):
        run("createuser", "x", "--role", "boss", "--no-password")


def test_createuser_without_a_terminal_needs_a_password_option(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(CommandError, match="--password-stdin"):
        run("createuser", "nobody", "--role", "viewer")


def test_token_is_printed_once_and_authenticates(cast):
    out, err = run("token", "olga", "--name", "nightly export")
    raw = out.strip()
    assert raw.startswith(ApiToken.PREFIX)
    assert ApiToken.objects.authenticate(raw) == cast.owner
    token = ApiToken.objects.get(user=cast.owner)
    assert token.name == "nightly export"
    assert raw not in token.key_hash  # only the hash is kept
    assert "not shown again" in err


def test_token_list_shows_hints_not_secrets(cast):
    raw = run("token", "olga")[0].strip()
    out, _ = run("token", "olga", "--list")
    assert raw[:10] in out and raw not in out
    assert "active" in out


def test_revoked_token_no_longer_authenticates(cast):
    raw = run("token", "olga")[0].strip()
    token = ApiToken.objects.get(user=cast.owner)
    out, _ = run("token", "olga", "--revoke", str(token.pk))
    assert "Revoked" in out
    assert ApiToken.objects.authenticate(raw) is None


def test_token_for_unknown_user_or_token_fails(cast):
    with pytest.raises(CommandError, match="No user"):
        run("token", "nobody")
    with pytest.raises(CommandError, match="no token"):
        run("token", "olga", "--revoke", "999")
