from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView

from tikting.api import api
from tikting.core.views import healthz

# Error pages in the app's layout with a way back (plain text for htmx requests).
handler403 = "tikting.core.views.permission_denied"
handler404 = "tikting.core.views.page_not_found"
handler500 = "tikting.core.views.server_error"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", RedirectView.as_view(url="/register/", permanent=False, http_method_names=["get", "head"])),
    path("healthz", healthz, name="healthz"),
    # Near the top: scripts' requests are the most numerous, and each pattern above is tried first.
    path("api/", api.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("register/", include("tikting.improvement.urls")),
    path("governance/", include("tikting.governance.urls")),
    path("account/", include("tikting.accounts.urls")),
    path("records/", include("tikting.records.urls")),
    path("metrics/", include("tikting.metrics.urls")),
    path("signals/", include("tikting.signals.urls")),
    # Agents (FusionInventory, GLPI Agent) submit inventories here: token auth, no session, no CSRF.
    path("discovery/agent/", include("tikting.discovery.agent.urls")),
    path("discovery/", include("tikting.discovery.urls")),
    path("cadence/", include("tikting.cadence.urls")),
    path("jobs/", include("tikting.jobs.urls")),
    path("search/", include("tikting.search.urls")),
    path("imports/", include("tikting.imports.urls")),
    path("notifications/", include("tikting.notifications.urls")),
    path("attachments/", include("tikting.attachments.urls")),
    path("views/", include("tikting.savedviews.urls")),
    path("admin/", admin.site.urls),
]
