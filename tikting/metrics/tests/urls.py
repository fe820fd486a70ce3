"""Test urlconf: the site's URLs plus the metrics page and API, until tikting/urls.py and
tikting/api.py mount them (then the site's own mounts are used as they are)."""

from django.core.exceptions import ValidationError
from django.urls import include, path
from ninja import NinjaAPI

from tikting import api as site_api
from tikting.urls import urlpatterns as site_patterns

mounted = any(prefix.strip("/") == "metrics" for prefix, _router in site_api.api._routers)

urlpatterns = list(site_patterns)
if not mounted:
    test_api = NinjaAPI(
        urls_namespace="metrics_test_api", auth=[site_api.TokenAuth(), site_api.SessionAuth()]
    )

    @test_api.exception_handler(ValidationError)
    def _invalid(request, exc):
        return test_api.create_response(request, {"detail": site_api.validation_detail(exc)}, status=422)

    @test_api.exception_handler(site_api.PermissionDeniedError)
    def _denied(request, exc):
        return test_api.create_response(request, {"detail": str(exc)}, status=403)

    test_api.add_router("/metrics/", "tikting.metrics.api.router")
    urlpatterns.insert(0, path("api/", test_api.urls))
if not any(getattr(p, "pattern", None) and str(p.pattern) == "metrics/" for p in site_patterns):
    urlpatterns.append(path("metrics/", include("tikting.metrics.urls")))
