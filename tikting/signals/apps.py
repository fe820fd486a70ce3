from __future__ import annotations

from django.apps import AppConfig

from tikting.jobs.registry import Runnable, register_runnables


def detector_actions() -> list[Runnable]:
    """ "Run now" on the jobs page: every detector, and all of them at once."""
    from .registry import detectors

    task = "tikting.signals.tasks.run_detectors"
    found = detectors()
    actions = [Runnable(key="detectors:all", title="Every detector", task=task, group="Detectors")]
    actions += [
        Runnable(
            key=f"detector:{name}",
            title=detector.title,
            task=task,
            group="Detectors",
            kwargs={"detectors": [name]},
        )
        for name, detector in found.items()
    ]
    return actions


class SignalsConfig(AppConfig):
    name = "tikting.signals"
    label = "signals"
    verbose_name = "Signals: the intake queue and its detectors"

    def ready(self) -> None:
        register_runnables(detector_actions)
