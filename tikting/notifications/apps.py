from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Notifications (in the app and by e-mail), followers, @mentions and webhooks: it listens to
    core.events, which every layer below emits, and fills the follow slot of their pages."""

    name = "tikting.notifications"
    label = "notifications"
    verbose_name = "Notifications and webhooks"

    def ready(self) -> None:
        from tikting.core import events, slots

        from . import services, views

        events.subscribe(services.on_event)
        slots.register_slot("object-actions", views.follow_slot)
