from .views import urlpatterns

app_name = "imports"
__all__ = ["app_name", "urlpatterns"]
