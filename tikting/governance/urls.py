from .views import urlpatterns

app_name = "governance"
__all__ = ["app_name", "urlpatterns"]
