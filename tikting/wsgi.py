import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tikting.settings")
application = get_wsgi_application()

# Every view, the API and its schemas are imported as a worker starts rather than on its first
# request, which would otherwise wait about a second for them (after each start or restart).
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018
