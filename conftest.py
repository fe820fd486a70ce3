import pytest

from tikting.test import PASSWORD, make_cast


def pytest_configure(config):
    from django.conf import settings

    # Hashing with PBKDF2 costs ~0.3 s a user; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def cast(db):
    return make_cast()


@pytest.fixture
def password():
    return PASSWORD


@pytest.fixture
def login(client):
    def _login(user):
        client.force_login(user)
        return client

    return _login


@pytest.fixture(autouse=True)
def _import_upload_dir(settings, tmp_path_factory):
    """Files uploaded on /imports/ go to a temporary folder, never the checkout's var/."""
    settings.TIKTING_IMPORT_UPLOAD_DIR = tmp_path_factory.getbasetemp() / "import-uploads"
