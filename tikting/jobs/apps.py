from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "tikting.jobs"
    label = "jobs"
    verbose_name = "Background jobs and the schedule"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the schedule's system check)
