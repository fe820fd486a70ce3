from .views import urlpatterns

app_name = "search"
__all__ = ["app_name", "urlpatterns"]
