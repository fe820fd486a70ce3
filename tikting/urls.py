from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from django.urls.resolvers import RoutePattern
from django.views.generic import RedirectView

from tikting.api import api
from tikting.core.views import healthz

# Error pages in the app's layout with a way back (plain text for htmx requests).
handler403 = "tikting.core.views.permission_denied"
handler404 = "tikting.core.views.page_not_found"
handler500 = "tikting.core.views.server_error"


def by_first_segment(patterns: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    """The same routes, grouped by their first segment ("records/<slug>" under "records/"), so that
    resolving a path tries the 10 or so groups and then its group's routes, not the API's 120
    routes one by one (django-ninja gives a flat list: the records API was the 57th; trying the
    patterns before it cost about 0.1 ms of each request, an eighth of a page of 50). Grouped only
    when every first segment is a plain word, so that no two groups can match one path and their
    order does not matter; a route that is its first segment alone ("items", or the empty one) stays
    as it is."""
    groups: dict[str, list[URLPattern | URLResolver]] = {}
    result: list[URLPattern | URLResolver] = []
    for pattern in patterns:
        route = str(pattern.pattern)
        head, slash, rest = route.partition("/")
        if not isinstance(pattern, URLPattern) or not isinstance(pattern.pattern, RoutePattern):
            return patterns
        if "<" in head:
            return patterns
        if not slash or not rest:
            result.append(pattern)
            continue
        if head not in groups:
            groups[head] = []
            result.append(URLResolver(RoutePattern(f"{head}/"), groups[head]))
        groups[head].append(
            URLPattern(
                RoutePattern(rest, name=pattern.pattern.name, is_endpoint=True),
                pattern.callback,
                pattern.default_args,
                pattern.name,
            )
        )
    return result


api_patterns, api_app, api_namespace = api.urls

urlpatterns: list[URLPattern | URLResolver] = [
    path("", RedirectView.as_view(url="/register/", permanent=False, http_method_names=["get", "head"])),
    path("healthz", healthz, name="healthz"),
    # Near the top: scripts' requests are the most numerous, and each pattern above is tried first.
    path("api/", include((by_first_segment(api_patterns), api_app), namespace=api_namespace)),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("register/", include("tikting.improvement.urls")),
    # A section's own address leads to its first page (as the menu does), never to a 404.
    path("governance/", RedirectView.as_view(url="/governance/agenda/", http_method_names=["get", "head"])),
    path("governance/", include("tikting.governance.urls")),
    path("account/", include("tikting.accounts.urls")),
    path("records/", include("tikting.records.urls")),
    path("metrics/", include("tikting.metrics.urls")),
    path("signals/", include("tikting.signals.urls")),
    # Agents (FusionInventory, GLPI Agent) submit inventories here: token auth, no session, no CSRF.
    path("discovery/agent/", include("tikting.discovery.agent.urls")),
    path("discovery/", include("tikting.discovery.urls")),
    path("cadence/", RedirectView.as_view(url="/cadence/sprints/", http_method_names=["get", "head"])),
    path("cadence/", include("tikting.cadence.urls")),
    path("jobs/", include("tikting.jobs.urls")),
    path("search/", include("tikting.search.urls")),
    path("imports/", include("tikting.imports.urls")),
    path("notifications/", include("tikting.notifications.urls")),
    path("attachments/", include("tikting.attachments.urls")),
    path("views/", include("tikting.savedviews.urls")),
    path("admin/", admin.site.urls),
]
