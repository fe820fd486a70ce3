from .views import urlpatterns

app_name = "signals"
__all__ = ["app_name", "urlpatterns"]
