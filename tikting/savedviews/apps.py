from django.apps import AppConfig


class SavedViewsConfig(AppConfig):
    name = "tikting.savedviews"
    label = "savedviews"
    verbose_name = "Saved views"
    default_auto_field = "django.db.models.BigAutoField"
