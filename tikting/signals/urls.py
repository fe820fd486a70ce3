from django.urls import path

from .views import urlpatterns as intake
from .views_recurring import recurring_review

app_name = "signals"
urlpatterns = [
    *intake,
    path("recurring/", recurring_review, name="recurring"),
]
__all__ = ["app_name", "urlpatterns"]
