from .views.bulk import urlpatterns as bulk_urlpatterns
from .views.item import urlpatterns as item_urlpatterns
from .views.item_actions import urlpatterns as item_action_urlpatterns
from .views.item_form import urlpatterns as item_form_urlpatterns
from .views.register import urlpatterns as register_urlpatterns

app_name = "improvement"
urlpatterns = (
    register_urlpatterns
    + bulk_urlpatterns
    + item_form_urlpatterns
    + item_urlpatterns
    + item_action_urlpatterns
)
