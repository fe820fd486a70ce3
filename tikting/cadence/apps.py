from django.apps import AppConfig


class CadenceConfig(AppConfig):
    name = "tikting.cadence"
    verbose_name = "Cadence"

    def ready(self) -> None:
        # The capacity flags in the register review's agenda (cadence sits above governance).
        from tikting.governance.notices import register_agenda_notice

        from .review_agenda import capacity_notice

        register_agenda_notice("capacity", capacity_notice)

        from .bulk import register

        register()
