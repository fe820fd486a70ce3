from django.urls import path

from .views import agent_endpoint

app_name = "discovery_agent"

urlpatterns = [
    path("", agent_endpoint, name="endpoint"),
]
