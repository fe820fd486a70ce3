from .views.item import urlpatterns as item_urlpatterns
from .views.register import urlpatterns as register_urlpatterns

app_name = "improvement"
urlpatterns = register_urlpatterns + item_urlpatterns
