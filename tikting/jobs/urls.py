from .views import urlpatterns

app_name = "jobs"
__all__ = ["app_name", "urlpatterns"]
